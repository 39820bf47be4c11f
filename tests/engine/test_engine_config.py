"""Configuration changes on a running device, validation messages, terminal order."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import USER, MakeRig, Rig, fast_inputs, outputs

from camio.core.config import DeviceConfig
from camio.core.events import Topic
from camio.engine.device import ConfigInvalid
from camio.engine.errors import Conflict, InvalidRequest, NotFound

ONCE = {
    "id": "once",
    "name": "once",
    "conditions": [{"kind": "input", "port": "in1"}],
    "action": {"kind": "set_output", "port": "out1", "duration_ms": 0},
}
HELD = {
    "id": "held",
    "name": "held",
    "action_mode": "while_active",
    "conditions": [{"kind": "input", "port": "in2"}],
    "action": {"kind": "set_output", "port": "out2"},
}


def base(**extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "inputs": fast_inputs("in1", "in2"),
        "outputs": outputs("out1", "out2"),
        "rules": [ONCE, HELD],
    }
    config.update(extra)
    return config


def output_events(rig: Rig) -> list[tuple[str, bool]]:
    return [(e.source, e.data["active"]) for e in rig.changes(Topic.OUTPUT)]


def test_update_config_keeps_output_state(make_rig: MakeRig) -> None:
    rig = make_rig(base())
    rig.close("in1")
    rig.close("in2")
    rig.device.set_output("out2", True, USER, duration_ms=5_000)
    before = output_events(rig)
    new = rig.device.config.model_copy(deep=True)
    new.inputs[0].name = "Front door"
    new.outputs[0].name = "Siren"
    new.outputs[1].alarm_time_ms = 1
    revision = rig.device.update_config(new)
    assert revision == 1
    assert rig.active("out1") and rig.active("out2")
    assert output_events(rig) == before
    assert rig.levels("out1") == ["closed"] and rig.levels("out2") == ["closed"]
    assert rig.device.port_status("out1")["name"] == "Siren"
    [changed] = rig.changes(Topic.CONFIG_CHANGED)
    assert changed.data == {"revision": 1}


def test_editing_a_once_rule_does_not_re_fire_it(make_rig: MakeRig) -> None:
    rig = make_rig(base())
    rig.close("in1")
    rig.device.set_output("out1", False, USER)
    fired_before = len(rig.changes(Topic.RULE_FIRED, "once"))
    rig.device.put_rule({**ONCE, "name": "renamed", "wait_between_actions_ms": 10})
    assert not rig.active("out1")
    assert len(rig.changes(Topic.RULE_FIRED, "once")) == fired_before
    # It still works on the next edge.
    rig.open("in1")
    rig.close("in1")
    assert rig.active("out1")


def test_a_new_once_rule_whose_conditions_hold_waits_for_the_next_edge(make_rig: MakeRig) -> None:
    """Pinned: adding a rule primes it with the current state; it does not act on the past."""
    rig = make_rig(base(rules=[]))
    rig.close("in1")
    rig.device.put_rule(ONCE)
    assert not rig.active("out1")
    rig.open("in1")
    rig.close("in1")
    assert rig.active("out1")


def test_a_new_while_active_rule_that_holds_starts_at_once(make_rig: MakeRig) -> None:
    rig = make_rig(base(rules=[]))
    rig.close("in2")
    rig.device.put_rule(HELD)
    assert rig.active("out2")


def test_editing_another_rule_keeps_a_hold_without_a_glitch(make_rig: MakeRig) -> None:
    rig = make_rig(base())
    rig.close("in2")
    assert rig.active("out2")
    rig.device.put_rule({**ONCE, "name": "changed"})
    rig.device.patch_port("in1", {"name": "Back door"})
    assert rig.active("out2")
    assert rig.levels("out2") == ["closed"]


def test_renaming_a_holding_rule_keeps_its_output_without_a_glitch(make_rig: MakeRig) -> None:
    rig = make_rig(base())
    rig.close("in2")
    rig.device.put_rule({**HELD, "name": "renamed", "wait_between_actions_ms": 100})
    assert rig.active("out2")
    assert rig.levels("out2") == ["closed"]
    assert rig.device.rule_status("held")["status"]["holding"] is True
    rig.open("in2")  # and the edited rule still releases it
    assert not rig.active("out2")


def test_editing_a_holding_rule_to_another_output_moves_the_hold(make_rig: MakeRig) -> None:
    rig = make_rig(base())
    rig.close("in2")
    rig.device.put_rule({**HELD, "action": {"kind": "set_output", "port": "out1"}})
    assert not rig.active("out2")
    assert rig.active("out1")
    rig.open("in2")
    assert not rig.active("out1")


def test_editing_a_holding_rule_reverts_and_re_evaluates_it(make_rig: MakeRig) -> None:
    rig = make_rig(base())
    rig.close("in2")
    rig.device.put_rule({**HELD, "conditions": [{"kind": "input", "port": "in1"}]})
    assert not rig.active("out2")  # the new conditions do not hold
    rig.close("in1")
    assert rig.active("out2")


def test_deleting_a_holding_rule_releases_its_output(make_rig: MakeRig) -> None:
    rig = make_rig(base())
    rig.close("in2")
    rig.device.delete_rule("held")
    assert not rig.active("out2")
    with pytest.raises(NotFound):
        rig.device.delete_rule("held")


def test_invalid_config_is_refused_naming_the_field(make_rig: MakeRig) -> None:
    rig = make_rig(base())

    def bad_debounce(data: dict[str, Any]) -> None:
        data["inputs"][1]["debounce_on_ms"] = -1

    with pytest.raises(ConfigInvalid) as info:
        rig.device.edit_config(bad_debounce)
    assert info.value.messages[0].startswith("inputs.1.debounce_on_ms:")
    assert rig.device.revision == 0
    assert rig.device.config.inputs[1].debounce_on_ms == 0


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ({**ONCE, "action": {"kind": "set_output", "port": "nope"}}, "no output port 'nope'"),
        ({**ONCE, "conditions": [{"kind": "input", "port": "out1"}]}, "no input port 'out1'"),
        ({**ONCE, "conditions": [{"kind": "schedule", "schedule": "x"}]}, "no schedule 'x'"),
        ({**ONCE, "wait_between_actions_ms": -5}, "wait_between_actions_ms"),
        ({**ONCE, "colour": "red"}, "colour"),
    ],
)
def test_invalid_rule_is_refused_and_nothing_changes(
    make_rig: MakeRig, rule: dict[str, Any], fragment: str
) -> None:
    rig = make_rig(base())
    with pytest.raises(ConfigInvalid) as info:
        rig.device.put_rule(rule)
    assert isinstance(info.value, InvalidRequest)
    assert fragment in str(info.value)
    assert rig.device.rule("once") == DeviceConfig.model_validate(base()).rules[0]
    assert rig.changes(Topic.CONFIG_CHANGED) == []


def test_invalid_patch_port_names_the_field(make_rig: MakeRig) -> None:
    rig = make_rig(base())
    with pytest.raises(ConfigInvalid, match=r"outputs\.0\.pulse_on_ms"):
        rig.device.patch_port("out1", {"pulse_on_ms": 1})
    with pytest.raises(InvalidRequest):
        rig.device.patch_port("out1", {"id": "other"})
    with pytest.raises(NotFound):
        rig.device.patch_port("nope", {"name": "x"})


def test_stale_revision_is_a_conflict(make_rig: MakeRig) -> None:
    rig = make_rig(base())
    rig.device.update_config(rig.device.config, expected_revision=0)
    with pytest.raises(Conflict):
        rig.device.update_config(rig.device.config, expected_revision=0)


def test_patch_normal_state_flips_the_input_and_publishes(make_rig: MakeRig) -> None:
    rig = make_rig(base())
    status = rig.device.patch_port("in1", {"normal_state": "closed"})
    assert status["active"] is True  # the wire is open, now the abnormal state
    assert rig.changes(Topic.INPUT, "in1")[-1].data["active"] is True
    assert rig.active("out1")  # and the rule saw it


def test_patch_output_active_state_redrives_the_line(make_rig: MakeRig) -> None:
    rig = make_rig(base())
    rig.device.set_output("out1", True, USER)
    rig.device.patch_port("out1", {"active_state": "open"})
    assert rig.active("out1")
    assert rig.driver.output_circuit("out1").value == "open"
    rig.device.set_output("out1", False, USER)
    assert rig.driver.output_circuit("out1").value == "closed"


def test_disabling_an_output_stops_it(make_rig: MakeRig) -> None:
    rig = make_rig(base())
    rig.device.set_output("out1", True, USER)
    rig.device.patch_port("out1", {"enabled": False})
    assert not rig.active("out1")
    off = rig.changes(Topic.OUTPUT, "out1")[-1]
    assert off.cause is not None and off.cause.kind == "config"


def test_adding_ports(make_rig: MakeRig) -> None:
    rig = make_rig(base())

    def edit(data: dict[str, Any]) -> None:
        data["inputs"].append({"id": "in3", "name": "in3", "debounce_on_ms": 0})
        data["outputs"].append({"id": "out3", "name": "out3"})

    rig.device.edit_config(edit)
    rig.device.sim_set_circuit("in3", rig.driver.read_input("in3").opposite())
    assert rig.active("in3")
    rig.device.set_output("out3", True, USER)
    assert rig.driver.output_circuit("out3").value == "closed"


def test_removing_an_idle_output(make_rig: MakeRig) -> None:
    rig = make_rig(base(rules=[]))
    rig.device.edit_config(lambda data: data.__setitem__("outputs", outputs("out1")))
    with pytest.raises(NotFound):
        rig.device.port_status("out2")
    assert "out2" not in rig.driver.output_history


def test_removing_an_active_output_drives_it_idle_first(make_rig: MakeRig) -> None:
    rig = make_rig(base(rules=[]))
    rig.device.set_output("out2", True, USER)
    rig.device.edit_config(lambda data: data.__setitem__("outputs", outputs("out1")))
    with pytest.raises(NotFound):
        rig.device.port_status("out2")
    assert [e.data["active"] for e in rig.changes(Topic.OUTPUT, "out2")] == [True, False]
    assert (
        rig.device.config.outputs
        == DeviceConfig.model_validate({"outputs": outputs("out1")}).outputs
    )


def test_ports_in_terminal_order(make_rig: MakeRig) -> None:
    rig = make_rig(base(port_order=["in2", "out2", "in1", "out1"]))
    assert rig.device.port_ids() == ["in2", "out2", "in1", "out1"]
    assert [p["id"] for p in rig.device.ports_status()] == ["in2", "out2", "in1", "out1"]
    default = make_rig(base())
    assert default.device.port_ids() == ["in1", "in2", "out1", "out2"]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"port_order": ["out1"]}, "port_order"),
        ({"port_order": ["in1", "out1", "in1"]}, "port_order"),
        ({"outputs": outputs("in1")}, "used twice"),
        ({"outputs": outputs("out1", interlock_group="g")}, "interlock_group"),
        ({"inputs": fast_inputs("in1", arming_schedule="nope")}, "arming_schedule"),
        ({"outputs": outputs("out1", timed_schedule="nope")}, "timed_schedule"),
        ({"rules": [ONCE, ONCE]}, "used twice"),
        ({"device": {"timezone": "Moon/Base"}}, "timezone"),
    ],
)
def test_device_config_validation_messages(change: dict[str, Any], fragment: str) -> None:
    config = {"inputs": fast_inputs("in1"), "outputs": outputs("out1"), **change}
    with pytest.raises(ValueError, match=fragment):
        DeviceConfig.model_validate(config)


def test_while_active_rule_on_a_pulse_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="momentary"):
        DeviceConfig.model_validate(
            {
                "schedules": [
                    {
                        "id": "p",
                        "name": "p",
                        "kind": "pulse",
                        "entries": [{"start": "2026-01-01T00:00:00"}],
                    }
                ],
                "rules": [
                    {
                        **HELD,
                        "conditions": [{"kind": "schedule", "schedule": "p"}],
                        "action": {
                            "kind": "set_output",
                            "port": "out1",
                        },
                    }
                ],
            }
        )


def test_config_round_trips_through_json(make_rig: MakeRig) -> None:
    config = DeviceConfig.model_validate(base())
    again = DeviceConfig.model_validate(config.model_dump(mode="json"))
    assert again == config


def test_grouping_two_active_outputs_leaves_one_active(make_rig: MakeRig) -> None:
    rig = make_rig({"outputs": outputs("a", "b", alarm_time_ms=0)})
    rig.device.set_output("a", True, USER)
    rig.device.set_output("b", True, USER)

    def group(data: dict[str, Any]) -> None:
        data["interlock_groups"] = [{"id": "g", "dead_time_ms": 100}]
        for out in data["outputs"]:
            out["interlock_group"] = "g"

    rig.device.edit_config(group)
    assert (rig.active("a"), rig.active("b")) == (True, False)


def test_editing_the_dead_time_during_a_wait_still_switches(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "outputs": outputs("a", "b", interlock_group="g", alarm_time_ms=0),
            "interlock_groups": [{"id": "g", "dead_time_ms": 1_000}],
        }
    )
    rig.device.set_output("a", True, USER)
    rig.device.set_output("b", True, USER)
    rig.advance(100)
    rig.device.edit_config(
        lambda data: data.__setitem__("interlock_groups", [{"id": "g", "dead_time_ms": 500}])
    )
    rig.advance(399)
    assert not rig.active("b")
    rig.advance(1)
    assert rig.active("b")


def test_config_edits_do_not_reset_a_recurrence(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "outputs": outputs("out1"),
            "rules": [
                {
                    "id": "tick",
                    "name": "tick",
                    "conditions": [{"kind": "recurrence", "interval_s": 60}],
                    "action": {"kind": "set_output", "port": "out1", "duration_ms": 10},
                }
            ],
        }
    )
    for n in range(10):  # an edit every 30 s for five minutes
        rig.advance(30_000)
        rig.device.patch_port("in1", {"name": f"Input {n}"})
    assert len(rig.changes(Topic.RECURRENCE)) == 5


def test_editing_a_schedule_to_active_now_reaches_its_rules(make_rig: MakeRig) -> None:
    office = {
        "id": "office",
        "name": "office",
        "entries": [{"start": "2026-01-01T08:00:00", "duration_s": 3600, "rrule": "FREQ=DAILY"}],
    }
    rig = make_rig(
        {
            "outputs": outputs("out1"),
            "schedules": [office],
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
    )
    # The clock starts at 2026-01-01T00:00Z: move the period to midnight, i.e. now.
    start_now = {"start": "2026-01-01T00:00:00", "duration_s": 3600, "rrule": "FREQ=DAILY"}
    rig.device.put_schedule({**office, "entries": [start_now]})
    assert rig.device.schedule_status("office")["active"] is True
    assert rig.active("out1")
    assert rig.changes(Topic.SCHEDULE, "office")[-1].data == {"active": True}
    rig.advance(3_600_000)
    assert not rig.active("out1")
