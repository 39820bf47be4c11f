"""Trigger-to-snapshot-on-disk latency through the whole daemon, from a running 1080p source.

``camio run`` with its video worker playing a 1080p25 H.264 file at about 4 Mbit/s in real time
(the clip of :mod:`bench.video`, i.e. what a camera stream costs), a rule "input 1 → snapshot
on the local volume", and the simulated input closed through the API. The time runs from
sending that request to the JPEG appearing under its final name in the storage directory
(written to a temporary name and renamed, so its appearance means it is complete): the HTTP
request, the rule, the action, the pipe to the worker, the decode from the last keyframe, the
JPEG encode and the write.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import av

from bench.daemon import camio_daemon
from bench.video import make_clip

TRIGGERS = 30
GAP_S = 0.5


def _snapshots(folder: Path) -> int:
    count = 0
    for day in folder.glob("*"):
        with os.scandir(day) as entries:
            count += sum(1 for e in entries if e.name.endswith(".jpg"))
    return count


def _wait_connected(daemon: Any, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        events = daemon.call("GET", "/api/v1/events?topic=video/source&order=desc&limit=1")
        if events["events"] and events["events"][0]["data"]["state"] == "connected":
            return
        time.sleep(0.1)
    raise RuntimeError("the video source did not connect")


def snapshot_latency_e2e() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "camera-1080p.mp4"
        make_clip(clip)
        with camio_daemon(video=True) as daemon:
            config = daemon.call("GET", "/api/v1/config")["config"]
            config["video"] = {"source": str(clip), "pre_buffer_s": 5}
            config["inputs"][0].update(debounce_on_ms=0, debounce_off_ms=0)
            config["rules"] = [
                {
                    "id": "snap",
                    "name": "Snapshot",
                    "conditions": [{"kind": "input", "port": config["inputs"][0]["id"]}],
                    "action": {"kind": "snapshot", "storage": "local"},
                }
            ]
            daemon.call("PUT", "/api/v1/config", {"config": config})
            _wait_connected(daemon)
            time.sleep(3.0)  # a few GOPs in the ring, as on a device that has been running
            port = config["inputs"][0]["id"]
            folder = daemon.data_dir / "media" / "snapshots"
            latencies: list[float] = []
            for _ in range(TRIGGERS):
                before = _snapshots(folder) if folder.exists() else 0
                start = time.monotonic()
                daemon.call("POST", f"/api/v1/sim/ports/{port}/circuit", {"circuit": "closed"})
                while (_snapshots(folder) if folder.exists() else 0) == before:
                    if time.monotonic() - start > 5:
                        raise RuntimeError("no snapshot within 5 s")
                    time.sleep(0.001)
                latencies.append((time.monotonic() - start) * 1000)
                daemon.call("POST", f"/api/v1/sim/ports/{port}/circuit", {"circuit": "open"})
                time.sleep(GAP_S)
            newest = max(folder.glob("*/*.jpg"))
            with av.open(str(newest)) as image:
                frame = next(image.decode(video=0))
                size = f"{frame.width}x{frame.height}"
    latencies.sort()
    return {
        "snapshot_e2e_p50_ms": round(statistics.median(latencies), 1),
        "snapshot_e2e_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 1),
        "snapshot_e2e_max_ms": round(latencies[-1], 1),
        "snapshot_e2e_size": size,  # proves the figure is for the 1080p source
    }


if __name__ == "__main__":
    import json

    print(json.dumps(snapshot_latency_e2e(), indent=2))
