"""ManualClock: deterministic time for every timer in camio."""

from __future__ import annotations

import pytest

from camio.core.clock import NS_PER_MS, ManualClock


def test_timers_fire_in_due_order_at_their_time() -> None:
    clock = ManualClock()
    t0 = clock.monotonic_ns()
    fired: list[tuple[str, int]] = []

    def note(name: str) -> None:
        fired.append((name, (clock.monotonic_ns() - t0) // NS_PER_MS))

    clock.call_later(30 * NS_PER_MS, lambda: note("c"))
    clock.call_later(10 * NS_PER_MS, lambda: note("a"))
    clock.call_later(10 * NS_PER_MS, lambda: note("b"))  # same time: in scheduling order
    clock.advance(9)
    assert fired == []
    clock.advance(100)
    assert fired == [("a", 10), ("b", 10), ("c", 30)]
    assert clock.monotonic_ns() - t0 == 109 * NS_PER_MS


def test_timers_scheduled_while_advancing_fire_in_the_same_advance() -> None:
    clock = ManualClock()
    fired: list[int] = []

    def chain(n: int) -> None:
        fired.append(n)
        if n < 5:
            clock.call_later(10 * NS_PER_MS, lambda: chain(n + 1))

    clock.call_later(0, lambda: chain(1))
    clock.advance(35)
    assert fired == [1, 2, 3, 4]
    clock.advance(5)
    assert fired == [1, 2, 3, 4, 5]


def test_cancel_and_pending_count() -> None:
    clock = ManualClock()
    timer = clock.call_later(NS_PER_MS, lambda: pytest.fail("cancelled timer ran"))
    assert clock.pending_timers == 1
    timer.cancel()
    assert clock.pending_timers == 0
    clock.advance(10)


def test_wall_clock_moves_with_monotonic_and_can_be_stepped() -> None:
    clock = ManualClock(wall_ns=1_000 * NS_PER_MS)
    clock.advance(5)
    assert clock.wall_ns() == 1_005 * NS_PER_MS
    mono = clock.monotonic_ns()
    clock.set_wall_ns(0)
    assert clock.wall_ns() == 0
    assert clock.monotonic_ns() == mono
    with pytest.raises(ValueError):
        clock.advance_ns(-1)


def test_run_until_idle_is_bounded_for_recurring_timers() -> None:
    clock = ManualClock()
    t0 = clock.monotonic_ns()
    ticks: list[int] = []

    def tick() -> None:
        ticks.append(1)
        clock.call_later(100 * NS_PER_MS, tick)

    clock.call_later(100 * NS_PER_MS, tick)
    clock.run_until_idle(limit_ms=1_000)
    assert len(ticks) == 10
    assert clock.monotonic_ns() - t0 == 1_000 * NS_PER_MS
