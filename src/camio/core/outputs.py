"""Alarm/relay output runtime: modes, alarm time, re-trigger policy, sequences, interlock.

An output is *wanted* active while any of these holds: a follow-source hold (a rule acting
"while active", a timed-output schedule), a latched activation (alarm time 0 = continuous), a
pending deadline (a timed activation), or the current step of a state sequence. When *wanted*
changes, the output is driven through its interlock group (if any), which guarantees that no two
outputs of the group are ever active together and that the dead time separates them.

All timers are monotonic and owned here, never by the callers: a status query cannot change an
output, and the cause of every change is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from camio.core.clock import NS_PER_MS, Clock, Timer
from camio.core.events import Cause
from camio.core.ports import Circuit, OutputConfig, OutputMode, Retrigger, StateStep

DriveFn = Callable[[Circuit], None]
ChangeFn = Callable[["OutputPort", Cause], None]
PersistFn = Callable[["OutputPort"], None]


@dataclass(frozen=True, slots=True)
class OutputSnapshot:
    """What must survive a crash for ``power_on: restore``: deadlines in wall time."""

    active: bool
    latched: bool
    deadline_wall_ns: int | None
    cause: Cause | None


class OutputPort:
    """One alarm/relay output."""

    def __init__(
        self,
        config: OutputConfig,
        clock: Clock,
        drive: DriveFn,
        on_change: ChangeFn,
        on_persist: PersistFn | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._drive = drive
        self._on_change = on_change
        self._on_persist = on_persist
        self.group: InterlockGroupRuntime | None = None
        # Logical state.
        self.active = False
        self.energized = False
        self.cause: Cause = Cause("boot", detail="initial state")
        self.changed_mono_ns = clock.monotonic_ns()
        self.pending_on = False  # waiting for the interlock dead time
        self._regroup_cause: Cause | None = None  # a dead-time wait cut short by a regroup
        self.off_mono_ns: int | None = None  # when it last went idle (for interlock dead time)
        # What makes the output wanted.
        self.holds: dict[str, Cause] = {}
        self.latched = False
        self.deadline_ns: int | None = None
        self._deadline_timer: Timer | None = None
        self._timer_due_ns = 0
        self._deadline_cause: Cause | None = None
        self._sequence: list[StateStep] | None = None
        self._sequence_index = 0
        self._sequence_active = False
        self._sequence_timer: Timer | None = None
        self._sequence_cause: Cause | None = None
        self._pulse_timer: Timer | None = None

    # -- read side --------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def circuit(self) -> Circuit:
        """The physical circuit the output drives now (pulse mode alternates while active)."""
        active_state = Circuit(self.config.active_state)
        return active_state if self.energized else active_state.opposite()

    @property
    def sequence_running(self) -> bool:
        return self._sequence is not None

    def remaining_ms(self) -> int | None:
        """Milliseconds left of a timed activation, ``None`` when there is none."""
        if self.deadline_ns is None:
            return None
        return max(0, (self.deadline_ns - self._clock.monotonic_ns()) // NS_PER_MS)

    def snapshot(self) -> OutputSnapshot:
        deadline_wall = None
        if self.deadline_ns is not None:
            deadline_wall = self._clock.wall_ns() + (self.deadline_ns - self._clock.monotonic_ns())
        return OutputSnapshot(
            active=self.active,
            latched=self.latched,
            deadline_wall_ns=deadline_wall,
            cause=self._deadline_cause if deadline_wall is not None else self.cause,
        )

    def _wanted(self) -> bool:
        if not self.config.enabled:
            return False
        if self._sequence is not None:
            return self._sequence_active
        return bool(self.holds) or self.latched or self.deadline_ns is not None

    # -- commands ---------------------------------------------------------------------------

    def activate(self, cause: Cause, duration_ms: int | None = None) -> None:
        """A triggered activation: for ``duration_ms`` (default: the alarm time), 0 = continuous.

        While the output is already active the re-trigger policy decides: extend the deadline,
        restart (a fresh idle→active edge), or ignore.
        """
        duration = self.config.alarm_time_ms if duration_ms is None else duration_ms
        self._cancel_sequence()
        policy = self.config.retrigger
        if self.active or self.pending_on:
            if policy is Retrigger.IGNORE:
                return
            if policy is Retrigger.RESTART and self.active:
                self._turn_off(cause)
        if duration == 0:
            self.latched = True
            self._clear_deadline()
        else:
            due = self._clock.monotonic_ns() + duration * NS_PER_MS
            if policy is Retrigger.EXTEND and self.deadline_ns is not None:
                due = max(due, self.deadline_ns)
            self._set_deadline(due, cause)
        self._update(cause)
        self._persist()

    def hold(self, owner: str, cause: Cause) -> None:
        """Keep the output active while ``owner`` holds it (follow source)."""
        self._cancel_sequence()
        self.holds[owner] = cause
        self._update(cause)

    def release(self, owner: str, cause: Cause) -> None:
        """``owner`` no longer holds the output; it goes idle when nothing else wants it."""
        if self.holds.pop(owner, None) is not None:
            self._update(cause)

    def deactivate(self, cause: Cause) -> None:
        """Stop: clears holds, latch, deadline and any sequence (manual Stop, API, interlock)."""
        self._cancel_sequence()
        self.holds.clear()
        self.latched = False
        self._clear_deadline()
        self._update(cause)
        self._persist()

    def run_sequence(self, steps: list[StateStep], cause: Cause) -> None:
        """Run a state sequence; the output keeps the last step's state afterwards."""
        self._cancel_sequence()
        self.holds.clear()
        self.latched = False
        self._clear_deadline()
        self._sequence = list(steps)
        self._sequence_index = 0
        self._sequence_cause = cause
        self._run_step()

    def restore(self, snapshot: OutputSnapshot) -> None:
        """Resume a persisted state at power-on: a latch, or the remaining alarm time.

        Follow-source holds are not restored: their rules re-evaluate at start, so a stale
        command can never re-arm the output.
        """
        cause = Cause(
            "boot",
            rule=snapshot.cause.rule if snapshot.cause else None,
            detail="restore",
        )
        if snapshot.latched:
            self.activate(cause, 0)
            return
        if snapshot.deadline_wall_ns is None:
            return
        remaining_ns = snapshot.deadline_wall_ns - self._clock.wall_ns()
        if remaining_ns > 0:
            self._set_deadline(self._clock.monotonic_ns() + remaining_ns, cause)
            self._update(cause)
            self._persist()
        else:
            self._persist()  # the stale deadline is gone: store that it is.

    def reconfigure(self, config: OutputConfig) -> None:
        """Apply new configuration, re-driving the line if its idle level or mode changed."""
        old = self.config
        self.config = config
        cause = Cause("config", detail="output reconfigured")
        if not config.enabled:
            self.deactivate(cause)
            return
        if old.active_state != config.active_state or old.mode != config.mode:
            self._stop_pulse()
            self.energized = self.active
            if self.active and config.mode is OutputMode.PULSE:
                self._start_pulse()
            self._drive(self.circuit)
        self._update(cause)

    def shutdown(self) -> None:
        """Drive the safe (idle) level without forgetting the persisted state (for restore)."""
        self._cancel_sequence()
        self._clear_deadline(keep_value=True)
        self._stop_pulse()
        if self.energized:
            self.energized = False
            self._drive(self.circuit)

    # -- internals --------------------------------------------------------------------------

    def _set_deadline(self, due_ns: int, cause: Cause) -> None:
        self.deadline_ns = due_ns
        self._deadline_cause = cause
        if self._deadline_timer is not None:
            if self._timer_due_ns <= due_ns:
                # Extending: the running timer fires first and re-arms for the rest, so a
                # relay re-triggered a thousand times a second costs no timer churn.
                return
            self._deadline_timer.cancel()
        self._timer_due_ns = due_ns
        self._deadline_timer = self._clock.call_later(
            due_ns - self._clock.monotonic_ns(), self._on_deadline
        )

    def _clear_deadline(self, *, keep_value: bool = False) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        if not keep_value:
            self.deadline_ns = None
            self._deadline_cause = None

    def _on_deadline(self) -> None:
        self._deadline_timer = None
        if self.deadline_ns is not None:
            left = self.deadline_ns - self._clock.monotonic_ns()
            if left > 0:
                self._timer_due_ns = self.deadline_ns
                self._deadline_timer = self._clock.call_later(left, self._on_deadline)
                return
        origin = self._deadline_cause
        self.deadline_ns = None
        self._deadline_cause = None
        cause = Cause(
            "timer",
            rule=origin.rule if origin else None,
            user=origin.user if origin else None,
            event_id=origin.event_id if origin else None,
            detail="alarm time elapsed",
        )
        self._update(cause)
        self._persist()

    def _cancel_sequence(self) -> None:
        if self._sequence_timer is not None:
            self._sequence_timer.cancel()
            self._sequence_timer = None
        self._sequence = None

    def _run_step(self) -> None:
        assert self._sequence is not None
        step = self._sequence[self._sequence_index]
        self._sequence_active = step.active
        cause = self._sequence_cause or Cause("sequence")
        self._update(replace(cause, detail=f"sequence step {self._sequence_index + 1}"))
        self._sequence_timer = self._clock.call_later(step.duration_ms * NS_PER_MS, self._next_step)

    def _next_step(self) -> None:
        self._sequence_timer = None
        assert self._sequence is not None
        self._sequence_index += 1
        if self._sequence_index < len(self._sequence):
            self._run_step()
            return
        # Done: keep the last state, as a latch so that it shows as a plain active output.
        last_active = self._sequence_active
        self._sequence = None
        self.latched = last_active
        self._persist()

    def _update(self, cause: Cause) -> None:
        wanted = self._wanted()
        if wanted and not self.active and not self.pending_on:
            if self.group is not None:
                self.group.request_on(self, cause)
            else:
                self._turn_on(cause)
        elif not wanted:
            if self.pending_on and self.group is not None:
                self.group.cancel(self)
            if self.active:
                self._turn_off(cause)

    def _turn_on(self, cause: Cause) -> None:
        self.pending_on = False
        self.active = True
        self.cause = cause
        self.changed_mono_ns = self._clock.monotonic_ns()
        self.energized = True
        self._drive(self.circuit)
        if self.config.mode is OutputMode.PULSE:
            self._start_pulse()
        self._on_change(self, cause)
        self._persist()

    def _turn_off(self, cause: Cause) -> None:
        self._stop_pulse()
        self.active = False
        self.cause = cause
        self.changed_mono_ns = self.off_mono_ns = self._clock.monotonic_ns()
        if self.energized:
            self.energized = False
            self._drive(self.circuit)
        if self.group is not None:
            self.group.notify_off(self)
        self._on_change(self, cause)
        self._persist()

    def _start_pulse(self) -> None:
        self._pulse_timer = self._clock.call_later(
            self.config.pulse_on_ms * NS_PER_MS, self._pulse_toggle
        )

    def _stop_pulse(self) -> None:
        if self._pulse_timer is not None:
            self._pulse_timer.cancel()
            self._pulse_timer = None

    def _pulse_toggle(self) -> None:
        self.energized = not self.energized
        self._drive(self.circuit)
        period = self.config.pulse_on_ms if self.energized else self.config.pulse_off_ms
        self._pulse_timer = self._clock.call_later(period * NS_PER_MS, self._pulse_toggle)

    def regrouped(self) -> None:
        """The interlock groups were rebuilt (a configuration change): apply the new group.

        An output that is active while another member of its new group is active too is forced
        off (the group's rule holds from now on; the member added first keeps its state). One
        whose dead-time wait was cut short by the rebuild asks again, under its new group.
        """
        group = self.group
        cause, self._regroup_cause = self._regroup_cause, None
        if self.active:
            members = list(group.members.values()) if group is not None else []
            # Members in the order they joined: an earlier active one keeps its state.
            earlier = members[: members.index(self)] if self in members else []
            other = next((o for o in earlier if o.active), None)
            if group is not None and other is not None:
                self.force_off(
                    Cause("interlock", detail=f"{self.id} joined {group.id} with {other.id}")
                )
            return
        if not self.pending_on and self._wanted():
            self._update(cause or self.cause)

    def force_off(self, cause: Cause) -> None:
        """Interlock: another output of the group takes over; this one forgets its commands."""
        self._cancel_sequence()
        self.holds.clear()
        self.latched = False
        self._clear_deadline()
        if self.active:
            self._turn_off(cause)
        self.pending_on = False
        self._persist()

    def _persist(self) -> None:
        if self._on_persist is not None:
            self._on_persist(self)

    def close(self) -> None:
        self._cancel_sequence()
        self._clear_deadline(keep_value=True)
        self._stop_pulse()


class InterlockGroupRuntime:
    """Never two outputs of the group active together; off → dead time → on, atomically.

    Commands are serialised: the last request wins. A member asked to turn on forces every
    other active member off at once, then waits until the dead time since the last of them went
    idle has passed.
    """

    def __init__(self, group_id: str, dead_time_ms: int, clock: Clock) -> None:
        self.id = group_id
        self.dead_time_ns = dead_time_ms * NS_PER_MS
        self._clock = clock
        self.members: dict[str, OutputPort] = {}
        self._last_off_ns: dict[str, int] = {}
        self._pending: OutputPort | None = None
        self._pending_timer: Timer | None = None
        self._pending_cause: Cause | None = None

    def add(self, port: OutputPort) -> None:
        self.members[port.id] = port
        port.group = self
        if port.off_mono_ns is not None:
            # A rebuilt group still honours the dead time since the member last went idle.
            self._last_off_ns[port.id] = port.off_mono_ns

    def remove(self, port: OutputPort) -> None:
        if self._pending is port:
            port._regroup_cause = self._pending_cause
            self.cancel(port)
        self.members.pop(port.id, None)
        self._last_off_ns.pop(port.id, None)
        port.group = None

    def request_on(self, port: OutputPort, cause: Cause) -> None:
        if self._pending is not None and self._pending is not port:
            loser = self._pending
            self.cancel(loser)
            loser.force_off(Cause("interlock", detail=f"superseded by {port.id} in {self.id}"))
        for other in self.members.values():
            if other is not port and other.active:
                other.force_off(Cause("interlock", detail=f"{port.id} activated in {self.id}"))
        now = self._clock.monotonic_ns()
        earliest = max(
            (t + self.dead_time_ns for pid, t in self._last_off_ns.items() if pid != port.id),
            default=now,
        )
        if earliest <= now:
            port._turn_on(cause)
            return
        port.pending_on = True
        self._pending = port
        self._pending_cause = cause
        self._pending_timer = self._clock.call_later(earliest - now, self._fire_pending)

    def _fire_pending(self) -> None:
        port, cause = self._pending, self._pending_cause
        self._pending = None
        self._pending_timer = None
        if port is None or cause is None or not port.pending_on:
            return
        if port._wanted():
            port._turn_on(cause)
        else:
            port.pending_on = False

    def cancel(self, port: OutputPort) -> None:
        if self._pending is port:
            if self._pending_timer is not None:
                self._pending_timer.cancel()
            self._pending = None
            self._pending_timer = None
        port.pending_on = False

    def notify_off(self, port: OutputPort) -> None:
        self._last_off_ns[port.id] = self._clock.monotonic_ns()
