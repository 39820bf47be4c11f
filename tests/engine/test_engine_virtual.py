"""Virtual inputs, the manual trigger, and the absence of polling on an idle device."""

from __future__ import annotations

import pytest
from engine_helpers import USER, MakeRig, Rig, fast_inputs, outputs

from camio.core.events import Cause, Topic
from camio.core.ports import StateStep
from camio.engine.errors import InvalidRequest, NotFound


def test_virtual_inputs_one_to_thirty_two(make_rig: MakeRig) -> None:
    rig = make_rig()
    status = rig.device.virtual_input_status()
    assert [v["number"] for v in status] == list(range(1, 33))
    rig.device.set_virtual_input(1, True, USER)
    rig.device.set_virtual_input(32, True, USER)
    status = rig.device.virtual_input_status()
    assert [v["number"] for v in status if v["active"]] == [1, 32]
    assert status[0]["cause"] == {"kind": "manual", "user": "tester"}
    events = rig.changes(Topic.VIRTUAL_INPUT)
    assert [(e.source, e.data["active"]) for e in events] == [("1", True), ("32", True)]
    rig.device.set_virtual_input(1, True, USER)  # no change, no event
    assert len(rig.changes(Topic.VIRTUAL_INPUT)) == 2


@pytest.mark.parametrize("number", [0, 33, -1])
def test_virtual_input_out_of_range_is_not_found(make_rig: MakeRig, number: int) -> None:
    rig = make_rig()
    with pytest.raises(NotFound):
        rig.device.set_virtual_input(number, True, USER)


def test_virtual_input_with_duration_reverts_by_timer(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.device.set_virtual_input(5, True, Cause("api", user="svc"), duration_ms=1_500)
    rig.advance(1_499)
    assert rig.device.virtual_input_status()[4]["active"] is True
    rig.advance(1)
    assert rig.device.virtual_input_status()[4]["active"] is False
    off = rig.changes(Topic.VIRTUAL_INPUT, "5")[-1]
    assert off.cause is not None
    assert (off.cause.kind, off.cause.user) == ("timer", "svc")
    rig.advance(0)  # the event-log flush of this iteration
    assert rig.clock.pending_timers == 0


def test_virtual_input_new_command_replaces_the_running_duration(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.device.set_virtual_input(5, True, USER, duration_ms=1_000)
    rig.advance(500)
    rig.device.set_virtual_input(5, True, USER)  # now without a duration: stays
    rig.advance(10_000)
    assert rig.device.virtual_input_status()[4]["active"] is True


def test_virtual_input_bad_duration(make_rig: MakeRig) -> None:
    rig = make_rig()
    with pytest.raises(InvalidRequest):
        rig.device.set_virtual_input(1, True, USER, duration_ms=0)


def test_manual_trigger_pulse_and_state(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.device.pulse_manual_trigger(USER)
    assert [e.data["active"] for e in rig.changes(Topic.MANUAL_TRIGGER)] == [True, False]
    rig.device.set_manual_trigger(True, USER)
    assert rig.device.state(("manual", "")) is True


def settle(rig: Rig) -> None:
    rig.clock.run_until_idle(limit_ms=3_600_000)


def test_default_device_has_no_timer_when_idle(make_rig: MakeRig) -> None:
    rig = make_rig()
    # The only timer after start is the zero-delay flush of the event log (the end of this
    # loop iteration); nothing polls.
    rig.advance(0)
    assert rig.clock.pending_timers == 0
    rig.advance(3_600_000)
    assert rig.clock.pending_timers == 0
    assert rig.events[-1].topic == Topic.DEVICE_STARTED


def test_no_timer_left_after_activity_settles(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "inputs": [*fast_inputs("in2"), {"id": "in1", "name": "in1"}],
            "outputs": outputs("out1", "out2", mode="pulse", alarm_time_ms=2_000)
            + outputs("a", "b", interlock_group="g", alarm_time_ms=300),
            "interlock_groups": [{"id": "g", "dead_time_ms": 200}],
            "rules": [
                {
                    "id": "r",
                    "name": "r",
                    "conditions": [{"kind": "input", "port": "in1"}],
                    "action": {"kind": "set_output", "port": "out1"},
                    "wait_between_actions_ms": 5_000,
                },
                {
                    "id": "h",
                    "name": "h",
                    "action_mode": "while_active",
                    "wait_between_actions_ms": 1_000,
                    "conditions": [{"kind": "input", "port": "in2"}],
                    "action": {"kind": "set_output", "port": "out2"},
                },
            ],
        }
    )
    rig.device.sim_fault("in1", "bounce", edges=9, interval_ms=4)
    rig.close("in2")
    rig.open("in2")
    rig.close("in2")  # held back by the wait: a retry timer
    rig.device.set_output("a", True, USER)
    rig.device.set_output("b", True, USER, duration_ms=100)
    rig.device.run_sequence(
        "out1",
        [StateStep(active=True, duration_ms=50), StateStep(active=False, duration_ms=50)],
        USER,
    )
    rig.device.set_virtual_input(2, True, USER, duration_ms=700)
    assert rig.clock.pending_timers > 0
    rig.advance(10_000)
    rig.open("in2")
    rig.device.sim_fault("in1", "bounce", edges=4, interval_ms=4, final="open")
    settle(rig)
    assert rig.clock.pending_timers == 0
    assert not any(rig.active(p) for p in ("out1", "out2", "a", "b"))
