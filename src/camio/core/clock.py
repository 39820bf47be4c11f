"""Time as a dependency.

Every timer in camio (debounce, pulse trains, alarm times, schedules, wait between actions) is
scheduled through a :class:`Clock`, never with ``sleep``. The running daemon uses the asyncio loop's
clock; tests use :class:`ManualClock` and move time forward explicitly, so time-dependent logic is
deterministic and fast to test.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


class Timer(Protocol):
    """A scheduled callback that can be cancelled before it runs."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic time for timers, wall time for events and schedules."""

    def monotonic_ns(self) -> int:
        """Nanoseconds of a clock that never goes backwards."""

    def wall_ns(self) -> int:
        """UTC nanoseconds since the epoch (may jump when the system time is set)."""

    def call_later(self, delay_ns: int, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` once after ``delay_ns`` nanoseconds of monotonic time."""


class SystemClock:
    """The real clocks, with timers on a running asyncio loop.

    Imported lazily so :mod:`camio.core` stays free of asyncio at import time; the loop is the
    one the daemon runs on.
    """

    def __init__(self, loop: object | None = None) -> None:
        import asyncio

        self._loop = loop if loop is not None else asyncio.get_running_loop()

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def wall_ns(self) -> int:
        return time.time_ns()

    def call_later(self, delay_ns: int, callback: Callable[[], None]) -> Timer:
        import asyncio

        loop = self._loop
        assert isinstance(loop, asyncio.AbstractEventLoop)
        # loop.time() is time.monotonic(), the same clock as monotonic_ns().
        return loop.call_later(max(0, delay_ns) / NS_PER_S, callback)


class _ManualTimer:
    __slots__ = ("callback", "cancelled", "due_ns", "seq")

    def __init__(self, due_ns: int, seq: int, callback: Callable[[], None]) -> None:
        self.due_ns = due_ns
        self.seq = seq
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: _ManualTimer) -> bool:
        return (self.due_ns, self.seq) < (other.due_ns, other.seq)


class ManualClock:
    """A clock that only moves when told to; timers fire in due order during :meth:`advance`.

    Timers scheduled by a callback while advancing also fire if they fall due within the same
    advance, exactly as they would in real time.
    """

    def __init__(self, wall_ns: int = 1_767_225_600 * NS_PER_S, mono_ns: int = NS_PER_S) -> None:
        # Default wall time: 2026-01-01T00:00:00Z, an arbitrary but fixed instant.
        self._mono = mono_ns
        self._wall_offset = wall_ns - mono_ns
        self._timers: list[_ManualTimer] = []
        self._seq = itertools.count()

    def monotonic_ns(self) -> int:
        return self._mono

    def wall_ns(self) -> int:
        return self._mono + self._wall_offset

    def call_later(self, delay_ns: int, callback: Callable[[], None]) -> Timer:
        timer = _ManualTimer(self._mono + max(0, delay_ns), next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    def set_wall_ns(self, wall_ns: int) -> None:
        """Jump the wall clock (as an NTP step would) without moving monotonic time."""
        self._wall_offset = wall_ns - self._mono

    def advance_ns(self, delta_ns: int) -> None:
        """Move time forward by ``delta_ns``, running every timer that falls due on the way."""
        if delta_ns < 0:
            raise ValueError("a monotonic clock cannot go backwards")
        target = self._mono + delta_ns
        while self._timers and self._timers[0].due_ns <= target:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._mono = max(self._mono, timer.due_ns)
            timer.callback()
        self._mono = target

    def advance(self, ms: float) -> None:
        """Move time forward by ``ms`` milliseconds."""
        self.advance_ns(round(ms * NS_PER_MS))

    def run_until_idle(self, limit_ms: float = 86_400_000) -> None:
        """Advance until no timer is pending (bounded, for recurring timers)."""
        end = self._mono + round(limit_ms * NS_PER_MS)
        while True:
            pending = [t for t in self._timers if not t.cancelled]
            if not pending:
                return
            due = min(t.due_ns for t in pending)
            if due > end:
                self._mono = end
                return
            self.advance_ns(due - self._mono)

    @property
    def pending_timers(self) -> int:
        """How many timers are scheduled and not cancelled (used to prove there is no polling)."""
        return sum(1 for t in self._timers if not t.cancelled)
