"""Inputs through the Device facade and the simulated terminal block (faults included)."""

from __future__ import annotations

import pytest
from engine_helpers import MakeRig, fast_inputs, outputs

from camio.core.events import Topic
from camio.core.ports import Circuit
from camio.engine.errors import InvalidRequest, NotFound
from camio.hardware.base import FaultError
from camio.hardware.sim import SimDriver


@pytest.mark.parametrize("normal", ["open", "closed"])
def test_input_active_is_circuit_differs_from_normal(make_rig: MakeRig, normal: str) -> None:
    rig = make_rig({"inputs": fast_inputs("in1", normal_state=normal)})
    assert rig.device.port_status("in1")["circuit"] == normal
    assert rig.active("in1") is False
    rig.device.sim_set_circuit("in1", Circuit(normal).opposite())
    status = rig.device.port_status("in1")
    assert status["active"] is True
    assert status["circuit"] == Circuit(normal).opposite().value
    [event] = rig.changes(Topic.INPUT, "in1")
    assert event.data["active"] is True
    assert event.cause is not None and event.cause.kind == "sim"


def test_default_debounce_accepts_after_50ms(make_rig: MakeRig) -> None:
    rig = make_rig()  # in1: debounce 50/50
    rig.close("in1")
    rig.advance(49)
    assert rig.active("in1") is False
    assert rig.device.port_status("in1")["debouncing"] is True
    rig.advance(1)
    assert rig.active("in1") is True
    [event] = rig.changes(Topic.INPUT, "in1")
    # The event is stamped with the raw edge's time, the change is visible 50 ms later.
    assert event.mono_ns == rig.t0


def test_sim_bounce_fault_drives_the_debounce_filter(make_rig: MakeRig) -> None:
    rig = make_rig(
        {"inputs": [{"id": "in1", "name": "in1", "debounce_on_ms": 20, "debounce_off_ms": 20}]}
    )
    rig.device.sim_fault("in1", "bounce", edges=7, interval_ms=5)
    # Raw edges at 0, 5, ..., 30 ms, ending closed; each level lasts 5 ms < 20 ms.
    rig.advance(29)
    assert rig.device.simulation.describe("in1")["bouncing"] is True
    rig.advance(1)
    assert rig.device.simulation.describe("in1")["bouncing"] is False
    assert rig.device.simulation.describe("in1")["raw"] == "closed"
    assert rig.active("in1") is False
    rig.advance(19)
    assert rig.active("in1") is False
    rig.advance(1)  # 50 ms = last edge + 20 ms
    assert rig.active("in1") is True
    assert len(rig.changes(Topic.INPUT, "in1")) == 1
    assert rig.device.read_input_counters("in1").pulses == 1


def test_sim_bounce_slower_than_the_filter_is_seen_as_pulses(make_rig: MakeRig) -> None:
    rig = make_rig(
        {"inputs": [{"id": "in1", "name": "in1", "debounce_on_ms": 10, "debounce_off_ms": 10}]}
    )
    rig.device.sim_fault("in1", "bounce", edges=5, interval_ms=50, final="closed")
    rig.advance(1_000)
    assert [e.data["active"] for e in rig.changes(Topic.INPUT, "in1")] == [
        True,
        False,
        True,
        False,
        True,
    ]
    assert rig.device.read_input_counters("in1").pulses == 3


def test_bounce_to_the_same_level_is_a_glitch_that_changes_nothing(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.device.sim_fault("in1", "bounce", edges=6, interval_ms=3, final="open")
    rig.advance(1_000)
    assert rig.changes(Topic.INPUT, "in1") == []


def test_disabled_input_never_active(make_rig: MakeRig) -> None:
    rig = make_rig({"inputs": fast_inputs("in1", enabled=False)})
    rig.close("in1")
    status = rig.device.port_status("in1")
    assert status["circuit"] == "closed"
    assert status["active"] is False


@pytest.mark.parametrize("fault", ["cut", "short"])
def test_supervised_cut_and_short_are_tamper_and_active(make_rig: MakeRig, fault: str) -> None:
    rig = make_rig({"inputs": fast_inputs("in1", supervised=True)})
    rig.device.sim_fault("in1", fault)
    status = rig.device.port_status("in1")
    assert (status["active"], status["tamper"], status["circuit"]) == (True, True, fault)
    rig.device.sim_fault("in1", "clear")
    status = rig.device.port_status("in1")
    assert (status["active"], status["tamper"], status["circuit"]) == (False, False, "open")
    rig.device.sim_set_circuit("in1", Circuit(fault))
    assert rig.device.port_status("in1")["tamper"] is True


@pytest.mark.parametrize("fault", ["cut", "short"])
def test_unsupervised_input_refuses_cut_and_short(make_rig: MakeRig, fault: str) -> None:
    rig = make_rig({"inputs": fast_inputs("in1")})
    with pytest.raises(InvalidRequest, match="not supervised"):
        rig.device.sim_fault("in1", fault)
    with pytest.raises(InvalidRequest, match="not supervised"):
        rig.device.sim_set_circuit("in1", Circuit(fault))
    with pytest.raises(FaultError):
        rig.driver.set_circuit("in1", Circuit(fault))
    with pytest.raises(FaultError):
        rig.driver.fault("in1", fault)
    assert rig.device.port_status("in1")["circuit"] == "open"
    assert rig.changes(Topic.INPUT) == []


def test_unknown_fault_and_bad_bounce_parameters(make_rig: MakeRig) -> None:
    rig = make_rig()
    with pytest.raises(InvalidRequest, match="unknown fault"):
        rig.device.sim_fault("in1", "melt")
    with pytest.raises(InvalidRequest):
        rig.device.sim_fault("in1", "bounce", edges=0)
    with pytest.raises(InvalidRequest):
        rig.device.sim_fault("in1", "bounce", interval_ms=0)
    with pytest.raises(InvalidRequest):
        rig.device.sim_fault("in1", "bounce", wobble=3)


def test_sim_on_unknown_or_output_port_is_not_found(make_rig: MakeRig) -> None:
    rig = make_rig()
    with pytest.raises(NotFound):
        rig.device.sim_set_circuit("nope", Circuit.CLOSED)
    with pytest.raises(NotFound):
        rig.device.sim_set_circuit("out1", Circuit.CLOSED)
    with pytest.raises(NotFound):
        rig.device.read_input_counters("out1")


def test_stuck_input_ignores_set_circuit_until_clear(make_rig: MakeRig) -> None:
    rig = make_rig({"inputs": fast_inputs("in1")})
    rig.device.sim_fault("in1", "stuck")
    rig.close("in1")
    assert rig.active("in1") is False
    assert rig.device.simulation.describe("in1")["stuck"] == "open"
    rig.device.sim_fault("in1", "clear")
    assert rig.device.simulation.describe("in1")["stuck"] is None
    rig.close("in1")
    assert rig.active("in1") is True


def test_stuck_at_a_level_drives_that_level(make_rig: MakeRig) -> None:
    rig = make_rig({"inputs": fast_inputs("in1")})
    rig.device.sim_fault("in1", "stuck", level="closed")
    assert rig.device.simulation.describe("in1")["raw"] == "closed"
    assert rig.active("in1") is True
    rig.open("in1")
    assert rig.active("in1") is True
    rig.device.sim_fault("in1", "clear")
    rig.open("in1")
    assert rig.active("in1") is False


def test_stuck_at_a_tamper_level_needs_a_supervised_input(make_rig: MakeRig) -> None:
    rig = make_rig({"inputs": fast_inputs("in1") + fast_inputs("in2", supervised=True)})
    with pytest.raises(InvalidRequest, match="not supervised"):
        rig.device.sim_fault("in1", "stuck", level="cut")
    with pytest.raises(InvalidRequest):
        rig.device.sim_fault("in1", "stuck", level="sideways")
    rig.device.sim_fault("in2", "stuck", level="short")
    assert rig.device.port_status("in2")["tamper"] is True
    rig.device.sim_fault("in2", "clear")
    assert rig.device.port_status("in2")["circuit"] == "open"


def test_default_bounce_ends_on_the_opposite_level(make_rig: MakeRig) -> None:
    """Pinned: ``edges`` emissions ``interval_ms`` apart, alternating and ending on ``final``.

    With the default 6 edges from open to closed the first emission repeats the current level,
    so the last raw edge is at (6 - 1) * 3 = 15 ms and the input (debounce 50) goes active at
    65 ms.
    """
    rig = make_rig()
    rig.device.sim_fault("in1", "bounce")
    rig.advance(64)
    assert rig.active("in1") is False
    rig.advance(1)
    assert rig.active("in1") is True
    [event] = rig.changes(Topic.INPUT, "in1")
    assert event.mono_ns - rig.t0 == 15_000_000


def test_stuck_input_ignores_a_bounce(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.device.sim_fault("in1", "stuck")
    rig.device.sim_fault("in1", "bounce", edges=3, interval_ms=5)
    rig.advance(1_000)
    assert rig.changes(Topic.INPUT, "in1") == []


def test_set_circuit_cancels_a_running_bounce(make_rig: MakeRig) -> None:
    rig = make_rig({"inputs": fast_inputs("in1")})
    rig.device.sim_fault("in1", "bounce", edges=5, interval_ms=10, final="closed")
    rig.advance(15)  # edges at 0 (closed), 10 (open)
    rig.open("in1")
    rig.advance(1_000)
    assert rig.device.port_status("in1")["circuit"] == "open"
    assert rig.device.simulation.describe("in1")["bouncing"] is False


def test_counters_pulses_last_and_time(make_rig: MakeRig) -> None:
    rig = make_rig({"inputs": fast_inputs("in1"), "outputs": outputs("out1")})
    first = rig.device.read_input_counters("in1")
    assert (first.current, first.last, first.pulses) == (False, False, 0)
    read_wall = rig.clock.wall_ns()
    for _ in range(2):
        rig.close("in1")
        rig.advance(10)
        rig.open("in1")
        rig.advance(10)
    rig.close("in1")
    counters = rig.device.read_input_counters("in1")
    assert (counters.current, counters.last, counters.pulses) == (True, False, 3)
    assert counters.last_read_wall_ns == read_wall
    after = rig.device.read_input_counters("in1")
    assert (after.current, after.last, after.pulses) == (True, True, 0)


def test_reading_counters_never_changes_an_output(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "inputs": fast_inputs("in1"),
            "outputs": outputs("out1"),
            "rules": [
                {
                    "id": "r",
                    "name": "r",
                    "conditions": [{"kind": "input", "port": "in1"}],
                    "action": {"kind": "set_output", "port": "out1", "duration_ms": 0},
                }
            ],
        }
    )
    rig.close("in1")
    assert rig.active("out1") is True
    before = (len(rig.events), rig.driver.writes, rig.levels("out1"))
    for _ in range(3):
        rig.device.read_input_counters("in1")
        rig.device.port_status("in1")
        rig.device.ports_status()
    assert (len(rig.events), rig.driver.writes, rig.levels("out1")) == before
    assert rig.active("out1") is True


def test_input_events_carry_the_edge_time(make_rig: MakeRig) -> None:
    rig = make_rig({"inputs": [{"id": "in1", "name": "in1", "debounce_on_ms": 100}]})
    rig.advance(5)
    rig.close("in1")
    rig.advance(100)
    [event] = rig.changes(Topic.INPUT, "in1")
    assert (event.mono_ns - rig.t0) // 1_000_000 == 5
    assert event.wall_ns - event.mono_ns == rig.clock.wall_ns() - rig.clock.monotonic_ns()


def test_sim_driver_standalone_reports_to_its_sink() -> None:
    from camio.core.clock import ManualClock
    from camio.core.ports import InputConfig, OutputConfig

    clock = ManualClock()
    seen: list[tuple[str, Circuit]] = []
    driver = SimDriver()
    driver.open(
        [InputConfig(id="a", name="a")],
        [OutputConfig(id="o", name="o", active_state="open")],
        lambda pid, circuit, t: seen.append((pid, circuit)),
        clock,
    )
    assert driver.output_circuit("o") is Circuit.CLOSED  # idle level of an active-open output
    driver.set_circuit("a", Circuit.CLOSED)
    driver.set_circuit("a", Circuit.CLOSED)
    assert seen == [("a", Circuit.CLOSED), ("a", Circuit.CLOSED)]  # raw: the engine filters
    driver.write_output("o", Circuit.OPEN)
    driver.write_output("o", Circuit.OPEN)
    assert [c for _, c in driver.output_history["o"]] == [Circuit.OPEN]


def test_editing_an_input_while_it_debounces_keeps_the_filter(make_rig: MakeRig) -> None:
    """A config change (here a rename) must not let a level through before its filter time."""
    rig = make_rig({"inputs": [{"id": "in1", "name": "in1", "debounce_on_ms": 100}]})
    rig.close("in1")
    rig.advance(50)
    rig.device.patch_port("in1", {"name": "Front door"})
    assert rig.active("in1") is False
    rig.advance(49)
    assert rig.active("in1") is False
    rig.advance(1)
    assert rig.active("in1") is True
    [event] = rig.changes(Topic.INPUT, "in1")
    assert event.mono_ns == rig.t0


def test_shorter_filter_applies_to_the_pending_edge(make_rig: MakeRig) -> None:
    rig = make_rig({"inputs": [{"id": "in1", "name": "in1", "debounce_on_ms": 1_000}]})
    rig.close("in1")
    rig.advance(300)
    rig.device.patch_port("in1", {"debounce_on_ms": 200})  # already stable for longer
    assert rig.active("in1") is True
    rig.open("in1")
    rig.advance(10)
    rig.device.patch_port("in1", {"debounce_off_ms": 0})
    assert rig.active("in1") is False
