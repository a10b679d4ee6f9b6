"""The survey invitation sent after a conversation is resolved (a templated reply).

The invitation is the ``resolved_survey`` template (built in, or the user's
template of that name from ``inbox.templates_file``). It is offered only for a
resolved or closed conversation whose customer gave contact consent
(``consent_contact`` is True): unknown (None) or refused (False) consent means
no invitation, and :func:`invitation_check` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from listenwell.crm.templates import (
    load_templates,
    render_template,
    reply_context,
    templates_file,
)
from listenwell.store.inbox import get_conversation
from listenwell.store.models import CustomerRow

__all__ = ["SURVEY_TEMPLATE", "InvitationCheck", "invitation_check", "survey_invitation"]

SURVEY_TEMPLATE = "resolved_survey"
"""The template the invitation uses."""


@dataclass(frozen=True, slots=True)
class InvitationCheck:
    """Whether a survey invitation may be sent, the reason, and the text if it may."""

    allowed: bool
    reason: str
    text: str | None = None


def invitation_check(
    engine: Engine, conversation_id: int, settings: Any = None, *, agent: str = "the team"
) -> InvitationCheck:
    """Decide on, and render, the survey invitation for a conversation.

    Args:
        engine: The database.
        conversation_id: The conversation (case id).
        settings: The settings (for ``inbox.templates_file``); ``None``: built-in templates.
        agent: Who signs the invitation (``{agent}``).

    Raises:
        NotFoundError: No such conversation.
        TemplateError: The user's templates file is broken.
    """
    conv = get_conversation(engine, conversation_id)
    if conv.status not in ("resolved", "closed"):
        return InvitationCheck(
            False, f"conversation {conversation_id} is {conv.status}, not resolved"
        )
    if conv.customer_pk is None:
        return InvitationCheck(False, f"conversation {conversation_id} has no linked customer")
    with engine.connect() as c:
        row = c.execute(
            select(CustomerRow.consent_contact, CustomerRow.erased_at).where(
                CustomerRow.id == conv.customer_pk
            )
        ).one()
    if row.erased_at is not None:
        return InvitationCheck(False, f"customer {conv.customer_id} was erased")
    if row.consent_contact is not True:
        state = "unknown" if row.consent_contact is None else "refused"
        return InvitationCheck(
            False, f"customer {conv.customer_id} has not given contact consent ({state})"
        )
    path = templates_file(settings) if settings is not None else None
    templates = load_templates(path)
    values = reply_context(
        case_id=conv.id,
        agent=agent,
        customer_name=conv.customer_name,
        handle=conv.author_handle,
    )
    text = render_template(SURVEY_TEMPLATE, values, templates)
    return InvitationCheck(True, "contact consent given", text)


def survey_invitation(engine: Engine, conversation_id: int, settings: Any = None) -> str | None:
    """The survey invitation text for a resolved conversation, or ``None`` where not allowed.

    See :func:`invitation_check` for the reason when it is ``None``.
    """
    return invitation_check(engine, conversation_id, settings).text
