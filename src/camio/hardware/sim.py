"""The simulated terminal block (the default driver).

A person or a test closes and opens input circuits, injects contact bounce (a burst of edges
with chosen timing), makes an input stuck, cuts or shorts a supervised loop, and reads back the
circuit each output would drive. Several simulated devices can live in one process: all state is
per instance and all timing comes from the injected clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from camio.core.clock import NS_PER_MS, Clock, Timer
from camio.core.ports import Circuit, InputConfig, OutputConfig
from camio.hardware.base import DriverError, FaultError, InputSink

FAULTS = ("bounce", "stuck", "cut", "short", "clear")
MAX_BOUNCE_EDGES = 1000


class SimDriver:
    """Simulated wiring with fault injection."""

    name = "sim"

    def __init__(self, history: int = 1000) -> None:
        self._inputs: dict[str, InputConfig] = {}
        self._outputs: dict[str, OutputConfig] = {}
        self._levels: dict[str, Circuit] = {}
        self._stuck: dict[str, Circuit] = {}
        self._out_levels: dict[str, Circuit] = {}
        self._bounce: dict[str, list[Timer]] = {}
        self.output_history: dict[str, deque[tuple[int, Circuit]]] = {}
        self._history = history
        self._sink: InputSink | None = None
        self._clock: Clock | None = None
        self.writes = 0

    # -- Driver ------------------------------------------------------------------------------

    def open(
        self,
        inputs: Sequence[InputConfig],
        outputs: Sequence[OutputConfig],
        sink: InputSink,
        clock: Clock,
    ) -> None:
        self._sink = sink
        self._clock = clock
        self.reconfigure(inputs, outputs)

    def reconfigure(self, inputs: Sequence[InputConfig], outputs: Sequence[OutputConfig]) -> None:
        self._inputs = {p.id: p for p in inputs}
        self._outputs = {p.id: p for p in outputs}
        for port_id in list(self._levels):
            if port_id not in self._inputs:
                self._cancel_bounce(port_id)
                del self._levels[port_id]
                self._stuck.pop(port_id, None)
        for port in inputs:
            level = self._levels.get(port.id)
            if level is None or (level.is_tamper and not port.supervised):
                # A fresh input is wired to a sensor at rest.
                self._levels[port.id] = Circuit(port.normal_state)
        for port_id in list(self._out_levels):
            if port_id not in self._outputs:
                del self._out_levels[port_id]
                self.output_history.pop(port_id, None)
        for out in outputs:
            if out.id not in self._out_levels:
                self._out_levels[out.id] = Circuit(out.active_state).opposite()
                self.output_history[out.id] = deque(maxlen=self._history)

    def read_input(self, port_id: str) -> Circuit:
        return self._input_level(port_id)

    def write_output(self, port_id: str, circuit: Circuit) -> None:
        if port_id not in self._outputs:
            raise DriverError(f"no output {port_id!r}")
        self.writes += 1
        if self._out_levels[port_id] != circuit:
            self._out_levels[port_id] = circuit
            now = self._clock.monotonic_ns() if self._clock else 0
            self.output_history[port_id].append((now, circuit))

    def close(self) -> None:
        for port_id in list(self._bounce):
            self._cancel_bounce(port_id)

    # -- Simulation --------------------------------------------------------------------------

    def _input_level(self, port_id: str) -> Circuit:
        level = self._levels.get(port_id)
        if level is None:
            raise DriverError(f"no input {port_id!r}")
        return level

    def output_circuit(self, port_id: str) -> Circuit:
        level = self._out_levels.get(port_id)
        if level is None:
            raise DriverError(f"no output {port_id!r}")
        return level

    def set_circuit(self, port_id: str, circuit: Circuit) -> None:
        """Open or close an input circuit by hand (a stuck input ignores it)."""
        config = self._inputs.get(port_id)
        if config is None:
            raise DriverError(f"no input {port_id!r}")
        if circuit.is_tamper and not config.supervised:
            raise FaultError(f"input {port_id!r} is not supervised; it cannot be {circuit.value}")
        self._cancel_bounce(port_id)
        self._emit(port_id, circuit)

    def _emit(self, port_id: str, circuit: Circuit) -> None:
        if port_id in self._stuck:
            return
        self._levels[port_id] = circuit
        assert self._sink is not None and self._clock is not None
        self._sink(port_id, circuit, self._clock.monotonic_ns())

    def fault(self, port_id: str, fault: str, **params: Any) -> None:
        """Inject a fault.

        - ``bounce``: ``edges`` level changes (default 6) ``interval_ms`` apart (default 3),
          ending at ``final`` (default: the opposite of the current level);
        - ``stuck``: the input stays at ``level`` (default: its current level) whatever happens;
        - ``cut`` / ``short``: tamper a supervised loop;
        - ``clear``: end every fault; a tampered loop returns to its normal state.
        """
        config = self._inputs.get(port_id)
        if config is None:
            raise DriverError(f"no input {port_id!r}")
        if fault not in FAULTS:
            raise FaultError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        if fault == "bounce":
            self._start_bounce(config, **params)
        elif fault == "stuck":
            level = params.get("level")
            stuck = Circuit(level) if level else self._input_level(port_id)
            if stuck.is_tamper and not config.supervised:
                raise FaultError(f"input {port_id!r} is not supervised; it cannot be {stuck.value}")
            self._cancel_bounce(port_id)
            self._stuck.pop(port_id, None)
            if stuck != self._input_level(port_id):
                self._emit(port_id, stuck)  # the wire goes to the stuck level, then stays
            self._stuck[port_id] = stuck
        elif fault in ("cut", "short"):
            if not config.supervised:
                raise FaultError(f"input {port_id!r} is not supervised (no end-of-line resistor)")
            self._cancel_bounce(port_id)
            self._emit(port_id, Circuit(fault))
        else:
            self._cancel_bounce(port_id)
            self._stuck.pop(port_id, None)
            if self._input_level(port_id).is_tamper:
                self._emit(port_id, Circuit(config.normal_state))

    def _start_bounce(
        self,
        config: InputConfig,
        edges: int = 6,
        interval_ms: float = 3,
        final: str | None = None,
    ) -> None:
        if not 1 <= int(edges) <= MAX_BOUNCE_EDGES:
            raise FaultError(f"edges must be 1..{MAX_BOUNCE_EDGES}")
        if not 0 < float(interval_ms) <= 10_000:
            raise FaultError("interval_ms must be > 0 and <= 10000")
        current = self._input_level(config.id)
        if current.is_tamper:
            current = Circuit(config.normal_state)
        target = Circuit(final) if final else current.opposite()
        if target.is_tamper:
            raise FaultError("a bounce ends open or closed")
        # Levels alternate and the burst ends on the target level.
        count = int(edges)
        levels = [target if (count - 1 - i) % 2 == 0 else target.opposite() for i in range(count)]
        self._cancel_bounce(config.id)
        assert self._clock is not None
        step_ns = round(float(interval_ms) * NS_PER_MS)
        timers: list[Timer] = []
        for index, level in enumerate(levels):
            emit = self._emitter(config.id, level, last=index == count - 1)
            timers.append(self._clock.call_later(index * step_ns, emit))
        self._bounce[config.id] = timers

    def _emitter(self, port_id: str, level: Circuit, *, last: bool) -> Callable[[], None]:
        def emit() -> None:
            if last:
                self._bounce.pop(port_id, None)  # the burst is over: no longer 'bouncing'
            self._emit(port_id, level)

        return emit

    def _cancel_bounce(self, port_id: str) -> None:
        for timer in self._bounce.pop(port_id, []):
            timer.cancel()

    def describe(self, port_id: str) -> dict[str, Any]:
        """Simulator details of a port for the API: raw level, faults, output history size."""
        if port_id in self._inputs:
            return {
                "raw": self._input_level(port_id).value,
                "stuck": self._stuck[port_id].value if port_id in self._stuck else None,
                "bouncing": bool(self._bounce.get(port_id)),
            }
        if port_id in self._outputs:
            return {"driven": self.output_circuit(port_id).value}
        raise DriverError(f"no port {port_id!r}")
