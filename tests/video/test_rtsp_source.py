"""The video worker against a real RTSP server (gst-rtsp-server, ``rtsp_server.py``).

The server runs under Debian's ``/usr/bin/python3`` (GObject bindings; ``.ci/system-deps``
installs them). Without them these tests skip. Opening the stream takes about 3 s (FFmpeg
probes it), so each test opens it as few times as it can.
"""

from __future__ import annotations

import functools
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from workerproc import WorkerProcess

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).with_name("rtsp_server.py")
OPTIONS = {"rtsp_transport": "tcp"}
OPEN_TIMEOUT = 12.0  # FFmpeg's probe of the stream is about 3 s
GOP_S = 1.0  # key-int-max=10 at 10 fps in rtsp_server.py

_PROBE = """
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
missing = [e for e in ("videotestsrc", "x264enc", "rtph264pay") if not Gst.ElementFactory.find(e)]
print(" ".join(missing))
"""


@functools.cache
def _unavailable() -> str | None:
    """Why the RTSP server cannot run here, or None."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"no {SYSTEM_PYTHON}"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"{SYSTEM_PYTHON} cannot load GstRtspServer ({last}); run .ci/system-deps"
    if probe.stdout.strip():
        return f"GStreamer elements missing: {probe.stdout.strip()}; run .ci/system-deps"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RtspServer:
    """``rtsp_server.py`` as a subprocess on a fixed port, so it can be killed and restarted."""

    def __init__(self, user: str | None = None, password: str | None = None) -> None:
        self.port = _free_port()
        self.auth = [user, password] if user is not None and password is not None else []
        self.proc: subprocess.Popen[str] | None = None

    def url(self, credentials: str = "") -> str:
        return f"rtsp://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}/test"

    def start(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:  # a restart may race the old socket's release: retry briefly
            proc = subprocess.Popen(
                [SYSTEM_PYTHON, str(SERVER), str(self.port), *self.auth],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None and proc.stderr is not None
            left = max(0.1, deadline - time.monotonic())
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if ready and proc.stdout.readline().strip() == "ready":
                self.proc = proc
                return
            proc.kill()
            proc.wait()
            if time.monotonic() > deadline:
                raise AssertionError(f"RTSP server did not start: {proc.stderr.read()}")
            time.sleep(0.2)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case a test left it stopped
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@pytest.fixture
def rtsp() -> Iterator[Callable[..., RtspServer]]:
    """Starts RTSP servers (optionally with user and password); all are killed afterwards."""
    reason = _unavailable()
    if reason is not None:
        pytest.skip(reason)
    servers: list[RtspServer] = []

    def start(user: str | None = None, password: str | None = None) -> RtspServer:
        server = RtspServer(user, password)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.kill()


def _source(worker: WorkerProcess, timeout: float = OPEN_TIMEOUT) -> dict[str, Any]:
    return worker.event(lambda e: e["event"] == "source", timeout=timeout)


def _connect(worker: WorkerProcess, url: str) -> dict[str, Any]:
    worker.ok("open", source=url, options=OPTIONS, pre_buffer_s=3, snapshot_quality=4)
    event = _source(worker)
    assert event["state"] == "connected", event
    return event


def _snapshot(worker: WorkerProcess, path: Path) -> dict[str, Any]:
    """Takes a snapshot and checks it is a 320x180 JPEG of the ball (white on black)."""
    snap = worker.ok("snapshot", path=str(path))
    data = path.read_bytes()
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    assert (snap["width"], snap["height"], snap["bytes"]) == (320, 180, len(data))
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (320, 180)
    plane = frame.planes[0]
    raw = bytes(plane)
    luma = b"".join(
        raw[row * plane.line_size : row * plane.line_size + frame.width]
        for row in range(frame.height)
    )
    assert max(luma) > 200 and sum(luma) / len(luma) < 60  # a decoded picture, not grey mush
    return snap


def test_rtsp_connect_snapshot_and_record(
    rtsp: Callable[..., RtspServer], worker: WorkerProcess, tmp_path: Path
) -> None:
    server = rtsp()
    started = time.monotonic()
    connected = _connect(worker, server.url())
    assert time.monotonic() - started < OPEN_TIMEOUT
    assert connected["codec"] == "h264"
    assert (connected["width"], connected["height"], connected["fps"]) == (320, 180, 10)
    status = worker.ok("status")
    assert status["state"] == "connected" and status["source"] == server.url()
    assert status["error"] is None

    _snapshot(worker, tmp_path / "snap.jpg")

    worker.wait_video(1.2)  # at least a keyframe 1 s back
    path = tmp_path / "clip.mp4"
    rec = worker.ok("record", path=str(path), pre_s=1, post_s=1)
    trigger = rec["trigger_time"]
    assert trigger - 1 - GOP_S - 0.05 <= rec["start_time"] <= trigger - 1 + 1e-6
    done = worker.event(
        lambda e: e["event"] == "recorded" and e["record_id"] == rec["id"], timeout=10
    )
    assert done["ok"] and done["path"] == str(path), done
    assert done["end_time"] >= trigger + 1 - 0.15
    assert path.exists() and not Path(f"{path}.part").exists()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 180)
        duration = float(container.duration or 0) / 1_000_000
        frames = list(container.decode(video=0))
    assert frames[0].key_frame
    assert len(frames) == done["frames"] and done["bytes"] == path.stat().st_size
    times = [f.time for f in frames]
    assert times == sorted(times) and times[0] == 0
    assert 2.0 - 0.15 <= duration <= 2.0 + GOP_S + 0.15, duration
    assert abs(len(frames) - duration * 10) <= 2


def test_rtsp_server_lost_and_back(
    rtsp: Callable[..., RtspServer], worker: WorkerProcess, tmp_path: Path
) -> None:
    server = rtsp()
    _connect(worker, server.url())
    before = worker.wait_video(0.5)

    server.kill()
    lost = _source(worker, timeout=12)  # a dead peer is EOF at once; a hung one, a 10 s timeout
    assert lost["state"] == "lost" and lost["error"], lost
    status = worker.ok("status")
    assert status["state"] == "lost" and status["error"]
    gone = worker.request("snapshot", path=str(tmp_path / "none.jpg"))
    assert not gone["ok"] and "no video" in gone["error"]

    server.start()  # same port
    started = time.monotonic()
    back = _source(worker, timeout=10 + OPEN_TIMEOUT)
    waited = time.monotonic() - started
    assert back["state"] == "connected" and back["codec"] == "h264", back
    assert waited < 10, f"reconnected after {waited:.1f}s"
    snap = _snapshot(worker, tmp_path / "again.jpg")
    assert snap["source_time"] > before["time"]  # the timeline never goes back
    assert snap["frame"] > before["frame"]


def test_rtsp_server_hangs(
    rtsp: Callable[..., RtspServer], worker: WorkerProcess, tmp_path: Path
) -> None:
    """A server that stops sending (a frozen camera, a cut cable) is lost after the 10 s read
    timeout, not twice that: FFmpeg's H.264 parser swallows the first timeout."""
    server = rtsp()
    _connect(worker, server.url())
    worker.wait_video(0.5)
    server.signal(signal.SIGSTOP)
    stopped = time.monotonic()
    lost = _source(worker, timeout=15)
    waited = time.monotonic() - stopped
    assert lost["state"] == "lost" and "no data" in lost["error"], lost
    assert 9 <= waited < 12, f"lost after {waited:.1f}s"
    server.signal(signal.SIGCONT)
    back = _source(worker, timeout=2 + OPEN_TIMEOUT)
    assert back["state"] == "connected", back
    _snapshot(worker, tmp_path / "thawed.jpg")


def test_rtsp_authentication(
    rtsp: Callable[..., RtspServer], worker: WorkerProcess, tmp_path: Path
) -> None:
    password = "s3cret-Pw"
    server = rtsp("camio", password)
    worker.ok("open", source=server.url("camio:wrong-Pw"), options=OPTIONS)
    lost = _source(worker)
    assert lost["state"] == "lost" and "401" in lost["error"], lost
    assert "wrong-Pw" not in lost["error"]
    status = worker.ok("status")
    assert "wrong-Pw" not in f"{status['source']} {status['error']}"

    connected = _connect(worker, server.url(f"camio:{password}"))
    assert (connected["width"], connected["height"]) == (320, 180)
    status = worker.ok("status")
    assert password not in str(status) and status["state"] == "connected"
    _snapshot(worker, tmp_path / "auth.jpg")
    assert not any(password in line for line in worker.stderr)
