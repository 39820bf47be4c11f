"""Run every benchmark and print one JSON object (also written to bench/results.json)."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from bench.engine import cascade, latency, throughput
from bench.footprint import footprint

TARGETS = {
    "latency_p50_us": ("<=", 200),
    "latency_p99_us": ("<=", 1000),
    "throughput_events_per_s": (">=", 50_000),
    "idle_rss_mb": ("<=", 60),
    "startup_s": ("<=", 1.5),
}


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
    }


async def _engine() -> dict[str, Any]:
    results: dict[str, Any] = {}
    results.update(await latency())
    results.update(await throughput())
    results.update(await cascade())
    return results


def main() -> int:
    results: dict[str, Any] = {}
    results.update(asyncio.run(_engine()))
    results.update(footprint())
    results["targets_met"] = {
        key: (results[key] <= bound if op == "<=" else results[key] >= bound)
        for key, (op, bound) in TARGETS.items()
    }
    results["machine"] = _machine()
    text = json.dumps(results, indent=2)
    print(text)
    Path(__file__).with_name("results.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
