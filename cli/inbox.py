"""``listenwell inbox ...``: the inbox workflow from the command line.

Each mention is a conversation with a status (new, open, pending, resolved,
closed), an assignee, tags, internal notes and a reply thread; every change is
audit-logged. Replies go out through the real clients (praw, tweepy) with the
configured ``sources`` settings.

Optimistic locking: a change names the version it was made on (``--version``,
as ``inbox show`` prints it) and fails with a clear message if someone changed
the conversation since. Without ``--version`` the command reads the current
version first, so that single command acts as the last writer; the dashboard
always passes the version it showed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import CliError, state_of
from .io import actor, progress

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from listenwell.store.inbox import Conversation, Reply

inbox_app = typer.Typer(
    help="The inbox: conversations, their status, assignee, tags, notes and replies.",
    no_args_is_help=True,
)

_SNIPPET = 70

ByOpt = Annotated[
    str | None,
    typer.Option("--by", help="Who does it, for the audit log. Default: cli:<your user name>."),
]
VersionOpt = Annotated[
    int | None,
    typer.Option(
        "--version",
        min=1,
        help="The version you saw (inbox show prints it); the change fails if someone changed "
        "the conversation since. Default: the current version (you are the last writer).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ConvArg = Annotated[int, typer.Argument(help="The conversation's id (its case id).")]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Invalid input from the user becomes a one-line error."""
    try:
        yield
    except ValueError as exc:  # includes TemplateError
        raise CliError(str(exc)) from None


def _snippet(text: str, width: int = _SNIPPET) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _version(engine: Engine, conv_id: int, given: int | None) -> int:
    from listenwell.store.inbox import get_conversation

    return given if given is not None else get_conversation(engine, conv_id).version


def _line(c: Conversation) -> str:
    who = c.author_handle or c.author_name or "(unknown)"
    assignee = c.assignee or "-"
    tags = f" [{', '.join(c.tags)}]" if c.tags else ""
    flag = " !" if c.escalated else ""
    return (
        f"#{c.id:<6} {c.status:<8} {c.priority:<6}{flag} {c.mentioned_at:%Y-%m-%d %H:%M} "
        f"{c.source}:{who} -> {assignee}{tags}  {_snippet(c.text)}"
    )


def _changed(c: Conversation, what: str) -> None:
    typer.echo(f"conversation {c.id}: {what} (version {c.version})")


@inbox_app.command("sync")
def sync(
    ctx: typer.Context,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Mentions per transaction.")
    ] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Create a conversation for every mention that has none, and fill in linked customers.

    Idempotent: run it after each collection or import. A conversation's
    customer is the mention's link in force (a strong linker result or an
    agent's confirmation).
    """
    from listenwell.store.inbox import ensure_conversations, link_customers

    engine = state_of(ctx).engine()
    with progress("syncing") as prog:
        task = prog.add_task("mentions", total=None)
        created = ensure_conversations(
            engine,
            batch_size=batch_size,
            on_batch=lambda seen, _new: prog.advance(task, seen),
        )
        linked = link_customers(engine, batch_size=batch_size)
    if as_json:
        typer.echo(json.dumps({"created": created, "linked": linked}))
    else:
        typer.echo(
            f"inbox synced: {created:,} new conversations; {linked:,} earlier ones "
            "newly linked to a customer"
        )


@inbox_app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            help="Only this status (repeatable): new, open, pending, resolved, closed, or all. "
            "Default: new, open and pending.",
        ),
    ] = None,
    assignee: Annotated[
        str | None,
        typer.Option("--assignee", help="Only those assigned to this agent; '-' for unassigned."),
    ] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Only those with this tag.")] = None,
    escalated: Annotated[
        bool, typer.Option("--escalated", help="Only escalated conversations.")
    ] = False,
    priority: Annotated[
        list[str] | None,
        typer.Option("--priority", help="Only this priority (repeatable): urgent, high, ..."),
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="Only those whose text or author contains this.")
    ] = None,
    order: Annotated[
        str,
        typer.Option("--order", help="priority (most pressing, then longest waiting) or newest."),
    ] = "priority",
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="Page size.")] = 50,
    after: Annotated[
        str | None, typer.Option("--after", help="Show the page after this cursor (printed).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List conversations, most pressing first; one line each.

    ``!`` marks an escalated conversation. When there are more, the last line
    gives the ``--after`` cursor of the next page.
    """
    from listenwell.store.inbox import ACTIVE_STATUSES, inbox_counts, list_conversations

    state = state_of(ctx)
    engine = state.engine()
    statuses: list[str] | None = [s.strip().lower() for s in status or []] or list(ACTIVE_STATUSES)
    if statuses is not None and "all" in statuses:
        statuses = None
    who = None if assignee is None else ("" if assignee.strip() == "-" else assignee)
    with _user_errors():
        page = list_conversations(
            engine,
            status=statuses,
            assignee=who,
            tag=tag,
            escalated=True if escalated else None,
            priority=[p.strip().lower() for p in priority or []] or None,
            search=search,
            limit=limit,
            after=after,
            order=order,
            timeout_s=state.settings.query_timeout_s,
        )
    if as_json:
        typer.echo(
            json.dumps({"items": [c.as_dict() for c in page.items], "next_after": page.next_after})
        )
        return
    if not page.items:
        counts = inbox_counts(engine, timeout_s=state.settings.query_timeout_s)
        summary = ", ".join(f"{n:,} {s}" for s, n in counts.items() if n)
        typer.echo(f"no conversations match ({summary or 'the inbox is empty'})")
        return
    for c in page.items:
        typer.echo(_line(c))
    if page.next_after:
        typer.echo(f"more: --after '{page.next_after}'")


@inbox_app.command("show")
def show(ctx: typer.Context, conv_id: ConvArg, as_json: JsonOpt = False) -> None:
    """Show a conversation and its thread: earlier posts, notes and replies, in time order."""
    from listenwell.store.inbox import get_conversation, thread

    engine = state_of(ctx).engine()
    c = get_conversation(engine, conv_id)
    items = thread(engine, conv_id)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "conversation": c.as_dict(),
                    "thread": [
                        {
                            "kind": i.kind,
                            "at": i.at.isoformat(),
                            "author": i.author,
                            "text": i.text,
                            "ref": i.ref,
                            "relation": i.relation,
                            "detail": i.detail,
                        }
                        for i in items
                    ],
                }
            )
        )
        return
    customer = f"{c.customer_name or c.customer_id} ({c.customer_id})" if c.customer_id else "-"
    typer.echo(
        f"conversation {c.id} (version {c.version}): {c.status}, {c.priority} priority"
        + (f", escalated level {c.escalation_level}" if c.escalated else "")
    )
    typer.echo(f"  mention {c.mention_id} on {c.source} by {c.author_handle or '(unknown)'}")
    typer.echo(f"  customer: {customer}; assignee: {c.assignee or '-'}")
    typer.echo(f"  tags: {', '.join(c.tags) or '-'}")
    opened = f"  opened {c.opened_at:%Y-%m-%d %H:%M}"
    if c.first_response_at:
        opened += f", first response {c.first_response_at:%Y-%m-%d %H:%M}"
    if c.resolved_at:
        opened += f", resolved {c.resolved_at:%Y-%m-%d %H:%M}"
    if c.paused_s or c.pending_since:
        opened += f", pending {c.paused_s / 60:,.0f} min"
        if c.pending_since:
            opened += f" + since {c.pending_since:%Y-%m-%d %H:%M}"
    typer.echo(opened)
    if c.url:
        typer.echo(f"  {c.url}")
    typer.echo("")
    for i in items:
        label = {"mention": i.relation or "mention", "note": "note", "reply": "reply"}[i.kind]
        if i.kind == "reply":
            label = f"reply {i.ref} ({i.relation})"
        elif i.kind == "note":
            label = f"note {i.ref}"
        else:
            label = f"{label} {i.ref}"
        typer.echo(f"{i.at:%Y-%m-%d %H:%M} {label} by {i.author or '(unknown)'}:")
        for text_line in i.text.splitlines() or [""]:
            typer.echo(f"    {text_line}")
        if i.detail:
            typer.echo(f"    ! {i.detail}")


@inbox_app.command("assign")
def assign(
    ctx: typer.Context,
    conv_id: ConvArg,
    who: Annotated[str, typer.Argument(help="The agent to assign; '-' to unassign.")],
    by: ByOpt = None,
    version: VersionOpt = None,
) -> None:
    """Assign a conversation to an agent (or unassign it with '-')."""
    from listenwell.store.inbox import update_conversation

    engine = state_of(ctx).engine()
    assignee = None if who.strip() in ("-", "") else who
    with _user_errors():
        c = update_conversation(
            engine,
            conv_id,
            expected_version=_version(engine, conv_id, version),
            actor=by or actor(),
            assignee=assignee,
        )
    _changed(c, f"assigned to {c.assignee}" if c.assignee else "unassigned")


@inbox_app.command("status")
def status(
    ctx: typer.Context,
    conv_id: ConvArg,
    new_status: Annotated[
        str, typer.Argument(help="open, pending, resolved or closed (reopen with open).")
    ],
    by: ByOpt = None,
    version: VersionOpt = None,
) -> None:
    """Change a conversation's status.

    Allowed: new -> open/pending/resolved/closed; open -> pending/resolved/closed;
    pending -> open/resolved/closed; resolved -> open/closed; closed -> open.
    Time spent pending does not count against the SLA.
    """
    from listenwell.store.inbox import update_conversation

    engine = state_of(ctx).engine()
    with _user_errors():
        c = update_conversation(
            engine,
            conv_id,
            expected_version=_version(engine, conv_id, version),
            actor=by or actor(),
            status=new_status.strip().lower(),
        )
    _changed(c, f"status {c.status}")


@inbox_app.command("tag")
def tag(
    ctx: typer.Context,
    conv_id: ConvArg,
    tags: Annotated[list[str], typer.Argument(help="One or more tags (lower-cased).")],
    remove: Annotated[bool, typer.Option("--remove", help="Remove these tags instead.")] = False,
    by: ByOpt = None,
    version: VersionOpt = None,
) -> None:
    """Add tags to a conversation, or remove them with --remove."""
    from listenwell.store.inbox import update_conversation

    engine = state_of(ctx).engine()
    with _user_errors():
        c = update_conversation(
            engine,
            conv_id,
            expected_version=_version(engine, conv_id, version),
            actor=by or actor(),
            add_tags=() if remove else tags,
            remove_tags=tags if remove else (),
        )
    _changed(c, f"tags {', '.join(c.tags) or '(none)'}")


@inbox_app.command("note")
def note(
    ctx: typer.Context,
    conv_id: ConvArg,
    text: Annotated[str, typer.Argument(help="The note (internal; never sent).")],
    by: ByOpt = None,
) -> None:
    """Add an internal note to a conversation."""
    from listenwell.store.inbox import add_note

    engine = state_of(ctx).engine()
    with _user_errors():
        n = add_note(engine, conv_id, author=by or actor(), body=text)
    typer.echo(f"conversation {conv_id}: note {n.id} added by {n.author}")


def _templates(ctx: typer.Context, path: Path | None) -> Any:
    from listenwell.crm.templates import load_templates, templates_file

    with _user_errors():
        return load_templates(path or templates_file(state_of(ctx).settings))


TemplatesOpt = Annotated[
    Path | None,
    typer.Option(
        "--templates",
        dir_okay=False,
        help="YAML file of canned replies (name: text). Default: the inbox.templates_file "
        "setting, if set; the built-in templates are always there.",
    ),
]


@inbox_app.command("reply")
def reply(
    ctx: typer.Context,
    conv_id: ConvArg,
    text: Annotated[str | None, typer.Option("--text", "-t", help="The reply, as it is.")] = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            help="A canned reply by name (see `inbox templates`); its placeholders are filled "
            "for this conversation.",
        ),
    ] = None,
    by: ByOpt = None,
    draft_only: Annotated[
        bool, typer.Option("--draft-only", help="Save the draft without sending it.")
    ] = False,
    templates_path: TemplatesOpt = None,
) -> None:
    """Reply to a conversation's mention, through the platform's own client.

    Reddit replies go through praw (a comment on the post or comment), X
    replies through tweepy (a post in reply). A reply that fails is kept as a
    failed draft with the reason: send it again with `inbox retry`.
    """
    from listenwell.crm.replies import draft_reply, send_reply

    if (text is None) == (template is None):
        raise CliError("give exactly one of --text and --template")
    state = state_of(ctx)
    engine = state.engine()
    who = by or actor()
    known = _templates(ctx, templates_path) if template is not None else None
    with _user_errors():
        draft = draft_reply(
            engine, conv_id, actor=who, text=text, template=template, templates=known
        )
    if draft_only:
        typer.echo(
            f"reply {draft.id} saved as a draft ({draft.platform}); send it with "
            f"`listenwell inbox retry {draft.id}`"
        )
        return
    _report(send_reply(engine, draft.id, state.settings, actor=who).reply)


def _report(r: Reply) -> None:
    if r.status == "sent":
        typer.echo(f"reply {r.id} sent on {r.platform} as {r.external_id or '(id unknown)'}")
        return
    raise CliError(
        f"reply {r.id} failed: {r.error} (kept as a failed draft; "
        f"`listenwell inbox retry {r.id}` sends it again)"
    )


@inbox_app.command("replies")
def replies(
    ctx: typer.Context,
    failed: Annotated[bool, typer.Option("--failed", help="Only failed replies.")] = False,
    stuck: Annotated[
        bool,
        typer.Option(
            "--stuck",
            help="Only replies left 'sending' (interrupted mid-send; they may have been "
            "posted: check the platform before `retry --force`).",
        ),
    ] = False,
    drafts: Annotated[bool, typer.Option("--drafts", help="Only unsent drafts.")] = False,
    conversation: Annotated[
        int | None, typer.Option("--conversation", help="Only this conversation's replies.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many to show.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List replies, newest first: status, platform, who, and why a reply failed."""
    from listenwell.store.inbox import list_replies

    engine = state_of(ctx).engine()
    wanted = [s for s, on in (("failed", failed), ("sending", stuck), ("draft", drafts)) if on]
    rows = list_replies(engine, status=wanted or None, conversation_id=conversation, limit=limit)
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in rows]))
        return
    if not rows:
        typer.echo("no replies")
        return
    for r in rows:
        line = (
            f"reply {r.id:<5} conversation {r.conversation_id:<6} {r.status:<8} {r.platform:<7} "
            f"{r.created_at:%Y-%m-%d %H:%M} by {r.actor} (attempts {r.attempts}): "
            f"{_snippet(r.body, 50)}"
        )
        typer.echo(line)
        if r.status == "failed" and r.error:
            typer.echo(f"    ! {r.error}")


@inbox_app.command("retry")
def retry(
    ctx: typer.Context,
    reply_id: Annotated[int, typer.Argument(help="The reply's id (see `inbox replies`).")],
    by: ByOpt = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also send a reply stuck 'sending' (check first that it was not posted).",
        ),
    ] = False,
) -> None:
    """Send a draft or failed reply (again), through the platform's client."""
    from listenwell.crm.replies import retry_reply

    state = state_of(ctx)
    result = retry_reply(state.engine(), reply_id, state.settings, actor=by, force=force)
    _report(result.reply)


@inbox_app.command("templates")
def templates(
    ctx: typer.Context, templates_path: TemplatesOpt = None, as_json: JsonOpt = False
) -> None:
    """List the canned replies and their placeholders."""
    from listenwell.crm.templates import PLACEHOLDERS

    known = _templates(ctx, templates_path)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": t.name,
                        "text": t.text,
                        "description": t.description,
                        "builtin": t.builtin,
                    }
                    for t in known.values()
                ]
            )
        )
        return
    typer.echo("placeholders: " + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS))
    for t in sorted(known.values(), key=lambda t: t.name):
        origin = "built-in" if t.builtin else "yours"
        typer.echo(f"{t.name} ({origin}): {t.description}".rstrip(": "))
        typer.echo(f"    {t.text}")


def register(app: typer.Typer) -> None:
    """Add ``listenwell inbox ...`` to the main app."""
    app.add_typer(inbox_app, name="inbox")
