"""Action: set the overlay text that snapshots and recordings carry.

Once: the text stays for ``duration_s`` (0: until another rule or the API changes it). While
active: the text shows while the rule's conditions hold and is cleared after, unless something
else replaced it meanwhile. The text is a template rendered at the trigger ("Door {event.source}
open").
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from camio.actions.media_common import video_of
from camio.actions.notify import render_texts
from camio.core.clock import NS_PER_S, Timer
from camio.core.rules import ActionSpec
from camio.engine.actions import ActionContext, ActionExecutor, register_action
from camio.recipients.templates import check


class OverlayTextAction(ActionSpec):
    kind: Literal["overlay_text"] = "overlay_text"
    text: Annotated[str, Field(max_length=128)] = Field(
        ..., description="The text (a template); empty clears the overlay"
    )
    duration_s: Annotated[int, Field(ge=0, le=86_400)] = Field(
        0, description="Once: clear the text after this long (0: keep it)"
    )

    supports_while_active: ClassVar[bool] = True

    @field_validator("text")
    @classmethod
    def _template(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n"):
            raise ValueError("the overlay text is one line")
        return check(value)


class OverlayTextExecutor(ActionExecutor[OverlayTextAction]):
    def __init__(self) -> None:
        self._timers: dict[str, Timer] = {}
        self._shown: dict[str, str | None] = {}  # rule id -> the text it set

    def _set(self, spec: OverlayTextAction, ctx: ActionContext) -> str | None:
        _, (text,) = render_texts(ctx, spec.text)
        value = text or None
        video_of(ctx).set_overlay(value)
        self._shown[ctx.rule.id] = value
        timer = self._timers.pop(ctx.rule.id, None)
        if timer is not None:
            timer.cancel()
        return value

    def _clear_if_ours(self, ctx: ActionContext) -> None:
        self._timers.pop(ctx.rule.id, None)
        mine = self._shown.pop(ctx.rule.id, None)
        video = video_of(ctx)
        if mine is not None and video.overlay == mine:
            video.set_overlay(None)

    def run(self, spec: OverlayTextAction, ctx: ActionContext) -> None:
        self._set(spec, ctx)
        if spec.duration_s:
            self._timers[ctx.rule.id] = ctx.device.clock.call_later(
                spec.duration_s * NS_PER_S, lambda: self._clear_if_ours(ctx)
            )

    def start(self, spec: OverlayTextAction, ctx: ActionContext) -> None:
        self._set(spec, ctx)

    def stop(self, spec: OverlayTextAction, ctx: ActionContext) -> None:
        self._clear_if_ours(ctx)


register_action(OverlayTextAction, OverlayTextExecutor())
