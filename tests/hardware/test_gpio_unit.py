"""Fast tests of the gpio driver over a fake kernel: a line request is an ``os.pipe`` whose read
end sits in the asyncio loop exactly like a real request's descriptor, and edge events are real
``gpiod.EdgeEvent`` objects. The real kernel is exercised by ``test_gpio_vm.py``."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import gpiod
import pytest
from gpiod.line import Value
from pydantic import ValidationError

from camio.core.clock import ManualClock, SystemClock
from camio.core.config import DeviceConfig, HardwareConfig
from camio.core.gpio_config import GpioConfig
from camio.core.ports import Circuit, InputConfig, OutputConfig
from camio.hardware.gpio import LINE_TOPIC, GpioDriver, LineInfo, create_driver
from camio.hardware.sim import SimDriver

RISING = gpiod.EdgeEvent.Type.RISING_EDGE
FALLING = gpiod.EdgeEvent.Type.FALLING_EDGE


class FakeRequest:
    def __init__(self, system: FakeSystem, path: str, offset: int, settings: Any) -> None:
        self.system, self.path, self.offset, self.settings = system, path, offset, settings
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self.pending: list[gpiod.EdgeEvent] = []
        self.value: Value = settings.output_value
        self.writes: list[Value] = []
        self.released = False
        self.seqno = 0

    def fileno(self) -> int:
        return self.read_fd

    def inject(self, active: bool, *, age_ns: int = 0, skip: int = 0) -> None:
        self.seqno += 1 + skip
        self.value = Value.ACTIVE if active else Value.INACTIVE
        kind = RISING if active else FALLING
        ts = time.monotonic_ns() - age_ns
        self.pending.append(gpiod.EdgeEvent(kind, ts, self.offset, self.seqno, self.seqno))
        os.write(self.write_fd, b"e")

    def _check(self) -> None:
        if self.system.gone:
            raise OSError(errno.ENODEV, "No such device")

    def read_edge_events(self, max_events: int | None = None) -> list[gpiod.EdgeEvent]:
        self._check()
        with contextlib.suppress(BlockingIOError):
            os.read(self.read_fd, 4096)
        events, self.pending = self.pending, []
        return events

    def get_value(self, line: int | str) -> Value:
        self._check()
        return self.value

    def set_value(self, line: int | str, value: Value) -> None:
        self._check()
        self.value = value
        self.writes.append(value)

    def release(self) -> None:
        if not self.released:
            self.released = True
            os.close(self.read_fd)
            os.close(self.write_fd)
            self.system.held.pop((self.path, self.offset), None)


class FakeSystem:
    """One chip, ``/dev/gpiochip0`` labelled ``fake``, lines named L0..L7."""

    def __init__(self, label: str = "fake") -> None:
        self.label = label
        self.held: dict[tuple[str, int], str] = {}
        self.requests: list[FakeRequest] = []
        self.gone = False
        self.no_debounce = False

    def chip_paths(self) -> list[str]:
        return [] if self.gone else ["/dev/gpiochip0"]

    def chip_label(self, path: str) -> str:
        return self.label

    def line_offset(self, path: str, name: str) -> int | None:
        return int(name[1:]) if name.startswith("L") and name[1:].isdigit() else None

    def line_info(self, path: str, offset: int) -> LineInfo:
        consumer = self.held.get((path, offset), "")
        return LineInfo(offset, f"L{offset}", bool(consumer), consumer, "input", False)

    def request(self, path: str, consumer: str, offset: int, settings: Any) -> FakeRequest:
        if self.gone:
            raise OSError(errno.ENOENT, "No such file or directory")
        if (path, offset) in self.held:
            raise OSError(errno.EBUSY, "Device or resource busy")
        if self.no_debounce and settings.debounce_period.total_seconds() > 0:
            raise OSError(errno.EINVAL, "Invalid argument")
        self.held[(path, offset)] = consumer
        request = FakeRequest(self, path, offset, settings)
        self.requests.append(request)
        return request

    def req(self, offset: int) -> FakeRequest:
        return [r for r in self.requests if r.offset == offset and not r.released][-1]


class Sink:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Circuit, int]] = []

    def __call__(self, port_id: str, circuit: Circuit, edge_ns: int) -> None:
        self.seen.append((port_id, circuit, edge_ns))


class Bus:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, topic: str, source: str, data: dict[str, Any], **_: Any) -> None:
        self.events.append((topic, source, data))


async def wait_for(predicate: Callable[[], bool], limit_s: float = 5.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.001)


def inp(pid: str, **kw: Any) -> InputConfig:
    return InputConfig(id=pid, name=pid, **kw)


def out(pid: str, **kw: Any) -> OutputConfig:
    return OutputConfig(id=pid, name=pid, **kw)


@pytest.fixture
def system() -> FakeSystem:
    return FakeSystem()


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[GpioDriver, Sink, Bus]]]:
    drivers: list[GpioDriver] = []

    def build(
        system: FakeSystem,
        lines: dict[str, Any],
        inputs: list[InputConfig],
        outputs: list[OutputConfig],
        **kw: Any,
    ) -> tuple[GpioDriver, Sink, Bus]:
        bus, sink = Bus(), Sink()
        cfg = GpioConfig.model_validate({"lines": lines, **kw})
        drv = GpioDriver(cfg, system=system, events=lambda: bus)
        drv.open(inputs, outputs, sink, SystemClock())
        drivers.append(drv)
        return drv, sink, bus

    yield build
    for drv in drivers:
        drv.close()


async def test_edges_reach_the_sink_from_the_loop_with_the_kernel_timestamp(
    system: FakeSystem, make: Any
) -> None:
    drv, sink, _ = make(
        system, {"in1": {"line": "L0", "bias": "pull-up", "active_low": True}}, [inp("in1")], []
    )
    settings = system.req(0).settings
    assert settings.active_low and settings.edge_detection == gpiod.line.Edge.BOTH
    assert settings.event_clock == gpiod.line.Clock.MONOTONIC
    assert settings.debounce_period.total_seconds() == 0.005  # the kernel's 5 ms default
    assert drv.read_input("in1") == Circuit.OPEN
    system.req(0).inject(True, age_ns=3_000_000)  # the edge happened 3 ms ago
    await wait_for(lambda: len(sink.seen) == 1)
    port, circuit, edge_ns = sink.seen[0]
    assert (port, circuit) == ("in1", Circuit.CLOSED)
    age_ms = (time.monotonic_ns() - edge_ns) / 1e6
    assert 3 <= age_ms < 1000
    system.req(0).inject(False)
    await wait_for(lambda: len(sink.seen) == 2)
    assert sink.seen[1][1] == Circuit.OPEN
    assert drv.read_input("in1") == Circuit.OPEN


async def test_a_lost_edge_is_resynchronised_from_the_level(system: FakeSystem, make: Any) -> None:
    _, sink, _ = make(system, {"in1": "L0"}, [inp("in1")], [])
    request = system.req(0)
    request.inject(True)
    await wait_for(lambda: len(sink.seen) == 1)
    request.inject(True, skip=1)  # seqno gap: a falling edge was lost in between
    request.value = Value.INACTIVE
    await wait_for(lambda: len(sink.seen) == 2)
    assert sink.seen[-1][1] == Circuit.OPEN


async def test_outputs_are_requested_at_idle_and_released_at_idle(
    system: FakeSystem, make: Any
) -> None:
    drv, _, _ = make(
        system,
        {"siren": {"line": "L4", "drive": "open-drain"}, "lock": "L5"},
        [],
        [out("siren"), out("lock", active_state="open")],
    )
    siren, lock = system.req(4), system.req(5)
    assert siren.settings.output_value == Value.INACTIVE  # idle open = inactive
    assert siren.settings.drive == gpiod.line.Drive.OPEN_DRAIN
    assert lock.settings.output_value == Value.ACTIVE  # active_state open: idle is closed
    drv.write_output("siren", Circuit.CLOSED)
    assert siren.writes == [Value.ACTIVE]
    drv.reconfigure([], [out("siren", description="Siren 2"), out("lock", active_state="open")])
    assert system.req(4) is siren and siren.writes == [Value.ACTIVE]  # untouched
    drv.close()
    assert siren.writes[-1] == Value.INACTIVE and siren.released and lock.released


async def test_bad_lines_fail_their_port_only_with_clear_errors(
    system: FakeSystem, make: Any
) -> None:
    system.held[("/dev/gpiochip0", 2)] = "other-daemon"
    drv, sink, bus = make(
        system,
        {"in1": "L2", "in2": "L1", "in3": "gpiochip7:1", "in4": "NOPE", "in5": "gpiochip0:1"},
        [inp(p) for p in ("in1", "in2", "in3", "in4", "in5", "in6")],
        [],
    )
    failures = drv.failures
    assert set(failures) == {"in1", "in3", "in4", "in5", "in6"}
    assert "busy" in failures["in1"] and "'other-daemon'" in failures["in1"]
    assert "L2" in failures["in1"]
    assert "no GPIO chip 'gpiochip7'" in failures["in3"]
    assert "no line named 'NOPE'" in failures["in4"]
    assert "already used by port 'in2'" in failures["in5"]
    assert "no GPIO line mapped" in failures["in6"]
    assert {(t, s) for t, s, d in bus.events if not d["ok"]} == {
        (LINE_TOPIC, p) for p in ("in1", "in3", "in4", "in5", "in6")
    }
    assert drv.read_input("in1") == Circuit.OPEN
    system.req(1).inject(True)
    await wait_for(lambda: len(sink.seen) == 1)
    assert sink.seen[0][:2] == ("in2", Circuit.CLOSED)


async def test_lost_hardware_fails_the_ports_then_recovers(system: FakeSystem, make: Any) -> None:
    drv, sink, bus = make(
        system, {"in1": "L0", "out1": "L4"}, [inp("in1")], [out("out1")], health_interval_ms=100
    )
    system.gone = True
    system.req(0).inject(True)  # the descriptor wakes up; the read fails with ENODEV
    await wait_for(lambda: set(drv.failures) == {"in1", "out1"})
    assert "lost" in drv.failures["in1"]
    drv.write_output("out1", Circuit.CLOSED)  # remembered
    system.gone = False
    await wait_for(lambda: drv.failures == {})
    assert system.req(4).settings.output_value == Value.ACTIVE  # restored when re-requested
    oks = [(s, d["ok"]) for t, s, d in bus.events]
    assert oks[-2:] in ([("in1", True), ("out1", True)], [("out1", True), ("in1", True)])
    system.req(0).inject(True)
    await wait_for(lambda: sink.seen[-1:] != [] and sink.seen[-1][1] == Circuit.CLOSED)


async def test_without_kernel_debounce_support_camio_filters_alone(
    system: FakeSystem, make: Any
) -> None:
    system.no_debounce = True
    drv, _, _ = make(system, {"in1": "L0"}, [inp("in1")], [])
    assert drv.failures == {}
    assert drv.status()["in1"]["kernel_debounce"] is False


def test_board_profiles_name_lines_an_installer_knows() -> None:
    from camio.hardware.gpio_boards import board

    pi = board("raspberry-pi")
    gpio17 = pi.resolve("GPIO17")
    assert gpio17 is not None and gpio17.offset == 17 and "pinctrl-bcm2711" in gpio17.chips
    pin11 = pi.resolve("PIN11")
    assert pin11 is not None and pin11.offset == 17
    assert pi.resolve("RELAY1") is None
    relay = board("relay-hat-8").resolve("relay8")
    assert relay is not None and relay.offset == 26 and relay.defaults == {"active_low": True}
    assert board("generic").resolve("GPIO17") is None


async def test_a_board_profile_resolves_by_chip_label(make: Any) -> None:
    system = FakeSystem(label="pinctrl-bcm2711")
    drv, _, _ = make(
        system,
        {"in1": "GPIO17", "out1": "RELAY1"},
        [inp("in1")],
        [out("out1")],
        board="relay-hat-8",
    )
    assert drv.failures == {}
    assert system.req(5).settings.active_low is True  # the HAT's relays are active-low
    assert system.req(17).settings.active_low is False


def test_the_pin_map_is_validated() -> None:
    cfg = HardwareConfig.model_validate({"driver": "gpio", "gpio": {"lines": {"in1": "GPIO4"}}})
    assert cfg.gpio.lines["in1"].line == "GPIO4"
    with pytest.raises(ValidationError, match="already used by port 'a'"):
        GpioConfig.model_validate({"lines": {"a": "gpiochip0:3", "b": "gpiochip0:3"}})
    with pytest.raises(ValidationError, match="kernel_debounce_ms"):
        GpioConfig.model_validate({"lines": {"a": {"line": "X", "kernel_debounce_ms": -1}}})
    assert DeviceConfig().hardware.driver == "sim"


def test_the_simulator_stays_the_default_and_costs_no_gpiod() -> None:
    assert isinstance(create_driver(HardwareConfig()), SimDriver)
    gpio = create_driver(HardwareConfig(driver="gpio"))
    assert isinstance(gpio, GpioDriver)


def test_open_outside_a_loop_is_a_clear_error(system: FakeSystem) -> None:
    from camio.hardware.base import DriverError

    drv = GpioDriver(GpioConfig(), system=system)
    with pytest.raises(DriverError, match="running asyncio loop"):
        drv.open([], [], Sink(), ManualClock())
