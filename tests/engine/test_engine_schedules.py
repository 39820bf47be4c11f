"""Schedules on a running device: schedule conditions (DST), pulses, arming, timed outputs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from engine_helpers import MakeRig, Rig, fast_inputs, outputs

from camio.core.clock import NS_PER_MS, NS_PER_S, ManualClock
from camio.core.events import Topic

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def utc_ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp()) * NS_PER_S


def wall_edges(rig: Rig, port: str) -> list[tuple[str, str]]:
    """Output levels with the UTC wall time at which the simulated driver saw them."""
    offset = rig.clock.wall_ns() - rig.clock.monotonic_ns()
    return [
        (
            dt.datetime.fromtimestamp((t + offset) / NS_PER_S, tz=dt.UTC).strftime("%m-%d %H:%M"),
            circuit.value,
        )
        for t, circuit in rig.driver.output_history[port]
    ]


def schedule(sid: str, entries: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": sid, "name": sid, "entries": entries, **extra}


def test_interval_schedule_condition_in_berlin_across_dst(make_rig: MakeRig) -> None:
    """08:00-09:00 Berlin, daily: 07:00 UTC before 2026-03-29, 06:00 UTC from that day."""
    config = {
        "inputs": [],
        "outputs": outputs("out1"),
        "schedules": [
            schedule(
                "office",
                [{"start": "2026-03-01T08:00:00", "duration_s": 3600, "rrule": "FREQ=DAILY"}],
                timezone="Europe/Berlin",
            )
        ],
        "rules": [
            {
                "id": "r",
                "name": "r",
                "action_mode": "while_active",
                "conditions": [{"kind": "schedule", "schedule": "office"}],
                "action": {"kind": "set_output", "port": "out1"},
            }
        ],
    }
    rig = make_rig(config, clock=ManualClock(wall_ns=utc_ns(2026, 3, 27, 12)))
    rig.advance(3 * DAY_MS)
    assert wall_edges(rig, "out1") == [
        ("03-28 07:00", "closed"),
        ("03-28 08:00", "open"),
        ("03-29 06:00", "closed"),
        ("03-29 07:00", "open"),
        ("03-30 06:00", "closed"),
        ("03-30 07:00", "open"),
    ]
    events = rig.changes(Topic.SCHEDULE, "office")
    assert [e.data for e in events] == [{"active": True}, {"active": False}] * 3
    assert fired_transitions(rig, "r") == ["start", "stop"] * 3


def fired_transitions(rig: Rig, rule_id: str) -> list[str]:
    return [e.data["transition"] for e in rig.changes(Topic.RULE_FIRED, rule_id)]


def test_once_rule_on_an_interval_schedule_fires_at_every_start(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "inputs": [],
            "outputs": outputs("out1"),
            "schedules": [
                schedule(
                    "s",
                    [{"start": "2026-01-01T00:10:00", "duration_s": 60, "rrule": "FREQ=HOURLY"}],
                )
            ],
            "rules": [
                {
                    "id": "r",
                    "name": "r",
                    "conditions": [{"kind": "schedule", "schedule": "s"}],
                    "action": {"kind": "set_output", "port": "out1", "duration_ms": 1_000},
                }
            ],
        }
    )
    rig.advance(3 * HOUR_MS)
    assert fired_transitions(rig, "r") == ["fire"] * 3


def test_pulse_schedule_fires_once_rules_every_time(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "inputs": [],
            "outputs": outputs("siren"),
            "schedules": [
                schedule(
                    "test",
                    [{"start": "2026-01-01T06:00:00", "rrule": "FREQ=DAILY"}],
                    kind="pulse",
                    timezone="Europe/Berlin",
                )
            ],
            "rules": [
                {
                    "id": "siren-test",
                    "name": "daily siren test",
                    "conditions": [{"kind": "schedule", "schedule": "test"}],
                    "action": {"kind": "set_output", "port": "siren", "duration_ms": 2_000},
                }
            ],
        }
    )
    rig.advance(3 * DAY_MS)
    # Berlin is UTC+1 in January: 06:00 local is 05:00 UTC.
    assert wall_edges(rig, "siren") == [
        ("01-01 05:00", "closed"),
        ("01-01 05:00", "open"),
        ("01-02 05:00", "closed"),
        ("01-02 05:00", "open"),
        ("01-03 05:00", "closed"),
        ("01-03 05:00", "open"),
    ]
    assert [(t % DAY_MS) for t, _ in rig.edges("siren")] == [
        5 * HOUR_MS,
        5 * HOUR_MS + 2_000,
    ] * 3
    pulses = rig.changes(Topic.SCHEDULE, "test")
    assert len(pulses) == 3 and all(p.data == {"pulse": True} for p in pulses)


def arming_config(require_armed: bool = True) -> dict[str, Any]:
    return {
        "inputs": fast_inputs("in1", arming_schedule="night"),
        "outputs": outputs("out1", alarm_time_ms=0),
        "schedules": [
            schedule(
                "night",
                [{"start": "2026-01-01T22:00:00", "duration_s": 8 * 3600, "rrule": "FREQ=DAILY"}],
            )
        ],
        "rules": [
            {
                "id": "alarm",
                "name": "alarm",
                "conditions": [{"kind": "input", "port": "in1", "require_armed": require_armed}],
                "action": {"kind": "set_output", "port": "out1"},
            }
        ],
    }


def test_disarmed_input_reports_its_state_but_does_not_fire(make_rig: MakeRig) -> None:
    rig = make_rig(arming_config(), clock=ManualClock(wall_ns=utc_ns(2026, 1, 2, 12)))
    status = rig.device.port_status("in1")
    assert (status["armed"], status["active"]) == (False, False)
    rig.close("in1")
    status = rig.device.port_status("in1")
    assert (status["armed"], status["active"]) == (False, True)
    [event] = rig.changes(Topic.INPUT, "in1")
    assert event.data == {"active": True, "circuit": "closed", "tamper": False, "armed": False}
    assert not rig.active("out1")
    rig.open("in1")
    rig.advance(10 * HOUR_MS)  # 22:00: armed
    assert rig.device.port_status("in1")["armed"] is True
    assert rig.changes(Topic.INPUT, "in1")[-1].data["armed"] is True
    rig.close("in1")
    assert rig.active("out1")


def test_arming_while_the_input_is_active_fires(make_rig: MakeRig) -> None:
    """Pinned: the input condition becomes true when arming starts, so a once rule fires."""
    rig = make_rig(arming_config(), clock=ManualClock(wall_ns=utc_ns(2026, 1, 2, 21)))
    rig.close("in1")
    assert not rig.active("out1")
    rig.advance(HOUR_MS)
    assert rig.active("out1")
    on = rig.changes(Topic.OUTPUT, "out1")[0]
    armed_event = rig.changes(Topic.INPUT, "in1")[-1]
    assert on.cause is not None and on.cause.event_id == armed_event.id
    assert armed_event.cause is not None and armed_event.cause.kind == "schedule"


def test_require_armed_false_ignores_arming(make_rig: MakeRig) -> None:
    rig = make_rig(arming_config(False), clock=ManualClock(wall_ns=utc_ns(2026, 1, 2, 12)))
    rig.close("in1")
    assert rig.active("out1")


def test_timed_output_follows_its_schedule(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "inputs": [],
            "outputs": outputs("light", timed_schedule="evening", alarm_time_ms=1_000),
            "schedules": [
                schedule(
                    "evening",
                    [
                        {
                            "start": "2026-01-01T18:00:00",
                            "duration_s": 4 * 3600,
                            "rrule": "FREQ=DAILY",
                        }
                    ],
                )
            ],
        }
    )
    rig.advance(2 * DAY_MS)
    assert wall_edges(rig, "light") == [
        ("01-01 18:00", "closed"),
        ("01-01 22:00", "open"),
        ("01-02 18:00", "closed"),
        ("01-02 22:00", "open"),
    ]
    on = rig.changes(Topic.OUTPUT, "light")[0]
    assert on.cause is not None and (on.cause.kind, on.cause.detail) == ("schedule", "evening")


def test_timed_output_active_at_start(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "inputs": [],
            "outputs": outputs("light", timed_schedule="day"),
            "schedules": [
                schedule(
                    "day",
                    [{"start": "2026-01-01T08:00:00", "duration_s": 3600, "rrule": "FREQ=DAILY"}],
                )
            ],
        },
        clock=ManualClock(wall_ns=utc_ns(2026, 1, 1, 8, 30)),
    )
    assert rig.active("light")
    rig.advance(30 * 60_000)
    assert not rig.active("light")


def test_idle_device_with_a_schedule_only_wakes_for_the_schedule(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "outputs": outputs("out1"),
            "schedules": [
                schedule(
                    "s", [{"start": "2026-01-01T08:00:00", "duration_s": 60, "rrule": "FREQ=DAILY"}]
                )
            ],
        }
    )
    rig.advance(0)
    assert rig.clock.pending_timers == 1
    rig.advance(HOUR_MS)
    assert rig.clock.pending_timers == 1
    assert rig.clock.monotonic_ns() - rig.t0 == HOUR_MS * NS_PER_MS
