"""Action: send a notification to one or more recipients through the durable outbox.

Each recipient gets its own delivery with the key ``<rule>-<event id>-<recipient>``: stable
across retries and restarts, so a receiver can drop duplicates and a re-fired rule for the same
event does not queue twice. Subject and message are rendered here, at the trigger, so the text
says what happened then even if the delivery goes out an hour later. When a delivery finally
fails, the rule's fallback runs (while the daemon that queued it still runs; see
:mod:`camio.engine.outbox`).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

import camio.recipients  # noqa: F401  (rules naming recipients need their kinds)
from camio.core.rules import ActionSpec
from camio.engine.actions import (
    ActionContext,
    ActionError,
    ActionExecutor,
    ActionRun,
    register_action,
)
from camio.recipients.base import Attachment, Delivery
from camio.recipients.templates import check, render
from camio.store.outbox import OutboxFull


class NotifyAction(ActionSpec):
    kind: Literal["notify"] = "notify"
    recipients: Annotated[list[str], Field(min_length=1, max_length=16)]
    subject: Annotated[str, Field(max_length=256)] = "{device.name}: {event.topic} {event.source}"
    message: Annotated[str, Field(max_length=4096)] = (
        "{rule.name}: {event.topic} on {event.source} at {event.time}"
    )

    @field_validator("subject", "message")
    @classmethod
    def _template(cls, value: str) -> str:
        return check(value)


def event_context(ctx: ActionContext) -> dict[str, Any]:
    cfg = ctx.device.config.device
    event: dict[str, Any] = ctx.event.to_dict() if ctx.event is not None else {}
    event["device"] = {
        "name": cfg.name,
        "serial": cfg.serial,
        "model": cfg.model,
        "brand": cfg.brand,
    }
    event["rule"] = {"id": ctx.rule.id, "name": ctx.rule.name}
    return event


def event_key(ctx: ActionContext) -> str:
    """The event part of a delivery key. A test-fire has no event: a fresh key, so each press
    of Test sends again."""
    return str(ctx.event.id) if ctx.event is not None else f"test{uuid.uuid4().hex[:8]}"


def render_texts(ctx: ActionContext, *templates: str) -> tuple[dict[str, Any], list[str]]:
    """The event context and the templates rendered with it, at the trigger."""
    event = event_context(ctx)
    context = {"event": event, "device": event["device"], "rule": event["rule"]}
    return event, [render(t, context) for t in templates]


def queue_deliveries(
    ctx: ActionContext,
    recipients: list[str],
    subject: str,
    message: str,
    event: dict[str, Any],
    *,
    key: str,
    attachments: tuple[Attachment, ...] = (),
) -> None:
    """One delivery per recipient, keyed ``<rule>-<key>-<recipient>``; a delivery that
    finally fails runs the rule's fallback."""
    for recipient in recipients:
        delivery = Delivery(
            key=f"{ctx.rule.id}-{key}-{recipient}",
            recipient_id=recipient,
            subject=subject,
            body=message,
            event=event,
            attachments=attachments,
        )
        try:
            ctx.device.enqueue(delivery, lambda msg: ctx.fail(ActionError(msg)))
        except (OutboxFull, ValueError) as exc:
            raise ActionError(f"cannot queue the notification: {exc}") from exc


class NotifyExecutor(ActionExecutor[NotifyAction]):
    def run(self, spec: NotifyAction, ctx: ActionContext) -> ActionRun | None:
        event, (subject, message) = render_texts(ctx, spec.subject, spec.message)
        queue_deliveries(ctx, spec.recipients, subject, message, event, key=event_key(ctx))
        return None


register_action(NotifyAction, NotifyExecutor())
