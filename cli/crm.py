"""``listenwell surveys``, ``segments``, ``kpis``, ``reminders``, ``churn`` and the customer 360.

:func:`customer_show` is attached by the root CLI as ``listenwell customers show ID``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from . import CliError, state_of
from .io import _check_encoding, _parse_day, actor, progress

__all__ = ["customer_show", "register"]

surveys_app = typer.Typer(
    help="Import CSAT and NPS answers; see their trend next to social sentiment; invite.",
    no_args_is_help=True,
)
segments_app = typer.Typer(
    help="Rule-based customer segments: define, list, see the members.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
FromOpt = Annotated[
    str | None, typer.Option("--from", help="First day (YYYY-MM-DD, UTC). Default: 30 days ago.")
]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day, inclusive. Default: today.")]


def _plain(value: Any) -> Any:
    """A value as JSON can hold it (NaN and NA become null, times ISO 8601)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    return value


def _records(df: Any) -> list[dict[str, Any]]:
    return [_plain(r) for r in df.to_dict("records")]


def _fmt(value: Any, digits: int = 1) -> str:
    value = _plain(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _period(start: str | None, end: str | None) -> tuple[date, date]:
    last = _parse_day(end, "--to") or datetime.now(UTC).date()
    first = _parse_day(start, "--from") or last - timedelta(days=29)
    if last < first:
        raise CliError("--to is before --from")
    return first, last


# ---------------------------------------------------------------------------- surveys


@surveys_app.command("import")
def surveys_import(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            help="A CSV file with kind (csat|nps), score, answered_at (ISO 8601), customer_id "
            "(or respondent) and/or email, and optionally comment and external_id."
        ),
    ],
    source: Annotated[
        str,
        typer.Option(
            "--source", help="Where the answers come from; with external_id, the import key."
        ),
    ] = "import",
    encoding: Annotated[
        str | None,
        typer.Option("--encoding", help="The file's encoding if not UTF-8 and without a BOM."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import CSAT (1-5) and NPS (0-10) answers; idempotent on (source, external_id).

    Answers are linked to the customer (customer_id, else e-mail) and to that
    customer's newest conversation resolved before the answer. Rows that
    cannot be stored are listed with their line number and reason.
    """
    from listenwell.collectors.files import FileFormatError, _csv_rows
    from listenwell.store.surveys import import_surveys

    _check_encoding(encoding)
    engine = state_of(ctx).engine()
    try:
        rows = _csv_rows(path, encoding, ["kind", "score", "answered_at"])
        with progress("importing") as prog:
            prog.add_task(path.name, total=None)
            result = import_surveys(
                engine,
                ((line, row, error) for line, row, _raw, error in rows),
                source=source,
                actor=actor(),
            )
    except FileFormatError as exc:
        raise CliError(str(exc)) from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if as_json:
        typer.echo(json.dumps({"file": str(path), **result.as_dict()}))
    else:
        typer.echo(
            f"imported {path.name}: {result.inserted:,} new, {result.updated:,} updated, "
            f"{result.linked_customers:,} linked to customers, "
            f"{result.linked_conversations:,} to conversations, {len(result.errors):,} rejected"
        )
    for line, reason in result.errors[:10]:
        typer.echo(f"  line {line}: {reason}", err=True)
    if len(result.errors) > 10:
        typer.echo(f"  ... and {len(result.errors) - 10:,} more", err=True)


@surveys_app.command("trend")
def surveys_trend(
    ctx: typer.Context,
    freq: Annotated[
        str, typer.Option("--freq", help="Bucket size: week (from Mondays) or month.")
    ] = "week",
    start: FromOpt = None,
    end: ToOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """CSAT (% of 4-5, mean), NPS and net sentiment of mentions, per week or month."""
    from listenwell.store.surveys import csat_nps_trend

    if freq not in ("week", "month"):
        raise CliError("--freq must be week or month")
    first = _parse_day(start, "--from")
    last = _parse_day(end, "--to")
    df = csat_nps_trend(state_of(ctx).engine(), freq=freq, start=first, end=last)
    if as_json:
        typer.echo(json.dumps(_records(df)))
        return
    if df.empty:
        typer.echo("no survey answers or labelled mentions in that period")
        return
    typer.echo(f"{'bucket':10}  {'CSAT %':>7} {'mean':>5} {'n':>4}  {'NPS':>6} {'n':>4}  "
               f"{'sentiment':>9} {'n':>5}")  # fmt: skip
    for r in df.itertuples():
        typer.echo(
            f"{r.bucket!s:10}  {_fmt(r.csat):>7} {_fmt(r.csat_mean, 2):>5} {r.csat_answers:>4}  "
            f"{_fmt(r.nps):>6} {r.nps_answers:>4}  {_fmt(r.net_sentiment):>9} {r.mentions:>5}"
        )


@surveys_app.command("invite")
def surveys_invite(
    ctx: typer.Context,
    conversation_id: Annotated[int, typer.Argument(help="The resolved conversation (case id).")],
    agent: Annotated[str, typer.Option("--agent", help="Who signs the invitation.")] = "the team",
) -> None:
    """Show the survey invitation for a resolved conversation, if the customer consented."""
    from listenwell.crm.surveys import invitation_check
    from listenwell.crm.templates import TemplateError

    state = state_of(ctx)
    try:
        check = invitation_check(state.engine(), conversation_id, state.settings, agent=agent)
    except TemplateError as exc:
        raise CliError(str(exc)) from None
    if not check.allowed:
        raise CliError(f"no survey invitation: {check.reason}")
    typer.echo(check.text)


# ---------------------------------------------------------------------------- segments


@segments_app.command("define")
def segments_define(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The segment's name (replaces one of that name).")],
    rule: Annotated[
        str,
        typer.Option(
            "--rule",
            help='The rule as JSON, e.g. \'{"conditions": [{"field": "lifetime_value", '
            '"op": "gte", "value": 1000}]}\'. Fields: segment, attributes.KEY, lifetime_value, '
            "mentions, positive_share, negative_share, complaints (with days), last_nps; "
            "ops: eq, ne, in, gte, lte.",
        ),
    ],
    by: Annotated[str, typer.Option("--by", help="Who defines it (kept in the audit log).")],
) -> None:
    """Define (or redefine) a rule-based segment; its members are computed when asked."""
    from listenwell.crm.segments import define_segment

    if not by.strip():
        raise CliError("--by must name who defines the segment")
    try:
        seg = define_segment(state_of(ctx).engine(), name, rule, actor=by)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"segment {seg.name!r} saved ({len(seg.definition['conditions'])} conditions)")


@segments_app.command("list")
def segments_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the segments and their rules."""
    from listenwell.store.segments import list_segments

    segs = list_segments(state_of(ctx).engine())
    rows = [
        {"name": s.name, "definition": s.definition, "created_by": s.created_by,
         "updated_at": _plain(s.updated_at)}
        for s in segs
    ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo("no segments yet (see `listenwell segments define --help`)")
    for r in rows:
        typer.echo(f"{r['name']}: {json.dumps(r['definition'])}")


@segments_app.command("members")
def segments_members(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The segment's name.")],
    as_json: JsonOpt = False,
) -> None:
    """List the customers in a segment now."""
    from listenwell.crm.segments import segment_members

    df = segment_members(state_of(ctx).engine(), name)
    cols = ["customer_id", "name", "segment", "lifetime_value", "mentions", "negative_share"]
    if as_json:
        typer.echo(json.dumps(_records(df[cols]) if not df.empty else []))
        return
    typer.echo(f"{len(df):,} customers in {name!r}")
    for r in df.itertuples():
        typer.echo(f"  {r.customer_id}  {r.name or '-'}  value {_fmt(r.lifetime_value, 2)}")


# ---------------------------------------------------------------------------- reports


def kpis_command(
    ctx: typer.Context,
    start: FromOpt = None,
    end: ToOpt = None,
    as_json: JsonOpt = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Also write the KPIs to this CSV file.", dir_okay=False
        ),
    ] = None,
) -> None:
    """Customer-care KPIs: response and resolution times, SLA, backlog, CSAT, NPS, sentiment,
    share of voice and volume (SLA targets in wall-clock time)."""
    from listenwell.store.kpis import kpi_frame

    first, last = _period(start, end)
    state = state_of(ctx)
    df = kpi_frame(state.engine(), start=first, end=last, brand_settings=state.settings.brand)
    if output is not None:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            df.to_csv(output, index=False)
        except OSError as exc:
            raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    if as_json:
        typer.echo(json.dumps(_records(df)))
        return
    typer.echo(f"KPIs {first}..{last}")
    for r in df.itertuples():
        typer.echo(f"  {r.kpi:32} {_fmt(r.value, 2):>12}  {r.unit}")
    if output is not None:
        typer.echo(f"written to {output}")


def reminders_command(
    ctx: typer.Context,
    today: Annotated[
        str | None,
        typer.Option("--today", help="The day to plan for (YYYY-MM-DD). Default: today."),
    ] = None,
    silent_days: Annotated[
        int,
        typer.Option(
            "--silent-days", min=1, help="Days without a mention that make a customer silent."
        ),
    ] = 90,
    follow_up_days: Annotated[
        int,
        typer.Option(
            "--follow-up-days",
            min=0,
            help="Days after which a waiting conversation needs a follow-up.",
        ),
    ] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Who to contact: due today, overdue follow-ups, and customers silent for long."""
    from listenwell.store.customer360 import reminders

    day = _parse_day(today, "--today") or datetime.now(UTC).date()
    df = reminders(
        state_of(ctx).engine(), today=day, silent_days=silent_days, follow_up_days=follow_up_days
    )
    if as_json:
        typer.echo(json.dumps(_records(df)))
        return
    if df.empty:
        typer.echo(f"no reminders for {day}")
        return
    for r in df.itertuples():
        conv = "" if _plain(r.conversation_id) is None else f" case {r.conversation_id}"
        typer.echo(f"{r.kind:18} {r.customer_id or '-'}{conv}  {r.detail}")


def churn_command(
    ctx: typer.Context,
    show_all: Annotated[
        bool, typer.Option("--all", help="List every customer, not only those at risk.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Customers at risk of churning, with the reasons (see listenwell.crm.segments)."""
    from listenwell.crm.segments import churn_risk

    df = churn_risk(state_of(ctx).engine())
    if not show_all and not df.empty:
        df = df[df["churn_risk"]]
    if as_json:
        typer.echo(json.dumps(_records(df)))
        return
    if df.empty:
        typer.echo("no customer at risk")
        return
    for r in df.itertuples():
        typer.echo(f"{r.customer_id}  {'; '.join(r.reasons) or 'no risk'}")


def customer_show(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="The customer's customer_id.")],
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=1000, help="Timeline events to show.")
    ] = 20,
    as_json: JsonOpt = False,
    before: Annotated[
        str | None,
        typer.Option("--before", help="Page on: the cursor printed after the previous page."),
    ] = None,
) -> None:
    """Customer 360: profile, handles, consent, satisfaction trend and timeline, newest first."""
    from listenwell.store.customer360 import customer_360

    try:
        view = customer_360(state_of(ctx).engine(), customer_id, limit=limit, before=before)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(_plain(view.as_dict()), ensure_ascii=False))
        return
    typer.echo(f"{view.customer_id}  {view.name or '-'}  {view.email or '-'}  {view.phone or '-'}")
    typer.echo(f"  segment {view.segment or '-'}  lifetime value {_fmt(view.lifetime_value, 2)}")
    consent = ", ".join(f"{k} {'-' if v is None else ('yes' if v else 'no')}"
                        for k, v in view.consent.items())  # fmt: skip
    typer.echo(f"  consent: {consent}")
    typer.echo(f"  handles: {' '.join(view.handles) or '-'}")
    typer.echo("  events: " + ", ".join(f"{n} {k}" for k, n in view.counts.items() if n))
    for p in view.satisfaction:
        typer.echo(
            f"  {p.month:%Y-%m}  sentiment {_fmt(p.sentiment, 2)} ({p.mentions})  "
            f"CSAT {_fmt(p.csat_mean, 2)} ({p.csat_answers})  NPS {_fmt(p.nps)} ({p.nps_answers})"
        )
    for e in view.timeline:
        text = " ".join(e.text.split())
        text = text if len(text) <= 100 else text[:97] + "..."
        typer.echo(f"{e.at:%Y-%m-%d %H:%M}  {e.kind:10} {e.platform or '-':8} {text}")
    if view.next_before:
        typer.echo(f"more: --before '{view.next_before}'")


def register(app: typer.Typer) -> None:
    """Add ``surveys``, ``segments``, ``kpis``, ``reminders`` and ``churn`` to the root app."""
    app.add_typer(surveys_app, name="surveys")
    app.add_typer(segments_app, name="segments")
    app.command("kpis")(kpis_command)
    app.command("reminders")(reminders_command)
    app.command("churn")(churn_command)
