"""OutputPort and InterlockGroupRuntime driven directly, without the device facade."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from camio.core.clock import NS_PER_MS, ManualClock
from camio.core.events import Cause
from camio.core.outputs import InterlockGroupRuntime, OutputSnapshot
from camio.core.ports import Circuit, OutputConfig, StateStep

MakeOutput = Callable[..., Any]
USER = Cause("manual", user="tester")


@pytest.mark.parametrize(("active_state", "idle"), [("closed", "open"), ("open", "closed")])
def test_active_state_maps_onto_the_circuit(
    make_output: MakeOutput, active_state: str, idle: str
) -> None:
    probe = make_output(active_state=active_state)
    port = probe.port
    assert port.circuit == Circuit(idle)
    port.activate(USER, 0)
    assert port.active is True
    assert port.circuit == Circuit(active_state)
    port.deactivate(USER)
    assert port.circuit == Circuit(idle)
    assert [c for _, c in probe.drives] == [Circuit(active_state), Circuit(idle)]


def test_alarm_time_is_the_default_duration(make_output: MakeOutput, clock: ManualClock) -> None:
    probe = make_output(alarm_time_ms=300)
    probe.port.activate(USER)
    assert probe.port.remaining_ms() == 300
    clock.advance(299)
    assert probe.port.active is True
    assert probe.port.remaining_ms() == 1
    clock.advance(1)
    assert probe.port.active is False
    assert probe.port.remaining_ms() is None
    assert [(t, active) for t, active, _ in probe.changes] == [(0.0, True), (300.0, False)]


def test_alarm_time_zero_is_continuous(make_output: MakeOutput, clock: ManualClock) -> None:
    probe = make_output(alarm_time_ms=0)
    probe.port.activate(USER)
    assert probe.port.latched is True
    assert clock.pending_timers == 0
    clock.advance(10_000_000)
    assert probe.port.active is True
    probe.port.deactivate(USER)
    assert probe.port.active is False


def test_timer_end_cause_keeps_the_origin(make_output: MakeOutput, clock: ManualClock) -> None:
    probe = make_output(alarm_time_ms=100)
    probe.port.activate(Cause("rule", rule="r7", event_id=41))
    clock.advance(100)
    cause = probe.changes[-1][2]
    assert cause.kind == "timer"
    assert (cause.rule, cause.event_id) == ("r7", 41)


def test_pulse_mode_alternates_at_its_periods(make_output: MakeOutput, clock: ManualClock) -> None:
    probe = make_output(mode="pulse", pulse_on_ms=100, pulse_off_ms=300, alarm_time_ms=0)
    probe.port.activate(USER)
    clock.advance(850)
    assert probe.drives == [
        (0.0, Circuit.CLOSED),
        (100.0, Circuit.OPEN),
        (400.0, Circuit.CLOSED),
        (500.0, Circuit.OPEN),
        (800.0, Circuit.CLOSED),
    ]
    assert probe.port.active is True  # logically active during the off phases too
    probe.port.deactivate(USER)
    assert probe.port.circuit is Circuit.OPEN
    assert clock.pending_timers == 0
    clock.advance(5_000)
    assert probe.drives[-1] == (850.0, Circuit.OPEN)
    assert len(probe.drives) == 6


def test_pulse_stopped_during_an_off_phase_does_not_drive_again(
    make_output: MakeOutput, clock: ManualClock
) -> None:
    probe = make_output(mode="pulse", pulse_on_ms=100, pulse_off_ms=100, alarm_time_ms=0)
    probe.port.activate(USER)
    clock.advance(150)  # in the off phase
    probe.port.deactivate(USER)
    assert [c for _, c in probe.drives] == [Circuit.CLOSED, Circuit.OPEN]
    assert probe.port.circuit is Circuit.OPEN


def test_extend_moves_the_deadline_without_an_edge(
    make_output: MakeOutput, clock: ManualClock
) -> None:
    probe = make_output(alarm_time_ms=1_000, retrigger="extend")
    probe.port.activate(USER)
    clock.advance(600)
    probe.port.activate(USER)
    assert probe.port.remaining_ms() == 1_000
    clock.advance(999)
    assert probe.port.active is True
    clock.advance(1)
    assert probe.port.active is False
    assert [c for _, c in probe.drives] == [Circuit.CLOSED, Circuit.OPEN]


def test_extend_never_shortens(make_output: MakeOutput, clock: ManualClock) -> None:
    probe = make_output(alarm_time_ms=1_000, retrigger="extend")
    probe.port.activate(USER, 5_000)
    clock.advance(100)
    probe.port.activate(USER, 1_000)
    assert probe.port.remaining_ms() == 4_900


def test_restart_gives_a_fresh_edge(make_output: MakeOutput, clock: ManualClock) -> None:
    probe = make_output(alarm_time_ms=1_000, retrigger="restart")
    probe.port.activate(USER)
    clock.advance(600)
    probe.port.activate(USER)
    clock.advance(1_000)
    assert [(t, c.value) for t, c in probe.drives] == [
        (0.0, "closed"),
        (600.0, "open"),
        (600.0, "closed"),
        (1_600.0, "open"),
    ]


def test_ignore_keeps_the_running_activation(make_output: MakeOutput, clock: ManualClock) -> None:
    probe = make_output(alarm_time_ms=1_000, retrigger="ignore")
    probe.port.activate(USER)
    clock.advance(600)
    probe.port.activate(USER, 5_000)
    clock.advance(400)
    assert probe.port.active is False
    assert [t for t, _ in probe.drives] == [0.0, 1_000.0]


def test_follow_source_holds_from_two_owners(make_output: MakeOutput) -> None:
    probe = make_output()
    port = probe.port
    port.hold("rule:a", Cause("rule", rule="a"))
    port.hold("rule:b", Cause("rule", rule="b"))
    port.release("rule:a", Cause("rule", rule="a"))
    assert port.active is True
    port.release("rule:a", Cause("rule", rule="a"))  # releasing twice is harmless
    assert port.active is True
    port.release("rule:b", Cause("rule", rule="b"))
    assert port.active is False
    assert probe.changes[-1][2].rule == "b"


def test_hold_outlives_a_timed_activation(make_output: MakeOutput, clock: ManualClock) -> None:
    probe = make_output(alarm_time_ms=100)
    probe.port.activate(USER)
    probe.port.hold("rule:a", Cause("rule", rule="a"))
    clock.advance(500)
    assert probe.port.active is True
    probe.port.release("rule:a", Cause("rule", rule="a"))
    assert probe.port.active is False


def test_state_sequence_runs_in_order_and_keeps_the_last_state(
    make_output: MakeOutput, clock: ManualClock
) -> None:
    """VAPIX ``/300\\500/300\\``: two 300 ms pulses 500 ms apart."""
    probe = make_output()
    steps = [
        StateStep(active=True, duration_ms=300),
        StateStep(active=False, duration_ms=500),
        StateStep(active=True, duration_ms=300),
        StateStep(active=False, duration_ms=0),
    ]
    probe.port.run_sequence(steps, USER)
    assert probe.port.sequence_running is True
    clock.advance(2_000)
    assert [(t, c.value) for t, c in probe.drives] == [
        (0.0, "closed"),
        (300.0, "open"),
        (800.0, "closed"),
        (1_100.0, "open"),
    ]
    assert probe.port.sequence_running is False
    assert probe.port.active is False
    assert probe.changes[0][2].detail == "sequence step 1"


def test_state_sequence_ending_active_stays_active(
    make_output: MakeOutput, clock: ManualClock
) -> None:
    probe = make_output()
    probe.port.run_sequence(
        [StateStep(active=False, duration_ms=100), StateStep(active=True, duration_ms=200)], USER
    )
    clock.advance(100)
    assert probe.port.active is True
    clock.advance(10_000)
    assert probe.port.active is True
    assert probe.port.sequence_running is False
    assert probe.port.latched is True
    assert clock.pending_timers == 0


def test_activation_cancels_a_running_sequence(make_output: MakeOutput, clock: ManualClock) -> None:
    probe = make_output(alarm_time_ms=1_000)
    probe.port.run_sequence(
        [StateStep(active=True, duration_ms=100), StateStep(active=False, duration_ms=100)], USER
    )
    clock.advance(50)
    probe.port.activate(USER)
    clock.advance(500)
    assert probe.port.active is True
    assert probe.port.sequence_running is False


def test_disabled_output_never_activates(make_output: MakeOutput) -> None:
    probe = make_output(enabled=False)
    probe.port.activate(USER, 0)
    probe.port.hold("x", USER)
    assert probe.port.active is False
    assert probe.drives == []


def test_snapshot_and_restore_resume_the_remaining_time(
    make_output: MakeOutput, clock: ManualClock
) -> None:
    probe = make_output(alarm_time_ms=10_000)
    probe.port.activate(Cause("rule", rule="r1", event_id=3))
    clock.advance(4_000)
    snap = probe.port.snapshot()
    assert snap.deadline_wall_ns == clock.wall_ns() + 6_000 * NS_PER_MS
    assert snap.cause is not None and snap.cause.rule == "r1"

    later = ManualClock(wall_ns=clock.wall_ns() + 1_000 * NS_PER_MS)
    drives: list[Circuit] = []
    from camio.core.outputs import OutputPort

    fresh = OutputPort(
        OutputConfig(id="out1", name="o", alarm_time_ms=10_000),
        later,
        drives.append,
        lambda port, cause: None,
    )
    fresh.restore(snap)
    assert fresh.active is True
    assert fresh.cause.kind == "boot" and fresh.cause.rule == "r1"
    later.advance(4_999)
    assert fresh.active is True
    later.advance(1)
    assert fresh.active is False


def test_restore_of_a_passed_deadline_stays_off(clock: ManualClock) -> None:
    from camio.core.outputs import OutputPort

    port = OutputPort(OutputConfig(id="o", name="o"), clock, lambda c: None, lambda p, c: None)
    port.restore(
        OutputSnapshot(active=True, latched=False, deadline_wall_ns=clock.wall_ns() - 1, cause=None)
    )
    assert port.active is False
    assert clock.pending_timers == 0


def test_restore_never_re_arms_a_hold(clock: ManualClock) -> None:
    from camio.core.outputs import OutputPort

    port = OutputPort(OutputConfig(id="o", name="o"), clock, lambda c: None, lambda p, c: None)
    port.restore(OutputSnapshot(active=True, latched=False, deadline_wall_ns=None, cause=None))
    assert port.active is False


# -- interlock -------------------------------------------------------------------------------


def test_interlock_forces_the_other_off_then_waits_the_dead_time(
    make_output: MakeOutput, clock: ManualClock
) -> None:
    group = InterlockGroupRuntime("g", 200, clock)
    a = make_output(group, id="a", alarm_time_ms=0)
    b = make_output(group, id="b", alarm_time_ms=0)
    a.port.activate(USER)
    clock.advance(1_000)
    b.port.activate(USER)
    assert a.port.active is False
    assert b.port.active is False
    assert b.port.pending_on is True
    assert a.changes[-1][2].kind == "interlock"
    clock.advance(199)
    assert b.port.active is False
    clock.advance(1)
    assert b.port.active is True
    assert a.drives[-1] == (1_000.0, Circuit.OPEN)
    assert b.drives == [(1_200.0, Circuit.CLOSED)]


def test_interlock_dead_time_counts_from_the_last_off(
    make_output: MakeOutput, clock: ManualClock
) -> None:
    group = InterlockGroupRuntime("g", 500, clock)
    a = make_output(group, id="a", alarm_time_ms=300)
    b = make_output(group, id="b", alarm_time_ms=0)
    a.port.activate(USER)
    clock.advance(400)  # a went idle at 300 by itself
    b.port.activate(USER)
    assert b.port.pending_on is True
    clock.advance(399)  # 799
    assert b.port.active is False
    clock.advance(1)  # 800 = 300 + 500
    assert b.port.active is True


def test_interlock_pending_request_cancelled_by_stop(
    make_output: MakeOutput, clock: ManualClock
) -> None:
    group = InterlockGroupRuntime("g", 200, clock)
    a = make_output(group, id="a", alarm_time_ms=0)
    b = make_output(group, id="b", alarm_time_ms=0)
    a.port.activate(USER)
    b.port.activate(USER)
    b.port.deactivate(USER)
    assert b.port.pending_on is False
    clock.advance(1_000)
    assert not a.port.active and not b.port.active
    assert clock.pending_timers == 0


def test_interlock_last_request_wins(make_output: MakeOutput, clock: ManualClock) -> None:
    group = InterlockGroupRuntime("g", 100, clock)
    a = make_output(group, id="a", alarm_time_ms=0)
    b = make_output(group, id="b", alarm_time_ms=0)
    c = make_output(group, id="c", alarm_time_ms=0)
    a.port.activate(USER)
    b.port.activate(USER)  # pending
    c.port.activate(USER)  # supersedes b
    assert b.port.pending_on is False
    clock.advance(100)
    assert [p.port.active for p in (a, b, c)] == [False, False, True]
    assert b.drives == []


def test_interlock_zero_dead_time_switches_at_once(
    make_output: MakeOutput, clock: ManualClock
) -> None:
    group = InterlockGroupRuntime("g", 0, clock)
    a = make_output(group, id="a", alarm_time_ms=0)
    b = make_output(group, id="b", alarm_time_ms=0)
    a.port.activate(USER)
    b.port.activate(USER)
    assert (a.port.active, b.port.active) == (False, True)


def test_regroup_forces_a_second_active_member_off(
    make_output: MakeOutput, clock: ManualClock
) -> None:
    a = make_output(id="a", alarm_time_ms=0)
    b = make_output(id="b", alarm_time_ms=0)
    a.port.activate(USER)
    b.port.activate(USER)
    group = InterlockGroupRuntime("g", 100, clock)
    for probe in (a, b):
        group.add(probe.port)
    for probe in (a, b):
        probe.port.regrouped()
    assert (a.port.active, b.port.active) == (True, False)
    assert b.changes[-1][2].kind == "interlock"


def test_regroup_keeps_a_dead_time_wait_and_the_time_since_the_last_off(
    make_output: MakeOutput, clock: ManualClock
) -> None:
    old = InterlockGroupRuntime("g", 500, clock)
    a = make_output(old, id="a", alarm_time_ms=0)
    b = make_output(old, id="b", alarm_time_ms=0)
    a.port.activate(USER)
    b.port.activate(Cause("manual", user="bob"))  # a off at 0, b waits until 500
    clock.advance(100)
    new = InterlockGroupRuntime("g", 300, clock)  # e.g. the dead time was edited
    for probe in (a, b):
        old.remove(probe.port)
    for probe in (a, b):
        new.add(probe.port)
    for probe in (a, b):
        probe.port.regrouped()
    assert b.port.pending_on is True
    clock.advance(199)  # 299 ms since a went idle
    assert b.port.active is False
    clock.advance(1)
    assert b.port.active is True
    assert b.changes[-1][2].user == "bob"
    assert clock.pending_timers == 0


def test_regroup_out_of_any_group_turns_a_waiting_output_on(
    make_output: MakeOutput, clock: ManualClock
) -> None:
    group = InterlockGroupRuntime("g", 500, clock)
    a = make_output(group, id="a", alarm_time_ms=0)
    b = make_output(group, id="b", alarm_time_ms=0)
    a.port.activate(USER)
    b.port.activate(USER)
    group.remove(a.port)
    group.remove(b.port)
    b.port.regrouped()
    assert b.port.active is True
