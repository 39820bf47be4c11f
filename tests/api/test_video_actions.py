"""The video actions end to end: a running daemon with its real video worker (the test pattern),
rules driven through the API, real files on disk and a real SMTP server.

The test pattern carries a machine-readable frame code, so every check says *which moment* a
snapshot or a recording holds, not only that a file exists.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import av
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from apihelpers import ADMIN, Api, Server, fast_inputs, start_server
from test_recipients import until

from camio.video import VIDEO, VideoError, VideoService
from camio.video.framecode import read_frame_code

FPS = 10
VIDEO_CONFIG = {
    "source": "test",
    "pre_buffer_s": 3,
    "test_pattern": {"width": 320, "height": 180, "fps": FPS, "gop_s": 1},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Mailbox:
    """aiosmtpd on loopback keeping every message."""

    port: int = field(default_factory=free_port)
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(message_from_bytes(envelope.original_content or b""))
        return "250 OK"

    def recipient(self) -> dict[str, Any]:
        return {
            "kind": "email",
            "id": "mail",
            "name": "Guard",
            "host": "127.0.0.1",
            "port": self.port,
            "security": "none",
            "from_address": "camio@example.com",
            "to": ["guard@example.com"],
            "timeout": 2,
        }


@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    await asyncio.to_thread(controller.start)
    yield box
    await asyncio.to_thread(controller.stop)


@pytest.fixture(autouse=True)
def admin_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMIO_ADMIN_USER", ADMIN[0])
    monkeypatch.setenv("CAMIO_ADMIN_PASSWORD", ADMIN[1])


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    srv = await start_server(tmp_path / "data", video=True)
    yield srv
    await srv.close()
    await srv.app.stop()


@pytest.fixture
async def admin(server: Server) -> Api:
    api = server.digest(*ADMIN)
    await configure_video(api)
    await fast_inputs(api, "in1", "in2")
    return api


async def configure_video(api: Api, **storage: Any) -> None:
    config = (await api.get("/api/v1/config")).body["config"]
    config["video"] = VIDEO_CONFIG
    config["storage"] = {**config["storage"], **storage}
    reply = await api.put("/api/v1/config", {"config": config})
    assert reply.status == 200, reply


def video_of(server: Server) -> VideoService:
    assert server.app.device is not None
    video = server.app.device.services.get(VIDEO)
    assert video is not None
    return video


async def connected(server: Server) -> VideoService:
    video = video_of(server)
    await until(lambda: video.state == "connected", "the video source to connect", 20)
    # the ring needs pre_buffer_s of video before a pre-trigger check means anything
    await until(
        lambda: _ring_full(video), "the pre-alarm buffer to fill", VIDEO_CONFIG["pre_buffer_s"] + 10
    )
    return video


_RING: dict[int, float] = {}


def _ring_full(video: VideoService) -> bool:
    """Poll the worker's ring length (status is async; keep the last answer)."""
    video._device.spawn(_poll_ring(video))
    return _RING.get(id(video), 0.0) >= float(VIDEO_CONFIG["pre_buffer_s"])


async def _poll_ring(video: VideoService) -> None:
    try:
        status = await video.worker_status()
    except VideoError:
        return
    _RING[id(video)] = float(status.get("ring_s") or 0.0)


def frame_code_of_jpeg(data: bytes) -> int:
    with av.open(io.BytesIO(data), format="mjpeg") as container:
        frame = next(container.decode(video=0))
    code = read_frame_code(frame)
    assert code is not None, "the snapshot has no readable frame code"
    return code


async def now_frame(video: VideoService) -> int:
    """The frame code of the newest frame (a snapshot that is not saved)."""
    shot = await video.snapshot(volume=None)
    return frame_code_of_jpeg(shot.data)


async def alarm(api: Api, port: str = "in1") -> None:
    for circuit in ("closed", "open"):
        reply = await api.post(f"/api/v1/sim/ports/{port}/circuit", {"circuit": circuit})
        assert reply.status == 200, reply


async def add_rule(api: Api, action: dict[str, Any], **extra: Any) -> None:
    rule = {
        "id": extra.pop("id", "door"),
        "name": "Door",
        "conditions": extra.pop("conditions", [{"kind": "input", "port": "in1"}]),
        "action": action,
        **extra,
    }
    reply = await api.post("/api/v1/rules", rule)
    assert reply.status == 201, reply


async def events_of(api: Api, topic: str) -> list[dict[str, Any]]:
    return await api.events(topic=topic)


async def test_an_alarm_emails_a_snapshot_of_that_moment(
    server: Server, admin: Api, mailbox: Mailbox
) -> None:
    reply = await admin.post("/api/v1/recipients", mailbox.recipient())
    assert reply.status == 201, reply
    await add_rule(
        admin,
        {
            "kind": "snapshot",
            "recipients": ["mail"],
            "subject": "Door {event.source}",
            "overlay": "{rule.name}",
        },
    )
    video = await connected(server)
    before = await now_frame(video)
    await alarm(admin)
    after = await now_frame(video)
    await until(lambda: len(mailbox.messages) == 1, "the e-mail with the snapshot")
    message = mailbox.messages[0]
    assert message["Subject"] == "Door in1"
    (jpeg,) = [p for p in message.walk() if p.get_content_type() == "image/jpeg"]
    data = jpeg.get_payload(decode=True)
    assert isinstance(data, bytes) and data[:2] == b"\xff\xd8"
    assert before <= frame_code_of_jpeg(data) <= after
    # the same image is kept on the SD card, and announced as an event
    (saved,) = await events_of(admin, "media/snapshot")
    item_id = saved["source"]
    assert item_id.startswith("local/snapshots/") and item_id.endswith(".jpg")
    assert (server.data_dir / "media" / item_id.removeprefix("local/")).read_bytes() == data
    assert jpeg.get_filename() == item_id.rsplit("/", 1)[1]


async def test_several_snapshots_at_an_interval(server: Server, admin: Api) -> None:
    await add_rule(admin, {"kind": "snapshot", "count": 3, "interval_ms": 500})
    video = await connected(server)
    await alarm(admin)
    await until(
        lambda: len(list((server.data_dir / "media" / "snapshots").glob("*/*.jpg"))) == 3,
        "three snapshots",
    )
    files = sorted((server.data_dir / "media" / "snapshots").glob("*/*.jpg"))
    codes = [frame_code_of_jpeg(p.read_bytes()) for p in files]
    steps = [b - a for a, b in itertools.pairwise(codes)]
    assert all(FPS * 0.3 <= s <= FPS * 1.0 for s in steps), codes  # about 5 frames apart
    del video


async def test_a_recording_holds_the_pre_trigger_seconds_and_is_extended(
    server: Server, admin: Api
) -> None:
    await add_rule(admin, {"kind": "record", "pre_s": 2, "post_s": 2})
    video = await connected(server)
    first = await now_frame(video)
    await alarm(admin)
    await asyncio.sleep(1.0)  # real video must flow between the triggers
    second = await now_frame(video)
    await alarm(admin)  # fires again during the post-trigger time: the same clip goes on
    await until(
        lambda: bool(list((server.data_dir / "media" / "recordings").glob("*/*.mp4"))),
        "the recording",
        15,
    )
    (clip,) = sorted((server.data_dir / "media" / "recordings").glob("*/*.mp4"))
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(stream))
    assert frames[0].key_frame
    codes = [read_frame_code(f) for f in frames]
    assert None not in codes
    start, end = codes[0], codes[-1]
    assert start is not None and end is not None
    assert start <= first - 2 * FPS, (start, first)  # the pre-alarm seconds are in it
    assert start >= first - 2 * FPS - FPS - 2  # ... plus at most one GOP
    assert end >= second + 2 * FPS - 2, (end, second)  # extended from the second trigger
    assert codes == list(range(start, end + 1))  # no frame lost or repeated
    (recorded,) = await events_of(admin, "media/recorded")
    assert recorded["data"]["duration_s"] == pytest.approx((end - start + 1) / FPS, abs=0.25)


async def test_a_while_active_recording_and_overlay_follow_the_input(
    server: Server, admin: Api
) -> None:
    await add_rule(
        admin,
        {"kind": "record", "pre_s": 0, "post_s": 1},
        action_mode="while_active",
    )
    await add_rule(
        admin,
        {"kind": "overlay_text", "text": "ALARM {event.source}"},
        id="banner",
        action_mode="while_active",
    )
    video = await connected(server)
    reply = await admin.post("/api/v1/sim/ports/in1/circuit", {"circuit": "closed"})
    assert reply.status == 200
    await until(lambda: video.overlay == "ALARM in1", "the overlay text")
    start = await now_frame(video)
    await asyncio.sleep(1.5)
    reply = await admin.post("/api/v1/sim/ports/in1/circuit", {"circuit": "open"})
    stop = await now_frame(video)
    await until(lambda: video.overlay is None, "the overlay to clear")
    await until(
        lambda: bool(list((server.data_dir / "media" / "recordings").glob("*/*.mp4"))),
        "the recording",
        15,
    )
    (clip,) = sorted((server.data_dir / "media" / "recordings").glob("*/*.mp4"))
    with av.open(str(clip)) as container:
        codes = [read_frame_code(f) for f in container.decode(video=0)]
        text = _overlay_in(container, clip)
    assert codes[0] is not None and codes[-1] is not None
    assert codes[0] <= start and codes[-1] >= stop + FPS - 2  # held, then post_s more
    assert "ALARM in1" in text


def _overlay_in(container: Any, clip: Path) -> str:
    """The overlay text a recording carries: its subtitle track, else its metadata."""
    with av.open(str(clip)) as again:
        texts = [str(v) for v in again.metadata.values()]
        subs = [s for s in again.streams if s.type == "subtitle"]
        if subs:
            for packet in again.demux(subs[0]):
                if packet.size:
                    texts.append(bytes(packet)[2:].decode(errors="replace"))
    return " ".join(texts)


async def test_without_video_the_action_fails_and_the_fallback_runs(tmp_path: Path) -> None:
    srv = await start_server(tmp_path / "data", video=False)
    try:
        api = srv.digest(*ADMIN)
        await fast_inputs(api, "in1")
        await add_rule(
            api,
            {"kind": "snapshot"},
            fallback={"kind": "set_output", "port": "out1", "duration_ms": 0},
        )
        await alarm(api)
        await until(lambda: _active(srv, "out1"), "the fallback")
        (failed,) = await events_of(api, "rule/failed")
        assert "no video source" in failed["data"]["error"]
    finally:
        await srv.close()
        await srv.app.stop()


def _active(server: Server, port: str) -> bool:
    assert server.app.device is not None
    return bool(server.app.device.port_status(port)["active"])


async def test_a_full_card_refuses_the_snapshot_and_raises_the_storage_event(
    server: Server, admin: Api
) -> None:
    await add_rule(
        admin,
        {"kind": "snapshot"},
        fallback={"kind": "set_output", "port": "out1", "duration_ms": 0},
    )
    await connected(server)
    free_mb = os.statvfs(server.data_dir).f_bavail * os.statvfs(server.data_dir).f_frsize
    await configure_video(admin, min_free_mb=free_mb // (1 << 20) + 4096)
    (full,) = await events_of(admin, "storage/full")
    assert full["source"] == "local" and full["data"]["active"] is True
    await alarm(admin)
    await until(lambda: _active(server, "out1"), "the fallback")
    (failed,) = await events_of(admin, "rule/failed")
    assert "full" in failed["data"]["error"]
    assert not list((server.data_dir / "media").glob("snapshots/*/*.jpg"))


async def test_a_dead_worker_is_a_lost_source_and_comes_back(server: Server, admin: Api) -> None:
    await add_rule(
        admin,
        {"kind": "set_output", "port": "out1"},
        id="lost",
        conditions=[{"kind": "video_source_lost"}],
        action_mode="while_active",
    )
    video = await connected(server)
    pid = video.status()["worker_pid"]
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGKILL)
    await until(lambda: _active(server, "out1"), "the video-lost rule", 5)
    await until(lambda: video.state == "connected", "the worker to come back", 20)
    await until(lambda: not _active(server, "out1"), "the rule to release", 5)
    assert video.status()["worker_pid"] != pid
    states = [e["data"]["state"] for e in await events_of(admin, "video/source")]
    assert states[:2] == ["connected", "lost"]  # newest first
    await now_frame(video)  # and it takes snapshots again


async def test_a_source_password_never_shows(server: Server, admin: Api) -> None:
    """FFmpeg's errors quote the URL; the event, the status and the API hide its password."""
    config = (await admin.get("/api/v1/config")).body["config"]
    url = f"rtsp://cam:hunter2@127.0.0.1:{free_port()}/stream1"
    config["video"] = {"source": url, "options": {"rtsp_transport": "tcp"}}
    assert (await admin.put("/api/v1/config", {"config": config})).status == 200
    video = video_of(server)
    await until(lambda: video.state == "lost", "the source to be lost", 20)
    (lost, *_) = await admin.events(topic="video/source", order="desc")
    assert lost["data"]["state"] == "lost"
    assert "refused" in lost["data"]["error"].lower()
    status = await admin.get("/api/v1/video")
    assert status.status == 200
    for text in (str(lost), str(status.body), str(video.status())):
        assert "hunter2" not in text
    assert "cam:***@" in status.body["source"]
