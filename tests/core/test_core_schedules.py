"""Schedules: RFC 5545 recurrence in a time zone, interval vs pulse, DST, runtime wake-ups."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from camio.core.clock import NS_PER_MS, NS_PER_S, ManualClock
from camio.core.schedules import (
    MAX_WAIT_NS,
    CompiledSchedule,
    RecurrenceRuntime,
    ScheduleConfig,
    ScheduleRuntime,
)

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")


def ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: Any = UTC) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=tz).timestamp()) * NS_PER_S


def schedule(**kw: Any) -> CompiledSchedule:
    kw.setdefault("id", "s")
    kw.setdefault("name", "S")
    return CompiledSchedule(ScheduleConfig.model_validate(kw))


def test_daily_local_time_follows_dst_in_berlin() -> None:
    """08:00 Berlin is 07:00 UTC in winter and 06:00 UTC after the switch on 2026-03-29."""
    sched = schedule(
        timezone="Europe/Berlin",
        entries=[{"start": "2026-03-01T08:00:00", "duration_s": 3600, "rrule": "FREQ=DAILY"}],
    )
    assert sched.is_active(ns(2026, 3, 28, 7, 30))
    assert not sched.is_active(ns(2026, 3, 28, 6, 30))
    assert sched.is_active(ns(2026, 3, 30, 6, 30))
    assert not sched.is_active(ns(2026, 3, 30, 7, 30))
    assert sched.next_change(ns(2026, 3, 28, 12)) == ns(2026, 3, 29, 6)
    assert sched.next_change(ns(2026, 3, 27, 12)) == ns(2026, 3, 28, 7)
    # And back in autumn (2026-10-25).
    assert sched.next_change(ns(2026, 10, 25, 12)) == ns(2026, 10, 26, 7)


def test_duration_across_the_spring_gap_is_exact_time() -> None:
    """RFC 5545: a duration in seconds is exact time, not wall-clock arithmetic.

    01:00 CET on 2026-03-29 is 00:00 UTC; two hours later is 02:00 UTC (04:00 CEST), although
    the local clock shows only three hours later, having skipped 02:00-03:00.
    """
    sched = schedule(
        timezone="Europe/Berlin",
        entries=[{"start": "2026-03-29T01:00:00", "duration_s": 7200}],
    )
    assert sched.is_active(ns(2026, 3, 29, 0, 0))
    assert sched.is_active(ns(2026, 3, 29, 1, 30))
    assert not sched.is_active(ns(2026, 3, 29, 2, 0))
    assert sched.next_change(ns(2026, 3, 29, 0, 30)) == ns(2026, 3, 29, 2)


def test_duration_across_the_autumn_fold_is_exact_time() -> None:
    """01:30 CEST on 2026-10-25 is 23:30 UTC the day before; 2 h later is 01:30 UTC (02:30 CET)."""
    sched = schedule(
        timezone="Europe/Berlin",
        entries=[{"start": "2026-10-25T01:30:00", "duration_s": 7200}],
    )
    assert sched.is_active(ns(2026, 10, 24, 23, 30))
    assert sched.is_active(ns(2026, 10, 25, 1, 29))
    assert not sched.is_active(ns(2026, 10, 25, 1, 30))


def test_weekly_rrule_weekdays_only() -> None:
    sched = schedule(
        entries=[
            {
                "start": "2026-01-05T09:00:00",  # a Monday
                "duration_s": 8 * 3600,
                "rrule": "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            }
        ]
    )
    assert sched.is_active(ns(2026, 1, 9, 12))  # Friday
    assert not sched.is_active(ns(2026, 1, 10, 12))  # Saturday
    assert not sched.is_active(ns(2026, 1, 12, 8, 59))  # Monday before nine
    assert sched.is_active(ns(2026, 1, 12, 9))  # start is inclusive
    assert not sched.is_active(ns(2026, 1, 12, 17))  # end is exclusive
    assert sched.next_change(ns(2026, 1, 10, 12)) == ns(2026, 1, 12, 9)


def test_pulse_schedule_is_never_active_but_has_next_pulses() -> None:
    sched = schedule(
        kind="pulse",
        entries=[{"start": "2026-01-01T06:00:00", "rrule": "FREQ=DAILY"}],
    )
    assert not sched.is_active(ns(2026, 1, 2, 6))
    assert sched.next_change(ns(2026, 1, 2, 6)) == ns(2026, 1, 3, 6)


def test_one_shot_entry_has_no_next_change_after_it_ended() -> None:
    sched = schedule(entries=[{"start": "2026-01-01T06:00:00", "duration_s": 60}])
    assert sched.next_change(ns(2026, 1, 1, 5)) == ns(2026, 1, 1, 6)
    assert sched.next_change(ns(2026, 1, 1, 6)) == ns(2026, 1, 1, 6, 1)
    assert sched.next_change(ns(2026, 1, 1, 7)) is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"timezone": "Mars/Olympus", "entries": [{"start": "2026-01-01T00:00:00"}]}, "timezone"),
        (
            {"entries": [{"start": "2026-01-01T00:00:00", "duration_s": 0}]},
            "entries.0.duration_s",
        ),
        (
            {"entries": [{"start": "2026-01-01T00:00:00", "duration_s": 1, "rrule": "FREQ=NOPE"}]},
            "rrule",
        ),
        (
            {"entries": [{"start": "2026-01-01T00:00:00Z", "duration_s": 1}]},
            "start",
        ),
        (
            {
                "entries": [
                    {"start": "2026-01-01T00:00:00", "duration_s": 1, "rrule": "FREQ=SECONDLY"}
                ]
            },
            "rrule",
        ),
    ],
)
def test_invalid_schedules_are_refused_naming_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ScheduleConfig.model_validate({"id": "s", "name": "S", **data})
    assert field.split(".")[-1] in str(info.value)


def test_runtime_changes_state_at_the_boundaries() -> None:
    clock = ManualClock(wall_ns=ns(2026, 1, 1))
    config = ScheduleConfig.model_validate(
        {
            "id": "s",
            "name": "S",
            "entries": [{"start": "2026-01-01T00:10:00", "duration_s": 60, "rrule": "FREQ=HOURLY"}],
        }
    )
    changes: list[tuple[int, bool]] = []
    runtime = ScheduleRuntime(
        config, clock, lambda s, active: changes.append((clock.wall_ns(), active)), lambda s: None
    )
    runtime.start()
    assert runtime.active is False
    clock.advance(2 * 3600 * 1000)
    assert changes == [
        (ns(2026, 1, 1, 0, 10), True),
        (ns(2026, 1, 1, 0, 11), False),
        (ns(2026, 1, 1, 1, 10), True),
        (ns(2026, 1, 1, 1, 11), False),
    ]
    runtime.stop()
    assert clock.pending_timers == 0


def test_runtime_sleeps_at_most_max_wait_and_then_only_until_the_change() -> None:
    clock = ManualClock(wall_ns=ns(2026, 1, 1))
    config = ScheduleConfig.model_validate(
        {"id": "s", "name": "S", "kind": "pulse", "entries": [{"start": "2026-01-02T00:00:00"}]}
    )
    pulses: list[int] = []
    runtime = ScheduleRuntime(config, clock, lambda s, a: None, lambda s: pulses.append(1))
    runtime.start()
    assert clock.pending_timers == 1  # one wake-up, no polling loop
    clock.advance_ns(MAX_WAIT_NS - 1)
    assert pulses == []
    clock.advance(86_400_000 - MAX_WAIT_NS / NS_PER_MS + 1)
    assert pulses == [1]
    assert clock.pending_timers == 0  # a one-shot pulse schedule has nothing left to do


def test_runtime_resync_after_a_wall_clock_step() -> None:
    clock = ManualClock(wall_ns=ns(2026, 1, 1))
    config = ScheduleConfig.model_validate(
        {"id": "s", "name": "S", "entries": [{"start": "2026-06-01T00:00:00", "duration_s": 3600}]}
    )
    changes: list[bool] = []
    runtime = ScheduleRuntime(config, clock, lambda s, a: changes.append(a), lambda s: None)
    runtime.start()
    clock.set_wall_ns(ns(2026, 6, 1, 0, 30))
    runtime.resync()
    assert changes == [True]
    assert runtime.active is True


def test_recurrence_pulses_every_interval() -> None:
    clock = ManualClock()
    pulses: list[int] = []
    rec = RecurrenceRuntime(10, clock, lambda interval: pulses.append(clock.monotonic_ns()))
    t0 = clock.monotonic_ns()
    rec.start()
    clock.advance(35_000)
    assert [(t - t0) // NS_PER_MS for t in pulses] == [10_000, 20_000, 30_000]
    rec.stop()
    assert clock.pending_timers == 0
