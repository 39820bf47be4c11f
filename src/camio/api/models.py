"""Bodies and query parameters of the native API: small pydantic models so bad input is a 422
naming the field."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model
from pydantic.fields import FieldInfo

from camio.core.ports import InputConfig, Model, OutputConfig, StateStep

B = TypeVar("B", bound=Model)
Q = TypeVar("Q", bound="Query")

#: Largest id or time (ns) the event log stores (SQLite INTEGER).
INT64_MAX = (1 << 63) - 1


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


def _no_defaults(schema: dict[str, Any]) -> None:
    """A patch has no defaults: an absent field stays as it is."""
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


class _Patch(Model):
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, json_schema_extra=_no_defaults
    )


def partial_model(model: type[Model], name: str, doc: str) -> type[Model]:
    """``model`` with every field optional (same types and constraints): a PATCH body."""
    fields: dict[str, Any] = {
        field_name: (info.annotation, FieldInfo.merge_field_infos(info, default=None))
        for field_name, info in model.model_fields.items()
    }
    partial = create_model(name, __base__=_Patch, __doc__=doc, **fields)
    return cast(type[Model], partial)


InputPatch = partial_model(InputConfig, "InputPatch", "Fields of an input to change.")
OutputPatch = partial_model(OutputConfig, "OutputPatch", "Fields of an output to change.")


class PortPatch(RootModel[InputPatch | OutputPatch]):  # type: ignore[valid-type]
    """Configuration fields of a port to change; the others keep their values."""


class Query(BaseModel):
    """Query parameters: values arrive as strings; unknown parameters are ignored."""

    model_config = ConfigDict(extra="ignore")


class EventQueryParams(Query):
    """Filters of the event log (the stream takes ``topic`` and ``source`` too)."""

    after: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = Field(
        None, description="Only events after this id"
    )
    before: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = Field(
        None, description="Only events before this id"
    )
    limit: Annotated[int, Field(ge=1)] | None = Field(
        None, description="At most this many (default 100, at most 1000)"
    )
    topic: str | None = Field(None, description="Exact topic, or a prefix ending in '*'")
    source: str | None = None
    since: dt.datetime | None = Field(None, description="From this time on (UTC if no offset)")
    until: dt.datetime | None = Field(None, description="Before this time (UTC if no offset)")
    order: Literal["asc", "desc"] | None = Field(None, description="desc: newest first")


class StreamQueryParams(Query):
    """Filters of the live event stream."""

    topic: str | None = Field(None, description="Exact topic, or a prefix ending in '*'")
    source: str | None = None
    initial: Literal["0", "1", "false", "true", "no", "yes"] | None = Field(
        None, description="0: skip the current state of every stateful source"
    )
