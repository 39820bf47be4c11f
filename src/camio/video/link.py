"""The pipe to one video worker process: JSON lines out, replies matched to requests by id,
unsolicited events handed to a callback. See docs/video.md for the protocol."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

_LOGGER = logging.getLogger(__name__)

#: A command not answered in this time fails (a 1080p snapshot takes well under a second).
REQUEST_TIMEOUT_S = 15.0


class VideoError(Exception):
    """A video operation failed; the message says why in words a user can act on."""


class WorkerLink:
    """One running worker. :meth:`wait` returns its exit code when it ends."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None]) -> None:
        self._on_event = on_event
        self._proc: asyncio.subprocess.Process | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None

    async def start(self, python: str = sys.executable) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            python,
            "-m",
            "camio.video.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 20,
            # Its own session: Ctrl-C in the terminal goes to the daemon only, which then
            # closes the worker so that running recordings end with complete files.
            start_new_session=True,
        )
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        while True:
            try:
                line = await stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                _LOGGER.error("video worker wrote an over-long line; ignored")
                continue
            if not line:
                break
            try:
                message = json.loads(line)
            except ValueError:
                _LOGGER.warning("video worker: not JSON: %r", line[:200])
                continue
            if not isinstance(message, dict):
                continue
            if "re" in message:
                future = self._pending.pop(str(message.get("id")), None)
                if future is not None and not future.done():
                    future.set_result(message)
            elif "event" in message:
                try:
                    self._on_event(message)
                except Exception:
                    _LOGGER.exception("handling video worker event %s failed", message)
        self._fail_pending("the video worker stopped")

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(VideoError(reason))

    async def request(
        self, op: str, *, request_id: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Send a command, wait for its reply; :class:`VideoError` unless ``ok``.

        ``request_id`` names the command (a ``record`` command's id is its recording's id);
        by default a fresh number."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            raise VideoError("the video worker is not running")
        request_id = request_id or str(next(self._ids))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        line = json.dumps({"op": op, "id": request_id, **fields}) + "\n"
        try:
            proc.stdin.write(line.encode())
            await proc.stdin.drain()
            reply = await asyncio.wait_for(future, REQUEST_TIMEOUT_S)
        except (ConnectionError, BrokenPipeError):
            raise VideoError("the video worker is not running") from None
        except TimeoutError:
            raise VideoError(f"the video worker did not answer {op!r} in time") from None
        finally:
            self._pending.pop(request_id, None)
        if not reply.get("ok"):
            raise VideoError(str(reply.get("error") or f"{op} failed"))
        return reply

    async def wait(self) -> int:
        assert self._proc is not None
        code = await self._proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        return code

    async def close(self, timeout_s: float = 5.0) -> None:
        """Ask the worker to finish its recordings and exit; kill it if it does not."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(VideoError):
            await asyncio.wait_for(self.request("close"), timeout_s)
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
