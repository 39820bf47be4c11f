"""Helpers for the engine tests: a Device on a ManualClock with the simulated terminal block.

Nothing here sleeps: time moves only through ``rig.advance(ms)``. (A module of its own rather
than the conftest, so test modules can import it by a name no other test folder uses.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import camio.actions  # noqa: F401  (registers the action kinds)
from camio.core.clock import NS_PER_MS, ManualClock
from camio.core.config import DeviceConfig
from camio.core.events import Cause, Event, EventKind
from camio.core.ports import Circuit
from camio.engine.device import Device
from camio.engine.persistence import MemoryPersistence
from camio.hardware.sim import SimDriver

USER = Cause("manual", user="tester")


def fast_inputs(*ids: str, **extra: Any) -> list[dict[str, Any]]:
    """Inputs without debounce, so a simulated edge is accepted at once."""
    return [
        {"id": pid, "name": pid, "debounce_on_ms": 0, "debounce_off_ms": 0, **extra} for pid in ids
    ]


def outputs(*ids: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": pid, "name": pid, **extra} for pid in ids]


@dataclass
class Rig:
    """A device under test, its clock, driver and persistence, and every published event."""

    device: Device
    clock: ManualClock
    driver: SimDriver
    persistence: MemoryPersistence
    t0: int
    events: list[Event] = field(default_factory=list)

    def advance(self, ms: float) -> None:
        self.clock.advance(ms)

    def now_ms(self) -> float:
        return (self.clock.monotonic_ns() - self.t0) / NS_PER_MS

    def close(self, port: str) -> None:
        self.device.sim_set_circuit(port, Circuit.CLOSED)

    def open(self, port: str) -> None:
        self.device.sim_set_circuit(port, Circuit.OPEN)

    def active(self, port: str) -> bool:
        return bool(self.device.port_status(port)["active"])

    def changes(self, topic: str, source: str | None = None) -> list[Event]:
        """Published (numbered) events of ``topic`` (and ``source``), in order."""
        return [
            e
            for e in self.events
            if e.topic == topic
            and (source is None or e.source == source)
            and e.kind is not EventKind.INITIALIZED
        ]

    def edges(self, port: str) -> list[tuple[float, str]]:
        """Levels the simulated driver saw on ``port``: (ms since the rig was built, level)."""
        return [
            ((t - self.t0) / NS_PER_MS, circuit.value)
            for t, circuit in self.driver.output_history[port]
        ]

    def levels(self, port: str) -> list[str]:
        return [level for _, level in self.edges(port)]


MakeRig = Callable[..., Rig]


def build_rig(
    config: dict[str, Any] | DeviceConfig | None = None,
    *,
    start: bool = True,
    clock: ManualClock | None = None,
    persistence: MemoryPersistence | None = None,
    driver: SimDriver | None = None,
) -> Rig:
    """A device (started unless told otherwise) whose every published event is recorded."""
    cfg = config if isinstance(config, DeviceConfig) else DeviceConfig.model_validate(config or {})
    clock = clock or ManualClock()
    driver = driver or SimDriver()
    persistence = persistence if persistence is not None else MemoryPersistence()
    device = Device(cfg, driver=driver, clock=clock, persistence=persistence)
    rig = Rig(device, clock, driver, persistence, clock.monotonic_ns())
    device.bus.subscribe(rig.events.append)
    if start:
        device.start()
    return rig
