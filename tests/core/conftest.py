"""Fixtures for the pure-domain tests: a manual clock and small port builders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from camio.core.clock import NS_PER_MS, ManualClock
from camio.core.events import Cause
from camio.core.inputs import InputPort
from camio.core.outputs import InterlockGroupRuntime, OutputPort
from camio.core.ports import Circuit, InputConfig, OutputConfig


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@dataclass
class InputProbe:
    """An :class:`InputPort` with every accepted change recorded as (ms since start, circuit)."""

    port: InputPort
    clock: ManualClock
    t0: int
    changes: list[tuple[float, Circuit, bool]] = field(default_factory=list)
    edges: list[int] = field(default_factory=list)

    def now_ms(self) -> float:
        return (self.clock.monotonic_ns() - self.t0) / NS_PER_MS

    def feed(self, circuit: Circuit | str) -> None:
        self.port.feed(Circuit(circuit))


@pytest.fixture
def make_input(clock: ManualClock) -> Callable[..., InputProbe]:
    def make(**config: Any) -> InputProbe:
        config.setdefault("id", "in1")
        config.setdefault("name", "Input 1")
        t0 = clock.monotonic_ns()
        probe: InputProbe

        def listener(port: InputPort, edge_ns: int) -> None:
            probe.changes.append((probe.now_ms(), port.circuit, port.active))
            probe.edges.append(edge_ns)

        port = InputPort(InputConfig(**config), clock, listener)
        probe = InputProbe(port, clock, t0)
        port.initialize(Circuit(port.config.normal_state))
        return probe

    return make


@dataclass
class OutputProbe:
    """An :class:`OutputPort` whose drive calls and change notifications are recorded."""

    port: OutputPort
    clock: ManualClock
    t0: int
    drives: list[tuple[float, Circuit]] = field(default_factory=list)
    changes: list[tuple[float, bool, Cause]] = field(default_factory=list)

    def now_ms(self) -> float:
        return (self.clock.monotonic_ns() - self.t0) / NS_PER_MS


@pytest.fixture
def make_output(clock: ManualClock) -> Callable[..., OutputProbe]:
    def make(group: InterlockGroupRuntime | None = None, **config: Any) -> OutputProbe:
        config.setdefault("id", "out1")
        config.setdefault("name", "Output 1")
        t0 = clock.monotonic_ns()
        probe: OutputProbe

        def drive(circuit: Circuit) -> None:
            probe.drives.append((probe.now_ms(), circuit))

        def on_change(port: OutputPort, cause: Cause) -> None:
            probe.changes.append((probe.now_ms(), port.active, cause))

        port = OutputPort(OutputConfig(**config), clock, drive, on_change)
        probe = OutputProbe(port, clock, t0)
        if group is not None:
            group.add(port)
        return probe

    return make
