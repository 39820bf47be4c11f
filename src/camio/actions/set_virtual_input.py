"""Action: set a virtual input (1-32), for chaining rules or signalling other software."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from camio.core.rules import ActionSpec
from camio.engine.actions import ActionContext, ActionExecutor, ActionRun, register_action


class SetVirtualInputAction(ActionSpec):
    kind: Literal["set_virtual_input"] = "set_virtual_input"
    number: Annotated[int, Field(ge=1, le=32)]
    active: bool = True
    duration_ms: Annotated[int, Field(ge=1, le=86_400_000)] | None = Field(
        None, description="Once: revert after this long; default: stay"
    )

    supports_while_active: ClassVar[bool] = True


class SetVirtualInputExecutor(ActionExecutor[SetVirtualInputAction]):
    def run(self, spec: SetVirtualInputAction, ctx: ActionContext) -> ActionRun | None:
        ctx.device.set_virtual_input(
            spec.number, spec.active, ctx.cause, duration_ms=spec.duration_ms
        )
        return None

    def start(self, spec: SetVirtualInputAction, ctx: ActionContext) -> None:
        ctx.device.set_virtual_input(spec.number, spec.active, ctx.cause)

    def stop(self, spec: SetVirtualInputAction, ctx: ActionContext) -> None:
        ctx.device.set_virtual_input(spec.number, not spec.active, ctx.cause)


register_action(SetVirtualInputAction, SetVirtualInputExecutor())
