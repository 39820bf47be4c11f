"""Outputs through the Device facade: manual control, modes, re-trigger, interlock, power-on."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import USER, MakeRig, fast_inputs, outputs

from camio.core.clock import NS_PER_MS, ManualClock
from camio.core.events import Cause, Topic
from camio.core.ports import StateStep
from camio.engine.errors import InvalidRequest, NotFound


def door_rule(port: str = "out1", **action: Any) -> dict[str, Any]:
    return {
        "id": "door",
        "name": "door",
        "conditions": [{"kind": "input", "port": "in1"}],
        "action": {"kind": "set_output", "port": port, **action},
    }


@pytest.mark.parametrize(("active_state", "idle"), [("closed", "open"), ("open", "closed")])
def test_active_state_drives_the_physical_circuit(
    make_rig: MakeRig, active_state: str, idle: str
) -> None:
    rig = make_rig({"outputs": outputs("out1", active_state=active_state)})
    assert rig.driver.output_circuit("out1").value == idle
    rig.device.set_output("out1", True, USER)
    assert rig.driver.output_circuit("out1").value == active_state
    assert rig.device.port_status("out1")["circuit"] == active_state
    rig.device.set_output("out1", False, USER)
    assert rig.levels("out1") == [active_state, idle]


def test_manual_start_without_duration_is_continuous(make_rig: MakeRig) -> None:
    rig = make_rig({"outputs": outputs("out1", alarm_time_ms=1_000)})
    rig.device.set_output("out1", True, USER)
    rig.advance(3_600_000)
    assert rig.active("out1") is True
    rig.device.set_output("out1", False, Cause("manual", user="other"))
    assert rig.active("out1") is False
    on, off = rig.changes(Topic.OUTPUT, "out1")
    assert on.cause == USER
    assert off.cause is not None and off.cause.user == "other"


def test_manual_start_with_duration_ends_by_timer(make_rig: MakeRig) -> None:
    rig = make_rig({"outputs": outputs("out1")})
    rig.device.set_output("out1", True, USER, duration_ms=2_000)
    assert rig.device.port_status("out1")["remaining_ms"] == 2_000
    rig.advance(1_999)
    assert rig.active("out1") is True
    rig.advance(1)
    assert rig.active("out1") is False
    assert rig.edges("out1") == [(0.0, "closed"), (2_000.0, "open")]
    off = rig.changes(Topic.OUTPUT, "out1")[-1]
    assert off.cause is not None
    assert (off.cause.kind, off.cause.user) == ("timer", "tester")


def test_manual_control_errors(make_rig: MakeRig) -> None:
    rig = make_rig({"outputs": [*outputs("out1"), *outputs("out2", enabled=False)]})
    with pytest.raises(NotFound):
        rig.device.set_output("nope", True, USER)
    with pytest.raises(NotFound):
        rig.device.set_output("in1", True, USER)
    with pytest.raises(InvalidRequest, match="disabled"):
        rig.device.set_output("out2", True, USER)
    with pytest.raises(InvalidRequest, match="duration_ms"):
        rig.device.set_output("out1", True, USER, duration_ms=-1)
    with pytest.raises(InvalidRequest):
        rig.device.run_sequence("out1", [], USER)
    assert rig.changes(Topic.OUTPUT) == []


def test_pulse_mode_alternates_while_active_and_is_idle_after(make_rig: MakeRig) -> None:
    rig = make_rig({"outputs": outputs("out1", mode="pulse", pulse_on_ms=200, pulse_off_ms=100)})
    rig.device.set_output("out1", True, USER, duration_ms=1_000)
    rig.advance(5_000)
    assert rig.edges("out1") == [
        (0.0, "closed"),
        (200.0, "open"),
        (300.0, "closed"),
        (500.0, "open"),
        (600.0, "closed"),
        (800.0, "open"),
        (900.0, "closed"),
        (1_000.0, "open"),
    ]
    assert rig.active("out1") is False
    # Only the active/inactive transitions are events, not every pulse edge.
    assert [e.data["active"] for e in rig.changes(Topic.OUTPUT, "out1")] == [True, False]
    assert rig.clock.pending_timers == 0


def test_alarm_time_is_used_by_rules_and_zero_is_continuous(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "inputs": fast_inputs("in1"),
            "outputs": [*outputs("out1", alarm_time_ms=700), *outputs("out2", alarm_time_ms=0)],
            "rules": [
                door_rule("out1"),
                {**door_rule("out2"), "id": "door2"},
            ],
        }
    )
    rig.close("in1")
    rig.advance(699)
    assert rig.active("out1") and rig.active("out2")
    rig.advance(1)
    assert not rig.active("out1")
    rig.advance(86_400_000)
    assert rig.active("out2")


def retrigger_rig(make_rig: MakeRig, policy: str) -> Any:
    rig = make_rig(
        {
            "inputs": fast_inputs("in1"),
            "outputs": outputs("out1", alarm_time_ms=1_000, retrigger=policy),
            "rules": [door_rule()],
        }
    )
    rig.close("in1")
    rig.advance(400)
    rig.open("in1")
    rig.advance(200)
    rig.close("in1")  # re-trigger at 600 ms while still active
    rig.advance(5_000)
    return rig


def test_retrigger_extend_has_no_edge(make_rig: MakeRig) -> None:
    rig = retrigger_rig(make_rig, "extend")
    assert rig.edges("out1") == [(0.0, "closed"), (1_600.0, "open")]


def test_retrigger_restart_gives_a_visible_edge(make_rig: MakeRig) -> None:
    rig = retrigger_rig(make_rig, "restart")
    assert rig.edges("out1") == [
        (0.0, "closed"),
        (600.0, "open"),
        (600.0, "closed"),
        (1_600.0, "open"),
    ]
    assert [e.data["active"] for e in rig.changes(Topic.OUTPUT, "out1")] == [
        True,
        False,
        True,
        False,
    ]


def test_retrigger_ignore_keeps_the_first_deadline(make_rig: MakeRig) -> None:
    rig = retrigger_rig(make_rig, "ignore")
    assert rig.edges("out1") == [(0.0, "closed"), (1_000.0, "open")]


def test_follow_source_holds_from_two_rules(make_rig: MakeRig) -> None:
    def hold_rule(rule_id: str, port: str) -> dict[str, Any]:
        return {
            "id": rule_id,
            "name": rule_id,
            "action_mode": "while_active",
            "conditions": [{"kind": "input", "port": port}],
            "action": {"kind": "set_output", "port": "out1"},
        }

    rig = make_rig(
        {
            "inputs": fast_inputs("in1", "in2"),
            "outputs": outputs("out1", follow_source=True),
            "rules": [hold_rule("a", "in1"), hold_rule("b", "in2")],
        }
    )
    rig.close("in1")
    rig.close("in2")
    assert rig.device.port_status("out1")["holds"] == ["rule:a", "rule:b"]
    rig.open("in1")
    assert rig.active("out1") is True
    rig.advance(60_000)
    assert rig.active("out1") is True  # follow source: no alarm time
    rig.open("in2")
    assert rig.active("out1") is False
    off = rig.changes(Topic.OUTPUT, "out1")[-1]
    assert off.cause is not None and off.cause.rule == "b"
    assert rig.levels("out1") == ["closed", "open"]


def test_hold_and_release_through_the_facade(make_rig: MakeRig) -> None:
    rig = make_rig({"outputs": outputs("out1")})
    rig.device.hold_output("out1", "api:x", USER)
    rig.device.hold_output("out1", "api:y", USER)
    rig.device.release_output("out1", "api:x", USER)
    assert rig.active("out1")
    rig.device.release_output("out1", "api:y", USER)
    assert not rig.active("out1")


def test_state_sequence_through_the_facade(make_rig: MakeRig) -> None:
    rig = make_rig({"outputs": outputs("out1")})
    steps = [
        StateStep(active=True, duration_ms=300),
        StateStep(active=False, duration_ms=500),
        StateStep(active=True, duration_ms=300),
    ]
    rig.device.run_sequence("out1", steps, USER)
    assert rig.device.port_status("out1")["sequence_running"] is True
    rig.advance(10_000)
    assert rig.edges("out1") == [(0.0, "closed"), (300.0, "open"), (800.0, "closed")]
    status = rig.device.port_status("out1")
    assert (status["active"], status["sequence_running"]) == (True, False)  # last state kept
    causes = [e.cause for e in rig.changes(Topic.OUTPUT, "out1")]
    assert [c.detail for c in causes if c] == [
        "sequence step 1",
        "sequence step 2",
        "sequence step 3",
    ]
    assert all(c is not None and c.user == "tester" for c in causes)


def interlock_rig(make_rig: MakeRig, dead_ms: int = 300) -> Any:
    return make_rig(
        {
            "inputs": fast_inputs("in1", "in2"),
            "outputs": outputs("a", "b", interlock_group="g", alarm_time_ms=0),
            "interlock_groups": [{"id": "g", "dead_time_ms": dead_ms}],
        }
    )


def test_interlock_b_forces_a_off_then_waits_the_dead_time(make_rig: MakeRig) -> None:
    rig = interlock_rig(make_rig)
    rig.device.set_output("a", True, USER)
    rig.advance(1_000)
    rig.device.set_output("b", True, Cause("manual", user="bob"))
    assert rig.active("a") is False
    assert rig.device.port_status("b")["pending"] is True
    rig.advance(299)
    assert rig.driver.output_circuit("b").value == "open"
    rig.advance(1)
    assert rig.active("b") is True
    assert rig.edges("a") == [(0.0, "closed"), (1_000.0, "open")]
    assert rig.edges("b") == [(1_300.0, "closed")]
    a_off = rig.changes(Topic.OUTPUT, "a")[-1]
    assert a_off.cause is not None and a_off.cause.kind == "interlock"
    b_on = rig.changes(Topic.OUTPUT, "b")[-1]
    assert b_on.cause is not None and b_on.cause.user == "bob"
    # The forced-off output forgot its command: it does not come back when b stops.
    rig.device.set_output("b", False, USER)
    rig.advance(10_000)
    assert rig.active("a") is False


def test_interlock_across_rules(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "inputs": fast_inputs("in1", "in2"),
            "outputs": outputs("up", "down", interlock_group="motor", alarm_time_ms=5_000),
            "interlock_groups": [{"id": "motor", "dead_time_ms": 500}],
            "rules": [
                {
                    "id": "up",
                    "name": "up",
                    "conditions": [{"kind": "input", "port": "in1"}],
                    "action": {"kind": "set_output", "port": "up"},
                },
                {
                    "id": "down",
                    "name": "down",
                    "conditions": [{"kind": "input", "port": "in2"}],
                    "action": {"kind": "set_output", "port": "down"},
                },
            ],
        }
    )
    rig.close("in1")
    rig.advance(100)
    rig.close("in2")
    rig.advance(499)
    assert not rig.active("up") and not rig.active("down")
    rig.advance(1)
    assert rig.active("down")
    assert rig.edges("up") == [(0.0, "closed"), (100.0, "open")]
    assert rig.edges("down") == [(600.0, "closed")]
    down_on = rig.changes(Topic.OUTPUT, "down")[-1]
    in2_event = rig.changes(Topic.INPUT, "in2")[-1]
    assert down_on.cause is not None
    assert (down_on.cause.rule, down_on.cause.event_id) == ("down", in2_event.id)


# -- power-on state ------------------------------------------------------------------------


def reboot(make_rig: MakeRig, config: dict[str, Any], rig: Any, after_ms: int) -> Any:
    """A new device on the same persistence, as after a power cut ``after_ms`` later.

    The old device first finishes its loop iteration (output state is written with the events
    of the iteration); its clock then stops, so none of its timers ever fires again.
    """
    rig.advance(0)
    clock = ManualClock(wall_ns=rig.clock.wall_ns() + after_ms * NS_PER_MS)
    return make_rig(config, clock=clock, persistence=rig.persistence)


def test_power_on_restore_resumes_the_remaining_time(make_rig: MakeRig) -> None:
    config = {
        "inputs": fast_inputs("in1"),
        "outputs": outputs("out1", power_on="restore", alarm_time_ms=10_000),
        "rules": [door_rule()],
    }
    first = make_rig(config)
    first.close("in1")
    trigger = first.changes(Topic.INPUT, "in1")[-1]
    first.advance(3_000)
    second = reboot(make_rig, config, first, after_ms=2_000)
    assert second.active("out1") is True
    assert second.device.port_status("out1")["remaining_ms"] == 5_000
    on = second.changes(Topic.OUTPUT, "out1")[0]
    assert on.cause is not None
    assert (on.cause.kind, on.cause.rule, on.cause.detail) == ("boot", "door", "restore")
    second.advance(4_999)
    assert second.active("out1") is True
    second.advance(1)
    assert second.active("out1") is False
    off = second.changes(Topic.OUTPUT, "out1")[-1]
    assert off.cause is not None and off.cause.kind == "timer"
    assert trigger.id < on.id  # event ids continue across the restart


def test_power_on_restore_of_a_passed_deadline_is_off(make_rig: MakeRig) -> None:
    config = {"outputs": outputs("out1", power_on="restore")}
    first = make_rig(config)
    first.device.set_output("out1", True, USER, duration_ms=1_000)
    second = reboot(make_rig, config, first, after_ms=1_000)
    assert second.active("out1") is False
    assert second.changes(Topic.OUTPUT, "out1") == []
    second.advance(0)
    assert second.persistence.outputs["out1"].deadline_wall_ns is None
    # And it stays off at the next restart too (the stale deadline was cleared).
    third = reboot(make_rig, config, second, after_ms=1)
    assert third.active("out1") is False


def test_power_on_restore_of_a_latch(make_rig: MakeRig) -> None:
    config = {"outputs": outputs("out1", power_on="restore")}
    first = make_rig(config)
    first.device.set_output("out1", True, USER)
    second = reboot(make_rig, config, first, after_ms=60_000)
    assert second.active("out1") is True
    assert second.device.port_status("out1")["latched"] is True


def test_power_on_restore_never_restores_a_follow_source_hold(make_rig: MakeRig) -> None:
    config = {
        "inputs": fast_inputs("in1"),
        "outputs": outputs("out1", power_on="restore", follow_source=True),
        "rules": [{**door_rule(), "action_mode": "while_active"}],
    }
    first = make_rig(config)
    first.close("in1")
    assert first.active("out1")
    second = reboot(make_rig, config, first, after_ms=10)  # the new wire is at rest
    assert second.active("out1") is False
    assert second.changes(Topic.OUTPUT, "out1") == []


def test_power_on_restore_a_stopped_output_stays_off(make_rig: MakeRig) -> None:
    config = {"outputs": outputs("out1", power_on="restore")}
    first = make_rig(config)
    first.device.set_output("out1", True, USER, duration_ms=60_000)
    first.device.set_output("out1", False, USER)
    second = reboot(make_rig, config, first, after_ms=10)
    assert second.active("out1") is False


def test_power_on_on_and_off(make_rig: MakeRig) -> None:
    config = {
        "outputs": [*outputs("on", power_on="on"), *outputs("off", power_on="off")],
    }
    first = make_rig(config)
    assert first.active("on") is True
    on_event = first.changes(Topic.OUTPUT, "on")[0]
    assert on_event.cause is not None and on_event.cause.kind == "boot"
    first.device.set_output("off", True, USER)
    second = reboot(make_rig, config, first, after_ms=10)
    assert second.active("on") is True
    assert second.active("off") is False


def test_stop_drives_outputs_idle_but_keeps_restore_state(make_rig: MakeRig) -> None:
    config = {"outputs": outputs("out1", power_on="restore")}
    first = make_rig(config)
    first.device.set_output("out1", True, USER, duration_ms=10_000)
    first.advance(1_000)
    first.device.stop()
    assert first.driver.output_circuit("out1").value == "open"
    assert first.clock.pending_timers == 0
    second = reboot(make_rig, config, first, after_ms=4_000)
    assert second.device.port_status("out1")["remaining_ms"] == 5_000


def test_interlocked_restore_honours_the_group(make_rig: MakeRig) -> None:
    config = {
        "outputs": outputs("a", "b", interlock_group="g", power_on="restore", alarm_time_ms=0),
        "interlock_groups": [{"id": "g", "dead_time_ms": 100}],
    }
    first = make_rig(config)
    first.device.set_output("a", True, USER)
    first.device.set_output("b", True, USER)
    first.advance(100)
    second = reboot(make_rig, config, first, after_ms=10)
    assert (second.active("a"), second.active("b")) == (False, True)


def test_follow_source_output_stays_active_while_a_once_rule_holds(make_rig: MakeRig) -> None:
    """An output with ``follow_source`` follows its rule's conditions instead of its alarm
    time (Dahua's alarm output "follow" mode); an explicit duration still wins."""
    rig = make_rig(
        {
            "inputs": fast_inputs("in1"),
            "outputs": outputs("out1", follow_source=True, alarm_time_ms=1_000),
            "rules": [
                {
                    "id": "r",
                    "name": "r",
                    "conditions": [{"kind": "input", "port": "in1"}],
                    "action": {"kind": "set_output", "port": "out1"},
                }
            ],
        }
    )
    rig.close("in1")
    assert rig.active("out1")
    rig.advance(5_000)  # far beyond the alarm time
    assert rig.active("out1")
    rig.open("in1")
    assert not rig.active("out1")
    assert rig.device.outputs["out1"].cause.rule == "r"


def test_follow_source_with_an_explicit_duration_uses_the_duration(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "inputs": fast_inputs("in1"),
            "outputs": outputs("out1", follow_source=True),
            "rules": [door_rule(duration_ms=300)],
        }
    )
    rig.close("in1")
    rig.advance(300)
    assert not rig.active("out1")
