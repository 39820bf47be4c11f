"""Templates for subjects, messages, URLs, lines and file names: ``{event.topic}``.

Templates are written by administrators but rendered with event data, so they must not be a
way into Python objects: ``str.format`` would happily evaluate ``{event.__class__}``. This
formatter resolves a dotted name only through dict keys of the mapping it is given, refuses
names starting with ``_`` and any ``[index]``, and renders an unknown name as empty text
rather than failing a delivery at 3 a.m. :func:`check` validates a template when it is
configured, so typos in the syntax are refused then.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

from camio.recipients.base import Delivery

__all__ = ["check", "context_for", "render"]

_FORMATTER = string.Formatter()


class TemplateError(ValueError):
    """A template is malformed or uses a forbidden field."""


def _lookup(context: Mapping[str, Any], name: str) -> Any:
    if "[" in name or "]" in name:
        raise TemplateError(f"{{{name}}}: indexing is not allowed; use dots")
    value: Any = context
    for part in name.split("."):
        if not part or part.startswith("_"):
            raise TemplateError(f"{{{name}}}: not an allowed field")
        if not isinstance(value, Mapping):
            return ""
        value = value.get(part, "")
    return value


def _parse(template: str) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        return list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise TemplateError(f"{template!r}: {exc}") from None


def render(
    template: str,
    context: Mapping[str, Any],
    *,
    quote: Callable[[str], str] | None = None,
) -> str:
    """Fill ``template`` from ``context``; ``quote`` escapes each substituted value (URLs)."""
    out: list[str] = []
    for literal, name, spec, conversion in _parse(template):
        out.append(literal)
        if name is None:
            continue
        if name == "":
            raise TemplateError("positional fields {} are not allowed; name the field")
        value = _lookup(context, name)
        if conversion == "r":
            value = repr(value)
        if value is None:
            value = ""
        if spec and ("{" in spec or "}" in spec):
            raise TemplateError(f"{{{name}}}: nested fields are not allowed")
        try:
            text = format(value, spec or "")
        except (ValueError, TypeError):
            text = str(value)
        out.append(quote(text) if quote is not None else text)
    return "".join(out)


def check(template: str) -> str:
    """Validate a configured template (syntax and field names); returns it unchanged."""
    for _, name, spec, _ in _parse(template):
        if name is None:
            continue
        if name == "" or "[" in name or any(p.startswith("_") or not p for p in name.split(".")):
            raise TemplateError(f"{{{name}}}: not an allowed field")
        if spec and ("{" in spec or "}" in spec):
            raise TemplateError(f"{{{name}}}: nested fields are not allowed")
    return template


def context_for(delivery: Delivery) -> dict[str, Any]:
    """What a sender's templates can use: the event, the device and rule the notify action
    recorded (``event["device"]``, ``event["rule"]``), the rendered subject and message."""
    event = {k: v for k, v in delivery.event.items() if k not in ("device", "rule")}
    return {
        "event": event,
        "device": delivery.event.get("device", {}),
        "rule": delivery.event.get("rule", {}),
        "subject": delivery.subject,
        "message": delivery.body,
        "key": delivery.key,
        "recipient": delivery.recipient_id,
    }
