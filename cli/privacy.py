"""``listenwell customers export`` and ``listenwell customers erase`` (GDPR Art. 15 and 17)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from . import CliError, state_of
from .customers import customers_app
from .io import actor

__all__ = ["erase", "export", "register"]


def export(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="The brand's id of the customer.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="JSON file to write. Default: print the JSON to standard output.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Write everything held about a customer as JSON (right of access, GDPR Art. 15).

    Profile with attributes and consent, handles, every linked mention with its
    enrichments, corrections and link decisions, conversations with notes,
    replies and escalation events, survey answers and audit entries. The export
    is itself audited as ``customer.export``.
    """
    from listenwell import store
    from listenwell.store.privacy import export_person

    engine = state_of(ctx).engine()
    data = export_person(engine, customer_id)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if output is None:
        typer.echo(text)
    else:
        try:
            output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    store.record_audit(
        engine,
        actor(),
        "customer.export",
        "customer",
        customer_id,
        {"to": "stdout" if output is None else str(output), "mentions": len(data["mentions"])},
    )
    if output is not None:
        typer.echo(f"exported customer {customer_id} to {output}", err=True)


def erase(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="The brand's id of the customer.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Who erases, for the audit log. Default: the current user."),
    ] = None,
) -> None:
    """Erase a customer and the personal data about them everywhere (GDPR Art. 17).

    Deletes the customer, their handles, every linked mention (with enrichments,
    corrections, link decisions and conversations), their survey answers and
    quarantined records naming them, and scrubs audit entries about them. One
    ``customer.erase`` audit entry remains, naming the customer only by a
    SHA-256 hash of the id. This cannot be undone.
    """
    from listenwell.store.privacy import erase_person

    who = (by if by is not None else actor()).strip()
    if not who:
        raise CliError("--by must not be empty")
    engine = state_of(ctx).engine()
    if not yes:
        typer.confirm(
            f"Erase customer {customer_id} and all personal data about them? "
            "This cannot be undone.",
            abort=True,
        )
    region = state_of(ctx).settings.linking.default_region
    report = erase_person(engine, customer_id, who, region=region)
    typer.echo(
        f"erased customer {customer_id}: {report.mentions} mentions, "
        f"{report.conversations} conversations, {report.surveys} surveys, "
        f"{report.handles} handles, {report.link_results} link suggestions, "
        f"{report.quarantine} quarantined records deleted; "
        f"{report.audit_scrubbed} audit entries scrubbed (audit id {report.customer_hash})"
    )


def register(app: typer.Typer) -> None:
    """Attach ``export`` and ``erase`` to ``listenwell customers``.

    ``app`` is the root application (unused: the commands live on ``customers_app``,
    which :mod:`listenwell.cli.customers` registers on it).
    """
    del app
    customers_app.command("export")(export)
    customers_app.command("erase")(erase)
