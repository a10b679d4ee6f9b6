"""``listenwell customers`` (search, duplicates) and ``listenwell links`` (agents' decisions)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import CliError, state_of
from .io import progress

if TYPE_CHECKING:
    from listenwell.nlp.matching import CustomerIndex, MatchOptions

customers_app = typer.Typer(
    help="Find customers by approximate name, e-mail, phone or handle; list likely duplicates.",
    no_args_is_help=True,
)
links_app = typer.Typer(
    help="Confirm or reject links between mentions and customers; list the decisions.",
    no_args_is_help=True,
)

DUPLICATE_HEADER = ["customer_id_a", "customer_id_b", "score", "reasons"]
"""The header of ``listenwell customers duplicates --output``."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _options(ctx: typer.Context) -> MatchOptions:
    from listenwell.nlp.matching import MatchOptions

    return MatchOptions.from_settings(state_of(ctx).settings)


def _index(ctx: typer.Context, options: MatchOptions) -> CustomerIndex:
    from listenwell.nlp.matching import CustomerIndex
    from listenwell.store.links import customer_cards

    engine = state_of(ctx).engine()
    try:
        return CustomerIndex(
            customer_cards(engine),
            default_region=options.default_region,
            account_fields=options.account_fields,
        )
    except ValueError as exc:  # a bad region or account-field pattern in the settings
        raise CliError(f"linking settings: {exc}") from None


@customers_app.command("search")
def search(
    ctx: typer.Context,
    query: Annotated[
        str,
        typer.Argument(
            help='A name (typos, nicknames and swapped order are fine, e.g. "jon smth"), '
            "an e-mail, a phone number in any format, a handle (@name, u/name) or a customer id."
        ),
    ],
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=1000, help="Show at most this many.")
    ] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Find customers by approximate name, e-mail, phone or handle; best match first.

    Erased customers are never shown. The score is 0-100; 100 is an exact
    match on e-mail, phone, handle, customer id or order/account number.
    """
    if not query.strip():
        raise CliError("the query is empty")
    hits = _index(ctx, _options(ctx)).search(query, limit=limit)
    if as_json:
        typer.echo(json.dumps([h.as_dict() for h in hits], ensure_ascii=False))
        return
    if not hits:
        typer.echo(f"no customer matches {query!r}")
        return
    for h in hits:
        handles = " ".join(h.handles)
        fields = [h.customer_id, h.name or "-", h.email or "-", h.phone or "-", handles or "-"]
        typer.echo(f"{h.score:5.1f}  {'  '.join(fields)}  (matched {h.matched})")


@customers_app.command("duplicates")
def duplicates(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="CSV file to write: customer_id_a,customer_id_b,score,reasons.",
            dir_okay=False,
        ),
    ],
    min_score: Annotated[
        float | None,
        typer.Option(
            "--min-score",
            min=0.0,
            max=1.0,
            help="List pairs scoring at least this (0-1). Default: the setting "
            "linking.duplicate_min_score (0.6).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the pairs of customers that are likely the same person to a CSV file.

    Pairs are found on shared or similar e-mails (dots, +tags, other domain),
    phone numbers in any format, order/account numbers, handles and names
    (nicknames, typos, swapped first/last, initials). A common name alone is
    not enough. Reasons list what agrees and what disagrees.
    """
    options = _options(ctx)
    threshold = options.duplicate_min_score if min_score is None else min_score
    with progress("comparing") as prog:
        task = prog.add_task("customers", total=None)
        index = _index(ctx, options)

        def advance(done: int, total: int) -> None:
            prog.update(task, completed=done, total=total)

        pairs = index.duplicates(threshold, on_progress=advance)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(DUPLICATE_HEADER)
            for p in pairs:
                writer.writerow(
                    [p.customer_id_a, p.customer_id_b, f"{p.score:.4f}", "; ".join(p.reasons)]
                )
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    counts = {"customers": len(index), "pairs": len(pairs), "min_score": threshold}
    if as_json:
        typer.echo(json.dumps({**counts, "output": str(output)}))
    else:
        typer.echo(
            f"{len(pairs):,} likely duplicate pairs among {len(index):,} customers "
            f"(score >= {threshold:g}) written to {output}"
        )


MentionArg = Annotated[
    int, typer.Argument(help="The mention's id (as in exports and the dashboard).")
]
CustomerArg = Annotated[str, typer.Argument(help="The customer's customer_id.")]
ByOpt = Annotated[
    str, typer.Option("--by", help="Who decides (the agent's name); kept with the decision.")
]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Why, in a few words.")]


def _decide(
    ctx: typer.Context, mention_id: int, customer_id: str, decision: str, by: str, note: str | None
) -> None:
    from listenwell.store.links import decide_link

    if not by.strip():
        raise CliError("--by must name who decides")
    engine = state_of(ctx).engine()
    try:
        d = decide_link(engine, mention_id, customer_id, decision, by, note)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"mention {d.mention_id} -> customer {d.customer_id}: {d.decision} by {d.actor}")


@links_app.command("confirm")
def confirm(
    ctx: typer.Context,
    mention_id: MentionArg,
    customer_id: CustomerArg,
    by: ByOpt,
    note: NoteOpt = None,
) -> None:
    """Confirm that a mention is from (or about) a customer; re-runs keep the link.

    The export then shows this customer with confidence 1.0 and evidence
    "agent NAME (confirmed)", whatever the linker found.
    """
    _decide(ctx, mention_id, customer_id, "confirmed", by, note)


@links_app.command("reject")
def reject(
    ctx: typer.Context,
    mention_id: MentionArg,
    customer_id: CustomerArg,
    by: ByOpt,
    note: NoteOpt = None,
) -> None:
    """Reject a link: this customer is never proposed for this mention again."""
    _decide(ctx, mention_id, customer_id, "rejected", by, note)


@links_app.command("list")
def list_links(
    ctx: typer.Context,
    mention: Annotated[
        int | None,
        typer.Option(
            "--mention",
            help="Only this mention; also shows the linker's result and the link in force.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Show at most this many.")
    ] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List agents' link decisions, newest first."""
    from listenwell.store.links import effective_links, list_decisions

    engine = state_of(ctx).engine()
    decisions = list_decisions(engine, mention, limit=limit)
    rows = [
        {
            "mention_id": d.mention_id,
            "customer_id": d.customer_id,
            "decision": d.decision,
            "actor": d.actor,
            "decided_at": d.decided_at.isoformat().replace("+00:00", "Z"),
            "note": d.note,
        }
        for d in decisions
    ]
    effective: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    if mention is not None:
        link = effective_links(engine, [mention]).get(mention)
        if link is not None:
            effective = {
                "customer_id": link.customer_id,
                "confidence": link.confidence,
                "evidence": link.evidence_text,
            }
        model = _model_result(engine, mention)
    if as_json:
        out: dict[str, Any] = {"decisions": rows}
        if mention is not None:
            out.update({"mention_id": mention, "link": effective, "linker": model})
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    if mention is not None:
        if effective is None:
            typer.echo(f"mention {mention}: no link in force")
        else:
            typer.echo(
                f"mention {mention}: linked to {effective['customer_id']} "
                f"(confidence {effective['confidence']:.2f}; {effective['evidence']})"
            )
        if model is not None and model.get("customer_id"):
            typer.echo(
                f"  linker: {model['customer_id']} ({model['strength']}, "
                f"confidence {model['confidence']:.2f})"
            )
    if not rows:
        typer.echo("no link decisions yet")
        return
    for r in rows:
        note = f"  ({r['note']})" if r["note"] else ""
        typer.echo(
            f"{r['decided_at']}  mention {r['mention_id']}  {r['decision']:9}  "
            f"{r['customer_id']}  by {r['actor']}{note}"
        )


def _model_result(engine: Any, mention_id: int) -> dict[str, Any] | None:
    from listenwell.store.links import linker_result

    result = linker_result(engine, mention_id)
    if result is None:
        return None
    return {
        "customer_id": result.label,
        "confidence": result.score,
        "strength": result.data.get("strength"),
        "evidence": result.data.get("evidence", []),
        "suggestions": result.data.get("suggestions", []),
    }


def register(app: typer.Typer) -> None:
    """Add the ``customers`` and ``links`` commands to the root app."""
    app.add_typer(customers_app, name="customers")
    app.add_typer(links_app, name="links")
