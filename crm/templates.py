"""Canned replies: a few built in, more from a YAML file, with safe placeholders.

A template's text may use these placeholders, and only these:

* ``{customer_name}``: the linked customer's name, else ``there``.
* ``{first_name}``: the first word of that name, else ``there``.
* ``{case_id}``: the conversation's id.
* ``{agent}``: who sends the reply.
* ``{handle}``: the author's handle as the platform shows it (``@jdoe``, ``u/jdoe``),
  else ``there``.

``{{`` and ``}}`` stand for literal braces. Placeholders are plain names: no
attribute or index access, no conversion (``!r``) and no format spec
(``:>10``), so a template cannot reach into objects or blow up in size. Only
the template's own text is parsed; the values put in (a customer's name, a
handle) are inserted as they are and never read as a template, and neither is
a post's text nor a reply an agent types.

The user's file (setting ``inbox.templates_file``) maps names to texts::

    shipping_delay: "Hi {first_name}, your parcel is on its way (case {case_id})."
    refund:
      text: "Hi {first_name}, we have refunded your order. - {agent}"
      description: Refund confirmed.

A user template with a built-in template's name replaces it.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "BUILTIN_TEMPLATES",
    "FALLBACK_NAME",
    "PLACEHOLDERS",
    "Template",
    "TemplateError",
    "load_templates",
    "placeholders",
    "render",
    "render_template",
    "reply_context",
    "templates_file",
]

PLACEHOLDERS = ("customer_name", "first_name", "case_id", "agent", "handle")
"""The names a template may use."""

FALLBACK_NAME = "there"
"""What ``{customer_name}``, ``{first_name}`` and ``{handle}`` become when unknown."""

_MAX_TEMPLATE_CHARS = 10_000


class TemplateError(ValueError):
    """A template is malformed, uses an unknown placeholder, or does not exist."""


@dataclass(frozen=True, slots=True)
class Template:
    """A canned reply.

    Attributes:
        name: What agents call it (``--template NAME``).
        text: The text with placeholders.
        description: One line on when to use it.
        builtin: Whether it ships with Listenwell.
    """

    name: str
    text: str
    description: str = ""
    builtin: bool = False


BUILTIN_TEMPLATES: Mapping[str, Template] = {
    t.name: t
    for t in (
        Template(
            "acknowledge",
            "Hi {first_name}, thanks for reaching out. We're looking into this now and will "
            "get back to you shortly (case {case_id}). - {agent}",
            "First answer: we have seen it and are on it.",
            True,
        ),
        Template(
            "apology_dm",
            "Hi {first_name}, we're sorry about this. Please send us a direct message with your "
            "order number so we can put it right (case {case_id}). - {agent}",
            "Apologise and move the conversation to private messages.",
            True,
        ),
        Template(
            "need_info",
            "Hi {first_name}, thanks for letting us know. Could you tell us a little more, "
            "e.g. your order number or what you see on screen? (case {case_id}) - {agent}",
            "Ask the customer for details; set the conversation to pending.",
            True,
        ),
        Template(
            "resolved_survey",
            "Hi {first_name}, glad we could sort this out! How did we do? Reply with a score "
            "from 1 (poor) to 5 (great). (case {case_id}) - {agent}",
            "Close the loop and ask for a CSAT score.",
            True,
        ),
    )
}
"""The canned replies that ship with Listenwell."""


def placeholders(text: str) -> list[str]:
    """The placeholders ``text`` uses, in order of first use.

    Raises:
        TemplateError: The text is malformed (a lone brace), or uses a placeholder
            that is unknown or has a conversion or format spec.
    """
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"malformed template ({exc}); write {{{{ and }}}} for braces") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field == "" or not field.isidentifier():
            raise TemplateError(
                f"placeholder {{{field}}} is not allowed; use one of "
                + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            )
        if field not in PLACEHOLDERS:
            raise TemplateError(
                f"unknown placeholder {{{field}}}; use one of "
                + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            )
        if spec or conversion:
            raise TemplateError(f"placeholder {{{field}}} may not have a format or conversion")
        if field not in names:
            names.append(field)
    return names


def render(text: str, values: Mapping[str, str]) -> str:
    """Fill the placeholders of ``text`` with ``values``; the values are not parsed again.

    Raises:
        TemplateError: As for :func:`placeholders`, or a value is missing.
    """
    for name in placeholders(text):
        if name not in values:
            raise TemplateError(f"no value for placeholder {{{name}}}")
    out: list[str] = []
    for literal, field, _spec, _conversion in string.Formatter().parse(text):
        out.append(literal)
        if field is not None:
            out.append(str(values[field]))
    return "".join(out)


def reply_context(
    *,
    case_id: int | str,
    agent: str,
    customer_name: str | None = None,
    handle: str | None = None,
) -> dict[str, str]:
    """The placeholder values for one reply; unknown names and handles become ``there``."""
    name = " ".join((customer_name or "").split())
    return {
        "customer_name": name or FALLBACK_NAME,
        "first_name": name.split(" ", 1)[0] if name else FALLBACK_NAME,
        "case_id": str(case_id),
        "agent": agent,
        "handle": (handle or "").strip() or FALLBACK_NAME,
    }


def templates_file(settings: Any) -> Path | None:
    """The user's templates file from ``settings.inbox.templates_file``, where that exists."""
    section = getattr(settings, "inbox", None)
    value = getattr(section, "templates_file", None) if section is not None else None
    return Path(value).expanduser() if value else None


def load_templates(path: str | Path | None = None) -> dict[str, Template]:
    """The built-in templates, plus (and overridden by) those of the YAML file at ``path``.

    Raises:
        TemplateError: The file cannot be read, is not a mapping of names to texts,
            or a template in it is invalid; the message names the file and template.
    """
    templates = dict(BUILTIN_TEMPLATES)
    if path is None:
        return templates
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(f"templates file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"templates file {path} cannot be read: {exc}") from None
    except yaml.YAMLError:
        raise TemplateError(f"templates file {path} is not valid YAML") from None
    if data is None:
        return templates
    if not isinstance(data, dict):
        raise TemplateError(f"templates file {path} must map template names to texts")
    for name, value in data.items():
        key = str(name).strip()
        if not key or not all(ch.isalnum() or ch in "-_" for ch in key):
            raise TemplateError(f"{path}: template name {name!r} may only have letters, - and _")
        description = ""
        if isinstance(value, dict):
            description = str(value.get("description") or "")
            value = value.get("text")
        if not isinstance(value, str) or not value.strip():
            raise TemplateError(f"{path}: template {key!r} needs a text")
        if len(value) > _MAX_TEMPLATE_CHARS:
            raise TemplateError(f"{path}: template {key!r} is too long")
        try:
            placeholders(value)
        except TemplateError as exc:
            raise TemplateError(f"{path}: template {key!r}: {exc}") from None
        templates[key] = Template(key, value.strip(), description)
    return templates


def render_template(
    name: str, values: Mapping[str, str], templates: Mapping[str, Template] | None = None
) -> str:
    """Render the template called ``name`` (from ``templates``, default the built-in ones).

    Raises:
        TemplateError: No such template, or it cannot be rendered.
    """
    known = BUILTIN_TEMPLATES if templates is None else templates
    if name not in known:
        raise TemplateError(f"no template {name!r}; known: {', '.join(sorted(known)) or 'none'}")
    return render(known[name].text, values)
