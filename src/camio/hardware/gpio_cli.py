"""``camio gpio list`` and ``camio gpio probe``: what the kernel offers, and a wiring check.

Both work on the local GPIO character devices (run them on the board, with camio stopped or
on lines camio does not hold).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from typing import Any

from camio.core.clock import SystemClock
from camio.core.gpio_config import GpioConfig
from camio.core.ports import Circuit, InputConfig, OutputConfig
from camio.hardware.base import DriverError
from camio.hardware.gpio import GpioDriver, KernelGpio


def add_gpio_commands(sub: Any) -> None:
    """Register ``gpio list`` and ``gpio probe`` on the top-level subparsers."""
    gpio = sub.add_parser("gpio", help="GPIO lines on this machine: list them, check wiring")
    gpio_sub = gpio.add_subparsers(dest="gpio_cmd", required=True)
    listing = gpio_sub.add_parser("list", help="chips and lines, with the program holding each")
    listing.add_argument("--chip", default=None, help="one chip only (gpiochipN or its label)")
    listing.set_defaults(func=cmd_gpio_list)
    probe = gpio_sub.add_parser(
        "probe", help="toggle an output and watch an input (an installer's wiring check)"
    )
    probe.add_argument("--output", default=None, help="line to toggle (GPIO17, chip:offset...)")
    probe.add_argument("--input", default=None, help="line to watch")
    probe.add_argument("--board", default="generic", help="board profile (default: generic)")
    probe.add_argument("--chip", default=None, help="default chip for bare offsets")
    probe.add_argument(
        "--bias", default="as-is", choices=["as-is", "pull-up", "pull-down", "disabled"]
    )
    probe.add_argument("--input-active-low", action="store_true")
    probe.add_argument("--output-active-low", action="store_true")
    probe.add_argument("--count", type=int, default=3, help="output on/off cycles (default 3)")
    probe.add_argument("--period-ms", type=int, default=1000, help="one on/off cycle")
    probe.add_argument(
        "--duration-ms", type=int, default=5000, help="how long to watch without --output"
    )
    probe.set_defaults(func=cmd_gpio_probe)


def cmd_gpio_list(args: argparse.Namespace) -> int:
    try:
        import gpiod
    except ImportError:
        print("the 'gpiod' package is not installed (pip install gpiod)")
        return 1
    system = KernelGpio()
    paths = system.chip_paths()
    if not paths:
        print("no GPIO chips found (/dev/gpiochip*): no GPIO support, or no permission")
        return 1
    for path in paths:
        try:
            with gpiod.Chip(path) as chip:
                info = chip.get_info()
                if args.chip not in (None, info.name, info.label, path):
                    continue
                print(f"{info.name} [{info.label}] {info.num_lines} lines")
                for offset in range(info.num_lines):
                    line = chip.get_line_info(offset)
                    flags = [str(line.direction.name).lower()]
                    if line.active_low:
                        flags.append("active-low")
                    if line.used:
                        flags.append(f"used by {line.consumer or '?'!r}")
                    name = line.name or "-"
                    print(f"  {offset:4d}  {name:<20} {', '.join(flags)}")
        except OSError as exc:
            print(f"{os.path.basename(path)}: {exc}")
    return 0


def cmd_gpio_probe(args: argparse.Namespace) -> int:
    if not args.output and not args.input:
        print("give --output, --input or both")
        return 2
    return asyncio.run(_probe(args))


async def _probe(args: argparse.Namespace) -> int:
    logging.getLogger("camio.hardware.gpio").setLevel(logging.CRITICAL)  # errors printed below
    lines: dict[str, Any] = {}
    if args.output:
        lines["probe_out"] = {"line": args.output, "active_low": args.output_active_low}
    if args.input:
        lines["probe_in"] = {
            "line": args.input,
            "bias": args.bias,
            "active_low": args.input_active_low,
            "kernel_debounce_ms": 0,
        }
    config = GpioConfig.model_validate({"board": args.board, "chip": args.chip, "lines": lines})
    driver = GpioDriver(config)
    started = time.monotonic_ns()
    edges: list[tuple[int, Circuit]] = []

    def sink(_port: str, circuit: Circuit, edge_ns: int) -> None:
        edges.append((edge_ns, circuit))
        print(f"  {(edge_ns - started) / 1e6:9.1f} ms  input {circuit.value}")

    inputs = [InputConfig(id="probe_in", name="probe input")] if args.input else []
    outputs = [OutputConfig(id="probe_out", name="probe output")] if args.output else []
    try:
        driver.open(inputs, outputs, sink, SystemClock())
    except DriverError as exc:
        print(f"error: {exc}")
        return 1
    try:
        for message in driver.failures.values():
            print(f"error: {message}")
        if driver.failures:
            return 1
        for port, status in driver.status().items():
            print(f"{port.removeprefix('probe_')}: {status['line']}")
        if args.input:
            print(f"  {0.0:9.1f} ms  input {driver.read_input('probe_in').value}")
        if not args.output:
            await asyncio.sleep(args.duration_ms / 1000)
            print(f"{len(edges)} input edge(s)")
            return 0
        followed = 0
        half = args.period_ms / 2000
        for _ in range(args.count):
            for circuit in (Circuit.CLOSED, Circuit.OPEN):
                now_ms = (time.monotonic_ns() - started) / 1e6
                print(f"  {now_ms:9.1f} ms  output {circuit.value}")
                driver.write_output("probe_out", circuit)
                await asyncio.sleep(half)
                if args.input and driver.read_input("probe_in") == circuit:
                    followed += 1
        if args.input:
            total = 2 * args.count
            print(f"the input followed the output {followed}/{total} times")
            return 0 if followed == total else 1
        return 0
    finally:
        driver.close()
