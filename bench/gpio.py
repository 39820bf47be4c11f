"""GPIO edge-to-event latency, measured inside the gpio-sim VM from the kernel's edge timestamp.

The host boots the VM of ``tests/hardware`` (software emulation: figures are an upper bound,
real boards are faster) and runs ``python -m bench.gpio --guest`` in it: a real Device on the
gpio driver with a rule input → relay, the input driven through gpio-sim's ``pull`` attribute.
Reported (no target): kernel edge timestamp → input event and → relay written, and the sysfs
write → input event, p50/p99 in microseconds.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MARKER = "CAMIO-BENCH-GPIO"
EDGES = 200


def _paths() -> None:
    for sub in ("tests/hardware", "tests/hardware/guest"):
        path = str(REPO / sub)
        if path not in sys.path:
            sys.path.insert(0, path)


def _pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000, 1)


async def _guest() -> dict[str, Any]:
    _paths()
    from gpiosim_chip import SimChip  # type: ignore[import-not-found]

    import camio.actions  # noqa: F401  (registers the action kinds)
    from camio.core.clock import SystemClock
    from camio.core.config import DeviceConfig
    from camio.core.events import Event
    from camio.engine.device import Device
    from camio.hardware.gpio import GpioDriver

    chip = SimChip({0: "DI1", 4: "RELAY1"})
    config = DeviceConfig.model_validate(
        {
            "hardware": {
                "driver": "gpio",
                "gpio": {
                    "lines": {"in1": {"line": "DI1", "kernel_debounce_ms": 0}, "out1": "RELAY1"}
                },
            },
            "inputs": [{"id": "in1", "name": "in1", "debounce_on_ms": 0, "debounce_off_ms": 0}],
            "outputs": [{"id": "out1", "name": "out1", "alarm_time_ms": 0}],
            "rules": [
                {
                    "id": "r",
                    "name": "r",
                    "conditions": [{"kind": "input", "port": "in1"}],
                    "action": {"kind": "set_output", "port": "out1"},
                    "action_mode": "while_active",
                }
            ],
        }
    )
    chip.pull(0, 0)
    device = Device(config, driver=GpioDriver(config.hardware.gpio), clock=SystemClock())
    seen: dict[str, tuple[int, int]] = {}
    done = asyncio.Event()

    def on_event(event: Event) -> None:
        if event.topic in ("io/input", "io/output"):
            seen[event.topic] = (event.mono_ns, time.monotonic_ns())
            if event.topic == "io/output":
                done.set()

    device.bus.subscribe(on_event)
    device.start()
    edge_to_event: list[int] = []
    edge_to_relay: list[int] = []
    write_to_event: list[int] = []
    try:
        for index in range(EDGES):
            seen.clear()
            done.clear()
            level = 1 - index % 2
            before = time.monotonic_ns()
            chip.pull(0, level)
            await asyncio.wait_for(done.wait(), 10)
            edge_ns, input_at = seen["io/input"]
            _, relay_at = seen["io/output"]
            assert chip.value(4) == level
            edge_to_event.append(input_at - edge_ns)
            edge_to_relay.append(relay_at - edge_ns)
            write_to_event.append(input_at - before)
            await asyncio.sleep(0.002)
    finally:
        device.stop()
        chip.remove()
    return {
        "gpio_edges": EDGES,
        "gpio_edge_to_event_p50_us": _pct(edge_to_event, 0.5),
        "gpio_edge_to_event_p99_us": _pct(edge_to_event, 0.99),
        "gpio_edge_to_relay_p50_us": _pct(edge_to_relay, 0.5),
        "gpio_edge_to_relay_p99_us": _pct(edge_to_relay, 0.99),
        "gpio_write_to_event_p50_us": _pct(write_to_event, 0.5),
        "gpio_write_to_event_p99_us": _pct(write_to_event, 0.99),
        "gpio_edge_to_event_mean_us": round(statistics.fmean(edge_to_event) / 1000, 1),
    }


def gpio_latency() -> dict[str, Any]:
    """Boot the VM and run the guest half; figures, or why there are none."""
    _paths()
    from gpiosim_vm import (  # type: ignore[import-not-found]
        VmError,
        ensure_packages,
        missing_tools,
        run_in_guest,
    )

    if missing_tools():
        ensure_packages()
    if missing_tools():
        return {"gpio_skipped": f"missing {', '.join(missing_tools())}"}
    try:
        python = str(Path(sys.prefix) / "bin" / "python")
        run = run_in_guest([python, "-m", "bench.gpio", "--guest"], timeout=600, cwd=str(REPO))
    except VmError as exc:
        return {"gpio_skipped": str(exc)[:2000]}
    match = re.search(rf"^{MARKER} (.*)$", run.console, re.M)
    if run.rc != 0 or match is None:
        return {"gpio_skipped": f"guest failed (rc={run.rc}): {run.console[-2000:]}"}
    results: dict[str, Any] = json.loads(match.group(1))
    results["gpio_vm_run_s"] = round(run.seconds, 1)
    results["gpio_note"] = "qemu TCG emulation: an upper bound for real boards"
    return results


def main(argv: list[str]) -> int:
    if argv[:1] == ["--guest"]:
        print(f"{MARKER} {json.dumps(asyncio.run(_guest()))}", flush=True)
        return 0
    print(json.dumps(gpio_latency(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
