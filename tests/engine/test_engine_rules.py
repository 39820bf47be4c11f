"""Rules running on a device: conditions, wait between actions, action modes, fallback, runs."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pytest
from engine_helpers import USER, MakeRig, Rig, fast_inputs, outputs

from camio.core.events import Topic
from camio.core.ports import Circuit
from camio.core.rules import ActionSpec
from camio.engine.actions import (
    ActionContext,
    ActionError,
    ActionExecutor,
    ActionRun,
    register_action,
)
from camio.engine.errors import NotFound


class FailingAction(ActionSpec):
    """A test-only action kind that always fails (to exercise fallbacks)."""

    kind: Literal["test_always_fails"] = "test_always_fails"
    message: str = "boom"
    supports_while_active: ClassVar[bool] = True


class FailingExecutor(ActionExecutor[FailingAction]):
    def __init__(self) -> None:
        self.calls = 0

    def run(self, spec: FailingAction, ctx: ActionContext) -> ActionRun | None:
        self.calls += 1
        raise ActionError(spec.message)

    def start(self, spec: FailingAction, ctx: ActionContext) -> None:
        self.calls += 1
        raise ActionError(spec.message)


FAILING = FailingExecutor()
register_action(FailingAction, FAILING)


def set_out(port: str = "out1", **extra: Any) -> dict[str, Any]:
    return {"kind": "set_output", "port": port, **extra}


def on_input(port: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "input", "port": port, **extra}


def rule(
    rule_id: str, conditions: list[dict[str, Any]], action: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {"id": rule_id, "name": rule_id, "conditions": conditions, "action": action, **extra}


def rig_with(make_rig: MakeRig, *rules: dict[str, Any], **extra: Any) -> Rig:
    config: dict[str, Any] = {
        "inputs": fast_inputs("in1", "in2"),
        "outputs": outputs("out1", "out2", alarm_time_ms=0),
        "rules": list(rules),
    }
    config.update(extra)
    return make_rig(config)


def fired(rig: Rig, rule_id: str) -> list[str]:
    return [e.data["transition"] for e in rig.changes(Topic.RULE_FIRED, rule_id)]


def test_all_conditions_and_invert(make_rig: MakeRig) -> None:
    rig = rig_with(
        make_rig,
        rule("r", [on_input("in1"), on_input("in2", invert=True)], set_out(duration_ms=100)),
    )
    rig.close("in2")
    rig.close("in1")
    assert not rig.active("out1")
    rig.open("in2")
    assert rig.active("out1")
    assert fired(rig, "r") == ["fire"]


def test_output_event_names_the_rule_and_the_triggering_event(make_rig: MakeRig) -> None:
    rig = rig_with(make_rig, rule("r", [on_input("in1")], set_out()))
    rig.close("in1")
    [edge] = rig.changes(Topic.INPUT, "in1")
    [on] = rig.changes(Topic.OUTPUT, "out1")
    assert on.cause is not None
    assert (on.cause.kind, on.cause.rule, on.cause.event_id) == ("rule", "r", edge.id)
    assert on.id > edge.id
    [fire] = rig.changes(Topic.RULE_FIRED, "r")
    assert fire.cause == on.cause


def test_trigger_first_fires_only_on_the_first_conditions_edge(make_rig: MakeRig) -> None:
    rig = rig_with(
        make_rig,
        rule(
            "r",
            [on_input("in1"), on_input("in2")],
            set_out(duration_ms=10),
            trigger_first=True,
        ),
    )
    rig.close("in1")  # trigger rises while in2 does not hold
    rig.close("in2")  # the other condition becoming true does not fire
    rig.advance(100)
    assert fired(rig, "r") == []
    rig.open("in1")
    rig.close("in1")  # trigger rises while in2 holds
    assert fired(rig, "r") == ["fire"]
    rig.open("in2")
    rig.close("in2")
    assert fired(rig, "r") == ["fire"]


def test_wait_between_actions_suppresses_flapping(make_rig: MakeRig) -> None:
    rig = rig_with(
        make_rig,
        rule("r", [on_input("in1")], set_out(duration_ms=10), wait_between_actions_ms=1_000),
    )
    for _ in range(10):
        rig.close("in1")
        rig.advance(50)
        rig.open("in1")
        rig.advance(50)
    # Edges at 0, 100, ..., 900 ms: only the first acts; at 1000 the wait is over.
    assert fired(rig, "r") == ["fire"]
    rig.close("in1")
    assert fired(rig, "r") == ["fire", "fire"]
    assert rig.device.rule_status("r")["status"]["suppressed"] == 9


def test_while_active_rule_held_back_by_the_wait_starts_when_it_ends(make_rig: MakeRig) -> None:
    rig = rig_with(
        make_rig,
        rule(
            "r",
            [on_input("in1")],
            set_out(),
            action_mode="while_active",
            wait_between_actions_ms=1_000,
        ),
    )
    rig.close("in1")
    assert rig.active("out1")
    rig.advance(100)
    rig.open("in1")
    assert not rig.active("out1")
    rig.advance(100)
    rig.close("in1")  # at 200 ms: held back
    assert not rig.active("out1")
    rig.advance(799)
    assert not rig.active("out1")
    rig.advance(1)  # 1000 ms after the first start, still true: starts now
    assert rig.active("out1")
    assert rig.edges("out1") == [(0.0, "closed"), (100.0, "open"), (1_000.0, "closed")]
    rig.open("in1")
    assert not rig.active("out1")


def test_while_active_held_back_does_not_start_if_no_longer_true(make_rig: MakeRig) -> None:
    rig = rig_with(
        make_rig,
        rule(
            "r",
            [on_input("in1")],
            set_out(),
            action_mode="while_active",
            wait_between_actions_ms=1_000,
        ),
    )
    rig.close("in1")
    rig.open("in1")
    rig.close("in1")
    rig.advance(500)
    rig.open("in1")
    rig.advance(5_000)
    assert rig.levels("out1") == ["closed", "open"]
    assert rig.clock.pending_timers == 0


def test_once_vs_while_active(make_rig: MakeRig) -> None:
    rig = rig_with(
        make_rig,
        rule("once", [on_input("in1")], set_out("out1")),
        rule("held", [on_input("in1")], set_out("out2"), action_mode="while_active"),
    )
    rig.close("in1")
    assert rig.active("out1") and rig.active("out2")
    rig.open("in1")
    assert rig.active("out1")  # once: alarm time 0 = continuous, not reverted
    assert not rig.active("out2")  # while active: reverted when the conditions stop
    assert fired(rig, "held") == ["start", "stop"]
    assert fired(rig, "once") == ["fire"]


def test_once_rule_with_active_false_stops_an_output(make_rig: MakeRig) -> None:
    rig = rig_with(make_rig, rule("stop", [on_input("in1")], set_out(active=False)))
    rig.device.set_output("out1", True, USER)
    rig.close("in1")
    assert not rig.active("out1")
    off = rig.changes(Topic.OUTPUT, "out1")[-1]
    assert off.cause is not None and off.cause.rule == "stop"


def test_fallback_runs_when_the_primary_fails(make_rig: MakeRig) -> None:
    calls = FAILING.calls
    rig = rig_with(
        make_rig,
        rule(
            "r",
            [on_input("in1")],
            {"kind": "test_always_fails", "message": "no such recipient"},
            fallback=set_out("out2", duration_ms=500),
        ),
    )
    rig.close("in1")
    assert FAILING.calls == calls + 1
    assert rig.active("out2")
    [failure] = rig.changes(Topic.RULE_FAILED, "r")
    assert failure.data["error"] == "no such recipient"
    on = rig.changes(Topic.OUTPUT, "out2")[-1]
    assert on.cause is not None
    assert (on.cause.rule, on.cause.detail) == ("r", "fallback")
    assert on.cause.event_id == rig.changes(Topic.INPUT, "in1")[-1].id
    assert fired(rig, "r") == []  # the primary did not fire


def test_fallback_of_a_failing_while_active_start(make_rig: MakeRig) -> None:
    rig = rig_with(
        make_rig,
        rule(
            "r",
            [on_input("in1")],
            {"kind": "test_always_fails"},
            action_mode="while_active",
            fallback=set_out("out2", duration_ms=0),
        ),
    )
    rig.close("in1")
    assert rig.active("out2")
    assert len(rig.changes(Topic.RULE_FAILED, "r")) == 1


def test_failure_without_fallback_is_reported_and_the_device_goes_on(make_rig: MakeRig) -> None:
    rig = rig_with(
        make_rig,
        rule("bad", [on_input("in1")], {"kind": "test_always_fails"}),
        rule("good", [on_input("in1")], set_out("out1")),
    )
    rig.close("in1")
    assert len(rig.changes(Topic.RULE_FAILED, "bad")) == 1
    assert rig.active("out1")


def test_disabled_rule_does_not_fire(make_rig: MakeRig) -> None:
    rig = rig_with(make_rig, rule("r", [on_input("in1")], set_out(), enabled=False))
    rig.close("in1")
    assert not rig.active("out1")
    assert fired(rig, "r") == []


def test_disabling_a_holding_rule_reverts_its_hold(make_rig: MakeRig) -> None:
    held = rule("r", [on_input("in1")], set_out(), action_mode="while_active")
    rig = rig_with(make_rig, held)
    rig.close("in1")
    assert rig.active("out1")
    rig.device.put_rule({**held, "enabled": False})
    assert not rig.active("out1")
    rig.open("in1")
    rig.close("in1")
    assert not rig.active("out1")


def run_mode_rig(make_rig: MakeRig, mode: str) -> Rig:
    rig = make_rig(
        {
            "inputs": fast_inputs("in1"),
            "outputs": outputs("out1", retrigger="extend"),
            "rules": [rule("r", [on_input("in1")], set_out(duration_ms=1_000), run_mode=mode)],
        }
    )
    rig.close("in1")
    rig.advance(300)
    rig.open("in1")
    rig.advance(300)
    rig.close("in1")  # fires again at 600 ms while the first run still runs
    rig.advance(5_000)
    return rig


def test_run_mode_parallel_lets_the_output_policy_decide(make_rig: MakeRig) -> None:
    rig = run_mode_rig(make_rig, "parallel")
    assert rig.edges("out1") == [(0.0, "closed"), (1_600.0, "open")]  # extended


def test_run_mode_single_ignores_a_new_firing(make_rig: MakeRig) -> None:
    rig = run_mode_rig(make_rig, "single")
    assert rig.edges("out1") == [(0.0, "closed"), (1_000.0, "open")]
    assert rig.device.rule_status("r")["status"]["suppressed"] == 1


def test_run_mode_restart_stops_and_runs_again(make_rig: MakeRig) -> None:
    rig = run_mode_rig(make_rig, "restart")
    assert rig.edges("out1") == [
        (0.0, "closed"),
        (600.0, "open"),
        (600.0, "closed"),
        (1_600.0, "open"),
    ]


def test_run_mode_single_fires_again_after_the_run_ended(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "inputs": fast_inputs("in1"),
            "outputs": outputs("out1"),
            "rules": [rule("r", [on_input("in1")], set_out(duration_ms=100), run_mode="single")],
        }
    )
    rig.close("in1")
    rig.open("in1")
    rig.advance(100)
    rig.close("in1")
    assert fired(rig, "r") == ["fire", "fire"]


def test_output_state_condition_chains_rules(make_rig: MakeRig) -> None:
    rig = rig_with(
        make_rig,
        rule("first", [on_input("in1")], set_out("out1", duration_ms=500)),
        rule(
            "chain",
            [{"kind": "output", "port": "out1"}],
            set_out("out2"),
            action_mode="while_active",
        ),
    )
    rig.close("in1")
    assert rig.active("out2")
    out1_on = rig.changes(Topic.OUTPUT, "out1")[0]
    out2_on = rig.changes(Topic.OUTPUT, "out2")[0]
    assert out2_on.cause is not None and out2_on.cause.event_id == out1_on.id
    rig.advance(500)
    assert not rig.active("out2")


def test_device_started_fires_once_per_start(make_rig: MakeRig) -> None:
    config = {
        "outputs": outputs("out1"),
        "rules": [rule("boot", [{"kind": "device_started"}], set_out(duration_ms=0))],
    }
    rig = make_rig(config)
    assert rig.active("out1")
    assert fired(rig, "boot") == ["fire"]
    started = rig.changes(Topic.DEVICE_STARTED)
    assert len(started) == 1
    on = rig.changes(Topic.OUTPUT, "out1")[0]
    assert on.cause is not None and on.cause.event_id == started[0].id
    rig.advance(60_000)
    assert fired(rig, "boot") == ["fire"]


def test_stateful_rule_true_at_start_fires_at_start(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "inputs": fast_inputs("in1", normal_state="closed"),
            "outputs": outputs("out1"),
            "rules": [rule("r", [on_input("in1")], set_out(duration_ms=0))],
        },
        start=False,
    )
    # Wire the simulator first and cut the NC loop open before the device starts: the device
    # reads the input as already active at start (no edge), and the rule acts on that state.
    rig.driver.open(rig.device.config.inputs, rig.device.config.outputs, lambda *a: None, rig.clock)
    rig.driver.set_circuit("in1", Circuit.OPEN)
    rig.device.start()
    assert rig.changes(Topic.INPUT, "in1") == []
    assert rig.active("in1")
    assert rig.active("out1")
    assert fired(rig, "r") == ["fire"]


def test_recurrence_condition_every_n_seconds(make_rig: MakeRig) -> None:
    rig = rig_with(
        make_rig,
        rule("tick", [{"kind": "recurrence", "interval_s": 10}], set_out(duration_ms=1_000)),
    )
    rig.advance(35_000)
    assert [e.source for e in rig.changes(Topic.RECURRENCE)] == ["10", "10", "10"]
    assert fired(rig, "tick") == ["fire", "fire", "fire"]
    assert rig.edges("out1") == [
        (10_000.0, "closed"),
        (11_000.0, "open"),
        (20_000.0, "closed"),
        (21_000.0, "open"),
        (30_000.0, "closed"),
        (31_000.0, "open"),
    ]


def test_recurrence_and_a_state(make_rig: MakeRig) -> None:
    rig = rig_with(
        make_rig,
        rule(
            "r",
            [{"kind": "recurrence", "interval_s": 5}, on_input("in1")],
            set_out(duration_ms=10),
        ),
    )
    rig.advance(5_000)
    rig.close("in1")
    assert fired(rig, "r") == []
    rig.advance(10_000)
    assert fired(rig, "r") == ["fire", "fire"]


def test_virtual_input_condition_and_action(make_rig: MakeRig) -> None:
    rig = rig_with(
        make_rig,
        rule("set", [on_input("in1")], {"kind": "set_virtual_input", "number": 7}),
        rule(
            "use",
            [{"kind": "virtual_input", "number": 7}],
            set_out(),
            action_mode="while_active",
        ),
    )
    rig.close("in1")
    assert rig.device.virtual_input_status()[6]["active"] is True
    assert rig.active("out1")
    rig.device.set_virtual_input(7, False, USER)
    assert not rig.active("out1")


def test_manual_trigger_condition(make_rig: MakeRig) -> None:
    rig = rig_with(
        make_rig,
        rule("m", [{"kind": "manual_trigger"}], set_out("out1", duration_ms=100)),
        rule("h", [{"kind": "manual_trigger"}], set_out("out2"), action_mode="while_active"),
    )
    rig.device.pulse_manual_trigger(USER)
    assert fired(rig, "m") == ["fire"]
    assert fired(rig, "h") == ["start", "stop"]
    assert rig.active("out1") and not rig.active("out2")
    rig.device.set_manual_trigger(True, USER)
    assert rig.active("out2")
    rig.device.set_manual_trigger(True, USER)  # no change, no event
    assert len(rig.changes(Topic.MANUAL_TRIGGER)) == 3


def test_tamper_condition(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "inputs": fast_inputs("in1", supervised=True),
            "outputs": outputs("out1"),
            "rules": [rule("t", [on_input("in1", state="tamper")], set_out(duration_ms=0))],
        }
    )
    rig.close("in1")
    assert not rig.active("out1")
    rig.device.sim_fault("in1", "cut")
    assert rig.active("out1")


def test_test_rule_runs_the_action_regardless_of_conditions(make_rig: MakeRig) -> None:
    rig = rig_with(make_rig, rule("r", [on_input("in1")], set_out(duration_ms=100)))
    rig.device.test_rule("r", USER)
    assert rig.active("out1")
    assert rig.changes(Topic.OUTPUT, "out1")[0].cause == USER
    with pytest.raises(NotFound):
        rig.device.test_rule("nope", USER)
