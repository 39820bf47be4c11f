"""The video worker never outlives its daemon, and a killed daemon loses no recording.

A SIGKILL gives the daemon no chance to close its worker: the worker sees its command pipe end,
completes the recording it was writing and exits. The next start removes anything half-written
that a crash of the worker itself would leave.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemonproc import Daemon, Starter

TEST_VIDEO = {
    "source": "test",
    "pre_buffer_s": 2,
    "test_pattern": {"width": 320, "height": 180, "fps": 10, "gop_s": 1},
}


async def ok(daemon: Daemon, method: str, path: str, body: Any = None) -> Any:
    status, reply = await daemon.api(method, path, body)
    assert status in (200, 201), (status, reply)
    return reply


async def worker_pid(daemon: Daemon, within_s: float = 20.0) -> int:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        video = await ok(daemon, "GET", "/api/v1/video")
        if video["state"] == "connected" and video["worker_pid"]:
            return int(video["worker_pid"])
        await asyncio.sleep(0.1)
    raise AssertionError("the video worker did not connect")


async def poll(check: Callable[[], bool], within_s: float = 10.0) -> bool:
    """Whether ``check`` became true within the bound (files and processes: nothing to await)."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waits for a parent that is gone: it has ended
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


async def test_a_killed_daemon_takes_its_worker_and_leaves_no_half_recording(
    daemons: Starter, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    daemon = await daemons(data, video=True)
    config = (await ok(daemon, "GET", "/api/v1/config"))["config"]
    config["video"] = TEST_VIDEO
    config["inputs"][0].update(debounce_on_ms=0, debounce_off_ms=0)
    config["rules"] = [
        {
            "id": "rec",
            "name": "Record",
            "conditions": [{"kind": "input", "port": config["inputs"][0]["id"]}],
            "action_mode": "while_active",
            "action": {"kind": "record", "pre_s": 1, "post_s": 1},
        }
    ]
    await ok(daemon, "PUT", "/api/v1/config", {"config": config})
    pid = await worker_pid(daemon)
    port = config["inputs"][0]["id"]
    await ok(daemon, "POST", f"/api/v1/sim/ports/{port}/circuit", {"circuit": "closed"})
    recordings = data / "media" / "recordings"

    assert await poll(lambda: bool(list(recordings.glob("*/*.part")))), "no recording started"
    await asyncio.sleep(1.5)  # real video must flow into it: a clip, not an empty container

    await daemon.kill()  # SIGKILL: no clean stop
    assert await poll(lambda: not alive(pid)), "the video worker outlived its daemon"

    # the worker finished the file it was writing: the alarm's clip is not lost
    clips = list(recordings.glob("*/*.mp4"))
    assert len(clips) == 1, (clips, daemon.stderr()[-3000:])
    (clip,) = clips
    assert clip.stat().st_size > 0
    again = await daemons(data, video=False)
    assert not list(recordings.glob("*/*.part"))  # nothing half-written is left
    assert (await again.stop(signal.SIGINT)) == 0
