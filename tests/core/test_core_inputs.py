"""InputPort: active mapping, the stable-level debounce filter, tamper, enable and counters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from camio.core.clock import NS_PER_MS, ManualClock
from camio.core.ports import Circuit, InputConfig

MakeInput = Callable[..., Any]


@pytest.mark.parametrize("normal", ["open", "closed"])
def test_active_means_circuit_differs_from_normal_state(make_input: MakeInput, normal: str) -> None:
    probe = make_input(normal_state=normal, debounce_on_ms=0, debounce_off_ms=0)
    port = probe.port
    assert port.circuit == Circuit(normal)
    assert port.active is False
    for circuit in (Circuit.CLOSED, Circuit.OPEN, Circuit.CLOSED, Circuit.OPEN):
        probe.feed(circuit)
        assert port.circuit is circuit
        assert port.active is (circuit.value != normal)


def test_debounce_on_accepts_exactly_after_the_on_time_not_before(
    make_input: MakeInput, clock: ManualClock
) -> None:
    probe = make_input(debounce_on_ms=50, debounce_off_ms=200)
    probe.feed("closed")
    clock.advance(49.999)
    assert probe.port.active is False
    assert probe.port.debouncing is True
    assert probe.changes == []
    clock.advance(0.001)
    assert probe.port.active is True
    assert probe.port.debouncing is False
    assert probe.changes == [(50.0, Circuit.CLOSED, True)]


def test_debounce_off_uses_its_own_time(make_input: MakeInput, clock: ManualClock) -> None:
    probe = make_input(debounce_on_ms=50, debounce_off_ms=200)
    probe.feed("closed")
    clock.advance(50)
    probe.feed("open")
    clock.advance(199)
    assert probe.port.active is True
    clock.advance(1)
    assert probe.port.active is False
    assert [(t, active) for t, _, active in probe.changes] == [(50.0, True), (250.0, False)]


def test_bounce_burst_shorter_than_the_filter_changes_nothing(
    make_input: MakeInput, clock: ManualClock
) -> None:
    probe = make_input(debounce_on_ms=50, debounce_off_ms=50)
    for level in ("closed", "open") * 10:
        probe.feed(level)
        clock.advance(10)  # every level lasts 10 ms < 50 ms
    clock.advance(1_000)
    assert probe.changes == []
    assert probe.port.active is False
    assert probe.port.circuit is Circuit.OPEN


def test_debounce_is_not_an_edge_rate_limiter(make_input: MakeInput, clock: ManualClock) -> None:
    """A burst that ends on the new level is accepted one filter time after its LAST edge."""
    probe = make_input(debounce_on_ms=50, debounce_off_ms=50)
    for level in ("closed", "open", "closed", "open", "closed"):
        probe.feed(level)
        clock.advance(5)
    # The last edge (closed) happened at 20 ms.
    clock.advance(44)  # now 69 ms
    assert probe.port.active is False
    clock.advance(1)  # 70 ms = 20 + 50
    assert probe.changes == [(70.0, Circuit.CLOSED, True)]


def test_listener_gets_the_time_of_the_raw_edge(make_input: MakeInput, clock: ManualClock) -> None:
    probe = make_input(debounce_on_ms=30)
    edge_ns = clock.monotonic_ns() + 7 * NS_PER_MS
    clock.advance(7)
    probe.feed("closed")
    clock.advance(30)
    assert probe.edges == [edge_ns]
    assert probe.port.changed_mono_ns == edge_ns + 30 * NS_PER_MS


def test_debounce_measured_from_a_late_reported_edge(
    make_input: MakeInput, clock: ManualClock
) -> None:
    """A driver reporting an edge late does not stretch the filter beyond the edge + on time."""
    probe = make_input(debounce_on_ms=50)
    edge_ns = clock.monotonic_ns()
    clock.advance(20)
    probe.port.feed(Circuit.CLOSED, edge_ns)
    clock.advance(29)
    assert probe.port.active is False
    clock.advance(1)
    assert probe.port.active is True


def test_debounce_zero_is_immediate(make_input: MakeInput) -> None:
    probe = make_input(debounce_on_ms=0, debounce_off_ms=0)
    probe.feed("closed")
    assert probe.port.active is True
    probe.feed("open")
    assert probe.port.active is False
    assert [active for _, _, active in probe.changes] == [True, False]


def test_debounce_zero_on_but_not_off(make_input: MakeInput, clock: ManualClock) -> None:
    probe = make_input(debounce_on_ms=0, debounce_off_ms=100)
    probe.feed("closed")
    assert probe.port.active is True
    probe.feed("open")
    clock.advance(99)
    assert probe.port.active is True
    probe.feed("closed")  # bounced back before the off time: stays active, no event
    clock.advance(500)
    assert [active for _, _, active in probe.changes] == [True]


def test_disabled_input_reports_its_circuit_but_is_never_active(make_input: MakeInput) -> None:
    probe = make_input(enabled=False, debounce_on_ms=0, debounce_off_ms=0, supervised=True)
    for circuit in (Circuit.CLOSED, Circuit.CUT, Circuit.SHORT, Circuit.OPEN):
        probe.feed(circuit)
        assert probe.port.circuit is circuit
        assert probe.port.active is False
        assert probe.port.tamper is False


@pytest.mark.parametrize("normal", ["open", "closed"])
@pytest.mark.parametrize("tamper", [Circuit.CUT, Circuit.SHORT])
def test_supervised_tamper_counts_as_active(
    make_input: MakeInput, normal: str, tamper: Circuit
) -> None:
    probe = make_input(normal_state=normal, supervised=True, debounce_on_ms=0, debounce_off_ms=0)
    probe.feed(tamper)
    assert probe.port.active is True
    assert probe.port.tamper is True
    probe.feed(normal)
    assert probe.port.active is False
    assert probe.port.tamper is False


def test_tamper_goes_through_the_on_filter(make_input: MakeInput, clock: ManualClock) -> None:
    probe = make_input(supervised=True, debounce_on_ms=40, debounce_off_ms=10)
    probe.feed("cut")
    clock.advance(39)
    assert probe.port.tamper is False
    clock.advance(1)
    assert probe.port.tamper is True


def test_pulse_counter_and_last_state_reset_on_read(
    make_input: MakeInput, clock: ManualClock
) -> None:
    probe = make_input(debounce_on_ms=0, debounce_off_ms=0)
    port = probe.port
    first = port.read_counters()
    assert (first.current, first.last, first.pulses, first.last_read_wall_ns) == (
        False,
        False,
        0,
        None,
    )
    read_at = clock.wall_ns()
    for _ in range(3):
        probe.feed("closed")
        probe.feed("open")
    probe.feed("closed")
    clock.advance(1_000)
    counters = port.read_counters()
    assert counters.current is True
    assert counters.last is False  # the state at the previous read
    assert counters.pulses == 4
    assert counters.last_read_wall_ns == read_at
    again = port.read_counters()
    assert again.pulses == 0
    assert again.last is True
    assert again.last_read_wall_ns == read_at + 1_000 * NS_PER_MS


def test_peek_at_counters_does_not_reset(make_input: MakeInput) -> None:
    probe = make_input(debounce_on_ms=0, debounce_off_ms=0)
    probe.feed("closed")
    assert probe.port.read_counters(reset=False).pulses == 1
    assert probe.port.read_counters(reset=False).pulses == 1
    assert probe.port.read_counters().pulses == 1
    assert probe.port.read_counters().pulses == 0


def test_bounce_inside_the_filter_counts_no_pulse(
    make_input: MakeInput, clock: ManualClock
) -> None:
    probe = make_input(debounce_on_ms=20, debounce_off_ms=20)
    for level in ("closed", "open") * 5:
        probe.feed(level)
        clock.advance(3)
    clock.advance(100)
    assert probe.port.read_counters().pulses == 0


def test_reconfigure_normal_state_flips_active(make_input: MakeInput) -> None:
    probe = make_input(debounce_on_ms=0, debounce_off_ms=0)
    probe.feed("closed")
    assert probe.port.active is True
    changed = probe.port.reconfigure(
        InputConfig(id="in1", name="Input 1", normal_state="closed", debounce_on_ms=0)
    )
    assert changed is True
    assert probe.port.active is False


def test_close_cancels_the_pending_filter(make_input: MakeInput, clock: ManualClock) -> None:
    probe = make_input(debounce_on_ms=50)
    probe.feed("closed")
    assert clock.pending_timers == 1
    probe.port.close()
    assert clock.pending_timers == 0
    clock.advance(100)
    assert probe.changes == []
