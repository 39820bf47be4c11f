"""Responses of the native API: what every JSON answer contains, as pydantic models.

The handlers send their answers through these models (:func:`respond`), and the OpenAPI
document is generated from the same models, so the published schema cannot drift from what is
sent: a field the device adds without a model here is refused (``extra="forbid"``) and fails
the tests instead of appearing undocumented.

A :class:`Cause` is a :class:`~typing.TypedDict` rather than a model: its optional fields are
absent (not ``null``) when unset, which a TypedDict expresses natively, and it validates and
serializes entirely in pydantic-core (no Python call per port on the hot path).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypedDict

from camio.core.config import DeviceConfig
from camio.core.ports import InputConfig, Model, OutputConfig
from camio.core.rules import RuleConfig
from camio.core.schedules import ScheduleConfig

CircuitName = Literal["open", "closed", "cut", "short"]


class Out(BaseModel):
    """Base of every response model: a field the handler does not declare is an error."""

    model_config = ConfigDict(extra="forbid")


M = TypeVar("M", bound=BaseModel)


def respond(model: type[M], data: Any, *, status: int = 200, **kwargs: Any) -> web.Response:
    """Validate ``data`` against ``model`` and send it as JSON.

    Validation and serialization run in pydantic-core; the body is the model's own JSON, so
    what is sent is exactly what the schema describes. ``kwargs`` go to ``web.Response``
    (``headers``).
    """
    body = model.__pydantic_validator__.validate_python(data)
    return web.Response(
        body=model.__pydantic_serializer__.to_json(body),
        status=status,
        content_type="application/json",
        **kwargs,
    )


# -- errors -----------------------------------------------------------------------------------


class FieldError(Out):
    field: str = Field(description="Dotted path of the field, or '(document)'")
    message: str


class ErrorBody(Out):
    """Every error answer: a machine-readable code and a message for people."""

    error: str = Field(
        description="not_found, invalid, conflict, unauthorized, forbidden, too_many_requests, ..."
    )
    message: str
    errors: list[FieldError] | SkipJsonSchema[None] = Field(
        None, description="Validation errors, one per field (422)"
    )


# -- causes and ports -------------------------------------------------------------------------


class Cause(TypedDict):
    """Why something changed. Only ``kind`` is always present."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    kind: Annotated[
        str,
        Field(
            description="rule, schedule, manual, api, boot, interlock, timer, sequence, "
            "hardware, sim, shutdown, config"
        ),
    ]
    rule: NotRequired[str]
    user: NotRequired[str]
    client: NotRequired[str]
    event_id: NotRequired[int]
    detail: NotRequired[str]


class _PortStatusBase(Out):
    id: str
    name: str
    active: bool
    circuit: CircuitName = Field(description="The circuit now (outputs: as driven)")
    cause: Cause = Field(description="Why the port last changed")
    enabled: bool


class InputStatus(_PortStatusBase):
    """An alarm input: its state after debounce, its arming and tamper state."""

    direction: Literal["input"]
    normal_state: Literal["open", "closed"]
    armed: bool
    tamper: bool
    debouncing: bool = Field(description="A level change is waiting out its debounce time")
    supervised: bool
    config: InputConfig


class OutputStatus(_PortStatusBase):
    """An alarm/relay output: active state, what holds it and how long it has left."""

    direction: Literal["output"]
    active_state: Literal["open", "closed"]
    mode: Literal["switch", "pulse"]
    pending: bool = Field(description="Waiting for the interlock group's dead time")
    latched: bool = Field(description="Active until stopped (alarm time 0 or manual start)")
    remaining_ms: int | None = Field(description="Time left of a timed activation")
    holds: list[str] = Field(description="Owners holding the output (rules acting while active)")
    sequence_running: bool
    config: OutputConfig


PortStatus = Annotated[InputStatus | OutputStatus, Field(discriminator="direction")]


class Port(RootModel[PortStatus]):
    """One port (an input or an output, told apart by ``direction``)."""


class PortList(Out):
    ports: list[PortStatus] = Field(description="In terminal order")


class SimWire(Out):
    """The simulated wire of an input, before debounce."""

    raw: CircuitName
    stuck: Literal["open", "closed"] | None
    bouncing: bool


class SimInputStatus(InputStatus):
    """An input after a simulator command, with the state of its simulated wire."""

    sim: SimWire


# -- virtual inputs and the manual trigger ----------------------------------------------------


class VirtualInputStatus(Out):
    number: Annotated[int, Field(ge=1, le=32)]
    active: bool
    cause: Cause | None


class VirtualInputList(Out):
    virtual_inputs: list[VirtualInputStatus]


class ManualTriggerStatus(Out):
    active: bool
    cause: Cause | None


class ManualTriggerState(Out):
    active: bool


# -- configuration, rules and schedules -------------------------------------------------------


class ConfigDocument(Out):
    """The whole configuration with its revision (also sent as the ``ETag``)."""

    revision: int
    config: DeviceConfig


class ConfigPutDocument(Model):
    """``{"config": {...}}`` as ``GET /api/v1/config`` returns it; ``revision`` is ignored
    (send ``If-Match`` to refuse lost updates)."""

    config: DeviceConfig
    revision: int | None = None


class ConfigBody(RootModel[ConfigPutDocument | DeviceConfig]):
    """The new configuration: the bare document, or wrapped as ``GET`` returns it."""


class RuleRuntime(Out):
    value: bool = Field(description="Whether all conditions held at the last evaluation")
    holding: bool = Field(description="A 'while_active' action is running")
    fired: int
    suppressed: int = Field(description="Firings suppressed by wait_between_actions_ms")


class RuleStatus(RuleConfig):
    """A rule as configured, with its live status."""

    status: RuleRuntime


class RuleList(Out):
    rules: list[RuleStatus]


class ScheduleStatus(ScheduleConfig):
    """A schedule as configured; ``active`` is whether an interval schedule is on now."""

    active: bool


class ScheduleList(Out):
    schedules: list[ScheduleStatus]


# -- events -----------------------------------------------------------------------------------


class EventOut(Out):
    id: int
    topic: str = Field(description="io/input, io/output, rule/fired, ...")
    source: str
    kind: Literal["initialized", "changed", "pulse"]
    stateful: bool
    data: dict[str, Any]
    time: str = Field(description="ISO 8601 UTC with microseconds, e.g. 2026-01-01T12:00:00Z")
    mono_ns: int
    cause: Cause | None


class EventList(Out):
    events: list[EventOut] = Field(description="Oldest first (newest first with order=desc)")
    last_id: int | SkipJsonSchema[None] = Field(
        None, description="Largest id in 'events'; absent when empty"
    )


# -- the device -------------------------------------------------------------------------------


class Health(Out):
    status: Literal["ok"]


class DeviceStats(Out):
    input_edges: int
    rule_actions: int
    last_latency_us: float | None = Field(
        description="Input edge to actuation of the last rule-driven change"
    )
    events_published: int
    last_event_id: int


class DeviceInfo(Out):
    name: str
    brand: str
    model: str
    serial: str
    firmware: str
    version: str
    driver: str
    revision: int = Field(description="Configuration revision")
    uptime_s: float
    stats: DeviceStats
