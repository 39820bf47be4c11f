"""Property tests of the timing semantics, under a ManualClock (hypothesis, no real time).

1. Debounce is a stable-level filter: an accepted level was stable for its filter time, every
   level that stays that long is accepted, and after settling the accepted level is the raw one.
2. Pulse mode: the circuit is always the active or the idle level, phases last their periods,
   and the output is idle (with no timer left) after it stops.
3. Interlock: never two outputs of a group energized together, and at least the dead time
   between one going idle and another energizing, for random command sequences.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import camio.actions  # noqa: F401  (registers the action kinds)
from camio.core.clock import NS_PER_MS, ManualClock
from camio.core.config import DeviceConfig
from camio.core.events import Cause
from camio.core.inputs import InputPort
from camio.core.outputs import OutputPort
from camio.core.ports import Circuit, InputConfig, OutputConfig
from camio.engine.device import Device
from camio.hardware.sim import SimDriver

SETTINGS = settings(max_examples=150, deadline=None)
USER = Cause("manual", user="prop")

# -- 1. debounce ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RawChange:
    t_ns: int
    level: Circuit


@dataclass(frozen=True)
class Accepted:
    t_ns: int
    level: Circuit
    raw_seen: int  # how many raw changes had happened when the level was accepted


@SETTINGS
@given(
    normal=st.sampled_from(["open", "closed"]),
    supervised=st.booleans(),
    on_ms=st.integers(0, 80),
    off_ms=st.integers(0, 80),
    steps=st.lists(st.tuples(st.integers(0, 120), st.integers(0, 3)), min_size=1, max_size=40),
)
def test_debounce_is_a_stable_level_filter(
    normal: str, supervised: bool, on_ms: int, off_ms: int, steps: list[tuple[int, int]]
) -> None:
    clock = ManualClock()
    config = InputConfig(
        id="in1",
        name="In",
        normal_state=normal,
        supervised=supervised,
        debounce_on_ms=on_ms,
        debounce_off_ms=off_ms,
    )
    levels = [Circuit.OPEN, Circuit.CLOSED]
    if supervised:
        levels += [Circuit.CUT, Circuit.SHORT]
    raw: list[RawChange] = [RawChange(clock.monotonic_ns(), Circuit(normal))]
    accepted: list[Accepted] = []

    def listener(port: InputPort, edge_ns: int) -> None:
        accepted.append(Accepted(clock.monotonic_ns(), port.circuit, len(raw)))

    port = InputPort(config, clock, listener)
    port.initialize(Circuit(normal))

    def hold_ns(level: Circuit) -> int:
        towards_active = level.is_tamper or level.value != normal
        return (on_ms if towards_active else off_ms) * NS_PER_MS

    for delay_ms, pick in steps:
        clock.advance(delay_ms)
        level = levels[pick % len(levels)]
        if level != raw[-1].level:
            raw.append(RawChange(clock.monotonic_ns(), level))
        port.feed(level)
    clock.advance(max(on_ms, off_ms) + 1)
    end_ns = clock.monotonic_ns()

    # Every acceptance is a change, to the latest raw level, which was stable for its filter.
    previous = Circuit(normal)
    for entry in accepted:
        latest = raw[entry.raw_seen - 1]
        assert entry.level != previous
        assert entry.level == latest.level
        assert entry.t_ns - latest.t_ns == hold_ns(entry.level)
        previous = entry.level

    # Every raw level that stayed for its filter time was accepted (or already was).
    for index, change in enumerate(raw[1:], start=1):
        until = raw[index + 1].t_ns if index + 1 < len(raw) else end_ns
        if until - change.t_ns < hold_ns(change.level):
            continue
        before = [a.level for a in accepted if a.raw_seen <= index]
        level_before = before[-1] if before else Circuit(normal)
        hits = [a for a in accepted if a.raw_seen == index + 1 and a.level == change.level]
        assert level_before == change.level or hits, (index, change)

    # After settling, the accepted level is the last raw level, and no filter timer is left.
    assert port.circuit == raw[-1].level
    assert port.active == (raw[-1].level.is_tamper or raw[-1].level.value != normal)
    assert clock.pending_timers == 0


# -- 2. pulse mode -------------------------------------------------------------------------


@SETTINGS
@given(
    active_state=st.sampled_from(["closed", "open"]),
    on_ms=st.integers(10, 400),
    off_ms=st.integers(10, 400),
    alarm_ms=st.sampled_from([0, 0, 50, 777, 2_000]),
    run_ms=st.integers(0, 3_000),
    advances=st.lists(st.integers(0, 250), max_size=12),
)
def test_pulse_mode_phases(
    active_state: str,
    on_ms: int,
    off_ms: int,
    alarm_ms: int,
    run_ms: int,
    advances: list[int],
) -> None:
    clock = ManualClock()
    t0 = clock.monotonic_ns()
    config = OutputConfig(
        id="o",
        name="O",
        mode="pulse",
        active_state=active_state,
        pulse_on_ms=on_ms,
        pulse_off_ms=off_ms,
        alarm_time_ms=alarm_ms,
    )
    active_level = Circuit(active_state)
    idle_level = active_level.opposite()
    drives: list[tuple[int, Circuit]] = []
    port = OutputPort(
        config, clock, lambda c: drives.append((clock.monotonic_ns() - t0, c)), lambda p, c: None
    )
    assert port.circuit is idle_level
    port.activate(USER)
    # Look at the line at arbitrary moments while it runs: always a defined level.
    for step in advances:
        clock.advance(step)
        assert port.circuit in (active_level, idle_level)
        assert port.active or alarm_ms  # only the alarm time may end it
    elapsed_ms = (clock.monotonic_ns() - t0) // NS_PER_MS
    clock.advance(max(0, run_ms - elapsed_ms))
    port.deactivate(USER)
    stop_ns = clock.monotonic_ns() - t0
    assert port.active is False
    assert port.circuit is idle_level
    assert clock.pending_timers == 0
    clock.advance(10_000)
    assert drives and drives[-1][1] is idle_level
    assert all(t <= stop_ns for t, _ in drives)

    # The line alternates, starting active at 0, and every complete phase lasts its period.
    levels = [c for _, c in drives]
    assert levels[0] is active_level
    assert all(a != b for a, b in itertools.pairwise(levels))
    end_ns = stop_ns if alarm_ms == 0 else min(stop_ns, alarm_ms * NS_PER_MS)
    assert drives[-1][0] == end_ns or (drives[-1][0] < end_ns and levels[-1] is idle_level)
    times = [t for t, _ in drives]
    for index in range(len(drives) - 1):
        length = times[index + 1] - times[index]
        period = on_ms if levels[index] is active_level else off_ms
        if index + 1 == len(drives) - 1 and times[index + 1] == end_ns:
            assert 0 <= length <= period * NS_PER_MS  # the phase the stop cut short
        else:
            assert length == period * NS_PER_MS


# -- 3. interlock ----------------------------------------------------------------------------


class RecordingSim(SimDriver):
    """The simulator, with every level change of every output in one ordered log."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[int, str, Circuit]] = []

    def write_output(self, port_id: str, circuit: Circuit) -> None:
        before = self._out_levels.get(port_id)
        super().write_output(port_id, circuit)
        if before != circuit:
            assert self._clock is not None
            self.log.append((self._clock.monotonic_ns(), port_id, circuit))


command = st.one_of(
    st.tuples(st.just("activate"), st.integers(0, 3), st.sampled_from([None, 0, 40, 300, 1_000])),
    st.tuples(st.just("stop"), st.integers(0, 3), st.none()),
    st.tuples(st.just("hold"), st.integers(0, 3), st.sampled_from(["a", "b"])),
    st.tuples(st.just("release"), st.integers(0, 3), st.sampled_from(["a", "b"])),
    st.tuples(st.just("advance"), st.integers(0, 600), st.none()),
)


@SETTINGS
@given(
    count=st.integers(2, 4),
    dead_ms=st.integers(0, 400),
    modes=st.lists(st.sampled_from(["switch", "switch", "pulse"]), min_size=4, max_size=4),
    retriggers=st.lists(st.sampled_from(["extend", "restart", "ignore"]), min_size=4, max_size=4),
    active_states=st.lists(st.sampled_from(["closed", "open"]), min_size=4, max_size=4),
    commands=st.lists(command, max_size=40),
)
def test_interlock_never_two_energized_and_dead_time_between(
    count: int,
    dead_ms: int,
    modes: list[str],
    retriggers: list[str],
    active_states: list[str],
    commands: list[tuple[str, int, Any]],
) -> None:
    ids = [f"o{n}" for n in range(count)]
    outputs = [
        {
            "id": pid,
            "name": pid,
            "interlock_group": "g",
            "mode": modes[n],
            "pulse_on_ms": 70,
            "pulse_off_ms": 30,
            "retrigger": retriggers[n],
            "active_state": active_states[n],
            "alarm_time_ms": 500,
        }
        for n, pid in enumerate(ids)
    ]
    config = DeviceConfig.model_validate(
        {
            "inputs": [],
            "outputs": outputs,
            "interlock_groups": [{"id": "g", "dead_time_ms": dead_ms}],
        }
    )
    clock = ManualClock()
    driver = RecordingSim()
    device = Device(config, driver=driver, clock=clock)
    device.start()
    active_level = {pid: Circuit(active_states[n]) for n, pid in enumerate(ids)}

    for name, arg, extra in commands:
        if name == "advance":
            clock.advance(arg)
            continue
        pid = ids[arg % count]
        if name == "activate":
            device.trigger_output(pid, USER, duration_ms=extra)
        elif name == "stop":
            device.set_output(pid, False, USER)
        elif name == "hold":
            device.hold_output(pid, f"rule:{extra}", USER)
        else:
            device.release_output(pid, f"rule:{extra}", USER)
        energized = [p for p in ids if driver.output_circuit(p) == active_level[p]]
        assert len(energized) <= 1, energized
    clock.advance(5_000)

    energized_now: set[str] = set()
    last_idle: dict[str, int] = {}
    for t_ns, pid, circuit in driver.log:
        if circuit == active_level[pid]:
            for other, idle_ns in last_idle.items():
                if other != pid:
                    assert t_ns - idle_ns >= dead_ms * NS_PER_MS, (pid, other, t_ns, idle_ns)
            energized_now.add(pid)
        else:
            energized_now.discard(pid)
            last_idle[pid] = t_ns
        assert len(energized_now) <= 1, (t_ns, energized_now)
    # The logical state agrees: at most one output of the group is active.
    assert sum(device.outputs[p].active for p in ids) <= 1
    device.stop()
