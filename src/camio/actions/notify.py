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
from camio.recipients.base import Delivery
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


def _event_context(ctx: ActionContext) -> dict[str, Any]:
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


class NotifyExecutor(ActionExecutor[NotifyAction]):
    def run(self, spec: NotifyAction, ctx: ActionContext) -> ActionRun | None:
        event = _event_context(ctx)
        context = {"event": event, "device": event["device"], "rule": event["rule"]}
        subject = render(spec.subject, context)
        message = render(spec.message, context)
        # A test-fire has no event: a fresh key, so each press of Test sends again.
        event_part = str(ctx.event.id) if ctx.event is not None else f"test{uuid.uuid4().hex[:8]}"
        for recipient in spec.recipients:
            delivery = Delivery(
                key=f"{ctx.rule.id}-{event_part}-{recipient}",
                recipient_id=recipient,
                subject=subject,
                body=message,
                event=event,
            )
            try:
                ctx.device.enqueue(delivery, lambda msg: ctx.fail(ActionError(msg)))
            except (OutboxFull, ValueError) as exc:
                raise ActionError(f"cannot queue the notification: {exc}") from exc
        return None


register_action(NotifyAction, NotifyExecutor())
