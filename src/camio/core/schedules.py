"""Schedules: RFC 5545 recurrence rules in a time zone, as interval or pulse schedules.

An *interval* schedule is a state: active from each occurrence for ``duration_s`` (arming
schedules, timed outputs, "during office hours"). A *pulse* schedule is a happening at each
occurrence (a daily test of the siren). A weekly grid in a user interface is a set of entries,
one per time range, each with a weekly RRULE.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cached_property
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr
from pydantic import Field, WithJsonSchema, field_validator, model_validator

from camio.core.clock import NS_PER_S, Clock, Timer
from camio.core.ports import PORT_ID_PATTERN, Model, TimeZone

#: Longest single wait on a schedule timer: the wall clock can be stepped (NTP at boot), so a
#: schedule re-checks at least this often instead of trusting one long monotonic timer.
MAX_WAIT_NS = 300 * NS_PER_S


#: A local date and time without an offset (JSON Schema's ``date-time`` requires one).
LocalDateTime = Annotated[
    dt.datetime,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$",
            "examples": ["2026-01-01T22:00:00"],
        }
    ),
]


class ScheduleEntry(Model):
    """One recurring period: from ``start`` (local time) for ``duration_s``, repeated."""

    start: LocalDateTime = Field(description="DTSTART in the schedule's time zone (no offset)")
    duration_s: Annotated[int, Field(ge=0, le=366 * 86_400)] = 0
    rrule: str | None = Field(
        None,
        description="RFC 5545 RRULE without DTSTART, e.g. FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
    )

    @field_validator("start")
    @classmethod
    def _naive(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is not None:
            raise ValueError("give start as local time without an offset; set 'timezone'")
        return value

    @field_validator("rrule")
    @classmethod
    def _valid_rrule(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip()
        if text.upper().startswith("RRULE:"):
            text = text[6:]
        if "FREQ=SECONDLY" in text.upper():
            raise ValueError("FREQ=SECONDLY is not supported; use a recurrence condition")
        try:
            rrulestr(text, dtstart=dt.datetime(2026, 1, 1))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"invalid RRULE: {exc}") from exc
        return text


class ScheduleConfig(Model):
    """A named schedule made of one or more recurring entries in one time zone."""

    id: Annotated[str, Field(pattern=PORT_ID_PATTERN.pattern)]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    kind: Literal["interval", "pulse"] = "interval"
    timezone: TimeZone = "UTC"
    entries: Annotated[list[ScheduleEntry], Field(min_length=1, max_length=64)]

    @model_validator(mode="after")
    def _durations(self) -> ScheduleConfig:
        if self.kind == "interval":
            for index, entry in enumerate(self.entries):
                if entry.duration_s <= 0:
                    raise ValueError(f"entries.{index}.duration_s must be > 0 for an interval")
        return self


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _end(start: dt.datetime, length: dt.timedelta) -> dt.datetime:
    """``start + length`` in exact time (RFC 5545: a duration in seconds is exact, not nominal)."""
    return start.astimezone(dt.UTC) + length


def _wall_ns(moment: dt.datetime) -> int:
    """Epoch nanoseconds of an aware datetime, exactly (no float rounding at a boundary)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


class CompiledSchedule:
    """A schedule turned into dateutil rules, answering 'active at t?' and 'what next?'."""

    def __init__(self, config: ScheduleConfig) -> None:
        self.config = config
        self.zone = ZoneInfo(config.timezone)

    @cached_property
    def _rules(self) -> list[tuple[rrule | None, dt.datetime, dt.timedelta]]:
        compiled: list[tuple[rrule | None, dt.datetime, dt.timedelta]] = []
        for entry in self.config.entries:
            start = entry.start.replace(tzinfo=self.zone)
            rule = None
            if entry.rrule:
                parsed = rrulestr(entry.rrule, dtstart=start, cache=True)
                assert isinstance(parsed, rrule)
                rule = parsed
            compiled.append((rule, start, dt.timedelta(seconds=entry.duration_s)))
        return compiled

    @staticmethod
    def _at(wall_ns: int) -> dt.datetime:
        # In UTC, not in the schedule's zone: Python compares and adds aware datetimes of the
        # same zone as wall-clock values, which is wrong across a DST change. Occurrences stay
        # in local time (the rules are local); comparing them with a UTC instant is exact.
        return _EPOCH + dt.timedelta(microseconds=wall_ns // 1000)

    def _last_start(
        self, rule: rrule | None, start: dt.datetime, now: dt.datetime
    ) -> dt.datetime | None:
        if rule is None:
            return start if start <= now else None
        found = rule.before(now, inc=True)
        return found if isinstance(found, dt.datetime) else None

    def _next_start(
        self, rule: rrule | None, start: dt.datetime, now: dt.datetime
    ) -> dt.datetime | None:
        if rule is None:
            return start if start > now else None
        found = rule.after(now, inc=False)
        return found if isinstance(found, dt.datetime) else None

    def is_active(self, wall_ns: int) -> bool:
        """Whether an interval schedule is active at ``wall_ns`` (always False for pulses)."""
        if self.config.kind != "interval":
            return False
        now = self._at(wall_ns)
        for rule, start, length in self._rules:
            last = self._last_start(rule, start, now)
            if last is not None and _end(last, length) > now:
                return True
        return False

    def next_change(self, wall_ns: int) -> int | None:
        """Wall ns of the next moment the state may change (interval) or the next pulse."""
        now = self._at(wall_ns)
        candidates: list[dt.datetime] = []
        for rule, start, length in self._rules:
            nxt = self._next_start(rule, start, now)
            if nxt is not None:
                candidates.append(nxt)
            if self.config.kind == "interval":
                last = self._last_start(rule, start, now)
                if last is not None and _end(last, length) > now:
                    candidates.append(_end(last, length))
        if not candidates:
            return None
        return _wall_ns(min(candidates))


class ScheduleRuntime:
    """Drives one schedule from the clock: calls back on state changes and pulses.

    It sleeps until the next change (at most :data:`MAX_WAIT_NS`), so an idle device wakes up
    only when a schedule has something to do.
    """

    def __init__(
        self,
        config: ScheduleConfig,
        clock: Clock,
        on_change: Callable[[ScheduleRuntime, bool], None],
        on_pulse: Callable[[ScheduleRuntime], None],
    ) -> None:
        self.compiled = CompiledSchedule(config)
        self._clock = clock
        self._on_change = on_change
        self._on_pulse = on_pulse
        self._timer: Timer | None = None
        self._next_pulse_ns: int | None = None
        self.active = False

    @property
    def id(self) -> str:
        return self.compiled.config.id

    @property
    def kind(self) -> str:
        return self.compiled.config.kind

    def start(self) -> None:
        """Take the current state (without a change callback) and arm the timer."""
        self.active = self.compiled.is_active(self._clock.wall_ns())
        self._arm()

    def _arm(self) -> None:
        now = self._clock.wall_ns()
        nxt = self.compiled.next_change(now)
        self._next_pulse_ns = nxt if self.kind == "pulse" else None
        if nxt is None:
            self._timer = None
            return
        wait = min(max(0, nxt - now), MAX_WAIT_NS)
        self._timer = self._clock.call_later(wait, self._tick)

    def _tick(self) -> None:
        self._timer = None
        now = self._clock.wall_ns()
        if self.kind == "pulse":
            if self._next_pulse_ns is not None and now >= self._next_pulse_ns:
                self._on_pulse(self)
        else:
            active = self.compiled.is_active(now)
            if active != self.active:
                self.active = active
                self._on_change(self, active)
        self._arm()

    def resync(self) -> None:
        """Re-read the wall clock now (after it was stepped) instead of at the next wake-up."""
        if self._timer is not None:
            self._timer.cancel()
        self._tick()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class RecurrenceRuntime:
    """A plain recurrence: a pulse every ``interval_s`` seconds of monotonic time."""

    def __init__(self, interval_s: int, clock: Clock, on_pulse: Callable[[int], None]) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._on_pulse = on_pulse
        self._timer: Timer | None = None

    def start(self) -> None:
        self._timer = self._clock.call_later(self.interval_s * NS_PER_S, self._tick)

    def _tick(self) -> None:
        self._timer = self._clock.call_later(self.interval_s * NS_PER_S, self._tick)
        self._on_pulse(self.interval_s)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
