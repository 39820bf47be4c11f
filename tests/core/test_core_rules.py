"""Pure rule evaluation (RuleSet.evaluate) against a fake state view: no engine, no actions run."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import camio.actions  # noqa: F401  (registers set_output for validation)
from camio.core.clock import NS_PER_MS
from camio.core.conditions import STARTED, SourceKey
from camio.core.rules import RuleConfig, RuleSet, RuleState, Transition

IN1: SourceKey = ("input", "in1")
IN2: SourceKey = ("input", "in2")
ARMED1: SourceKey = ("armed", "in1")
ARMED2: SourceKey = ("armed", "in2")
ACTION = {"kind": "set_output", "port": "out1"}


class View:
    """A dict of source keys to states; inputs are armed unless told otherwise."""

    def __init__(self, **states: bool) -> None:
        self.states: dict[SourceKey, bool] = {ARMED1: True, ARMED2: True}
        for name, value in states.items():
            self.set(name, value)

    def set(self, name: str, value: bool) -> None:
        kind, _, ident = name.partition("_")
        self.states[(kind, ident)] = value

    def state(self, key: SourceKey) -> bool:
        return self.states.get(key, False)


def rule(**kw: Any) -> RuleState:
    kw.setdefault("id", "r")
    kw.setdefault("name", "R")
    kw.setdefault("action", ACTION)
    config = RuleConfig.model_validate(kw)
    return RuleSet([config]).states["r"]


def cond(port: str, **kw: Any) -> dict[str, Any]:
    return {"kind": "input", "port": port, **kw}


class Stepper:
    """Evaluates one rule after each change, at a given time, collecting transitions."""

    def __init__(self, state: RuleState, view: View) -> None:
        self.state = state
        self.view = view
        self.now_ns = 0
        self.log: list[tuple[int, Transition]] = []

    def change(self, name: str, value: bool, at_ms: int) -> Transition | None:
        self.view.set(name, value)
        self.now_ns = at_ms * NS_PER_MS
        kind, _, ident = name.partition("_")
        result = RuleSet.evaluate(self.state, self.view, (kind, ident), self.now_ns)
        if result is not None:
            self.log.append((at_ms, result))
        return result


def test_all_conditions_must_hold() -> None:
    s = Stepper(rule(conditions=[cond("in1"), cond("in2")]), View())
    assert s.change("input_in1", True, 0) is None
    assert s.change("input_in2", True, 10) is Transition.FIRE
    assert s.change("input_in1", False, 20) is None
    assert s.change("input_in1", True, 30) is Transition.FIRE


def test_once_fires_on_the_rising_edge_only() -> None:
    s = Stepper(rule(conditions=[cond("in1"), cond("in2")]), View(input_in2=True))
    assert s.change("input_in1", True, 0) is Transition.FIRE
    assert s.change("input_in2", True, 10) is None  # still true: no new edge
    assert [t for _, t in s.log] == [Transition.FIRE]


def test_inverted_condition() -> None:
    s = Stepper(rule(conditions=[cond("in1"), cond("in2", invert=True)]), View())
    assert s.change("input_in1", True, 0) is Transition.FIRE
    s.change("input_in1", False, 5)
    s.change("input_in2", True, 6)
    assert s.change("input_in1", True, 10) is None
    assert s.change("input_in2", False, 20) is Transition.FIRE


def test_trigger_first_fires_only_on_the_first_conditions_rising_edge() -> None:
    s = Stepper(rule(trigger_first=True, conditions=[cond("in1"), cond("in2")]), View())
    assert s.change("input_in2", True, 0) is None
    assert s.change("input_in1", True, 10) is Transition.FIRE
    s.change("input_in1", False, 20)
    s.change("input_in2", False, 30)
    s.change("input_in1", True, 40)  # the trigger rises while in2 does not hold
    assert s.change("input_in2", True, 50) is None  # another condition changing never fires
    assert s.change("input_in2", False, 60) is None
    assert s.change("input_in2", True, 70) is None
    assert [t for t, _ in s.log] == [10]


def test_trigger_first_inverted_trigger_fires_when_it_goes_away() -> None:
    s = Stepper(
        rule(trigger_first=True, conditions=[cond("in1", invert=True)]), View(input_in1=True)
    )
    RuleSet.evaluate(s.state, s.view, None, 0)  # prime, as at device start
    assert s.log == []
    assert s.change("input_in1", False, 10) is Transition.FIRE


def test_wait_between_actions_suppresses_flapping() -> None:
    s = Stepper(rule(conditions=[cond("in1")], wait_between_actions_ms=1_000), View())
    for at in range(0, 2_000, 100):
        s.change("input_in1", True, at)
        s.change("input_in1", False, at + 50)
    assert [t for t, _ in s.log] == [0, 1_000]
    assert s.state.suppressed == 18


def test_while_active_starts_and_stops_with_the_conditions() -> None:
    s = Stepper(rule(action_mode="while_active", conditions=[cond("in1"), cond("in2")]), View())
    s.change("input_in1", True, 0)
    assert s.change("input_in2", True, 10) is Transition.START
    assert s.state.holding is True
    assert s.change("input_in1", True, 15) is None
    assert s.change("input_in2", False, 20) is Transition.STOP
    assert s.state.holding is False


def test_while_active_held_back_by_the_wait_asks_for_a_retry() -> None:
    s = Stepper(
        rule(action_mode="while_active", conditions=[cond("in1")], wait_between_actions_ms=500),
        View(),
    )
    assert s.change("input_in1", True, 0) is Transition.START
    assert s.change("input_in1", False, 100) is Transition.STOP
    assert s.change("input_in1", True, 200) is None
    assert s.state.retry_at_ns == 500 * NS_PER_MS
    # At the retry the engine evaluates again without a pulse.
    assert RuleSet.evaluate(s.state, s.view, None, 500 * NS_PER_MS) is Transition.START


def test_disabled_rule_never_fires_and_stops_a_hold() -> None:
    state = rule(enabled=False, conditions=[cond("in1")])
    assert RuleSet.evaluate(state, View(input_in1=True), IN1, 0) is None
    held = rule(action_mode="while_active", conditions=[cond("in1")])
    view = View(input_in1=True)
    assert RuleSet.evaluate(held, view, IN1, 0) is Transition.START
    held.rule = held.rule.model_copy(update={"enabled": False})
    assert RuleSet.evaluate(held, view, IN1, 1) is Transition.STOP


def test_require_armed() -> None:
    view = View(input_in1=True)
    view.states[ARMED1] = False
    armed = rule(conditions=[cond("in1")])
    unarmed_ok = rule(conditions=[cond("in1", require_armed=False)])
    assert RuleSet.evaluate(armed, view, IN1, 0) is None
    assert RuleSet.evaluate(unarmed_ok, view, IN1, 0) is Transition.FIRE


def test_tamper_condition_reads_the_tamper_state() -> None:
    state = rule(conditions=[cond("in1", state="tamper")])
    view = View(input_in1=True)
    assert RuleSet.evaluate(state, view, IN1, 0) is None
    view.set("tamper_in1", True)
    assert RuleSet.evaluate(state, view, IN1, 1) is Transition.FIRE


def test_momentary_condition_fires_every_pulse() -> None:
    state = rule(conditions=[{"kind": "device_started"}])
    view = View()
    assert RuleSet.evaluate(state, view, STARTED, 0) is Transition.FIRE
    assert RuleSet.evaluate(state, view, None, 1) is None
    assert RuleSet.evaluate(state, view, STARTED, 2) is Transition.FIRE


def test_pulse_schedule_condition_fires_at_every_pulse() -> None:
    """The schedule condition holds for the instant of a pulse schedule's event only."""
    key: SourceKey = ("schedule", "daily")
    state = rule(conditions=[{"kind": "schedule", "schedule": "daily"}])
    view = View()  # a pulse schedule is never 'active'
    for at in range(3):
        assert RuleSet.evaluate(state, view, key, at, {"pulse": True}) is Transition.FIRE


def test_interval_schedule_end_event_does_not_make_the_condition_hold() -> None:
    key: SourceKey = ("schedule", "night")
    state = rule(action_mode="while_active", conditions=[{"kind": "schedule", "schedule": "night"}])
    view = View(schedule_night=True)
    assert RuleSet.evaluate(state, view, key, 0, {"active": True}) is Transition.START
    view.set("schedule_night", False)
    assert RuleSet.evaluate(state, view, key, 1, {"active": False}) is Transition.STOP


def test_recurrence_with_a_state_condition() -> None:
    key: SourceKey = ("recurrence", "10")
    state = rule(conditions=[{"kind": "recurrence", "interval_s": 10}, cond("in1")])
    view = View()
    assert RuleSet.evaluate(state, view, key, 0) is None
    view.set("input_in1", True)
    assert RuleSet.evaluate(state, view, IN1, 1) is None  # in1 alone is no pulse
    assert RuleSet.evaluate(state, view, key, 2) is Transition.FIRE
    assert RuleSet.evaluate(state, view, key, 3) is Transition.FIRE


def test_index_touches_only_dependent_rules() -> None:
    configs = [
        RuleConfig.model_validate(
            {"id": f"r{n}", "name": "R", "conditions": [cond(f"in{n}")], "action": ACTION}
        )
        for n in (1, 2)
    ]
    rules = RuleSet(configs)
    assert [s.rule.id for s in rules.affected(IN1)] == ["r1"]
    assert rules.affected(("input", "in9")) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"action_mode": "while_active", "trigger_first": True, "conditions": [cond("in1")]},
            "trigger-only",
        ),
        (
            {
                "action_mode": "while_active",
                "conditions": [{"kind": "recurrence", "interval_s": 5}],
            },
            "momentary",
        ),
        ({"conditions": []}, "conditions"),
        ({"conditions": [{"kind": "telepathy"}]}, "unknown condition kind"),
        ({"conditions": [cond("in1")], "action": {"kind": "nope"}}, "unknown action kind"),
        ({"conditions": [{"kind": "virtual_input", "number": 33}]}, "number"),
    ],
)
def test_invalid_rules_are_refused(data: dict[str, Any], message: str) -> None:
    data = {"id": "r", "name": "R", "action": ACTION, **data}
    with pytest.raises(ValidationError) as info:
        RuleConfig.model_validate(data)
    assert message in str(info.value)


def test_rule_round_trips_through_json() -> None:
    config = RuleConfig.model_validate(
        {
            "id": "r",
            "name": "R",
            "conditions": [cond("in1", invert=True), {"kind": "recurrence", "interval_s": 5}],
            "action": {**ACTION, "duration_ms": 300},
            "wait_between_actions_ms": 10,
        }
    )
    dumped = config.model_dump(mode="json")
    assert dumped["conditions"][0] == {
        "kind": "input",
        "invert": True,
        "port": "in1",
        "state": "active",
        "require_armed": True,
    }
    assert dumped["action"]["duration_ms"] == 300
    assert RuleConfig.model_validate(dumped) == config
    assert isinstance(config.action, BaseModel)
