"""Engine benchmarks: edge-to-actuation latency and rule-engine throughput.

Both run the real engine (Device facade, debounce, rule index, actions, event bus, SQLite event
log on a temporary disk file) with the simulated driver, on a running asyncio loop with the real
clock, as the daemon does. The network API is not part of these figures.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import camio.actions  # noqa: F401  (registers action kinds)
from camio.core.clock import SystemClock
from camio.core.config import DeviceConfig
from camio.core.ports import Circuit
from camio.engine.device import Device
from camio.hardware.sim import SimDriver
from camio.store.db import open_database
from camio.store.persistence import StorePersistence


def _ports(inputs: int, outputs: int) -> dict[str, Any]:
    """Ports with debounce 0, so the figures measure the engine, not the filter time."""
    return {
        "inputs": [
            {"id": f"in{i}", "name": f"Input {i}", "debounce_on_ms": 0, "debounce_off_ms": 0}
            for i in range(1, inputs + 1)
        ],
        "outputs": [
            {"id": f"out{i}", "name": f"Relay {i}", "alarm_time_ms": 0}
            for i in range(1, outputs + 1)
        ],
    }


def _rule(
    rule_id: str, conditions: list[dict[str, Any]], action: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {"id": rule_id, "name": rule_id, "conditions": conditions, "action": action, **extra}


def installation_config(rules: int = 1000, inputs: int = 16, outputs: int = 8) -> DeviceConfig:
    """A large installation: 1,000 rules over inputs, virtual inputs, outputs and schedules.

    Each input is watched by four rules (drive a relay for its alarm time, signal a virtual
    input at night, a trigger-only rule gated by the manual trigger, an inverted "door closed"
    rule); the other rules watch the 32 virtual inputs, the outputs, the manual trigger and
    schedules, as chained and scheduled rules do. Thanks to the rule index an input edge costs
    the same whether the other rules number ten or ten thousand.
    """
    doc = _ports(inputs, outputs)
    # A maintenance window that is over (one occurrence in the past): rules that need it are
    # evaluated on every edge but never hold, whatever the time of day the benchmark runs.
    doc["schedules"] = [
        {
            "id": "night",
            "name": "maintenance",
            "timezone": "Europe/Berlin",
            "entries": [{"start": "2020-01-01T22:00:00", "duration_s": 8 * 3600}],
        },
    ]
    out_rules: list[dict[str, Any]] = []
    for i in range(1, inputs + 1):
        port, relay = f"in{i}", f"out{(i - 1) % outputs + 1}"
        out_rules += [
            _rule(
                f"relay{i}",
                [{"kind": "input", "port": port}],
                {"kind": "set_output", "port": relay, "duration_ms": 3_600_000},
            ),
            _rule(
                f"night{i}",
                [{"kind": "input", "port": port}, {"kind": "schedule", "schedule": "night"}],
                {"kind": "set_virtual_input", "number": (i - 1) % 16 + 1},
            ),
            _rule(
                f"manual{i}",
                [{"kind": "input", "port": port}, {"kind": "manual_trigger"}],
                {"kind": "set_virtual_input", "number": (i - 1) % 16 + 17},
                trigger_first=True,
            ),
            _rule(
                f"closed{i}",
                [
                    {"kind": "input", "port": port, "invert": True},
                    {"kind": "virtual_input", "number": 32},
                ],
                {"kind": "set_output", "port": relay, "active": False},
            ),
        ]
    n = 0
    while len(out_rules) < rules:
        kind = n % 4
        if kind == 0:
            conditions: list[dict[str, Any]] = [{"kind": "virtual_input", "number": n % 16 + 1}]
            action: dict[str, Any] = {"kind": "set_output", "port": f"out{n % outputs + 1}"}
            extra: dict[str, Any] = {"action_mode": "while_active"}
        elif kind == 1:
            conditions = [{"kind": "output", "port": f"out{n % outputs + 1}"}]
            action = {"kind": "set_virtual_input", "number": n % 16 + 17}
            extra = {}
        elif kind == 2:
            conditions = [
                {"kind": "schedule", "schedule": "night"},
                {"kind": "virtual_input", "number": n % 16 + 17},
            ]
            action = {"kind": "set_output", "port": f"out{n % outputs + 1}"}
            extra = {"wait_between_actions_ms": 1000}
        else:
            conditions = [{"kind": "manual_trigger"}]
            action = {"kind": "set_virtual_input", "number": n % 16 + 17, "duration_ms": 1000}
            extra = {}
        out_rules.append(_rule(f"r{n}", conditions, action, **extra))
        n += 1
    doc["rules"] = out_rules
    return DeviceConfig.model_validate(doc)


def cascade_config(rules: int = 1000, inputs: int = 16, outputs: int = 8) -> DeviceConfig:
    """The worst case: every rule chains. Inputs drive virtual inputs 1-16 (half of the rules
    on inputs), those drive outputs, outputs drive virtual inputs 17-32; all while-active, so
    every input edge starts or stops about 30 rules and their chained rules."""
    doc = _ports(inputs, outputs)
    doc["rules"] = []
    for n in range(rules):
        kind = n % 4
        if kind in (0, 1):
            conditions: list[dict[str, Any]] = [{"kind": "input", "port": f"in{n % inputs + 1}"}]
            if kind == 1:
                other = f"in{(n + 5) % inputs + 1}"
                conditions.append({"kind": "input", "port": other, "invert": True})
            action: dict[str, Any] = {"kind": "set_virtual_input", "number": n % 16 + 1}
        elif kind == 2:
            conditions = [{"kind": "virtual_input", "number": n % 16 + 1}]
            action = {"kind": "set_output", "port": f"out{n % outputs + 1}"}
        else:
            conditions = [{"kind": "output", "port": f"out{n % outputs + 1}"}]
            action = {"kind": "set_virtual_input", "number": n % 16 + 17}
        doc["rules"].append(_rule(f"r{n}", conditions, action, action_mode="while_active"))
    return DeviceConfig.model_validate(doc)


def _device(config: DeviceConfig, data_dir: Path) -> tuple[Device, SimDriver]:
    clock = SystemClock()
    conn = open_database(data_dir / "camio.db")
    persistence = StorePersistence(
        conn,
        max_events=1_000_000,
        max_age_s=86_400,
        wall_clock=clock.wall_ns,
    )
    driver = SimDriver()
    device = Device(config, driver=driver, clock=clock, persistence=persistence)
    device.start()
    return device, driver


async def latency(samples: int = 5000, rules: int = 200) -> dict[str, float]:
    """Input circuit change to the relay driven by a rule, through the whole engine.

    One rule (of ``rules``) drives ``out1`` while ``in1`` is active; the others watch other
    inputs. Each sample closes then opens the input from a loop callback, so the event-log
    flushes and loop housekeeping of the previous sample run in between, as in the daemon.
    """
    config_doc = installation_config(rules=rules - 1).model_dump(mode="json")
    config_doc["outputs"].append({"id": "strike", "name": "Door strike", "alarm_time_ms": 0})
    config_doc["rules"].append(
        _rule(
            "door",
            [{"kind": "input", "port": "in16"}],
            {"kind": "set_output", "port": "strike"},
            action_mode="while_active",
        )
    )
    config = DeviceConfig.model_validate(config_doc)
    with tempfile.TemporaryDirectory() as tmp:
        device, driver = _device(config, Path(tmp))
        driven: list[int] = []
        write = driver.write_output

        def traced_write(port_id: str, circuit: Circuit) -> None:
            write(port_id, circuit)
            if port_id == "strike" and circuit is Circuit.CLOSED:
                driven.append(time.perf_counter_ns())

        driver.write_output = traced_write  # type: ignore[method-assign]
        # The output's drive callback was bound at start; rebuild it to go through the trace.
        device.outputs["strike"]._drive = lambda c: traced_write("strike", c)
        results: list[float] = []
        for _ in range(samples):
            before = len(driven)
            t0 = time.perf_counter_ns()
            device.sim_set_circuit("in16", Circuit.CLOSED)
            if len(driven) == before:
                raise RuntimeError("the rule did not drive the relay")
            results.append((driven[-1] - t0) / 1000)
            await asyncio.sleep(0)
            device.sim_set_circuit("in16", Circuit.OPEN)
            await asyncio.sleep(0)
        device.stop()
        device.persistence.close()
    results.sort()
    return {
        "latency_p50_us": round(statistics.median(results), 2),
        "latency_p99_us": round(results[int(len(results) * 0.99) - 1], 2),
        "latency_max_us": round(results[-1], 2),
        "latency_samples": samples,
        "latency_rules": rules,
    }


async def _transitions(config: DeviceConfig, transitions: int) -> tuple[float, int]:
    """Toggle the inputs ``transitions`` times; returns (seconds, bus events published)."""
    with tempfile.TemporaryDirectory() as tmp:
        device, _ = _device(config, Path(tmp))
        ports = [p.id for p in config.inputs]
        state = dict.fromkeys(ports, False)
        events_before = device.bus.published
        start = time.perf_counter()
        for n in range(transitions):
            port = ports[(n * 7) % len(ports)]
            state[port] = not state[port]
            device.sim_set_circuit(port, Circuit.CLOSED if state[port] else Circuit.OPEN)
            if n % 500 == 499:
                # Let the loop run, as the daemon's would: the device's scheduled flush hands
                # the buffered events to the log writer.
                await asyncio.sleep(0)
        device.flush()  # everything written before the clock stops
        elapsed = time.perf_counter() - start
        events = device.bus.published - events_before
        device.stop()
        device.persistence.close()
    return elapsed, events


async def throughput(transitions: int = 100_000, rules: int = 1000) -> dict[str, float]:
    """Input transitions processed per second with ``rules`` rules loaded.

    A transition is one debounced input change and everything it causes: the input event,
    the evaluation of every rule that depends on that input, their actions, the events those
    cause and the rules chained on them, all written to the SQLite event log (flushed every
    500 transitions, as the daemon batches per loop iteration).
    """
    elapsed, events = await _transitions(installation_config(rules), transitions)
    return {
        "throughput_events_per_s": round(transitions / elapsed),
        "throughput_transitions": transitions,
        "throughput_rules": rules,
        "throughput_bus_events_per_s": round(events / elapsed),
    }


async def cascade(transitions: int = 10_000, rules: int = 1000) -> dict[str, float]:
    """The same measurement on :func:`cascade_config`, where every edge chains dozens of rules."""
    elapsed, events = await _transitions(cascade_config(rules), transitions)
    return {
        "cascade_transitions_per_s": round(transitions / elapsed),
        "cascade_bus_events_per_transition": round(events / transitions, 1),
        "cascade_bus_events_per_s": round(events / elapsed),
    }
