"""Footprint of the real daemon: start to HTTP-ready, idle RSS and idle CPU.

Starts ``camio run`` as a subprocess on a fresh data directory and a free loopback port, polls
the public health endpoint until it answers, then lets it idle and reads ``/proc``.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

IDLE_WINDOW_S = 3.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def _wait_ready(url: str, proc: subprocess.Popen[bytes], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"camio exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.005)
    raise RuntimeError("camio did not become ready")


def _exercise(base: str, user: str, password: str) -> None:
    """Authenticated reads and an output command, so the idle figure is after real use."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    for _ in range(20):
        req = urllib.request.Request(f"{base}/api/v1/ports", headers=headers)
        with urllib.request.urlopen(req, timeout=5) as resp:
            resp.read()
    body = json.dumps({"active": True, "duration_ms": 100}).encode()
    req = urllib.request.Request(
        f"{base}/api/v1/ports/out1/state", data=body, headers=headers, method="PUT"
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()
    req = urllib.request.Request(f"{base}/api/v1/events?limit=100", headers=headers)
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()


def footprint(runs: int = 3) -> dict[str, float]:
    """Median start-up time over ``runs`` cold starts; RSS and idle CPU of the last one, of
    the daemon and (separately) of its video worker.

    RSS and CPU are read after the daemon served authenticated requests and drove an
    output, then idled: the figure is what a device in use but quiet holds.
    """
    startups: list[float] = []
    rss = cpu_percent = 0.0
    worker_rss = worker_cpu = 0.0
    for _ in range(runs):
        port = _free_port()
        with tempfile.TemporaryDirectory() as data:
            env = dict(os.environ, CAMIO_ADMIN_USER="bench", CAMIO_ADMIN_PASSWORD="bench-password")
            start = time.monotonic()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "camio.cli",
                    "run",
                    "--data",
                    data,
                    "--listen",
                    f"127.0.0.1:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            try:
                _wait_ready(f"http://127.0.0.1:{port}/api/v1/health", proc)
                startups.append(time.monotonic() - start)
                _exercise(f"http://127.0.0.1:{port}", "bench", "bench-password")
                time.sleep(1.0)  # let start-up work (first flush, GC) settle
                workers = _children(proc.pid)  # the video worker (test pattern by default)
                cpu_before = _proc_cpu_s(proc.pid)
                worker_before = sum(_proc_cpu_s(w) for w in workers)
                time.sleep(IDLE_WINDOW_S)
                cpu_percent = (_proc_cpu_s(proc.pid) - cpu_before) / IDLE_WINDOW_S * 100
                rss = _rss_mb(proc.pid)
                worker_cpu = (
                    (sum(_proc_cpu_s(w) for w in workers) - worker_before) / IDLE_WINDOW_S * 100
                )
                worker_rss = sum(_rss_mb(w) for w in workers)
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=10)
    startups.sort()
    return {
        "startup_s": round(startups[len(startups) // 2], 3),
        "idle_rss_mb": round(rss, 1),
        "idle_cpu_percent": round(cpu_percent, 2),
        # The video worker is a separate process (PyAV never loads into the daemon); with the
        # default test pattern it also encodes the picture, which a camera source would not.
        "video_worker_test_pattern_rss_mb": round(worker_rss, 1),
        "video_worker_test_pattern_cpu_percent": round(worker_cpu, 1),
    }
