"""Action: play an audio clip from the clip library on the device's audio output.

Once: the clip plays ``repeat`` times (1-100). While active: it loops until the rule's
conditions stop holding. The output plays one clip at a time, so a clip started by another rule
stops this one. The audio output is a service the composition root registers on the device
(:data:`camio.audio.AUDIO`); a device without one fails the action (the fallback runs).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from camio.audio import AUDIO, Playback
from camio.audio.library import ClipError, check_name
from camio.core.rules import ActionSpec
from camio.engine.actions import ActionContext, ActionError, ActionExecutor, register_action
from camio.engine.errors import NotFound


class PlayAudioAction(ActionSpec):
    kind: Literal["play_audio"] = "play_audio"
    clip: Annotated[str, Field(min_length=1, max_length=63, description="A clip of the library")]
    repeat: Annotated[int, Field(ge=1, le=100, description="Once: how many times in a row")] = 1

    supports_while_active: ClassVar[bool] = True

    @field_validator("clip")
    @classmethod
    def _name(cls, value: str) -> str:
        try:
            return check_name(value)
        except ClipError as exc:
            raise ValueError(str(exc)) from None


class PlayAudioExecutor(ActionExecutor[PlayAudioAction]):
    def __init__(self) -> None:
        self._looping: dict[str, Playback] = {}  # while-active rule id -> its playback

    def _play(self, spec: PlayAudioAction, ctx: ActionContext, repeat: int | None) -> Playback:
        audio = ctx.device.services.get(AUDIO)
        if audio is None:
            raise ActionError("this device has no audio output")
        try:
            return audio.play(spec.clip, repeat, source=f"rule:{ctx.rule.id}")
        except NotFound as exc:
            raise ActionError(str(exc)) from exc

    def run(self, spec: PlayAudioAction, ctx: ActionContext) -> Playback:
        return self._play(spec, ctx, spec.repeat)

    def start(self, spec: PlayAudioAction, ctx: ActionContext) -> None:
        self.stop(spec, ctx)
        self._looping[ctx.rule.id] = self._play(spec, ctx, None)

    def stop(self, spec: PlayAudioAction, ctx: ActionContext) -> None:
        playback = self._looping.pop(ctx.rule.id, None)
        if playback is not None:
            playback.cancel()


register_action(PlayAudioAction, PlayAudioExecutor())
