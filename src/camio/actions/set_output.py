"""Action: drive an alarm/relay output.

Once: activate for ``duration_ms`` (default: the output's alarm time; 0 = continuous) or, with
``active: false``, stop it. While active: hold the output while the rule's conditions hold
(follow source) and release it afterwards.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from camio.core.clock import NS_PER_MS
from camio.core.outputs import OutputPort
from camio.core.ports import PORT_ID_PATTERN
from camio.core.rules import ActionSpec
from camio.engine.actions import ActionContext, ActionExecutor, ActionRun, register_action
from camio.engine.device import Device


class SetOutputAction(ActionSpec):
    kind: Literal["set_output"] = "set_output"
    port: Annotated[str, Field(pattern=PORT_ID_PATTERN.pattern)]
    active: bool = True
    duration_ms: Annotated[int, Field(ge=0, le=86_400_000)] | None = Field(
        None, description="Once: how long; default the output's alarm time; 0 = continuous"
    )

    supports_while_active: ClassVar[bool] = True

    def port_refs(self) -> list[tuple[str, str]]:
        return [("output", self.port)]


class _OutputRun:
    """A timed activation started by a rule, running until its deadline passes."""

    def __init__(self, ctx: ActionContext, port: OutputPort, until_ns: int | None) -> None:
        self._ctx = ctx
        self._port = port
        self._until_ns = until_ns

    @property
    def running(self) -> bool:
        if not self._port.active:
            return False
        if self._until_ns is None:
            return True
        return self._ctx.device.clock.monotonic_ns() < self._until_ns

    def cancel(self) -> None:
        self._port.deactivate(self._ctx.cause)


class SetOutputExecutor(ActionExecutor[SetOutputAction]):
    def run(self, spec: SetOutputAction, ctx: ActionContext) -> ActionRun | None:
        device = ctx.device
        if not spec.active:
            device.output(spec.port).deactivate(ctx.cause)
            return None
        port = device.trigger_output(spec.port, ctx.cause, duration_ms=spec.duration_ms)
        duration = port.config.alarm_time_ms if spec.duration_ms is None else spec.duration_ms
        until = None if duration == 0 else device.clock.monotonic_ns() + duration * NS_PER_MS
        return _OutputRun(ctx, port, until)

    def follows_source(self, spec: SetOutputAction, device: Device) -> bool:
        """An output configured to follow its source stays active while the rule holds
        (Dahua's alarm output following the input), unless the action names a duration."""
        if not spec.active or spec.duration_ms is not None:
            return False
        port = device.outputs.get(spec.port)
        return port is not None and port.config.follow_source

    def start(self, spec: SetOutputAction, ctx: ActionContext) -> None:
        owner = f"rule:{ctx.rule.id}"
        if spec.active:
            ctx.device.hold_output(spec.port, owner, ctx.cause)
        else:
            ctx.device.output(spec.port).deactivate(ctx.cause)

    def stop(self, spec: SetOutputAction, ctx: ActionContext) -> None:
        if spec.active:
            ctx.device.release_output(spec.port, f"rule:{ctx.rule.id}", ctx.cause)


register_action(SetOutputAction, SetOutputExecutor())
