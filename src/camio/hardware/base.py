"""The driver protocol: what the engine needs from a terminal block.

A driver reports raw input levels (bouncing and all: the engine debounces) and drives output
levels. It owns no timers of its own for I/O semantics; those are the engine's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from camio.core.clock import Clock
from camio.core.ports import Circuit, InputConfig, OutputConfig

InputSink = Callable[[str, Circuit, int], None]
"""Called with ``(port id, raw circuit, monotonic ns of the edge)``."""


class DriverError(Exception):
    """A driver cannot do what was asked (unknown line, line busy, hardware gone)."""


class Driver(Protocol):
    """A terminal block."""

    name: str

    def open(
        self,
        inputs: Sequence[InputConfig],
        outputs: Sequence[OutputConfig],
        sink: InputSink,
        clock: Clock,
    ) -> None:
        """Claim the lines; outputs start at their idle level (no glitch)."""

    def reconfigure(self, inputs: Sequence[InputConfig], outputs: Sequence[OutputConfig]) -> None:
        """Ports were added, removed or changed."""

    def read_input(self, port_id: str) -> Circuit:
        """The raw level of an input now."""

    def write_output(self, port_id: str, circuit: Circuit) -> None:
        """Drive an output to ``circuit``."""

    def close(self) -> None:
        """Release the lines (outputs were already driven to their safe level)."""


class FaultError(ValueError):
    """A simulated fault that does not apply (e.g. ``cut`` on an unsupervised input)."""


@runtime_checkable
class Simulation(Protocol):
    """What a simulated terminal block adds: a person's hands on the wires."""

    def set_circuit(self, port_id: str, circuit: Circuit) -> None: ...

    def fault(self, port_id: str, fault: str, **params: Any) -> None: ...

    def output_circuit(self, port_id: str) -> Circuit: ...

    def describe(self, port_id: str) -> dict[str, Any]: ...
