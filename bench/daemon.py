"""A real ``camio run`` daemon for the network benchmarks, started and always reaped.

Same start as :mod:`bench.footprint` (a subprocess on a fresh data directory and a free
loopback port, the administrator from ``CAMIO_ADMIN_USER``/``CAMIO_ADMIN_PASSWORD``, ready when
the public health endpoint answers), plus what a load test needs: a raised open-file limit and,
on a machine with two or more cores, the daemon pinned to one core so that the load generator
(pinned to another) never competes with it for a CPU.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.footprint import _free_port, _proc_cpu_s, _rss_mb, _wait_ready

USER = "bench"
PASSWORD = "bench-password"
#: The daemon's core and the load generator's, when there are at least two.
DAEMON_CPU = 0
CLIENT_CPU = 1


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def pinning() -> bool:
    return hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


def raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit towards ``wanted`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin_to(cpu: int) -> None:
    """Run this process on ``cpu`` only (when the machine has two or more cores)."""
    if pinning():
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[cpu]})


def client_preexec(nofile: int = 4096) -> Callable[[], None]:
    """``preexec_fn`` for a load-generator subprocess: its own core, enough descriptors."""

    def setup() -> None:
        raise_nofile(nofile)
        pin_to(CLIENT_CPU)

    return setup


def _busy_s() -> float:
    """CPU seconds processes on the machine spent (user, nice, system). Interrupts are left
    out: loopback traffic is processed there, and it is the benchmark's own."""
    with open("/proc/stat") as handle:
        user, nice, system = (int(v) for v in handle.readline().split()[1:4])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def _own_s() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class OtherLoad:
    """CPU used on the machine by anything but this benchmark while it measured, in percent of
    one core: a figure taken while something else ran (a test suite...) is not the daemon's.

    Counts this process, its finished children (the load generators) and ``pids`` (the
    daemon) as the benchmark's own.
    """

    def __init__(self, *pids: int) -> None:
        self._pids = pids
        self._start = self._sample()
        self._began = time.monotonic()

    def _sample(self) -> tuple[float, float]:
        ours = _own_s() + sum(_proc_cpu_s(pid) for pid in self._pids)
        return _busy_s(), ours

    def percent(self) -> float:
        busy, ours = self._sample()
        other = (busy - self._start[0]) - (ours - self._start[1])
        return max(0.0, other / (time.monotonic() - self._began) * 100)


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        return _rss_mb(self.proc.pid)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One authenticated JSON request (blocking, for set-up and checks)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": basic_auth(), "Content-Type": "application/json"}
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")


@contextmanager
def camio_daemon(nofile: int = 4096, *, video: bool = False) -> Iterator[Daemon]:
    """``camio run`` on a fresh data directory; stopped with SIGINT (killed if it hangs).
    Without the video worker unless ``video`` (it would compete for the CPUs measured)."""

    def setup() -> None:
        raise_nofile(nofile)
        pin_to(DAEMON_CPU)

    port = _free_port()
    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ, CAMIO_ADMIN_USER=USER, CAMIO_ADMIN_PASSWORD=PASSWORD)
        log_path = Path(data) / "daemon.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "camio.cli",
                    "run",
                    "--data",
                    str(Path(data) / "camio"),
                    "--listen",
                    f"127.0.0.1:{port}",
                    *(() if video else ("--no-video",)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=setup,
            )
        try:
            try:
                _wait_ready(f"http://127.0.0.1:{port}/api/v1/health", proc)
            except RuntimeError:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"camio did not start:\n{tail}") from None
            yield Daemon(proc, port, Path(data) / "camio")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
