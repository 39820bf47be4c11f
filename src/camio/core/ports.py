"""Configuration of the terminal block: alarm inputs and alarm/relay outputs.

Field names follow the seed manuals so an installer recognises them: the *normal state* of an
input (Dahua "trigger mode": connect = normal open, disconnect = normal closed), the *valid
signal* of an output (``active_state``), *alarm time* in milliseconds with ``0`` meaning
continuous, and so on.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

PORT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class Circuit(StrEnum):
    """The electrical state of a terminal: ``open`` or ``closed`` (to ground/common).

    Supervised (end-of-line resistor) inputs add two tamper states: ``cut`` (the loop is open
    beyond the resistor) and ``short`` (the loop is bridged).
    """

    OPEN = "open"
    CLOSED = "closed"
    CUT = "cut"
    SHORT = "short"

    @property
    def is_tamper(self) -> bool:
        return self in TAMPER_CIRCUITS

    def opposite(self) -> Circuit:
        """The other of open/closed (tamper states have no opposite)."""
        if self is Circuit.OPEN:
            return Circuit.CLOSED
        if self is Circuit.CLOSED:
            return Circuit.OPEN
        raise ValueError(f"{self.value} has no opposite")


TAMPER_CIRCUITS = frozenset({Circuit.CUT, Circuit.SHORT})

NormalState = Literal["open", "closed"]


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


TimeZone = Annotated[str, AfterValidator(_known_zone)]
"""An IANA time zone name (``Europe/Berlin``), checked against the system's zone database."""


class Model(BaseModel):
    """Base of every configuration model: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PortBase(Model):
    """What inputs and outputs have in common."""

    id: Annotated[str, Field(pattern=PORT_ID_PATTERN.pattern, description="Stable port id")]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    enabled: bool = True
    description: Annotated[str, Field(max_length=256)] = ""


class InputConfig(PortBase):
    """An alarm input (door contact, PIR, push button)."""

    normal_state: NormalState = Field(
        "open",
        description="Circuit when nothing happens. open = 'trigger mode connect' / NO; "
        "closed = 'disconnect' / NC. The input is active when the circuit differs.",
    )
    debounce_on_ms: Annotated[int, Field(ge=0, le=600_000)] = Field(
        50, description="The level must stay active this long before the input goes active"
    )
    debounce_off_ms: Annotated[int, Field(ge=0, le=600_000)] = Field(
        50, description="The level must stay normal this long before the input goes inactive"
    )
    supervised: bool = Field(
        False, description="End-of-line resistors: the circuit can also be cut or short (tamper)"
    )
    arming_schedule: str | None = Field(
        None, description="Schedule id during which the input is armed; none = always armed"
    )
    device_class: str | None = Field(None, description="door, motion, ... for home automation")


class OutputMode(StrEnum):
    SWITCH = "switch"  # steady while active
    PULSE = "pulse"  # alternates on/off at a set period while active


class Retrigger(StrEnum):
    """What a new timed activation does to an output that is already active."""

    EXTEND = "extend"  # stays active, the deadline moves to now + duration if later
    RESTART = "restart"  # goes idle and active again (a fresh edge), deadline now + duration
    IGNORE = "ignore"  # the running activation continues unchanged


class PowerOn(StrEnum):
    OFF = "off"
    ON = "on"
    RESTORE = "restore"  # resume the persisted state, including the remaining alarm time


class OutputConfig(PortBase):
    """An alarm or relay output (siren, strobe, door strike, light)."""

    active_state: NormalState = Field(
        "closed", description="Valid signal: the circuit when active. Idle is the other one."
    )
    contact: Literal["dry", "wet"] = Field(
        "dry", description="dry = relay, user supplies power; wet = the device outputs a voltage"
    )
    rating: Annotated[str, Field(max_length=64)] = Field(
        "", description="Electrical rating shown to the installer, e.g. '24 V 100 mA'"
    )
    mode: OutputMode = OutputMode.SWITCH
    pulse_on_ms: Annotated[int, Field(ge=10, le=3_600_000)] = 500
    pulse_off_ms: Annotated[int, Field(ge=10, le=3_600_000)] = 500
    follow_source: bool = Field(
        False, description="Active while the triggering condition lasts (rules 'while active')"
    )
    alarm_time_ms: Annotated[int, Field(ge=0, le=86_400_000)] = Field(
        10_000, description="How long a triggered activation lasts; 0 = continuous until stopped"
    )
    retrigger: Retrigger = Retrigger.EXTEND
    interlock_group: str | None = None
    power_on: PowerOn = PowerOn.OFF
    timed_schedule: str | None = Field(
        None, description="Schedule id that drives this output instead of events (timed output)"
    )

    @property
    def idle_state(self) -> Circuit:
        return Circuit(self.active_state).opposite()


class InterlockGroup(Model):
    """Outputs of a group are never active together; ``dead_time_ms`` separates them."""

    id: Annotated[str, Field(pattern=PORT_ID_PATTERN.pattern)]
    dead_time_ms: Annotated[int, Field(ge=0, le=60_000)] = 0


class StateStep(Model):
    """One step of a state sequence: hold ``active`` for ``duration_ms``."""

    active: bool
    duration_ms: Annotated[int, Field(ge=0, le=3_600_000)]


class StateSequence(Model):
    """A state sequence (VAPIX ``/300\\500/300\\``): steps run in order.

    After the last step the output keeps that step's state, as on an Axis device.
    """

    steps: Annotated[list[StateStep], Field(min_length=1, max_length=256)]

    @model_validator(mode="after")
    def _bounded(self) -> StateSequence:
        total = sum(step.duration_ms for step in self.steps)
        if total > 3_600_000:
            raise ValueError("a state sequence may last at most one hour")
        return self
