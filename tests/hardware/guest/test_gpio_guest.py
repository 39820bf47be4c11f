"""The gpio driver against a real kernel GPIO character device (gpio-sim).

Every test here talks to /dev/gpiochipN through the real ``gpiod`` package: nothing is faked.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable
from typing import Any

import gpiod
import pytest
from gpiod.line import Bias, Direction, Drive, Value
from gpiosim_chip import SimChip

import camio.actions  # noqa: F401  (registers the action kinds)
from camio.core.clock import SystemClock
from camio.core.config import DeviceConfig
from camio.core.events import Event
from camio.core.gpio_config import GpioConfig
from camio.core.ports import Circuit, InputConfig, OutputConfig
from camio.engine.device import Device
from camio.hardware.gpio import LINE_TOPIC, GpioDriver

TIMEOUT_S = 10.0  # emulated (TCG) guests on a loaded host are slow: generous, never flaky


async def wait_for(predicate: Callable[[], bool], what: str, limit_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


class Edges:
    """A driver's sink: every (port, circuit, edge ns) it reports."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Circuit, int]] = []

    def __call__(self, port_id: str, circuit: Circuit, edge_ns: int) -> None:
        self.seen.append((port_id, circuit, edge_ns))

    def circuits(self, port_id: str) -> list[Circuit]:
        return [c for p, c, _ in self.seen if p == port_id]


def inp(pid: str, **kw: Any) -> InputConfig:
    return InputConfig(id=pid, name=pid, **kw)


def out(pid: str, **kw: Any) -> OutputConfig:
    return OutputConfig(id=pid, name=pid, **kw)


def driver_for(lines: dict[str, Any], **kw: Any) -> GpioDriver:
    return GpioDriver(GpioConfig.model_validate({"lines": lines, **kw}))


def line_info(chip: SimChip, offset: int) -> gpiod.LineInfo:
    with gpiod.Chip(chip.path) as c:
        return c.get_line_info(offset)


async def test_edges_are_inverted_by_active_low_and_carry_kernel_timestamps(
    sim_chip: SimChip,
) -> None:
    drv = driver_for(
        {
            "door": {"line": "DI1", "bias": "pull-up", "active_low": True, "kernel_debounce_ms": 0},
            "pir": {"line": "DI2", "bias": "pull-down", "kernel_debounce_ms": 0},
        }
    )
    edges = Edges()
    drv.open([inp("door"), inp("pir")], [], edges, SystemClock())
    try:
        assert drv.failures == {}
        # A contact to ground with a pull-up: open circuit reads high, which is inactive.
        assert drv.read_input("door") == Circuit.OPEN
        assert drv.read_input("pir") == Circuit.OPEN
        info = line_info(sim_chip, 0)
        assert info.consumer == "camio" and info.active_low and info.bias == Bias.PULL_UP
        assert info.direction == Direction.INPUT
        before = time.monotonic_ns()
        sim_chip.pull(0, 0)  # the contact closes: the line goes low
        await wait_for(lambda: edges.circuits("door") == [Circuit.CLOSED], "door closed")
        _, _, edge_ns = edges.seen[-1]
        assert before <= edge_ns <= time.monotonic_ns()
        assert drv.read_input("door") == Circuit.CLOSED
        sim_chip.pull(0, 1)
        await wait_for(lambda: edges.circuits("door")[-1:] == [Circuit.OPEN], "door open")
        sim_chip.pull(1, 1)  # active-high input
        await wait_for(lambda: edges.circuits("pir") == [Circuit.CLOSED], "pir closed")
        for _ in range(20):
            sim_chip.pull(0, 0)
            await wait_for(lambda: edges.circuits("door")[-1] == Circuit.CLOSED, "door closed")
            sim_chip.pull(0, 1)
            await wait_for(lambda: edges.circuits("door")[-1] == Circuit.OPEN, "door open")
        assert edges.circuits("door") == [Circuit.CLOSED, Circuit.OPEN] * 21
    finally:
        drv.close()
    assert not line_info(sim_chip, 0).used


@pytest.mark.parametrize(
    ("bias", "level", "circuit"),
    [("pull-up", 1, Circuit.CLOSED), ("pull-down", 0, Circuit.OPEN)],
)
async def test_bias_sets_the_idle_level_of_a_floating_input(
    sim_chip: SimChip, bias: str, level: int, circuit: Circuit
) -> None:
    drv = driver_for({"in1": {"line": "DI3", "bias": bias}})
    drv.open([inp("in1")], [], Edges(), SystemClock())
    try:
        assert sim_chip.value(2) == level
        assert drv.read_input("in1") == circuit
        expected = Bias.PULL_UP if bias == "pull-up" else Bias.PULL_DOWN
        assert line_info(sim_chip, 2).bias == expected
    finally:
        drv.close()


async def test_kernel_debounce_swallows_contact_bounce(sim_chip: SimChip) -> None:
    # 200 ms, far longer than the burst even when the emulated CPU is descheduled for a while.
    drv = driver_for({"btn": {"line": "DI1", "bias": "pull-down", "kernel_debounce_ms": 200}})
    edges = Edges()
    drv.open([inp("btn")], [], edges, SystemClock())
    try:
        assert drv.status()["btn"]["kernel_debounce"] is True
        assert line_info(sim_chip, 0).debounced
        for level in (1, 0, 1, 0, 1, 0, 1):  # 7 bounces within a few ms, ending high
            sim_chip.pull(0, level)
        await wait_for(lambda: edges.circuits("btn") == [Circuit.CLOSED], "one debounced edge")
        await asyncio.sleep(0.4)
        assert edges.circuits("btn") == [Circuit.CLOSED]
    finally:
        drv.close()


async def test_camio_filter_on_top_gives_one_input_event_per_press(sim_chip: SimChip) -> None:
    """Without kernel debounce every bounce reaches camio; its stable-level filter keeps one."""
    config = DeviceConfig.model_validate(
        {
            "hardware": {
                "driver": "gpio",
                "gpio": {"lines": {"in1": {"line": "DI1", "kernel_debounce_ms": 0}}},
            },
            "inputs": [{"id": "in1", "name": "in1", "debounce_on_ms": 400, "debounce_off_ms": 400}],
            "outputs": [],
        }
    )
    drv = GpioDriver(config.hardware.gpio)
    sim_chip.pull(0, 0)
    device = Device(config, driver=drv, clock=SystemClock())
    events: list[Event] = []
    device.bus.subscribe(events.append)
    device.start()
    try:
        for level in (1, 0, 1, 0, 1, 0, 1):
            sim_chip.pull(0, level)
        await wait_for(lambda: device.inputs["in1"].active, "in1 active")
        await asyncio.sleep(0.5)
        actives = [e for e in events if e.topic == "io/input" and e.data["active"]]
        assert len(actives) == 1
        assert device.stats.input_edges >= 3  # the bounces did reach camio
    finally:
        device.stop()


async def test_a_busy_line_fails_its_port_only_with_a_clear_error(sim_chip: SimChip) -> None:
    intruder = gpiod.request_lines(
        sim_chip.path,
        consumer="intruder",
        config={1: gpiod.LineSettings(direction=Direction.INPUT)},
    )
    try:
        with pytest.raises(OSError) as raised:  # the kernel's own answer, for the record
            gpiod.request_lines(sim_chip.path, consumer="x", config={1: gpiod.LineSettings()})
        assert raised.value.errno == errno.EBUSY
        drv = driver_for({"in1": "DI2", "in2": "DI1", "out1": "RELAY1", "gone": "gpiochip99:0"})
        edges = Edges()
        drv.open([inp("in1"), inp("in2"), inp("gone")], [out("out1")], edges, SystemClock())
        try:
            failures = drv.failures
            assert set(failures) == {"in1", "gone"}
            assert "'in1'" in failures["in1"] and "DI2" in failures["in1"]
            assert "busy" in failures["in1"] and "'intruder'" in failures["in1"]
            assert "gpiochip99" in failures["gone"]
            assert drv.read_input("in1") == Circuit.OPEN  # a failed input reads as at rest
            # The rest keeps working.
            sim_chip.pull(0, 1)
            await wait_for(lambda: edges.circuits("in2") == [Circuit.CLOSED], "in2 edge")
            drv.write_output("out1", Circuit.CLOSED)
            assert sim_chip.value(4) == 1
        finally:
            drv.close()
    finally:
        intruder.release()


async def test_lines_by_name_by_offset_and_by_chip_label(sim_chip: SimChip) -> None:
    drv = driver_for(
        {
            "a": "DI4",
            "b": {"line": "2", "chip": sim_chip.chip_name},
            "c": f"{sim_chip.label}:1",
            "r": {"line": "RELAY2", "chip": sim_chip.label},
        }
    )
    drv.open([inp("a"), inp("b"), inp("c")], [out("r")], Edges(), SystemClock())
    try:
        assert drv.failures == {}
        status = drv.status()
        assert [status[p]["offset"] for p in ("a", "b", "c", "r")] == [3, 2, 1, 5]
        assert {status[p]["chip"] for p in status} == {sim_chip.path}
    finally:
        drv.close()


async def test_the_same_line_twice_is_refused_naming_both_ports(sim_chip: SimChip) -> None:
    drv = driver_for({"a": "DI1", "b": f"{sim_chip.chip_name}:0"})
    drv.open([inp("a"), inp("b")], [], Edges(), SystemClock())
    try:
        assert set(drv.failures) == {"b"}
        assert "already used by port 'a'" in drv.failures["b"]
    finally:
        drv.close()


@pytest.mark.parametrize("active_low", [False, True])
async def test_outputs_start_at_idle_without_a_glitch(sim_chip: SimChip, active_low: bool) -> None:
    # Idle is a de-energised relay: low, or high on an active-low relay board.
    idle = 1 if active_low else 0
    sim_chip.pull(4, idle)  # the line rests at idle before camio starts
    assert sim_chip.value(4) == idle
    lines = {"out1": {"line": "RELAY1", "active_low": active_low}}
    drv = driver_for(lines)
    drv.open([], [out("out1")], Edges(), SystemClock())
    try:
        assert sim_chip.value(4) == idle  # right after the request: still idle
        info = line_info(sim_chip, 4)
        assert info.direction == Direction.OUTPUT and info.active_low == active_low
        drv.write_output("out1", Circuit.CLOSED)
        assert sim_chip.value(4) == 1 - idle
        drv.write_output("out1", Circuit.OPEN)
        assert sim_chip.value(4) == idle
        drv.reconfigure([inp("in9")], [out("out1", description="renamed")])
        assert sim_chip.value(4) == idle
        drv.write_output("out1", Circuit.CLOSED)
        assert sim_chip.value(4) == 1 - idle
        # What the line is at the moment it is released (after release, gpio-sim shows the
        # outside pull, not a driven level).
        port = drv._ports["out1"]
        real = port.request
        at_release: list[int] = []

        class Spy:
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def release(self) -> None:
                at_release.append(sim_chip.value(4))
                assert real is not None
                real.release()

        port.request = Spy()  # type: ignore[assignment]
    finally:
        drv.close()
    assert at_release == [idle]  # released at the safe (idle) level
    # A restart requests it at idle again.
    drv = driver_for(lines)
    drv.open([], [out("out1")], Edges(), SystemClock())
    try:
        assert sim_chip.value(4) == idle
    finally:
        drv.close()


@pytest.mark.parametrize(
    ("drive", "expected"), [("open-drain", Drive.OPEN_DRAIN), ("open-source", Drive.OPEN_SOURCE)]
)
async def test_open_drain_and_open_source_outputs(
    sim_chip: SimChip, drive: str, expected: Drive
) -> None:
    drv = driver_for({"out1": {"line": "RELAY3", "drive": drive}})
    drv.open([], [out("out1")], Edges(), SystemClock())
    try:
        assert drv.failures == {}
        assert line_info(sim_chip, 6).drive == expected
    finally:
        drv.close()


async def test_a_rule_drives_the_relay_from_the_input_through_a_real_device(
    sim_chip: SimChip,
) -> None:
    config = DeviceConfig.model_validate(
        {
            "hardware": {
                "driver": "gpio",
                "gpio": {
                    "lines": {
                        "in1": {"line": "DI1", "bias": "pull-up", "active_low": True},
                        "out1": {"line": "RELAY1", "active_low": True},
                    }
                },
            },
            "inputs": [{"id": "in1", "name": "Door", "debounce_on_ms": 0, "debounce_off_ms": 0}],
            "outputs": [{"id": "out1", "name": "Siren", "alarm_time_ms": 0}],
            "rules": [
                {
                    "id": "r1",
                    "name": "door opens siren",
                    "conditions": [{"kind": "input", "port": "in1"}],
                    "action": {"kind": "set_output", "port": "out1"},
                    "action_mode": "while_active",
                }
            ],
        }
    )
    sim_chip.pull(4, 1)  # the relay board's own pull-up on its (active-low) input
    events: list[Event] = []
    device = Device(config, driver=GpioDriver(config.hardware.gpio), clock=SystemClock())
    device.bus.subscribe(events.append)
    device.start()
    try:
        assert sim_chip.value(4) == 1  # active-low relay board: idle is high
        for _ in range(5):
            before = time.monotonic_ns()
            sim_chip.pull(0, 0)  # the door contact closes to ground
            await wait_for(lambda: sim_chip.value(4) == 0, "relay on")
            edge = [e for e in events if e.topic == "io/input"][-1]
            assert edge.data["active"] and before <= edge.mono_ns <= time.monotonic_ns()
            sim_chip.pull(0, 1)
            await wait_for(lambda: sim_chip.value(4) == 1, "relay off")
        assert device.stats.rule_actions >= 10
    finally:
        device.stop()
    assert sim_chip.value(4) == 1


async def test_lost_chip_marks_the_port_failed_and_recovers(sim_chip: SimChip) -> None:
    published: list[tuple[str, str, dict[str, Any]]] = []

    class Bus:
        def publish(self, topic: str, source: str, data: dict[str, Any], **_: Any) -> None:
            published.append((topic, source, data))

    drv = GpioDriver(
        GpioConfig.model_validate(
            {
                "lines": {
                    "in1": {"line": "DI1", "chip": sim_chip.label, "bias": "pull-down"},
                    "out1": {"line": "RELAY1", "chip": sim_chip.label},
                },
                "health_interval_ms": 100,
            }
        ),
        events=lambda: Bus(),
    )
    edges = Edges()
    drv.open([inp("in1")], [out("out1")], edges, SystemClock())
    try:
        drv.write_output("out1", Circuit.CLOSED)
        try:
            sim_chip.set_live(False)  # the chip goes away under camio's requests
        except OSError as exc:
            pytest.skip(f"gpio-sim refuses to remove a chip in use here: {exc}")
        await wait_for(lambda: set(drv.failures) == {"in1", "out1"}, "both ports failed")
        assert {(t, s, d["ok"]) for t, s, d in published} >= {
            (LINE_TOPIC, "in1", False),
            (LINE_TOPIC, "out1", False),
        }
        drv.write_output("out1", Circuit.OPEN)  # remembered while the line is gone
        drv.write_output("out1", Circuit.CLOSED)
        sim_chip.set_live(True)
        await wait_for(lambda: drv.failures == {}, "both ports recovered")
        assert (LINE_TOPIC, "out1", True) in {(t, s, d["ok"]) for t, s, d in published}
        assert sim_chip.value(4) == 1  # the remembered level was restored
        sim_chip.pull(0, 1)
        await wait_for(lambda: edges.circuits("in1")[-1:] == [Circuit.CLOSED], "in1 edge")
    finally:
        drv.close()


def test_gpiod_sees_the_simulated_chip(sim_chip: SimChip) -> None:
    with gpiod.Chip(sim_chip.path) as chip:
        assert chip.get_info().label == sim_chip.label
        assert chip.line_offset_from_id("RELAY1") == 4
    assert Value.ACTIVE != Value.INACTIVE
