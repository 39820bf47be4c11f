"""The video worker under test: a real ``python -m camio.video.worker`` subprocess, and a clip
maker for file sources (made with PyAV at test time; no media is committed)."""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.video.frame import PictureType

from camio.video.testpattern import stamp

FPS = 10
PATTERN = {"width": 320, "height": 180, "fps": FPS, "gop_s": 1}
ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """Talks the worker protocol: replies are matched by id, events are collected."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "camio.video.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self.replies: dict[str, dict[str, Any]] = {}
        self.stderr: list[str] = []
        self._ids = itertools.count(1)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(json.loads(line))
        self._lines.put(None)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def _pump(self, timeout: float) -> bool:
        try:
            message = self._lines.get(timeout=timeout)
        except queue.Empty:
            return False
        if message is None:
            return False
        if "event" in message:
            self.events.append(message)
        else:
            self.replies[str(message.get("id"))] = message
        return True

    def send_raw(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def send(self, op: str, **fields: Any) -> str:
        cid = f"c{next(self._ids)}"
        self.send_raw(json.dumps({"op": op, "id": cid, **fields}))
        return cid

    def reply(self, cid: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while cid not in self.replies:
            left = deadline - time.monotonic()
            if left <= 0 or (not self._pump(left) and self.proc.poll() is not None):
                raise AssertionError(f"no reply to {cid}; stderr: {''.join(self.stderr)}")
        return self.replies.pop(cid)

    def request(self, op: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        return self.reply(self.send(op, **fields), timeout)

    def ok(self, op: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        answer = self.request(op, timeout, **fields)
        assert answer["ok"], answer
        return answer

    def event(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 10.0, consume: bool = True
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if match(event):
                    if consume:
                        self.events.remove(event)
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching event; got {self.events}")
            self._pump(min(left, 0.2))

    def wait_video(self, seconds: float, timeout: float = 15.0) -> dict[str, Any]:
        """Poll ``status`` until the newest packet is at least ``seconds`` on the timeline."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.ok("status")
            if status["time"] is not None and status["time"] >= seconds:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"video did not reach {seconds}s: {status}")
            time.sleep(0.05)

    def close(self) -> int:
        if self.proc.poll() is None:
            with contextlib.suppress(AssertionError, BrokenPipeError, OSError):
                self.request("close", timeout=15)
        try:
            return self.proc.wait(10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def make_clip(path: Path, seconds: float, fps: int = FPS, gop: int = FPS) -> None:
    """An H.264 MP4 of the stamped test pattern (frame codes from 0), made with PyAV."""
    frames = round(seconds * fps)
    source = av.open(f"testsrc2=size=320x180:rate={fps},format=yuv420p", format="lavfi")
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
    stream.codec_context.gop_size = gop
    stream.codec_context.options = {"preset": "superfast", "x264-params": "scenecut=0"}
    for number, frame in enumerate(source.decode(video=0)):
        if number >= frames:
            break
        stamp(frame, number, fps)
        frame.pict_type = PictureType.NONE
        frame.pts = number
        frame.time_base = Fraction(1, fps)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
    out.close()
    source.close()
