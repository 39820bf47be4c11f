"""The Device facade: the one way adapters reach ports, rules, schedules and events.

Every dialect, the web interface, MQTT and the CLI call these methods; none of them touches a
port runtime, a timer or the driver directly. Commands take a :class:`Cause` so that every change
says who made it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from camio import __version__
from camio.core.clock import NS_PER_MS, Clock, Timer
from camio.core.conditions import SourceKey
from camio.core.config import VIRTUAL_INPUTS, DeviceConfig
from camio.core.events import Cause, Event, EventKind, Topic
from camio.core.inputs import InputCounters, InputPort
from camio.core.outputs import InterlockGroupRuntime, OutputPort
from camio.core.ports import Circuit, InputConfig, OutputConfig, PowerOn, StateStep
from camio.core.recipients import RecipientSpec
from camio.core.rules import RuleConfig
from camio.core.schedules import RecurrenceRuntime, ScheduleConfig, ScheduleRuntime
from camio.engine.bus import EventBus, EventCallback, EventFilter, Subscription
from camio.engine.errors import Conflict, InvalidRequest, NotFound, NotSimulated
from camio.engine.outbox import FailureCallback, Outbox
from camio.engine.persistence import EventQuery, MemoryPersistence, Persistence
from camio.engine.runner import RuleRunner
from camio.engine.services import Services
from camio.hardware.base import Driver, Simulation
from camio.recipients.base import Delivery, DeliveryError, sender_for
from camio.store.outbox import OutboxStore

_LOGGER = logging.getLogger(__name__)

ConfigSaver = Callable[[DeviceConfig, int | None], int]
StateSource = Callable[[], Iterator[tuple[str, str, dict[str, Any]]]]
"""A service's current stateful sources as ``(topic, source, data)``."""
"""Persist a configuration atomically; takes the expected revision, returns the new one."""


@dataclass(slots=True)
class VirtualInput:
    number: int
    active: bool = False
    cause: Cause | None = None
    timer: Timer | None = None


@dataclass(slots=True)
class ManualTrigger:
    active: bool = False
    cause: Cause | None = None


@dataclass(slots=True)
class DeviceStats:
    """Counters for telemetry: edge-to-actuation latency of the last rule-driven change."""

    input_edges: int = 0
    rule_actions: int = 0
    last_latency_ns: int | None = None
    started_wall_ns: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Device:
    """One camera's alarm I/O and event system."""

    def __init__(
        self,
        config: DeviceConfig,
        *,
        driver: Driver,
        clock: Clock,
        persistence: Persistence | None = None,
        save_config: ConfigSaver | None = None,
        revision: int = 0,
        outbox_store: OutboxStore | None = None,
    ) -> None:
        self.config = config
        self.revision = revision
        self.clock = clock
        self.driver = driver
        self.persistence: Persistence = persistence or MemoryPersistence()
        self._save_config = save_config
        self.bus = EventBus(
            clock,
            first_id=self.persistence.last_event_id() + 1,
            state_provider=self.state_events,
            reserve_ids=self.persistence.reserve_event_ids,
        )
        self.inputs: dict[str, InputPort] = {}
        self.outputs: dict[str, OutputPort] = {}
        self.groups: dict[str, InterlockGroupRuntime] = {}
        self.schedules: dict[str, ScheduleRuntime] = {}
        self.recurrences: dict[int, RecurrenceRuntime] = {}
        self.virtual_inputs = [VirtualInput(n) for n in range(1, VIRTUAL_INPUTS + 1)]
        self.manual = ManualTrigger()
        self._manual_timer: Timer | None = None
        self.runner = RuleRunner(self)
        # Without a store (tests, the farm) the outbox lives in an in-memory database.
        self.outbox = Outbox(
            self, outbox_store or OutboxStore(sqlite3.connect(":memory:", isolation_level=None))
        )
        #: Optional services set by the composition root (the audio output).
        self.services = Services()
        self.stats = DeviceStats()
        self.started = False
        self._flush_timer: Timer | None = None
        self._dirty_outputs: dict[str, OutputPort] = {}
        self._simulation = driver if isinstance(driver, Simulation) else None
        self._tasks: set[asyncio.Task[None]] = set()
        self._input_cause = Cause("sim" if driver.name == "sim" else "hardware")
        self._state_handlers: dict[str, Callable[[str], bool]] = {
            "input": lambda pid: self.inputs[pid].active if pid in self.inputs else False,
            "tamper": lambda pid: self.inputs[pid].tamper if pid in self.inputs else False,
            "armed": lambda pid: self.inputs[pid].armed if pid in self.inputs else False,
            "output": lambda pid: self.outputs[pid].active if pid in self.outputs else False,
            "vinput": self._vinput_state,
            "manual": lambda _: self.manual.active,
            "schedule": lambda sid: self.schedules[sid].active if sid in self.schedules else False,
        }
        self._state_sources: list[StateSource] = []
        self.bus.subscribe(self._log_event)
        self.bus.subscribe(self.runner.on_event)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Claim the hardware, restore outputs, start schedules and evaluate every rule once."""
        if self.started:
            return
        cfg = self.config
        self.driver.open(cfg.inputs, cfg.outputs, self._on_raw_input, self.clock)
        self._build_ports(cfg)
        self._build_schedules(cfg)
        self.runner.load(cfg.rules, initial=True)
        self._power_on()
        self.started = True
        self.stats.started_wall_ns = self.clock.wall_ns()
        event = self.bus.publish(
            Topic.DEVICE_STARTED,
            "device",
            {"version": __version__, "driver": self.driver.name, "serial": cfg.device.serial},
            kind=EventKind.PULSE,
            stateful=False,
            cause=Cause("boot"),
        )
        del event  # the rule runner saw it: device_started conditions fired then.
        self.runner.evaluate_all(None, None)
        self.outbox.start()

    def stop(self) -> None:
        """Drive every output to its safe level (keeping restore state), flush, release."""
        if not self.started:
            return
        self.bus.publish(
            Topic.DEVICE_STOPPING,
            "device",
            {},
            kind=EventKind.PULSE,
            stateful=False,
            cause=Cause("shutdown"),
        )
        self.runner.close()
        self.outbox.stop()
        for sched in self.schedules.values():
            sched.stop()
        for rec in self.recurrences.values():
            rec.stop()
        for vin in self.virtual_inputs:
            if vin.timer is not None:
                vin.timer.cancel()
        for inp in self.inputs.values():
            inp.close()
        for out in self.outputs.values():
            out.shutdown()
        for task in list(self._tasks):
            task.cancel()
        self.driver.close()
        self.flush()
        # Everything handed out is now in the log: a clean restart continues without a gap.
        self.persistence.reserve_event_ids(self.bus.last_id)
        self.started = False

    def flush(self) -> None:
        """Write buffered events now (normally done on the next loop iteration)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._write_pending()

    def spawn(
        self,
        coro: Coroutine[Any, Any, None],
        *,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Run background work owned by the device (cancelled at stop)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if t.cancelled():
                return
            exc = t.exception()
            if exc is not None:
                if on_error is not None:
                    on_error(exc)
                else:
                    _LOGGER.error("device task failed: %s", exc)

        task.add_done_callback(done)

    # -- construction ------------------------------------------------------------------------

    def _build_ports(self, cfg: DeviceConfig) -> None:
        for inp_cfg in cfg.inputs:
            port = InputPort(inp_cfg, self.clock, self._on_input_change)
            port.initialize(self.driver.read_input(inp_cfg.id))
            self.inputs[inp_cfg.id] = port
        self._build_groups(cfg)
        for out_cfg in cfg.outputs:
            self._add_output(out_cfg)

    def _add_output(self, out_cfg: OutputConfig) -> OutputPort:
        port = OutputPort(
            out_cfg,
            self.clock,
            drive=self._driver_writer(out_cfg.id),
            on_change=self._on_output_change,
            on_persist=self._persist_output,
        )
        self.outputs[out_cfg.id] = port
        if out_cfg.interlock_group:
            self.groups[out_cfg.interlock_group].add(port)
        self.driver.write_output(out_cfg.id, port.circuit)
        return port

    def _driver_writer(self, port_id: str) -> Callable[[Circuit], None]:
        write = self.driver.write_output
        return lambda circuit: write(port_id, circuit)

    def _build_groups(self, cfg: DeviceConfig) -> None:
        old = self.groups
        self.groups = {
            g.id: InterlockGroupRuntime(g.id, g.dead_time_ms, self.clock)
            for g in cfg.interlock_groups
        }
        for group in old.values():
            for port in list(group.members.values()):
                group.remove(port)

    def _build_schedules(self, cfg: DeviceConfig) -> None:
        was_active = {sid: sched.active for sid, sched in self.schedules.items()}
        for sched in self.schedules.values():
            sched.stop()
        self.schedules = {}
        for sched_cfg in cfg.schedules:
            runtime = ScheduleRuntime(
                sched_cfg, self.clock, self._on_schedule_change, self._on_schedule_pulse
            )
            runtime.start()
            self.schedules[sched_cfg.id] = runtime
        intervals = {
            int(key[1])
            for rule in cfg.rules
            for cond in rule.conditions
            for key in cond.sources()
            if key[0] == "recurrence"
        }
        # A recurrence still in use keeps its phase (counted from device start).
        for interval in [i for i in self.recurrences if i not in intervals]:
            self.recurrences.pop(interval).stop()
        for interval in sorted(intervals - set(self.recurrences)):
            rec = RecurrenceRuntime(interval, self.clock, self._on_recurrence)
            rec.start()
            self.recurrences[interval] = rec
        # An edited schedule whose state changed with the edit says so, like any change.
        for sid, runtime in self.schedules.items():
            if sid in was_active and was_active[sid] != runtime.active:
                self.bus.publish(
                    Topic.SCHEDULE, sid, {"active": runtime.active}, cause=Cause("config")
                )
        for port in self.inputs.values():
            port.armed = self._armed(port.config)
        self._sync_timed_outputs(Cause("schedule", detail="start"))

    def _armed(self, cfg: InputConfig) -> bool:
        if cfg.arming_schedule is None:
            return True
        sched = self.schedules.get(cfg.arming_schedule)
        return sched.active if sched is not None else False

    def _sync_timed_outputs(self, cause: Cause) -> None:
        for port in self.outputs.values():
            sid = port.config.timed_schedule
            for owner in [o for o in port.holds if o.startswith("schedule:")]:
                if owner != f"schedule:{sid}":
                    port.release(owner, cause)
            if sid is None:
                continue
            sched = self.schedules.get(sid)
            if sched is not None and sched.active:
                port.hold(f"schedule:{sid}", Cause("schedule", detail=sid))
            else:
                port.release(f"schedule:{sid}", Cause("schedule", detail=sid))

    def _power_on(self) -> None:
        saved = self.persistence.load_outputs()
        for port in self.outputs.values():
            policy = port.config.power_on
            if policy is PowerOn.ON:
                port.activate(Cause("boot", detail="power-on state on"), 0)
            elif policy is PowerOn.RESTORE and port.id in saved:
                port.restore(saved[port.id])
            else:
                self._persist_output(port)

    # -- callbacks from the runtime ----------------------------------------------------------

    def _on_raw_input(self, port_id: str, circuit: Circuit, edge_mono_ns: int) -> None:
        port = self.inputs.get(port_id)
        if port is None:
            return
        self.stats.input_edges += 1
        port.feed(circuit, edge_mono_ns)

    def _input_data(self, port: InputPort) -> dict[str, Any]:
        return {
            "active": port.active,
            "circuit": port.circuit,  # a StrEnum: serialises as its string
            "tamper": port.tamper,
            "armed": port.armed,
        }

    def _on_input_change(self, port: InputPort, edge_mono_ns: int) -> None:
        self.bus.publish(
            Topic.INPUT,
            port.id,
            self._input_data(port),
            cause=self._input_cause,
            mono_ns=edge_mono_ns,
        )

    def _on_output_change(self, port: OutputPort, cause: Cause) -> None:
        data: dict[str, Any] = {"active": port.active, "circuit": port.circuit}
        trigger = self.runner.current_event
        if trigger is not None and cause.event_id == trigger.id:
            latency = self.clock.monotonic_ns() - trigger.mono_ns
            self.stats.last_latency_ns = latency
            self.stats.rule_actions += 1
            data["latency_us"] = latency // 1000
        if port.deadline_ns is not None:
            data["remaining_ms"] = port.remaining_ms()
        self.bus.publish(Topic.OUTPUT, port.id, data, cause=cause)

    def _persist_output(self, port: OutputPort) -> None:
        """Mark the output's state for the next flush (the same loop iteration as its events).

        Coalescing keeps SQLite off the actuation path and writes a relay that is re-triggered
        a thousand times a second once per iteration; a crash loses at most the changes of the
        iteration in progress, as for the event log.
        """
        self._dirty_outputs[port.id] = port
        self._schedule_flush()

    def _on_schedule_change(self, sched: ScheduleRuntime, active: bool) -> None:
        cause = Cause("schedule", detail=sched.id)
        self.bus.publish(Topic.SCHEDULE, sched.id, {"active": active}, cause=cause)
        for port in self.inputs.values():
            if port.config.arming_schedule == sched.id and port.armed != active:
                port.armed = active
                self.bus.publish(Topic.INPUT, port.id, self._input_data(port), cause=cause)
        self._sync_timed_outputs(cause)

    def _on_schedule_pulse(self, sched: ScheduleRuntime) -> None:
        self.bus.publish(
            Topic.SCHEDULE,
            sched.id,
            {"pulse": True},
            kind=EventKind.PULSE,
            stateful=False,
            cause=Cause("schedule", detail=sched.id),
        )

    def _on_recurrence(self, interval_s: int) -> None:
        self.bus.publish(
            Topic.RECURRENCE,
            str(interval_s),
            {"interval_s": interval_s},
            kind=EventKind.PULSE,
            stateful=False,
            cause=Cause("schedule", detail="recurrence"),
        )

    def _log_event(self, event: Event) -> None:
        self.persistence.append_event(event)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_timer is None:
            self._flush_timer = self.clock.call_later(0, self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_timer = None
        try:
            self._write_pending(wait=False)
        except Exception:
            _LOGGER.exception("writing the event log or output state failed")

    def _write_pending(self, *, wait: bool = True) -> None:
        dirty, self._dirty_outputs = self._dirty_outputs, {}
        for port_id, port in dirty.items():
            self.persistence.save_output(port_id, port.snapshot())
        self.persistence.flush_events(wait=wait)

    def publish_rule(self, rule_id: str, transition: str, cause: Cause) -> None:
        self.bus.publish(
            Topic.RULE_FIRED,
            rule_id,
            {"transition": transition},
            kind=EventKind.PULSE,
            stateful=False,
            cause=cause,
        )

    def audit(self, action: str, cause: Cause, **data: Any) -> None:
        """Record who did what (logins, configuration, manual control) in the event log as
        ``audit/<action>``; never pass secrets in ``data``."""
        self.bus.publish(
            f"audit/{action}",
            cause.user or "anonymous",
            data,
            kind=EventKind.PULSE,
            stateful=False,
            cause=cause,
        )

    def publish_rule_failure(self, rule_id: str, error: str, cause: Cause) -> None:
        self.bus.publish(
            Topic.RULE_FAILED,
            rule_id,
            {"error": error},
            kind=EventKind.PULSE,
            stateful=False,
            cause=cause,
        )

    # -- StateView (for conditions) ----------------------------------------------------------

    def state(self, key: SourceKey) -> bool:
        handler = self._state_handlers.get(key[0])
        return handler(key[1]) if handler is not None else False

    def getter(self, key: SourceKey) -> Callable[[], bool]:
        """A direct accessor for compiled rule conditions, bound to the current runtime object.

        The rule runner recompiles on every configuration change, so binding to the port
        object (instead of looking it up per evaluation) is safe and saves the lookups on the
        hot path of every input edge.
        """
        kind, ident = key
        if kind in ("input", "tamper", "armed") and ident in self.inputs:
            port = self.inputs[ident]
            if kind == "input":
                return lambda: port.active
            if kind == "tamper":
                return lambda: port.tamper
            return lambda: port.armed
        if kind == "output" and ident in self.outputs:
            out = self.outputs[ident]
            return lambda: out.active
        if kind == "vinput" and ident.isdigit() and 1 <= int(ident) <= VIRTUAL_INPUTS:
            vin = self.virtual_inputs[int(ident) - 1]
            return lambda: vin.active
        if kind == "manual":
            manual = self.manual
            return lambda: manual.active
        return lambda: self.state(key)

    def register_state(self, kind: str, handler: Callable[[str], bool]) -> None:
        """Let an adapter add a condition source kind (e.g. ``mqtt``)."""
        self._state_handlers[kind] = handler

    def add_state_source(self, source: StateSource) -> None:
        """Let a service (video, storage) add its stateful sources to what a new subscriber
        receives first: ``source()`` yields ``(topic, source, data)`` of its current state."""
        self._state_sources.append(source)

    @property
    def last_event_id(self) -> int:
        """The id of the newest event published (services resume from it after an outage)."""
        return self.bus.last_id

    def publish(
        self,
        topic: str,
        source: str,
        data: dict[str, Any],
        *,
        stateful: bool = True,
        cause: Cause | None = None,
    ) -> Event:
        """Publish a service's event (a stateful change, or a pulse with ``stateful=False``):
        logged, streamed and seen by the rules like the device's own."""
        kind = EventKind.CHANGED if stateful else EventKind.PULSE
        return self.bus.publish(topic, source, data, kind=kind, stateful=stateful, cause=cause)

    def _vinput_state(self, number: str) -> bool:
        index = int(number) - 1
        return 0 <= index < VIRTUAL_INPUTS and self.virtual_inputs[index].active

    # -- queries -----------------------------------------------------------------------------

    def port_ids(self) -> list[str]:
        """Port ids in terminal order."""
        return self.config.ordered_port_ids()

    def input(self, port_id: str) -> InputPort:
        port = self.inputs.get(port_id)
        if port is None:
            raise NotFound(f"no input port {port_id!r}")
        return port

    def output(self, port_id: str) -> OutputPort:
        port = self.outputs.get(port_id)
        if port is None:
            raise NotFound(f"no output port {port_id!r}")
        return port

    def port_status(self, port_id: str, *, dump_config: bool = True) -> dict[str, Any]:
        """The JSON shape of a port: id, name, direction, active, circuit, cause, and more.

        With ``dump_config=False`` the ``config`` entry is the port's configuration model
        itself, for a caller that serializes through a model anyway (the API's hot path).
        """
        if port_id in self.inputs:
            inp = self.inputs[port_id]
            return {
                "id": inp.id,
                "name": inp.config.name,
                "direction": "input",
                "active": inp.active,
                "circuit": inp.circuit.value,
                "cause": self._input_cause.to_dict(),
                "enabled": inp.config.enabled,
                "normal_state": inp.config.normal_state,
                "armed": inp.armed,
                "tamper": inp.tamper,
                "debouncing": inp.debouncing,
                "supervised": inp.config.supervised,
                "config": inp.config.model_dump(mode="json") if dump_config else inp.config,
            }
        out = self.output(port_id)
        return {
            "id": out.id,
            "name": out.config.name,
            "direction": "output",
            "active": out.active,
            "circuit": out.circuit.value,
            "cause": out.cause.to_dict(),
            "enabled": out.config.enabled,
            "active_state": out.config.active_state,
            "mode": out.config.mode.value,
            "pending": out.pending_on,
            "latched": out.latched,
            "remaining_ms": out.remaining_ms(),
            "holds": sorted(out.holds),
            "sequence_running": out.sequence_running,
            "config": out.config.model_dump(mode="json") if dump_config else out.config,
        }

    def ports_status(self, *, dump_config: bool = True) -> list[dict[str, Any]]:
        return [self.port_status(pid, dump_config=dump_config) for pid in self.port_ids()]

    def read_input_counters(self, port_id: str, *, reset: bool = True) -> InputCounters:
        """``input.txt`` counters; reading resets last/pulse and never changes an output."""
        return self.input(port_id).read_counters(reset=reset)

    def virtual_input_status(self) -> list[dict[str, Any]]:
        return [
            {
                "number": v.number,
                "active": v.active,
                "cause": v.cause.to_dict() if v.cause else None,
            }
            for v in self.virtual_inputs
        ]

    def events(self, query: EventQuery) -> list[Event]:
        self.flush()
        return self.persistence.query_events(query)

    def state_events(self) -> Iterator[Event]:
        """Every stateful source's current state, as ``initialized`` events (for subscribers)."""
        init = EventKind.INITIALIZED
        for pid in self.port_ids():
            if pid in self.inputs:
                inp = self.inputs[pid]
                yield self.bus.make(
                    Topic.INPUT,
                    pid,
                    self._input_data(inp),
                    kind=init,
                    cause=self._input_cause,
                    mono_ns=inp.changed_mono_ns,
                )
            elif pid in self.outputs:
                out = self.outputs[pid]
                yield self.bus.make(
                    Topic.OUTPUT,
                    pid,
                    {"active": out.active, "circuit": out.circuit.value},
                    kind=init,
                    cause=out.cause,
                    mono_ns=out.changed_mono_ns,
                )
        for vin in self.virtual_inputs:
            yield self.bus.make(
                Topic.VIRTUAL_INPUT,
                str(vin.number),
                {"active": vin.active},
                kind=init,
                cause=vin.cause,
            )
        yield self.bus.make(
            Topic.MANUAL_TRIGGER,
            "manual",
            {"active": self.manual.active},
            kind=init,
            cause=self.manual.cause,
        )
        for sched in self.schedules.values():
            if sched.kind == "interval":
                yield self.bus.make(Topic.SCHEDULE, sched.id, {"active": sched.active}, kind=init)
        for state_source in self._state_sources:
            for topic, source, data in state_source():
                yield self.bus.make(topic, source, data, kind=init)

    def subscribe(
        self,
        callback: EventCallback,
        *,
        accept: EventFilter | None = None,
        replay_state: bool = True,
    ) -> Subscription:
        """Receive events: first the current state of everything stateful, then changes."""
        return self.bus.subscribe(callback, accept=accept, replay_state=replay_state)

    # -- commands ----------------------------------------------------------------------------

    def set_output(
        self, port_id: str, active: bool, cause: Cause, *, duration_ms: int | None = None
    ) -> None:
        """Manual control: Start (for ``duration_ms``, default continuous) or Stop."""
        port = self.output(port_id)
        if not port.config.enabled:
            raise InvalidRequest(f"output {port_id!r} is disabled")
        if duration_ms is not None and not 0 <= duration_ms <= 86_400_000:
            raise InvalidRequest("duration_ms must be between 0 and 86400000")
        if active:
            port.activate(cause, 0 if duration_ms is None else duration_ms)
        else:
            port.deactivate(cause)

    def trigger_output(
        self, port_id: str, cause: Cause, *, duration_ms: int | None = None
    ) -> OutputPort:
        """A triggered activation with the output's alarm time and re-trigger policy."""
        port = self.output(port_id)
        if port.config.enabled:
            port.activate(cause, duration_ms)
        return port

    def hold_output(self, port_id: str, owner: str, cause: Cause) -> None:
        port = self.output(port_id)
        if port.config.enabled:
            port.hold(owner, cause)

    def release_output(self, port_id: str, owner: str, cause: Cause) -> None:
        self.output(port_id).release(owner, cause)

    def run_sequence(self, port_id: str, steps: list[StateStep], cause: Cause) -> None:
        port = self.output(port_id)
        if not port.config.enabled:
            raise InvalidRequest(f"output {port_id!r} is disabled")
        if not steps:
            raise InvalidRequest("a sequence needs at least one step")
        port.run_sequence(steps, cause)

    def set_virtual_input(
        self, number: int, active: bool, cause: Cause, *, duration_ms: int | None = None
    ) -> None:
        """Set virtual input 1-32; with ``duration_ms`` it reverts by itself afterwards."""
        if not 1 <= number <= VIRTUAL_INPUTS:
            raise NotFound(f"no virtual input {number} (1-{VIRTUAL_INPUTS})")
        if duration_ms is not None and not 1 <= duration_ms <= 86_400_000:
            raise InvalidRequest("duration_ms must be between 1 and 86400000")
        vin = self.virtual_inputs[number - 1]
        if vin.timer is not None:
            vin.timer.cancel()
            vin.timer = None
        if duration_ms is not None:
            revert = Cause("timer", rule=cause.rule, user=cause.user, detail="duration elapsed")
            vin.timer = self.clock.call_later(
                duration_ms * NS_PER_MS,
                lambda: self._vinput_expired(number, not active, revert),
            )
        self._set_vinput(vin, active, cause)

    def _vinput_expired(self, number: int, active: bool, cause: Cause) -> None:
        vin = self.virtual_inputs[number - 1]
        vin.timer = None
        self._set_vinput(vin, active, cause)

    def _set_vinput(self, vin: VirtualInput, active: bool, cause: Cause) -> None:
        if vin.active == active:
            return
        vin.active = active
        vin.cause = cause
        self.bus.publish(Topic.VIRTUAL_INPUT, str(vin.number), {"active": active}, cause=cause)

    def set_manual_trigger(self, active: bool, cause: Cause) -> None:
        """The Manual trigger button: a stateful on/off source for rules."""
        if self.manual.active == active:
            return
        self.manual.active = active
        self.manual.cause = cause
        self.bus.publish(Topic.MANUAL_TRIGGER, "manual", {"active": active}, cause=cause)

    def pulse_manual_trigger(self, cause: Cause) -> None:
        """Press and release the manual trigger (fires 'once' rules on it)."""
        self.set_manual_trigger(True, cause)
        self.set_manual_trigger(False, cause)

    # -- manual trigger sequences (VAPIX io/virtualinput.cgi) ------------------------------

    def run_manual_trigger_sequence(self, steps: list[StateStep], cause: Cause) -> None:
        """Drive the manual trigger through ``steps`` (each: a state held for its duration);
        it keeps the last step's state. A new sequence replaces a running one."""
        if not steps:
            raise InvalidRequest("a sequence needs at least one step")
        if self._manual_timer is not None:
            self._manual_timer.cancel()
            self._manual_timer = None
        self._manual_step(list(steps), 0, cause)

    def _manual_step(self, steps: list[StateStep], index: int, cause: Cause) -> None:
        self._manual_timer = None
        step = steps[index]
        self.set_manual_trigger(step.active, cause)
        if index + 1 < len(steps):
            self._manual_timer = self.clock.call_later(
                step.duration_ms * NS_PER_MS, lambda: self._manual_step(steps, index + 1, cause)
            )

    def test_rule(self, rule_id: str, cause: Cause) -> None:
        """Run a rule's action now, regardless of its conditions (the Test button)."""
        if rule_id not in self.runner.rules.states:
            raise NotFound(f"no rule {rule_id!r}")
        self.runner.fire(rule_id, cause)

    # -- recipients and the outbox --------------------------------------------------------------

    def enqueue(self, delivery: Delivery, on_failed: FailureCallback | None = None) -> bool:
        """Queue a delivery in the durable outbox (persisted before the first attempt).

        Returns False when a delivery with the same idempotency key already exists."""
        return self.outbox.enqueue(delivery, on_failed)

    def outbox_status(self) -> dict[str, Any]:
        """Pending and failed deliveries, and each recipient's state."""
        return self.outbox.status()

    def recipient_states(self) -> dict[str, dict[str, Any]]:
        return {r["recipient"]: r for r in self.outbox.recipient_states()}

    def recipient(self, recipient_id: str) -> RecipientSpec:
        for spec in self.config.recipients:
            if spec.id == recipient_id:
                return spec
        raise NotFound(f"no recipient {recipient_id!r}")

    async def test_recipient(self, recipient_id: str) -> tuple[bool, str]:
        """The Test button: try the recipient now; ``(ok, message a user can act on)``."""
        spec = self.recipient(recipient_id)
        try:
            return True, await sender_for(spec).test(spec)
        except DeliveryError as exc:
            return False, str(exc)
        except (TimeoutError, OSError) as exc:
            return False, str(exc) or type(exc).__name__

    def put_recipient(self, recipient: dict[str, Any]) -> RecipientSpec:
        def edit(data: dict[str, Any]) -> None:
            items = data["recipients"]
            for index, existing in enumerate(items):
                if existing["id"] == recipient.get("id"):
                    items[index] = recipient
                    return
            items.append(recipient)

        self.edit_config(edit)
        return self.recipient(str(recipient["id"]))

    def delete_recipient(self, recipient_id: str) -> None:
        self.recipient(recipient_id)
        self.edit_config(
            lambda data: data.__setitem__(
                "recipients", [r for r in data["recipients"] if r["id"] != recipient_id]
            )
        )

    # -- simulator ---------------------------------------------------------------------------

    @property
    def simulation(self) -> Simulation:
        if self._simulation is None:
            raise NotSimulated(f"the {self.driver.name!r} driver is real hardware")
        return self._simulation

    def sim_set_circuit(self, port_id: str, circuit: Circuit) -> None:
        self.input(port_id)
        try:
            self.simulation.set_circuit(port_id, circuit)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc

    def sim_fault(self, port_id: str, fault: str, **params: Any) -> None:
        self.input(port_id)
        try:
            self.simulation.fault(port_id, fault, **params)
        except (ValueError, TypeError) as exc:
            raise InvalidRequest(str(exc)) from exc

    # -- configuration -----------------------------------------------------------------------

    def update_config(self, new: DeviceConfig, *, expected_revision: int | None = None) -> int:
        """Save and apply a whole configuration; nothing changes when saving fails."""
        if expected_revision is not None and expected_revision != self.revision:
            raise Conflict(f"configuration revision is {self.revision}, not {expected_revision}")
        if self._save_config is not None:
            self.revision = self._save_config(new, expected_revision)
        else:
            self.revision += 1
        self._apply(new)
        self.bus.publish(
            Topic.CONFIG_CHANGED,
            "device",
            {"revision": self.revision},
            kind=EventKind.PULSE,
            stateful=False,
            cause=Cause("config"),
        )
        return self.revision

    def _validated(self, data: dict[str, Any]) -> DeviceConfig:
        try:
            return DeviceConfig.model_validate(data)
        except ValidationError as exc:
            raise ConfigInvalid(exc) from None

    def edit_config(self, edit: Callable[[dict[str, Any]], None]) -> int:
        """Apply ``edit`` to a JSON copy of the configuration, validate, save and apply."""
        data = self.config.model_dump(mode="json")
        edit(data)
        return self.update_config(self._validated(data))

    def patch_port(self, port_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Change some configuration fields of one port."""
        if "id" in patch and patch["id"] != port_id:
            raise InvalidRequest("a port id cannot be changed")

        def edit(data: dict[str, Any]) -> None:
            for section in ("inputs", "outputs"):
                for port in data[section]:
                    if port["id"] == port_id:
                        port.update(patch)
                        return
            raise NotFound(f"no port {port_id!r}")

        self.edit_config(edit)
        return self.port_status(port_id)

    def put_rule(self, rule: dict[str, Any]) -> RuleConfig:
        def edit(data: dict[str, Any]) -> None:
            rules = data["rules"]
            for index, existing in enumerate(rules):
                if existing["id"] == rule.get("id"):
                    rules[index] = rule
                    return
            rules.append(rule)

        self.edit_config(edit)
        return self.rule(str(rule["id"]))

    def delete_rule(self, rule_id: str) -> None:
        self.rule(rule_id)
        self.edit_config(
            lambda data: data.__setitem__("rules", [r for r in data["rules"] if r["id"] != rule_id])
        )

    def rule(self, rule_id: str) -> RuleConfig:
        for rule in self.config.rules:
            if rule.id == rule_id:
                return rule
        raise NotFound(f"no rule {rule_id!r}")

    def rule_status(self, rule_id: str) -> dict[str, Any]:
        rule = self.rule(rule_id)
        state = self.runner.rules.states.get(rule_id)
        out = rule.model_dump(mode="json")
        out["status"] = {
            "value": state.value if state else False,
            "holding": state.holding if state else False,
            "fired": state.fired if state else 0,
            "suppressed": state.suppressed if state else 0,
        }
        return out

    def put_schedule(self, schedule: dict[str, Any]) -> ScheduleConfig:
        def edit(data: dict[str, Any]) -> None:
            items = data["schedules"]
            for index, existing in enumerate(items):
                if existing["id"] == schedule.get("id"):
                    items[index] = schedule
                    return
            items.append(schedule)

        self.edit_config(edit)
        return self.schedule(str(schedule["id"]))

    def delete_schedule(self, schedule_id: str) -> None:
        self.schedule(schedule_id)
        self.edit_config(
            lambda data: data.__setitem__(
                "schedules", [s for s in data["schedules"] if s["id"] != schedule_id]
            )
        )

    def schedule(self, schedule_id: str) -> ScheduleConfig:
        for sched in self.config.schedules:
            if sched.id == schedule_id:
                return sched
        raise NotFound(f"no schedule {schedule_id!r}")

    def schedule_status(self, schedule_id: str) -> dict[str, Any]:
        sched = self.schedule(schedule_id)
        out = sched.model_dump(mode="json")
        runtime = self.schedules.get(schedule_id)
        out["active"] = runtime.active if runtime else False
        return out

    def _apply(self, new: DeviceConfig) -> None:
        """Reconfigure the running device in place, keeping the state of unchanged ports."""
        old = self.config
        self.config = new
        if not self.started:
            return
        cause = Cause("config")
        new_outputs = {p.id: p for p in new.outputs}
        # A removed output is driven idle while the driver still knows its line.
        for pid in list(self.outputs):
            if pid not in new_outputs:
                port_out = self.outputs.pop(pid)
                port_out.deactivate(cause)
                port_out.close()
                if port_out.group is not None:
                    port_out.group.remove(port_out)
        self.driver.reconfigure(new.inputs, new.outputs)
        new_inputs = {p.id: p for p in new.inputs}
        for pid in list(self.inputs):
            if pid not in new_inputs:
                self.inputs.pop(pid).close()
        for pid, inp_cfg in new_inputs.items():
            port = self.inputs.get(pid)
            if port is None:
                port = InputPort(inp_cfg, self.clock, self._on_input_change)
                port.initialize(self.driver.read_input(pid))
                self.inputs[pid] = port
            elif port.config != inp_cfg and port.reconfigure(inp_cfg):
                self._on_input_change(port, self.clock.monotonic_ns())
        groups_changed = old.interlock_groups != new.interlock_groups or any(
            self.outputs[p.id].config.interlock_group != p.interlock_group
            for p in new.outputs
            if p.id in self.outputs
        )
        if groups_changed:
            self._build_groups(new)
            for port_out in self.outputs.values():
                gid = new_outputs[port_out.id].interlock_group
                if gid:
                    self.groups[gid].add(port_out)
            for port_out in self.outputs.values():
                port_out.regrouped()
        for pid, out_cfg in new_outputs.items():
            existing = self.outputs.get(pid)
            if existing is None:
                self._add_output(out_cfg)
            elif existing.config != out_cfg:
                existing.reconfigure(out_cfg)
        if (old.schedules, old.rules, old.inputs, old.outputs) != (
            new.schedules,
            new.rules,
            new.inputs,
            new.outputs,
        ):
            armed_before = {pid: inp.armed for pid, inp in self.inputs.items()}
            self._build_schedules(new)
            for pid, inp in self.inputs.items():
                if armed_before.get(pid, inp.armed) != inp.armed:
                    self.bus.publish(Topic.INPUT, pid, self._input_data(inp), cause=cause)
        self.runner.load(new.rules)


class ConfigInvalid(InvalidRequest):
    """A configuration change failed validation; ``messages`` name each field."""

    def __init__(self, exc: ValidationError) -> None:
        self.errors = exc.errors()
        self.messages = [
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" if err["loc"] else err["msg"]
            for err in self.errors
        ]
        super().__init__("; ".join(self.messages))
