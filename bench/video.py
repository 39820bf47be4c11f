"""Video worker benchmark: the record path's CPU and the snapshot latency at 1080p.

A 1080p25 H.264 file at about 4 Mbit/s (GOP 50, like a typical camera) is generated once per
run into a temporary directory, then played by a real ``python -m camio.video.worker`` as a
looped real-time file source, i.e. exactly what a camera stream costs the worker. Its CPU is
read with psutil over a window without recordings and over one with an open-ended recording
running; the difference is what the record path (remux into MP4) costs. Then snapshots are
requested about every 0.4 s and timed from sending the command to the reply, which comes
after the JPEG is on disk.
"""

from __future__ import annotations

import json
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import psutil
from av.video.frame import PictureType

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, FPS, GOP = 1920, 1080, 25, 50
CLIP_S = 20
WINDOW_S = 15.0
SNAPSHOTS = 30
SNAPSHOT_GAP_S = 0.4


def make_clip(path: Path) -> None:
    """testsrc2 at 1080p25 → libx264 at 4 Mbit/s, GOP 50, no B-frames (camera-like)."""
    source = av.open(f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS},format=yuv420p", format="lavfi")
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    context = stream.codec_context
    context.bit_rate = 4_000_000
    context.gop_size = GOP
    context.options = {
        "preset": "ultrafast",
        "x264-params": f"scenecut=0:keyint={GOP}:min-keyint={GOP}"
        ":vbv-maxrate=4000:vbv-bufsize=4000",
    }
    for number, frame in enumerate(source.decode(video=0)):
        if number >= CLIP_S * FPS:
            break
        frame.pict_type = PictureType.NONE
        frame.pts = number
        frame.time_base = Fraction(1, FPS)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
    out.close()
    source.close()


class _Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "camio.video.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self._n = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        self._n += 1
        cid = f"b{self._n}"
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, "id": cid, **fields}) + "\n")
        self.proc.stdin.flush()
        while True:
            message = self.lines.get(timeout=30)
            if message.get("id") == cid:
                if not message.get("ok"):
                    raise RuntimeError(f"{op} failed: {message}")
                return message

    def wait_video(self, seconds: float) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = self.request("status")
            if status["time"] is not None and status["time"] >= seconds:
                return
            time.sleep(0.1)
        raise RuntimeError("the worker's source did not start")

    def close(self) -> None:
        try:
            self.request("close")
            self.proc.wait(15)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def _cpu_percent(process: psutil.Process, seconds: float) -> float:
    """Percent of one core used by the worker (all its threads) over ``seconds``."""
    before = process.cpu_times()
    start = time.monotonic()
    time.sleep(seconds)
    after = process.cpu_times()
    used = (after.user + after.system) - (before.user + before.system)
    return float(100.0 * used / (time.monotonic() - start))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))])


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="camio-bench-video-") as tmp:
        root = Path(tmp)
        clip = root / "camera.mp4"
        started = time.perf_counter()
        make_clip(clip)
        generate_s = time.perf_counter() - started
        worker = _Worker()
        try:
            process = psutil.Process(worker.proc.pid)
            worker.request("open", source=str(clip), pre_buffer_s=10, snapshot_quality=5)
            worker.wait_video(3.0)
            idle = _cpu_percent(process, WINDOW_S)
            record = worker.request("record", path=str(root / "rec.mp4"), pre_s=5, post_s=None)
            recording = _cpu_percent(process, WINDOW_S)
            status = worker.request("status")
            assert status["recordings"] == [record["id"]], status
            worker.request("stop", record_id=record["id"])
            latencies: list[float] = []
            for n in range(SNAPSHOTS):
                begin = time.perf_counter()
                worker.request("snapshot", path=str(root / f"snap{n % 3}.jpg"))
                latencies.append((time.perf_counter() - begin) * 1000)
                time.sleep(SNAPSHOT_GAP_S)
            rss_mb = process.memory_info().rss / 2**20
        finally:
            worker.close()
    record_path = recording - idle
    p95 = _percentile(latencies, 0.95)
    mbps = status["bitrate_bps"] / 1e6
    return {
        "video_clip": f"{WIDTH}x{HEIGHT}@{FPS} H.264 {mbps:.1f} Mbit/s GOP {GOP}",
        "video_clip_generate_s": round(generate_s, 1),
        "video_worker_idle_cpu_pct": round(idle, 2),
        "video_worker_recording_cpu_pct": round(recording, 2),
        "video_record_path_cpu_pct": round(record_path, 2),
        "video_worker_rss_mb": round(rss_mb, 1),
        "video_snapshot_p50_ms": round(statistics.median(latencies), 1),
        "video_snapshot_p95_ms": round(p95, 1),
        "video_snapshot_max_ms": round(max(latencies), 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
