"""Alarm input runtime: stable-level debounce, active state, arming and pulse counters.

The wire has a *circuit* state that the driver reports as it sees it (possibly bouncing). The
debounce filter accepts a new level only after it stayed put for ``debounce_on_ms`` (towards
active) or ``debounce_off_ms`` (towards normal): it is a stable-level filter, not an edge rate
limiter, so the state it reports is never read from a line that is still bouncing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from camio.core.clock import NS_PER_MS, Clock, Timer
from camio.core.ports import TAMPER_CIRCUITS, Circuit, InputConfig

InputListener = Callable[["InputPort", int], None]
"""Called with the port and the monotonic ns of the raw edge that led to the change."""


@dataclass(frozen=True, slots=True)
class InputCounters:
    """The ``input.txt`` view of an input: pulses and state since the last read."""

    current: bool
    last: bool
    pulses: int
    last_read_wall_ns: int | None


class InputPort:
    """One alarm input: raw circuit in, debounced circuit and ``active`` out.

    ``active = circuit != normal state``; a tamper state (cut/short) counts as active, so cutting
    the wire of a door contact raises the alarm rather than hiding it. A disabled input keeps
    reporting its circuit but is never active.
    """

    def __init__(self, config: InputConfig, clock: Clock, listener: InputListener) -> None:
        self.config = config
        self._clock = clock
        self._listener = listener
        self.raw: Circuit = Circuit(config.normal_state)
        self.circuit: Circuit = self.raw
        self.armed = True
        # Read on every rule evaluation, changed only on an accepted edge or an edit: kept as
        # plain attributes rather than recomputed.
        self.active = False
        self.tamper = False
        self._pending: Timer | None = None
        self._pending_edge_ns = 0
        self._pulses = 0
        self._last_read_state = False
        self._last_read_wall_ns: int | None = None
        self.changed_mono_ns = clock.monotonic_ns()

    @property
    def id(self) -> str:
        return self.config.id

    def _refresh(self) -> None:
        """Recompute ``active`` (after debounce, normal-state mapping and enable) and
        ``tamper`` from the accepted circuit."""
        enabled = self.config.enabled
        self.active = enabled and self._is_active_level(self.circuit)
        self.tamper = enabled and self.circuit in TAMPER_CIRCUITS

    def _is_active_level(self, circuit: Circuit) -> bool:
        # StrEnum members are their strings: compare directly (``.value`` is slow).
        return circuit in TAMPER_CIRCUITS or circuit != self.config.normal_state

    def reconfigure(self, config: InputConfig) -> bool:
        """Apply new configuration; returns True when ``active`` changed as a result.

        A level still being filtered keeps being filtered, from its edge, with the new times:
        editing an input never lets a bouncing line through early.
        """
        before = self.active
        self.config = config
        self._refresh()
        pending = self._pending is not None
        self._cancel_pending()
        if not config.supervised and self.raw.is_tamper:
            self.raw = Circuit(config.normal_state)
            pending = False
        if self.raw != self.circuit:
            if pending:
                self._filter(self._pending_edge_ns)
                if self._pending is not None:
                    return before != self.active
            else:
                self._accept(self._clock.monotonic_ns())
            return False  # _accept notified the listener already
        return before != self.active

    def initialize(self, circuit: Circuit) -> None:
        """Set the level read from the hardware at start, without debounce or notification."""
        self.raw = circuit
        self.circuit = circuit
        self._refresh()

    def feed(self, circuit: Circuit, edge_mono_ns: int | None = None) -> None:
        """A raw level from the driver. Changes are accepted once stable for the debounce time."""
        if circuit == self.raw:
            return
        edge_ns = self._clock.monotonic_ns() if edge_mono_ns is None else edge_mono_ns
        self.raw = circuit
        if circuit == self.circuit:
            # Bounced back to the accepted level before the filter expired: nothing happened.
            self._cancel_pending()
            return
        self._cancel_pending()
        self._filter(edge_ns)

    def _filter(self, edge_ns: int) -> None:
        """Accept ``raw`` once it has been stable since ``edge_ns`` for its debounce time."""
        towards_active = self._is_active_level(self.raw)
        hold_ms = self.config.debounce_on_ms if towards_active else self.config.debounce_off_ms
        # Measured from the edge itself so a late callback does not stretch the filter.
        remaining = hold_ms * NS_PER_MS - (self._clock.monotonic_ns() - edge_ns)
        if hold_ms == 0 or remaining <= 0:
            self._accept(edge_ns)
            return
        self._pending_edge_ns = edge_ns
        self._pending = self._clock.call_later(remaining, self._on_stable)

    def _on_stable(self) -> None:
        self._pending = None
        self._accept(self._pending_edge_ns)

    def _cancel_pending(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def _accept(self, edge_ns: int) -> None:
        was_active = self.active
        self.circuit = self.raw
        self._refresh()
        self.changed_mono_ns = self._clock.monotonic_ns()
        if self.active and not was_active:
            self._pulses += 1
        self._listener(self, edge_ns)

    @property
    def debouncing(self) -> bool:
        return self._pending is not None

    def read_counters(self, *, reset: bool = True) -> InputCounters:
        """Pulses since the last read and the state at the last read (``input.txt``).

        Reading resets ``last`` and the pulse count, as on the camera servers; it never changes
        an output or the input's state.
        """
        counters = InputCounters(
            current=self.active,
            last=self._last_read_state,
            pulses=self._pulses,
            last_read_wall_ns=self._last_read_wall_ns,
        )
        if reset:
            self._pulses = 0
            self._last_read_state = self.active
            self._last_read_wall_ns = self._clock.wall_ns()
        return counters

    def close(self) -> None:
        self._cancel_pending()
