"""Bodies of the native API: small pydantic models so bad input is a 422 naming the field."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field

from camio.core.ports import Model, StateStep

B = TypeVar("B", bound=Model)


def parse_body(model: type[B], data: dict[str, Any]) -> B:
    """Validate a JSON request body strictly.

    JSON has real booleans and numbers: ``"active": "yes"`` or ``"duration_ms": "10"`` is a
    client bug to report (422 naming the field), not something to guess at.
    """
    return model.model_validate(data, strict=True)


class PortStateBody(Model):
    active: bool
    duration_ms: Annotated[int, Field(ge=0, le=86_400_000)] | None = None


class SequenceBody(Model):
    steps: Annotated[list[StateStep], Field(min_length=1, max_length=256)]


class CircuitBody(Model):
    circuit: Literal["open", "closed", "cut", "short"]


class FaultBody(Model):
    fault: Literal["bounce", "stuck", "cut", "short", "clear"]
    edges: Annotated[int, Field(ge=1, le=1000)] | None = None
    interval_ms: Annotated[float, Field(gt=0, le=10_000)] | None = None
    final: Literal["open", "closed"] | None = None
    level: Literal["open", "closed"] | None = None

    def params(self) -> dict[str, Any]:
        return {
            key: value
            for key, value in self.model_dump(exclude={"fault"}).items()
            if value is not None
        }


class VirtualInputBody(Model):
    active: bool
    duration_ms: Annotated[int, Field(ge=1, le=86_400_000)] | None = None


class ManualTriggerBody(Model):
    active: bool | None = None
    pulse: bool = False
