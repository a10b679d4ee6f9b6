"""``listenwell themes``: feedback themes with stable ids, their history, and user edits."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import CliError, state_of
from .io import actor, progress

if TYPE_CHECKING:
    from listenwell.nlp.themes import ThemeOptions
    from listenwell.store.themes import Theme, ThemeSummary

themes_app = typer.Typer(
    help="Feedback themes: clusters of similar mentions, labelled with their top terms. "
    "Theme ids stay the same across refits; merges, splits, names and pins are kept as history.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ByOpt = Annotated[
    str | None,
    typer.Option(
        "--by",
        metavar="WHO",
        help="Who makes the change, for the theme history and the audit log "
        "(default: cli:<your user name>).",
    ),
]
IdArg = Annotated[int, typer.Argument(help="The theme id (see `listenwell themes list`).")]

_QUOTE_CHARS = 220


def _options(ctx: typer.Context, count: int | None = None) -> ThemeOptions:
    from listenwell.nlp.themes import ThemeOptions

    options = ThemeOptions.from_settings(state_of(ctx).settings)
    if count is not None:
        options = replace(options, n_themes=count)
    return options


def _who(by: str | None) -> str:
    who = (by or "").strip()
    return who or actor()


def _one_line(text: str, limit: int = _QUOTE_CHARS) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def _mix(sentiment: dict[str, int]) -> str:
    total = sum(sentiment.values())
    if not total:
        return "no sentiment yet"
    return " \u00b7 ".join(f"{label} {100 * n / total:.0f}%" for label, n in sentiment.items() if n)


def _flags(theme: Theme) -> str:
    flags = []
    if theme.pinned:
        flags.append("pinned")
    if theme.origin == "user":
        flags.append("user-defined")
    if theme.status != "active":
        flags.append(
            f"merged into {theme.merged_into}" if theme.status == "merged" else theme.status
        )
    return f"  [{', '.join(flags)}]" if flags else ""


def _theme_json(summary: ThemeSummary) -> dict[str, Any]:
    t = summary.theme
    return {
        "id": t.id,
        "title": t.title,
        "name": t.name,
        "label": t.label,
        "terms": [[term, weight] for term, weight in t.terms],
        "status": t.status,
        "pinned": t.pinned,
        "origin": t.origin,
        "merged_into": t.merged_into,
        "mentions": summary.mentions,
        "sentiment": summary.sentiment,
        "fit_id": t.fit_id,
    }


def _errors() -> tuple[type[Exception], ...]:
    from listenwell.nlp import NlpError

    return (NlpError, ValueError)


@themes_app.command("list")
def list_themes(
    ctx: typer.Context,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list merged and retired themes.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the themes, largest first, with their mentions and sentiment mix."""
    from listenwell.store.themes import theme_summaries

    engine = state_of(ctx).engine()
    summaries = theme_summaries(engine, statuses=None if show_all else ("active",))
    if as_json:
        typer.echo(json.dumps([_theme_json(s) for s in summaries]))
        return
    if not summaries:
        minimum = _options(ctx).min_mentions
        typer.echo(
            "no themes yet: `listenwell enrich` fits them once at least "
            f"{minimum} mentions have embeddings, or run `listenwell themes refit`"
        )
        return
    typer.echo(f"{'id':>5}  {'mentions':>8}  {'negative':>8}  theme")
    for s in summaries:
        share = s.negative_share
        neg = "-" if share is None else f"{100 * share:.0f}%"
        typer.echo(f"{s.theme.id:>5}  {s.mentions:>8,}  {neg:>8}  {s.theme.title}{_flags(s.theme)}")


@themes_app.command("show")
def show(
    ctx: typer.Context,
    theme_id: IdArg,
    quotes: Annotated[
        int, typer.Option("--quotes", min=0, max=50, help="Representative mentions to show.")
    ] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Show one theme: its terms, sentiment mix, weekly trend and representative quotes.

    Quotes are the theme's mentions nearest its centroid.
    """
    from listenwell.store.themes import theme_detail

    detail = theme_detail(state_of(ctx).engine(), theme_id, quotes=quotes)
    s = detail.summary
    t = s.theme
    if as_json:
        out = _theme_json(s)
        out["quotes"] = [
            {
                "mention_id": q.mention_id,
                "text": q.text,
                "similarity": q.similarity,
                "sentiment": q.sentiment,
                "created_at": q.created_at.isoformat(),
                "source": q.source,
                "author_handle": q.author_handle,
            }
            for q in detail.quotes
        ]
        out["trend"] = [[week.isoformat(), n] for week, n in detail.trend]
        out["merged_from"] = detail.merged
        typer.echo(json.dumps(out))
        return
    typer.echo(f"theme {t.id}: {t.title}{_flags(t)}")
    if t.name:
        typer.echo(f"label:     {t.label}")
    typer.echo(f"mentions:  {s.mentions:,}  (origin {t.origin}, fit {t.fit_id or '-'})")
    terms = ", ".join(f"{term} ({weight:.3f})" for term, weight in t.terms)
    typer.echo(f"terms:     {terms or '-'}")
    typer.echo(f"sentiment: {_mix(s.sentiment)}")
    if detail.trend:
        weeks = "  ".join(f"{week:%Y-%m-%d} {n}" for week, n in detail.trend[-8:])
        typer.echo(f"per week:  {weeks}")
    if detail.merged:
        typer.echo(f"merged in: {', '.join(map(str, detail.merged))}")
    if detail.quotes:
        typer.echo("quotes:")
        for q in detail.quotes:
            sim = "-" if q.similarity is None else f"{q.similarity:.2f}"
            typer.echo(f"  #{q.mention_id} ({sim}, {q.sentiment or '-'}) {_one_line(q.text)}")


@themes_app.command("refit")
def refit_cmd(
    ctx: typer.Context,
    count: Annotated[
        int | None,
        typer.Option(
            "--count",
            min=2,
            max=200,
            help="Number of clusters (default: the nlp.themes_count setting, else chosen by "
            "silhouette).",
        ),
    ] = None,
    by: ByOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cluster all embedded mentions again and map the new clusters to the current themes.

    A theme that continues keeps its id; splits, merges, new and retired
    themes are recorded in the history. Pinned and user-defined themes are
    left as they are. Every mention is then assigned again.
    """
    from listenwell.nlp.themes import refit

    engine = state_of(ctx).engine()
    try:
        with progress("fitting themes") as prog:
            prog.add_task("mentions", total=None)
            report = refit(engine, _options(ctx, count), actor=_who(by))
    except _errors() as exc:
        raise CliError(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
        return
    parts = [f"{len(report.kept)} kept"]
    if report.new:
        parts.append(f"new {', '.join(map(str, report.new))}")
    parts += [f"{old} split into {old}, {', '.join(map(str, kids))}" for old, kids in report.split]
    parts += [f"{', '.join(map(str, gone))} merged into {into}" for into, gone in report.merged]
    if report.retired:
        parts.append(f"retired {', '.join(map(str, report.retired))}")
    if report.frozen:
        parts.append(f"pinned {', '.join(map(str, report.frozen))} left as they are")
    typer.echo(
        f"{report.fit_id}: {report.k} clusters over {report.mentions:,} mentions "
        f"({report.unthemed:,} unthemed); " + "; ".join(parts)
    )


@themes_app.command("name")
def name(
    ctx: typer.Context,
    theme_id: IdArg,
    new_name: Annotated[str, typer.Argument(metavar="NAME", help="The theme's new name.")],
    by: ByOpt = None,
) -> None:
    """Name a theme; the name is shown instead of the automatic label."""
    from listenwell.nlp.themes import name_theme

    try:
        name_theme(state_of(ctx).engine(), theme_id, new_name, actor=_who(by))
    except _errors() as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"theme {theme_id} is now called {' '.join(new_name.split())!r}")


@themes_app.command("merge")
def merge(
    ctx: typer.Context,
    theme_ids: Annotated[list[int], typer.Argument(help="The themes to merge away.")],
    into: Annotated[int, typer.Option("--into", help="The theme that survives (keeps its id).")],
    by: ByOpt = None,
) -> None:
    """Merge themes into one; the others point at it, and mentions are assigned again."""
    from listenwell.nlp.themes import merge_themes

    try:
        merge_themes(state_of(ctx).engine(), theme_ids, into, actor=_who(by), options=_options(ctx))
    except _errors() as exc:
        raise CliError(str(exc)) from None
    merged = sorted(set(theme_ids) - {into})
    typer.echo(f"merged {', '.join(map(str, merged))} into theme {into}")


@themes_app.command("pin")
def pin(ctx: typer.Context, theme_id: IdArg, by: ByOpt = None) -> None:
    """Pin a theme: refits never merge, split, retire or relabel it."""
    from listenwell.nlp.themes import pin_theme

    try:
        pin_theme(state_of(ctx).engine(), theme_id, pinned=True, actor=_who(by))
    except _errors() as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"theme {theme_id} is pinned")


@themes_app.command("unpin")
def unpin(ctx: typer.Context, theme_id: IdArg, by: ByOpt = None) -> None:
    """Unpin a theme: the next refit may change it again."""
    from listenwell.nlp.themes import pin_theme

    try:
        pin_theme(state_of(ctx).engine(), theme_id, pinned=False, actor=_who(by))
    except _errors() as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"theme {theme_id} is no longer pinned")


@themes_app.command("define")
def define(
    ctx: typer.Context,
    theme_name: Annotated[str, typer.Argument(metavar="NAME", help="The new theme's name.")],
    examples: Annotated[
        list[int],
        typer.Option(
            "--example",
            metavar="MENTION_ID",
            help="A mention that belongs to the theme; repeat it (three or more work best).",
        ),
    ],
    by: ByOpt = None,
) -> None:
    """Define a theme from example mentions; it is pinned, and mentions are assigned again.

    The theme's centre is the mean of the examples' embeddings; every mention
    nearer to it than to any other theme (and above the threshold) joins it.
    """
    from listenwell.nlp.themes import define_theme

    engine = state_of(ctx).engine()
    try:
        new_id = define_theme(engine, theme_name, examples, actor=_who(by), options=_options(ctx))
    except _errors() as exc:
        raise CliError(str(exc)) from None
    from listenwell.store.themes import theme_detail

    size = theme_detail(engine, new_id, quotes=0).summary.mentions
    typer.echo(f"defined theme {new_id} {' '.join(theme_name.split())!r}: {size:,} mentions")


@themes_app.command("history")
def history(
    ctx: typer.Context,
    theme_id: Annotated[
        int | None, typer.Option("--theme", help="Only the steps that touched this theme.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show the last N steps.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Show the themes' history: fits, refits, splits, merges, names, pins and definitions."""
    from listenwell.store.themes import theme_events

    events = theme_events(state_of(ctx).engine(), theme_id=theme_id, limit=limit)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "at": e.at.isoformat(),
                        "kind": e.kind,
                        "actor": e.actor,
                        "fit_id": e.fit_id,
                        "from": e.from_ids,
                        "to": e.to_ids,
                        "detail": e.detail,
                    }
                    for e in events
                ]
            )
        )
        return
    if not events:
        typer.echo("no theme history yet")
        return
    for e in events:
        typer.echo(f"{e.at:%Y-%m-%d %H:%M}  {e.kind:<7} {e.actor:<16} {_describe(e)}")


def _describe(e: Any) -> str:
    ids = ", ".join
    kind, src, dst = e.kind, [str(i) for i in e.from_ids], [str(i) for i in e.to_ids]
    if kind in ("fit", "refit"):
        d = e.detail
        text = f"{d.get('k', len(dst))} clusters over {d.get('mentions', 0):,} mentions"
        return f"{text} ({e.fit_id})"
    if kind == "split":
        return f"{src[0]} -> {ids(dst)}"
    if kind == "merge":
        return f"{ids(src[1:])} merged into {dst[0]} ({e.detail.get('by', '')})"
    if kind == "new":
        return f"new {ids(dst)}"
    if kind == "retire":
        return f"retired {ids(src)}"
    if kind == "name":
        return f"{dst[0]}: {e.detail.get('old') or '-'} -> {e.detail.get('new')}"
    if kind == "define":
        return f"{dst[0]} from mentions {ids(str(i) for i in e.detail.get('examples', []))}"
    return ids(dst or src)


def register(app: typer.Typer) -> None:
    """Add the ``themes`` commands to the root app."""
    app.add_typer(themes_app, name="themes")
