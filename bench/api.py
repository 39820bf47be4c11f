"""HTTP API throughput: authenticated ``GET /api/v1/ports`` per second on loopback.

The daemon is a real ``camio run`` subprocess (one process, one event loop; pinned to one core
on a machine with two). The load comes from another process on the other core: Debian's ``wrk``
(``make bench-deps`` installs it), 1 thread and 32 keep-alive connections, HTTP Basic on every
request (the daemon caches a verified login, so this measures the API, not scrypt), a 2 s
warm-up then 10 s measured. Without ``wrk`` an aiohttp load generator with the same shape runs
in a subprocess instead, and ``api_load_generator`` says so; it is slower than wrk, so its
figure is a lower bound of what the daemon serves.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.daemon import OtherLoad, basic_auth, camio_daemon, client_preexec
from bench.footprint import _proc_cpu_s

CONNECTIONS = 32
WARMUP_S = 2
DURATION_S = 10
PATH = "/api/v1/ports"

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, latency percentiles (ms) and error counts from ``wrk --latency`` output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(\w+)", output, re.MULTILINE)
    if rps is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    percentiles = {
        int(m.group(1)): _ms(m.group(2))
        for m in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.MULTILINE)
    }
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "p50_ms": percentiles[50],
        "p99_ms": percentiles[99],
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
    }


def _wrk(url: str, seconds: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: {basic_auth()}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
        preexec_fn=client_preexec(),
    )
    return parse_wrk(out.stdout)


def _wrk_version() -> str:
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).splitlines()
    return first[0].split(" [")[0] if first else "wrk"


# -- the fallback load generator (a subprocess: python -m bench.api URL SECONDS) --------------


async def _aiohttp_load(url: str, seconds: float, auth: str) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(
        connector=connector, headers={"Authorization": auth}
    ) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while (start := time.perf_counter()) < deadline:
                async with session.get(url) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - start)

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - begin
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "requests": len(latencies),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "non2xx": errors,
        "socket_errors": 0,
    }


def _aiohttp(url: str, seconds: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.api", url, str(seconds)],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
        env=dict(os.environ, BENCH_AUTH=basic_auth()),
        preexec_fn=client_preexec(),
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def api_rps() -> dict[str, Any]:
    """Authenticated ``GET /api/v1/ports`` per second and its latency, against ``camio run``."""
    with camio_daemon() as daemon:
        url = daemon.base + PATH
        ports = daemon.call("GET", PATH)["ports"]
        if not ports:
            raise RuntimeError("GET /api/v1/ports returned no ports")
        if shutil.which("wrk"):
            generator, run = _wrk_version(), _wrk
        else:
            generator, run = "aiohttp (wrk not installed)", _aiohttp
        run(url, WARMUP_S)
        cpu_before, began = _proc_cpu_s(daemon.proc.pid), time.perf_counter()
        others = OtherLoad(daemon.proc.pid)
        result = run(url, DURATION_S)
        cpu = (_proc_cpu_s(daemon.proc.pid) - cpu_before) / (time.perf_counter() - began)
        other_load = others.percent()
        rss = daemon.rss_mb()
    if result["non2xx"] or result["socket_errors"]:
        raise RuntimeError(f"errors under load: {result}")
    return {
        "api_ports_rps": round(result["rps"]),
        "api_ports_p50_ms": round(result["p50_ms"], 2),
        "api_ports_p99_ms": round(result["p99_ms"], 2),
        "api_ports_requests": result["requests"],
        "api_connections": CONNECTIONS,
        "api_load_generator": generator,
        "api_daemon_cpu_percent": round(cpu * 100),
        "api_other_cpu_percent": round(other_load),
        "api_rss_after_mb": round(rss, 1),
    }


if __name__ == "__main__":
    # The fallback load generator, run as its own process by ``_aiohttp``.
    print(
        json.dumps(
            asyncio.run(_aiohttp_load(sys.argv[1], float(sys.argv[2]), os.environ["BENCH_AUTH"]))
        )
    )
