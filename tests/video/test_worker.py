"""The video worker over its real protocol (docs/video.md), on the test pattern and a file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import av
from workerproc import FPS, PATTERN, WorkerProcess, make_clip

from camio.video.framecode import read_frame_code


def _codes(path: Path) -> tuple[Any, list[int | None], list[bool]]:
    """The container info, the frame code of every frame and which frames are keyframes."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = {
            "codec": stream.codec_context.name,
            "width": stream.codec_context.width,
            "duration": float(container.duration or 0) / 1_000_000,
            "subtitles": [s.codec_context.name for s in container.streams.subtitles],
        }
        codes: list[int | None] = []
        keys: list[bool] = []
        for frame in container.decode(video=0):
            codes.append(read_frame_code(frame))
            keys.append(bool(frame.key_frame))
    return info, codes, keys


def _texts(path: Path) -> list[str]:
    with av.open(str(path)) as container:
        if not container.streams.subtitles:
            return []
        out = []
        for packet in container.demux(container.streams.subtitles[0]):
            data = bytes(packet)
            if len(data) > 2:
                out.append(data[2 : 2 + int.from_bytes(data[:2], "big")].decode())
        return out


def _recorded(worker: WorkerProcess, record_id: str, timeout: float = 10.0) -> dict[str, Any]:
    return worker.event(
        lambda e: e["event"] == "recorded" and e["record_id"] == record_id, timeout=timeout
    )


def test_snapshot_is_the_newest_frame(pattern_worker: WorkerProcess, tmp_path: Path) -> None:
    worker = pattern_worker
    worker.wait_video(1.5)
    worker.ok("overlay", text="Door 1 open")
    before = worker.ok("status")
    path = tmp_path / "snap.jpg"
    snap = worker.ok("snapshot", path=str(path), overlay="motion zone 2")
    after = worker.ok("status")
    data = path.read_bytes()
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    assert snap["bytes"] == len(data) and snap["path"] == str(path)
    assert (snap["width"], snap["height"]) == (320, 180)
    assert not list(tmp_path.glob("*.part"))
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (320, 180)
    code = read_frame_code(frame)
    assert code == snap["frame"]
    assert before["frame"] <= code <= after["frame"]
    assert abs(snap["source_time"] - code / FPS) < 1e-6
    # Same GOP again: the decoder state is reused and the answer moves on with the video.
    time.sleep(0.25)
    again = worker.ok("snapshot", path=str(path))
    assert again["frame"] > snap["frame"]


def test_record_pre_and_post(pattern_worker: WorkerProcess, tmp_path: Path) -> None:
    worker = pattern_worker
    worker.wait_video(2.6)
    worker.ok("overlay", text="ALARM input 1")
    path = tmp_path / "clip.mp4"
    rec = worker.ok("record", path=str(path), pre_s=2, post_s=1)
    trigger = round(rec["trigger_time"] * FPS)
    assert rec["start_time"] <= rec["trigger_time"] - 2 + 1e-6
    assert worker.ok("status")["recordings"] == [rec["id"]]
    done = _recorded(worker, rec["id"])
    assert done["ok"] and done["path"] == str(path), done
    assert path.exists() and not Path(f"{path}.part").exists()
    info, codes, keys = _codes(path)
    assert info["codec"] == "h264" and info["width"] == 320
    assert keys[0] and codes[0] is not None
    assert codes[0] <= trigger - 2 * FPS
    assert codes[-1] is not None and codes[-1] >= trigger + 1 * FPS
    assert codes == list(range(codes[0], codes[0] + len(codes)))
    assert 3.0 - 0.05 <= info["duration"] <= 3.0 + 1.0 + 0.2
    assert done["frames"] == len(codes) and done["bytes"] == path.stat().st_size
    assert info["subtitles"] == ["mov_text"]
    assert _texts(path) == ["ALARM input 1"]


def test_extend_and_stop(pattern_worker: WorkerProcess, tmp_path: Path) -> None:
    worker = pattern_worker
    worker.wait_video(1.0)
    first = tmp_path / "extended.mp4"
    rec = worker.ok("record", path=str(first), pre_s=0, post_s=0.5)
    ext = worker.ok("extend", record_id=rec["id"], post_s=1.5)
    assert ext["end_time"] >= rec["trigger_time"] + 1.5 - 1e-6
    open_ended = tmp_path / "open.mp4"
    rec2 = worker.ok("record", path=str(open_ended), pre_s=0, post_s=None)
    done = _recorded(worker, rec["id"])
    assert done["ok"]
    _, codes, _ = _codes(first)
    assert codes[-1] is not None and codes[-1] >= round(ext["end_time"] * FPS) - 1
    late = worker.request("extend", record_id=rec["id"], post_s=5)
    assert not late["ok"] and "not running" in late["error"]
    worker.ok("overlay", text="second text")
    assert rec2["id"] in worker.ok("status")["recordings"]
    stop = worker.ok("stop", record_id=rec2["id"])
    done2 = _recorded(worker, rec2["id"])
    assert done2["ok"] and done2["end_time"] <= stop["end_time"] + 0.2
    _, codes2, keys2 = _codes(open_ended)
    assert keys2[0] and len(codes2) >= 15
    assert _texts(open_ended) == ["second text"]


def test_close_and_stdin_eof_finish_recordings(worker: WorkerProcess, tmp_path: Path) -> None:
    worker.ok("open", source="test", pre_buffer_s=1, test_pattern=PATTERN)
    worker.wait_video(1.2)
    path = tmp_path / "eof.mp4"
    rec = worker.ok("record", path=str(path), pre_s=1, post_s=None)
    assert worker.proc.stdin is not None
    worker.proc.stdin.close()  # the daemon died: the worker finishes the file and exits 0
    done = _recorded(worker, rec["id"])
    assert done["ok"] and path.exists()
    assert worker.proc.wait(10) == 0


def test_file_source_loops_and_reconnects(worker: WorkerProcess, tmp_path: Path) -> None:
    clip = tmp_path / "cam.mp4"
    make_clip(clip, seconds=1.5)
    worker.ok("open", source=str(clip), pre_buffer_s=2)
    connected = worker.event(lambda e: e["event"] == "source")
    assert connected["state"] == "connected" and connected["codec"] == "h264"
    assert (connected["width"], connected["height"], connected["fps"]) == (320, 180, FPS)
    worker.wait_video(2.0)  # past the end of the file: it looped with continuous time
    path = tmp_path / "from-file.mp4"
    rec = worker.ok("record", path=str(path), pre_s=1.5, post_s=0.5)
    assert _recorded(worker, rec["id"])["ok"]
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    times = [f.time for f in frames]
    assert frames[0].key_frame and times == sorted(times) and len(frames) >= 18
    assert all(read_frame_code(f) is not None for f in frames)
    snap = worker.ok("snapshot", path=str(tmp_path / "f.jpg"))
    assert snap["width"] == 320

    hidden = tmp_path / "away.mp4"
    clip.rename(hidden)
    lost = worker.event(lambda e: e["event"] == "source", timeout=5)
    assert lost["state"] == "lost" and lost["error"]
    assert worker.ok("status")["state"] == "lost"
    hidden.rename(clip)
    back = worker.event(lambda e: e["event"] == "source", timeout=8)
    assert back["state"] == "connected"


def test_bad_url_is_lost_with_an_error(worker: WorkerProcess, tmp_path: Path) -> None:
    worker.ok("open", source=str(tmp_path / "nope.mp4"))
    lost = worker.event(lambda e: e["event"] == "source")
    assert lost["state"] == "lost" and "No such file" in lost["error"]
    status = worker.ok("status")
    assert status["state"] == "lost" and status["error"]
    snap = worker.request("snapshot", path=str(tmp_path / "x.jpg"))
    assert not snap["ok"] and "no video" in snap["error"]


def test_bad_commands_get_clear_errors(pattern_worker: WorkerProcess, tmp_path: Path) -> None:
    worker = pattern_worker
    worker.send_raw("{not json")
    worker.send_raw("[1, 2]")
    worker.wait_video(1.0)
    assert not worker.replies.pop("None")["ok"]  # both land on id None; the last one wins
    unknown = worker.request("fly")
    assert not unknown["ok"] and "unknown op" in unknown["error"]
    missing = worker.request("snapshot")
    assert not missing["ok"] and "'path'" in missing["error"]
    relative = worker.request("snapshot", path="snap.jpg")
    assert not relative["ok"] and "absolute" in relative["error"]
    wrong = worker.request("record", path=str(tmp_path / "a.mp4"), pre_s="x")
    assert not wrong["ok"] and "'pre_s'" in wrong["error"]
    no_dir = tmp_path / "missing" / "a.mp4"
    bad = worker.request("record", path=str(no_dir), pre_s=1, post_s=1)
    assert not bad["ok"] and "No such file or directory" in bad["error"]
    assert not list(tmp_path.rglob("*.part"))
    bad_snap = worker.request("snapshot", path=str(no_dir))
    assert not bad_snap["ok"] and "No such file or directory" in bad_snap["error"]
    unknown_rec = worker.request("stop", record_id="nope")
    assert not unknown_rec["ok"] and "not running" in unknown_rec["error"]
    no_id = json.dumps({"op": "status"})
    worker.send_raw(no_id)
    assert worker.ok("status")["state"] == "connected"  # still alive


def test_a_codec_mp4_cannot_take_is_refused(worker: WorkerProcess, tmp_path: Path) -> None:
    graph = "testsrc2=size=160x90:rate=10"
    worker.ok("open", source=graph, options={"format": "lavfi"})
    assert worker.event(lambda e: e["event"] == "source")["state"] == "connected"
    worker.wait_video(0.3)
    path = tmp_path / "raw.mp4"
    answer = worker.request("record", path=str(path), pre_s=0, post_s=1)
    assert not answer["ok"] and "cannot go into an MP4" in answer["error"]
    assert not os.listdir(tmp_path)


def test_open_again_ends_recordings_and_drops_the_ring(
    pattern_worker: WorkerProcess, tmp_path: Path
) -> None:
    worker = pattern_worker
    worker.wait_video(1.0)
    path = tmp_path / "switch.mp4"
    rec = worker.ok("record", path=str(path), pre_s=1, post_s=None)
    cid = worker.send("open", source="test", pre_buffer_s=1, test_pattern=PATTERN)
    reply = worker.reply(cid)
    assert reply["ok"]
    done = worker.event(lambda e: e["event"] == "recorded", timeout=1, consume=False)
    assert done["record_id"] == rec["id"] and done["ok"] and path.exists()
    status = worker.ok("status")
    assert status["recordings"] == [] and status["ring_packets"] <= 3
