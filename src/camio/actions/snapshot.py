"""Action: take one or more JPEG snapshots, save them, and send them to recipients.

"Send an email with a screenshot": the images are taken at the trigger (then every
``interval_ms``), stamped with the overlay text, saved on a storage volume (unless
``storage: none``) and attached to one delivery per recipient through the durable outbox, keyed
by the event so a retry is recognisable. A snapshot that cannot be taken (no video, storage
full) fails the action and the rule's fallback runs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from camio.actions.media_common import SendsMedia, sleep_on, video_of
from camio.actions.notify import event_key, queue_deliveries, render_texts
from camio.core.clock import NS_PER_MS
from camio.engine.actions import (
    ActionContext,
    ActionError,
    ActionExecutor,
    ActionRun,
    register_action,
)
from camio.recipients.base import Attachment
from camio.recipients.templates import check
from camio.video import VideoError
from camio.video.storage import clean_label, media_time


class SnapshotAction(SendsMedia):
    kind: Literal["snapshot"] = "snapshot"
    count: Annotated[int, Field(ge=1, le=20, description="How many images")] = 1
    interval_ms: Annotated[int, Field(ge=100, le=60_000, description="Between images")] = 1000
    overlay: Annotated[str, Field(max_length=256)] = Field(
        "", description="Text stamped on these images (a template: {event.source} ...)"
    )
    storage: Literal["local", "share", "none"] = Field(
        "local", description="Where the images are kept ('none': only sent)"
    )

    @field_validator("overlay")
    @classmethod
    def _overlay_template(cls, value: str) -> str:
        return check(value)

    @model_validator(mode="after")
    def _does_something(self) -> SnapshotAction:
        if self.storage == "none" and not self.recipients:
            raise ValueError("a snapshot kept nowhere ('storage: none') needs recipients")
        return self


class SnapshotExecutor(ActionExecutor[SnapshotAction]):
    def run(self, spec: SnapshotAction, ctx: ActionContext) -> ActionRun | None:
        video = video_of(ctx)
        event, (subject, message, overlay) = render_texts(
            ctx, spec.subject, spec.message, spec.overlay
        )
        key = event_key(ctx)
        label = clean_label(f"{ctx.rule.id}-{key}")

        async def take() -> None:
            images: list[Attachment] = []
            for n in range(spec.count):
                if n:
                    await sleep_on(ctx.device.clock, spec.interval_ms * NS_PER_MS)
                try:
                    shot = await video.snapshot(
                        volume=None if spec.storage == "none" else spec.storage,
                        label=label if spec.count == 1 else f"{label}-{n + 1}",
                        overlay=overlay or None,
                        cause=ctx.cause,
                    )
                except VideoError as exc:
                    if not images:
                        raise ActionError(f"snapshot failed: {exc}") from exc
                    break  # send what was taken; the rest is in the event log
                now = ctx.device.clock.wall_ns()
                name = shot.item.name if shot.item else f"{media_time(now)}_{label}.jpg"
                images.append(Attachment(name, "image/jpeg", shot.data))
            if spec.recipients:
                queue_deliveries(
                    ctx,
                    spec.recipients,
                    subject,
                    message,
                    event,
                    key=key,
                    attachments=tuple(images),
                )

        ctx.spawn(take())
        return None


register_action(SnapshotAction, SnapshotExecutor())
