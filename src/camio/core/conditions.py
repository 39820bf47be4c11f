"""Rule conditions: one small model per kind, registered by name.

A condition reads device state through a :class:`StateView` keyed by :data:`SourceKey`, and names
the keys whose changes can alter it, so the engine re-evaluates only the rules that depend on a
change. Stateless conditions (a recurrence, device start, a pulse schedule) hold only at the
instant of their event. Later kinds (MQTT message, storage failure, HTTP trigger) register here
the same way, from their own modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, Protocol

from pydantic import Field, field_validator, model_validator

from camio.core.mqtt import MAX_PATTERN, payload_matches, valid_filter
from camio.core.ports import PORT_ID_PATTERN, Model
from camio.core.registry import register_kind

SourceKey = tuple[str, str]
"""``(kind, id)``: what changed, e.g. ``("input", "in1")``, ``("vinput", "3")``."""

STARTED: SourceKey = ("started", "")
MANUAL: SourceKey = ("manual", "")


Check = Callable[[SourceKey | None, Any], bool]
"""A compiled condition: ``check(pulse, payload)`` is :meth:`ConditionBase.holds`."""


class StateView(Protocol):
    """Current device state as seen by conditions."""

    def state(self, key: SourceKey) -> bool:
        """Whether the stateful source ``key`` is active now (False when unknown)."""


class FastStateView(StateView, Protocol):
    """A view that can hand out a direct accessor per key, for compiled conditions.

    The accessor is bound to the runtime object behind the key, so the rule set that holds it
    must be rebuilt when those objects are (the engine recompiles on every configuration
    change).
    """

    def getter(self, key: SourceKey) -> Callable[[], bool]:
        """A zero-argument function returning :meth:`state` of ``key``, cheaply."""


def accessor(view: StateView, key: SourceKey) -> Callable[[], bool]:
    """The fastest way ``view`` offers to read ``key``."""
    getter = getattr(view, "getter", None)
    if getter is not None:
        fast: Callable[[], bool] = getter(key)
        return fast
    return lambda: view.state(key)


def _bool_check(get: Callable[[], bool], invert: bool) -> Check:
    if invert:
        return lambda pulse, payload: not get()
    return lambda pulse, payload: get()


class ConditionBase(Model):
    """What every condition has: its kind and whether it is inverted."""

    kind: str
    invert: bool = False

    #: True when the condition can hold for a while; False for momentary events.
    stateful: ClassVar[bool] = True
    #: True when the result depends on the event being handled (not only on state).
    pulse_sensitive: ClassVar[bool] = False

    def sources(self) -> list[SourceKey]:
        """The source keys whose changes can alter this condition."""
        raise NotImplementedError

    def raw(self, view: StateView, pulse: SourceKey | None, payload: Any = None) -> bool:
        """The condition before inversion; ``pulse`` is the key of the event being handled."""
        raise NotImplementedError

    def holds(self, view: StateView, pulse: SourceKey | None, payload: Any = None) -> bool:
        return self.raw(view, pulse, payload) != self.invert

    def compile(self, view: StateView) -> Check:
        """A fast equivalent of :meth:`holds` bound to ``view`` (rules evaluate it per edge).

        The default wraps :meth:`holds`; state-only kinds override it with a direct accessor.
        """
        holds = self.holds
        return lambda pulse, payload: holds(view, pulse, payload)

    def port_refs(self) -> list[tuple[str, str]]:
        """``(direction, port id)`` pairs this condition needs to exist."""
        return []

    def schedule_refs(self) -> list[str]:
        return []


PortId = Annotated[str, Field(pattern=PORT_ID_PATTERN.pattern)]


class InputCondition(ConditionBase):
    """An alarm input is active (or in tamper, with ``state: tamper``)."""

    kind: Literal["input"] = "input"
    port: PortId
    state: Literal["active", "tamper"] = "active"
    require_armed: bool = Field(
        True, description="Only when the input is armed (by its arming schedule)"
    )

    def sources(self) -> list[SourceKey]:
        return [("input", self.port)]

    def raw(self, view: StateView, pulse: SourceKey | None, payload: Any = None) -> bool:
        key = ("input", self.port) if self.state == "active" else ("tamper", self.port)
        if not view.state(key):
            return False
        return not self.require_armed or view.state(("armed", self.port))

    def compile(self, view: StateView) -> Check:
        key = ("input", self.port) if self.state == "active" else ("tamper", self.port)
        get = accessor(view, key)
        if not self.require_armed:
            return _bool_check(get, self.invert)
        armed = accessor(view, ("armed", self.port))
        if self.invert:
            return lambda pulse, payload: not (get() and armed())
        return lambda pulse, payload: get() and armed()

    def port_refs(self) -> list[tuple[str, str]]:
        return [("input", self.port)]


class VirtualInputCondition(ConditionBase):
    """A virtual input (1-32) is active."""

    kind: Literal["virtual_input"] = "virtual_input"
    number: Annotated[int, Field(ge=1, le=32)]

    def sources(self) -> list[SourceKey]:
        return [("vinput", str(self.number))]

    def raw(self, view: StateView, pulse: SourceKey | None, payload: Any = None) -> bool:
        return view.state(("vinput", str(self.number)))

    def compile(self, view: StateView) -> Check:
        return _bool_check(accessor(view, ("vinput", str(self.number))), self.invert)


class ManualTriggerCondition(ConditionBase):
    """The manual trigger is on (the Live view's Manual trigger button)."""

    kind: Literal["manual_trigger"] = "manual_trigger"

    def sources(self) -> list[SourceKey]:
        return [MANUAL]

    def raw(self, view: StateView, pulse: SourceKey | None, payload: Any = None) -> bool:
        return view.state(MANUAL)

    def compile(self, view: StateView) -> Check:
        return _bool_check(accessor(view, MANUAL), self.invert)


class ScheduleCondition(ConditionBase):
    """An interval schedule is active, or a pulse schedule fires now.

    Both kinds publish on the same key: an interval schedule's change event carries its new
    state (``{"active": ...}``) and is answered by the state alone, so the event that ends an
    interval does not make the condition hold; any other event on the key is a pulse.
    """

    kind: Literal["schedule"] = "schedule"
    schedule: PortId
    pulse_sensitive: ClassVar[bool] = True

    def sources(self) -> list[SourceKey]:
        return [("schedule", self.schedule)]

    def raw(self, view: StateView, pulse: SourceKey | None, payload: Any = None) -> bool:
        key = ("schedule", self.schedule)
        if view.state(key):
            return True
        return pulse == key and not (isinstance(payload, dict) and "active" in payload)

    def schedule_refs(self) -> list[str]:
        return [self.schedule]


class RecurrenceCondition(ConditionBase):
    """Every ``interval_s`` seconds (a pulse), counted from device start."""

    kind: Literal["recurrence"] = "recurrence"
    interval_s: Annotated[int, Field(ge=1, le=31 * 86_400)]
    stateful: ClassVar[bool] = False
    pulse_sensitive: ClassVar[bool] = True

    def sources(self) -> list[SourceKey]:
        return [("recurrence", str(self.interval_s))]

    def raw(self, view: StateView, pulse: SourceKey | None, payload: Any = None) -> bool:
        return pulse == ("recurrence", str(self.interval_s))


class OutputCondition(ConditionBase):
    """An output is active."""

    kind: Literal["output"] = "output"
    port: PortId

    def sources(self) -> list[SourceKey]:
        return [("output", self.port)]

    def raw(self, view: StateView, pulse: SourceKey | None, payload: Any = None) -> bool:
        return view.state(("output", self.port))

    def compile(self, view: StateView) -> Check:
        return _bool_check(accessor(view, ("output", self.port)), self.invert)

    def port_refs(self) -> list[tuple[str, str]]:
        return [("output", self.port)]


class DeviceStartedCondition(ConditionBase):
    """The device has just started (a pulse, once per start)."""

    kind: Literal["device_started"] = "device_started"
    stateful: ClassVar[bool] = False
    pulse_sensitive: ClassVar[bool] = True

    def sources(self) -> list[SourceKey]:
        return [STARTED]

    def raw(self, view: StateView, pulse: SourceKey | None, payload: Any = None) -> bool:
        return pulse == STARTED


class StorageCondition(ConditionBase):
    """A storage volume is full (nothing left to delete) or has failed (missing, read-only,
    unmounted share): the rule can switch a warning output or notify someone."""

    kind: Literal["storage"] = "storage"
    volume: Literal["local", "share"] = "local"
    state: Literal["full", "failure"] = "failure"

    def _key(self) -> SourceKey:
        return (f"storage_{self.state}", self.volume)

    def sources(self) -> list[SourceKey]:
        return [self._key()]

    def raw(self, view: StateView, pulse: SourceKey | None, payload: Any = None) -> bool:
        return view.state(self._key())

    def compile(self, view: StateView) -> Check:
        return _bool_check(accessor(view, self._key()), self.invert)


VIDEO_LOST: SourceKey = ("video_lost", "video")


class VideoSourceLostCondition(ConditionBase):
    """The video source is lost (the camera stream dropped and camio is reconnecting)."""

    kind: Literal["video_source_lost"] = "video_source_lost"

    def sources(self) -> list[SourceKey]:
        return [VIDEO_LOST]

    def raw(self, view: StateView, pulse: SourceKey | None, payload: Any = None) -> bool:
        return view.state(VIDEO_LOST)

    def compile(self, view: StateView) -> Check:
        return _bool_check(accessor(view, VIDEO_LOST), self.invert)


MQTT_MESSAGE = "mqtt"
"""Source kind of ``mqtt/message`` events; the id is the subscribed topic filter."""
MQTT_STATE = "mqtt_state"
"""Source kind the MQTT client answers for stateful conditions: the id is
:meth:`MqttCondition.state_id`, true while the last message on the filter matches."""


class MqttCondition(ConditionBase):
    """A message on an MQTT topic filter (``+``/``#`` wildcards), optionally with a payload.

    ``stateless``: each matching message is a pulse (fires a 'once' rule; retained messages
    delivered on subscription are old news and do not fire). ``stateful``: the condition holds
    while the last message on the filter matches (retained messages set the initial state).
    """

    kind: Literal["mqtt"] = "mqtt"
    topic: Annotated[str, Field(max_length=200)]
    payload: Annotated[str, Field(max_length=MAX_PATTERN)] | None = Field(
        None, description="What the payload must be; none = any payload"
    )
    match: Literal["exact", "regex"] = "exact"
    mode: Literal["stateless", "stateful"] = "stateless"

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        return valid_filter(value)

    @model_validator(mode="after")
    def _regex(self) -> MqttCondition:
        if self.match == "regex" and self.payload is not None:
            import re

            try:
                re.compile(self.payload)
            except re.error as exc:
                raise ValueError(f"payload: invalid regular expression: {exc}") from None
        return self

    @property
    def stateful(self) -> bool:  # type: ignore[override]
        return self.mode == "stateful"

    @property
    def pulse_sensitive(self) -> bool:  # type: ignore[override]
        return self.mode == "stateless"

    def state_id(self) -> str:
        """The id of this condition's :data:`MQTT_STATE` key (filter, match, payload)."""
        payload = "" if self.payload is None else "=" + self.payload
        return "\x00".join((self.topic, self.match, payload))

    def matches(self, payload: str) -> bool:
        if self.payload is None:
            return True
        return payload_matches(self.match, self.payload, payload)

    def sources(self) -> list[SourceKey]:
        return [(MQTT_MESSAGE, self.topic)]

    def raw(self, view: StateView, pulse: SourceKey | None, payload: Any = None) -> bool:
        if self.mode == "stateful":
            return view.state((MQTT_STATE, self.state_id()))
        if pulse != (MQTT_MESSAGE, self.topic) or not isinstance(payload, dict):
            return False
        if payload.get("retain"):
            return False
        return self.matches(str(payload.get("payload", "")))


CONDITION_MODELS: dict[str, type[ConditionBase]] = {}


def register_condition(model: type[ConditionBase]) -> type[ConditionBase]:
    """Make a condition kind known to rule validation (usable as a class decorator)."""
    return register_kind(CONDITION_MODELS, model)


for _model in (
    InputCondition,
    VirtualInputCondition,
    ManualTriggerCondition,
    ScheduleCondition,
    RecurrenceCondition,
    OutputCondition,
    DeviceStartedCondition,
    StorageCondition,
    VideoSourceLostCondition,
    MqttCondition,
):
    register_condition(_model)
