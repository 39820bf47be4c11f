"""Run the ``camio`` command as a real subprocess: the daemon and one-shot commands.

Shared by the CLI tests and the crash tests (``tests/conftest.py`` puts this folder on the
import path and provides the ``daemons`` fixture).

The daemon listens on a loopback port; its banner is read from its stdout until the
"listening on" line (and the rest of the banner after it). Its stderr goes to a file, so a
chatty daemon can never block on a full pipe.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

CLI = [sys.executable, "-m", "camio.cli"]
BANNER_END = "Ctrl-C stops it"


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any CAMIO_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMIO_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Result:
    rc: int
    out: str
    err: str


async def camio(
    *args: str,
    data: Path | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    """Run one ``camio`` command to completion (20 s at most)."""
    argv = [*CLI, *args]
    if data is not None:
        argv += ["--data", str(data)]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env or clean_env(),
    )
    try:
        async with asyncio.timeout(20):
            out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@dataclass
class Daemon:
    proc: asyncio.subprocess.Process
    data: Path
    url: str
    banner: str
    stderr_path: Path

    @property
    def token(self) -> str:
        return (self.data / "cli-token").read_text().strip()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    async def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request with the local token (as the CLI authenticates)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession(headers=headers) as session,
            session.request(method, self.url + path, json=body) as resp,
        ):
            text = await resp.text()
            return resp.status, json.loads(text) if text else None

    async def stop(self, sig: int = signal.SIGINT) -> int:
        """Send ``sig`` and wait (10 s at most) for the exit code."""
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        async with asyncio.timeout(10):
            return await self.proc.wait()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def start_daemon(
    data: Path,
    *,
    listen: str = "127.0.0.1:0",
    env: dict[str, str] | None = None,
    video: bool = False,
) -> Daemon:
    """``camio run`` on ``data``; returns once it printed its banner. Without the video
    worker unless ``video`` (most tests are about I/O, and each worker costs a core's share)."""
    data.parent.mkdir(parents=True, exist_ok=True)
    stderr_path = data.parent / f"{data.name}.stderr.{os.urandom(3).hex()}"
    with stderr_path.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *CLI,
            "run",
            "--data",
            str(data),
            "--listen",
            listen,
            *(() if video else ("--no-video",)),
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            env=env or clean_env(),
        )
    assert proc.stdout is not None
    lines: list[str] = []
    url: str | None = None
    try:
        async with asyncio.timeout(15):
            while True:
                raw = await proc.stdout.readline()
                if not raw:
                    await proc.wait()
                    raise AssertionError(
                        f"camio run exited ({proc.returncode}) before listening:\n"
                        + "".join(lines)
                        + stderr_path.read_text(errors="replace")
                    )
                line = raw.decode()
                lines.append(line)
                if url is None:
                    found = re.search(r"listening on (http://\S+)", line)
                    if found:
                        url = found.group(1)
                elif BANNER_END in line:
                    break
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    assert url is not None
    return Daemon(proc, data, url, "".join(lines), stderr_path)


Starter = Callable[..., Awaitable[Daemon]]
"""The ``daemons`` fixture: ``await daemons(data_dir, listen=..., env=...)``."""
