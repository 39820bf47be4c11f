"""What the video actions share: the video service lookup, a sleep on the device's clock,
and the recipient fields of actions that send the media they make."""

from __future__ import annotations

import asyncio
from typing import Annotated

from pydantic import Field, field_validator

from camio.core.clock import Clock
from camio.core.rules import ActionSpec
from camio.engine.actions import ActionContext, ActionError
from camio.recipients.templates import check
from camio.video import VIDEO, VideoService


class SendsMedia(ActionSpec):
    """Recipients that get the media as an attachment, with the texts of the message."""

    recipients: Annotated[list[str], Field(max_length=16)] = Field(
        default_factory=list, description="Send the file(s) to these recipients"
    )
    subject: Annotated[str, Field(max_length=256)] = "{device.name}: {event.topic} {event.source}"
    message: Annotated[str, Field(max_length=4096)] = (
        "{rule.name}: {event.topic} on {event.source} at {event.time}"
    )

    @field_validator("subject", "message")
    @classmethod
    def _template(cls, value: str) -> str:
        return check(value)


def video_of(ctx: ActionContext) -> VideoService:
    video = ctx.device.services.get(VIDEO)
    if video is None:
        raise ActionError("this device has no video service")
    return video


async def sleep_on(clock: Clock, delay_ns: int) -> None:
    """Wait on the injected clock (so a manual clock in tests drives it, not real time)."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not future.done():
            future.set_result(None)

    timer = clock.call_later(delay_ns, wake)
    try:
        await future
    finally:
        timer.cancel()
