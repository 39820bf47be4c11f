"""The video, storage and media routes against a real daemon.

The media store is indexed by the file system, so most tests plant real files in the storage
layout (``<media>/snapshots/2026-11-22/20261122T031500.123Z_rule1.jpg``) and need no video
worker; only the live snapshot needs one (``start_server(video=True)``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from apihelpers import ADMIN, OPERATOR, VIEWER, Server, basic_header, start_server
from yarl import URL

from camio.app import open_users
from camio.engine.services import Services
from camio.store.users import Role
from camio.video import VIDEO, VideoError, VideoService

pytestmark = pytest.mark.asyncio

SNAP_A = "local/snapshots/2026-11-21/20261121T235959.999Z_door.jpg"
SNAP_B = "local/snapshots/2026-11-22/20261122T031500.123Z_rule1.jpg"
SNAP_C = "local/snapshots/2026-11-22/20261122T031502.000Z.jpg"
REC_A = "local/recordings/2026-11-22/20261122T031501.500Z_rule1.mp4"
REC_B = "local/recordings/2026-11-22/20261122T040000.000Z_night.mp4"
NEWEST_FIRST = [REC_B, SNAP_C, REC_A, SNAP_B, SNAP_A]


@pytest.fixture
async def video(server: Server) -> AsyncIterator[VideoService]:
    """The device's video service (video turned off: storage works without the worker).

    Registered here only if the composition root did not (it does since Settings.video)."""
    device = server.app.device
    assert device is not None
    existing = device.services.get(VIDEO)
    if existing is not None:
        yield existing
        return
    service = VideoService(device, server.data_dir, enabled=False)
    device.services.set(VIDEO, service)
    service.start()
    try:
        yield service
    finally:
        await service.close()


def content_of(item_id: str) -> bytes:
    """Distinct bytes per file, long enough for Range requests."""
    return (item_id.encode() + b"|") * 20


def plant(video: VideoService, *item_ids: str) -> list[Path]:
    """Write real files where the store looks for them."""
    paths = []
    for item_id in item_ids:
        volume, rest = item_id.split("/", 1)
        path = video.media.root(volume) / rest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content_of(item_id))
        paths.append(path)
    return paths


class Raw:
    """Byte-level calls (files are not text): status, headers and body."""

    def __init__(self, server: Server, credentials: tuple[str, str] | None) -> None:
        headers = basic_header(*credentials) if credentials else None
        self.session = aiohttp.ClientSession(headers=headers)
        server.sessions.append(self.session)
        self.url = server.url

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
        # encoded=True: the path goes out exactly as written (%2F, %2e%2e, .. kept).
        url = URL(self.url + path, encoded=True)
        async with self.session.get(url, headers=headers) as resp:
            return resp.status, resp.headers, await resp.read()


async def ids(api: Any, query: str = "") -> list[str]:
    reply = await api.get(f"/api/v1/media{query}")
    assert reply.status == 200, reply
    return [item["id"] for item in reply.body["items"]]


# -- listing ----------------------------------------------------------------------------------


async def test_media_are_listed_newest_first_with_their_details(
    video: VideoService, viewer: Any
) -> None:
    assert (await viewer.get("/api/v1/media")).body == {"items": [], "next": None}
    plant(video, *NEWEST_FIRST)
    reply = await viewer.get("/api/v1/media")
    assert reply.status == 200, reply
    assert [i["id"] for i in reply.body["items"]] == NEWEST_FIRST
    assert reply.body["next"] is None
    assert reply.body["items"][0] == {
        "id": REC_B,
        "volume": "local",
        "kind": "recording",
        "name": "20261122T040000.000Z_night.mp4",
        "size": len(content_of(REC_B)),
        "time": "2026-11-22T04:00:00.000Z",
        "content_type": "video/mp4",
    }
    assert reply.body["items"][-1]["content_type"] == "image/jpeg"
    assert reply.body["items"][-1]["kind"] == "snapshot"


async def test_kind_and_volume_filters(video: VideoService, viewer: Any) -> None:
    plant(video, *NEWEST_FIRST)
    assert await ids(viewer, "?kind=snapshot") == [SNAP_C, SNAP_B, SNAP_A]
    assert await ids(viewer, "?kind=recording") == [REC_B, REC_A]
    assert await ids(viewer, "?kind=recording&volume=local") == [REC_B, REC_A]
    assert await ids(viewer, "?volume=local&limit=1") == [REC_B]
    # Not what a filter looks like, but harmless: an empty value is no filter.
    assert await ids(viewer, "?kind=&volume=") == NEWEST_FIRST
    # The share is not configured: no such volume.
    reply = await viewer.get("/api/v1/media?volume=share")
    assert reply.status == 404, reply
    assert "share" in reply.body["message"]


async def test_paging_with_next_visits_every_item_once(video: VideoService, viewer: Any) -> None:
    plant(video, *NEWEST_FIRST)
    seen: list[str] = []
    query = "?limit=2"
    pages = 0
    while True:
        reply = await viewer.get(f"/api/v1/media{query}")
        assert reply.status == 200, reply
        pages += 1
        seen += [item["id"] for item in reply.body["items"]]
        if reply.body["next"] is None:
            break
        query = f"?limit=2&before={reply.body['next']}"
    assert seen == NEWEST_FIRST
    assert pages == 3
    # Exactly a page left: no empty page after it.
    first = await viewer.get("/api/v1/media?limit=5")
    assert first.body["next"] is None
    # A bare time works as the cursor too: everything strictly older.
    assert await ids(viewer, "?before=20261122T031501.500Z") == [SNAP_B, SNAP_A]
    assert await ids(viewer, "?before=20261122T031501") == [SNAP_B, SNAP_A]
    assert await ids(viewer, "?kind=snapshot&before=20261122T031500.123Z_rule1.jpg") == [SNAP_A]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("kind=video", "kind"),
        ("kind=snapshots", "kind"),
        ("volume=nas", "volume"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("before=yesterday", "before"),
        ("before=../../etc", "before"),
        ("before=20261122T031500.123Z%2F..", "before"),
    ],
)
async def test_bad_query_values_are_a_400_naming_the_parameter(
    video: VideoService, viewer: Any, query: str, field: str
) -> None:
    reply = await viewer.get(f"/api/v1/media?{query}")
    assert reply.status == 400, reply
    assert reply.body["error"] == "invalid"
    assert reply.body["message"].startswith(f"{field}: ")
    assert [e["field"] for e in reply.body["errors"]] == [field]


async def test_a_bad_before_says_what_is_expected(video: VideoService, viewer: Any) -> None:
    reply = await viewer.get("/api/v1/media?before=yesterday")
    assert reply.status == 400
    assert "20261122T031500.123Z" in reply.body["message"]


# -- files ------------------------------------------------------------------------------------


async def test_files_are_served_inline_or_as_attachments(
    video: VideoService, server: Server
) -> None:
    plant(video, SNAP_B, REC_A)
    raw = Raw(server, VIEWER)
    status, headers, body = await raw.get(f"/api/v1/media/{SNAP_B}")
    assert status == 200
    assert body == content_of(SNAP_B)
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Disposition"] == 'inline; filename="20261122T031500.123Z_rule1.jpg"'
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["X-Content-Type-Options"] == "nosniff"

    status, headers, body = await raw.get(f"/api/v1/media/{REC_A}?download=1")
    assert status == 200
    assert body == content_of(REC_A)
    assert headers["Content-Type"] == "video/mp4"
    assert headers["Content-Disposition"] == (
        'attachment; filename="20261122T031501.500Z_rule1.mp4"'
    )
    status, headers, _ = await raw.get(f"/api/v1/media/{REC_A}?download=0")
    assert headers["Content-Disposition"].startswith("inline;")

    status, _, body = await raw.get(f"/api/v1/media/{REC_A}?download=please")
    assert status == 400, body


async def test_range_requests_get_part_of_a_recording(video: VideoService, server: Server) -> None:
    plant(video, REC_A)
    whole = content_of(REC_A)
    raw = Raw(server, VIEWER)
    status, headers, body = await raw.get(f"/api/v1/media/{REC_A}", {"Range": "bytes=0-9"})
    assert status == 206
    assert body == whole[:10]
    assert headers["Content-Range"] == f"bytes 0-9/{len(whole)}"
    assert headers["Content-Type"] == "video/mp4"

    status, headers, body = await raw.get(f"/api/v1/media/{REC_A}", {"Range": "bytes=100-"})
    assert status == 206
    assert body == whole[100:]

    status, headers, body = await raw.get(f"/api/v1/media/{REC_A}", {"Range": "bytes=-5"})
    assert status == 206
    assert body == whole[-5:]

    status, headers, _ = await raw.get(f"/api/v1/media/{REC_A}", {"Range": "bytes=99999-"})
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{len(whole)}"


@pytest.mark.parametrize(
    "path",
    [
        # Outside the media folders, through every spelling of "up" and of "/".
        "/api/v1/media/local/snapshots/2026-11-22/..%2F..%2F..%2Fconfig.yaml",
        "/api/v1/media/local/snapshots/2026-11-22/%2e%2e%2f%2e%2e%2f%2e%2e%2fconfig.yaml",
        "/api/v1/media/local/snapshots/..%2F..%2F../config.yaml",
        "/api/v1/media/local/snapshots/2026-11-22%2F..%2F..%2F..%2F/config.yaml",
        "/api/v1/media/local/..%2F..%2F/x/config.yaml",
        "/api/v1/media/..%2F..%2F/snapshots/2026-11-22/20261122T031500.123Z_rule1.jpg",
        "/api/v1/media/local/snapshots/2026-11-22/..%5C..%5Cconfig.yaml",
        "/api/v1/media/local/snapshots/2026-11-22/%2Fetc%2Fpasswd",
        "/api/v1/media/local/snapshots/2026-11-22/20261122T031500.123Z_rule1.jpg%00.txt",
        # Well-formed but not media: unknown kind, a day that is not a day, another name.
        "/api/v1/media/local/tmp/2026-11-22/20261122T031500.123Z_rule1.jpg",
        "/api/v1/media/local/snapshots/latest/20261122T031500.123Z_rule1.jpg",
        "/api/v1/media/local/snapshots/2026-11-22/config.yaml",
        "/api/v1/media/local/snapshots/2026-11-22/.20261122T031500.123Z_rule1.jpg",
        "/api/v1/media/local/snapshots/2026-11-22/20261122T031500.123Z_rule1.jpg.part",
        "/api/v1/media/share/snapshots/2026-11-22/20261122T031500.123Z_rule1.jpg",
        "/api/v1/media/local/snapshots/2026-11-22/20261122T031500.124Z_rule1.jpg",
    ],
)
async def test_anything_but_a_media_file_is_a_404(
    video: VideoService, server: Server, path: str
) -> None:
    plant(video, SNAP_B)
    (server.data_dir / "media" / "secret.jpg").write_bytes(b"not media")
    part = video.media.root("local") / "snapshots/2026-11-22/20261122T031500.123Z_rule1.jpg.part"
    part.write_bytes(b"half")
    raw = Raw(server, ADMIN)
    status, headers, body = await raw.get(path)
    assert status == 404, (path, status, body[:200])
    assert headers["Content-Type"].startswith("application/json")
    assert b"secret" not in body and b"admin" not in body
    # Deleting is refused the same way, and nothing was removed.
    async with raw.session.delete(URL(server.url + path, encoded=True)) as resp:
        assert resp.status == 404, path
    assert (server.data_dir / "config.yaml").is_file()
    assert (video.media.root("local") / SNAP_B.split("/", 1)[1]).is_file()


# -- who may do what --------------------------------------------------------------------------


async def test_viewers_list_and_download_admins_delete(video: VideoService, server: Server) -> None:
    snap, rec = plant(video, SNAP_B, REC_A)
    anonymous = Raw(server, None)
    for path in ("/api/v1/media", f"/api/v1/media/{SNAP_B}", "/api/v1/storage", "/api/v1/video"):
        status, _, _ = await anonymous.get(path)
        assert status == 401, path
    viewer = server.digest(*VIEWER)
    assert (await viewer.get("/api/v1/media")).status == 200
    status, _, body = await Raw(server, VIEWER).get(f"/api/v1/media/{SNAP_B}")
    assert status == 200 and body == content_of(SNAP_B)

    for who in (viewer, server.basic(*OPERATOR)):
        reply = await who.delete(f"/api/v1/media/{SNAP_B}")
        assert reply.status == 403, reply
        assert (await who.post("/api/v1/storage/check")).status == 403
    assert snap.is_file()

    admin = server.digest(*ADMIN)
    reply = await admin.delete(f"/api/v1/media/{SNAP_B}")
    assert reply.status == 204, reply
    assert not snap.exists() and rec.is_file()
    assert not snap.parent.exists() or any(snap.parent.iterdir())
    assert await ids(viewer) == [REC_A]
    assert (await admin.delete(f"/api/v1/media/{SNAP_B}")).status == 404
    status, _, _ = await Raw(server, VIEWER).get(f"/api/v1/media/{SNAP_B}")
    assert status == 404

    # The deletion is in the audit log with its author.
    audits = await admin.events(topic="audit/*", order="desc", limit=20)
    [entry] = [e for e in audits if e["data"].get("path") == f"/api/v1/media/{SNAP_B}"]
    assert entry["data"]["method"] == "DELETE"
    assert entry["source"] == ADMIN[0]


# -- storage and the video source -------------------------------------------------------------


async def test_storage_volumes_and_a_check_now(
    video: VideoService, viewer: Any, admin: Any
) -> None:
    reply = await viewer.get("/api/v1/storage")
    assert reply.status == 200, reply
    [local] = reply.body["volumes"]
    assert local["volume"] == "local" and local["state"] == "ok" and local["error"] is None
    assert local["path"] == str(video.media.root("local"))
    assert local["total_bytes"] > 0 and local["free_bytes"] > 0
    assert local["files"] == 0
    plant(video, SNAP_B, REC_A)
    reply = await admin.post("/api/v1/storage/check")
    assert reply.status == 200, reply
    [local] = reply.body["volumes"]
    assert local["files"] == 2
    assert local["used_bytes"] == len(content_of(SNAP_B)) + len(content_of(REC_A))
    assert (await viewer.get("/api/v1/storage")).body["volumes"][0]["files"] == 2


async def test_a_missing_share_is_shown_as_a_failure(
    video: VideoService, viewer: Any, admin: Any, tmp_path: Path
) -> None:
    config = (await admin.get("/api/v1/config")).body["config"]
    config["storage"] = {**config["storage"], "share_path": str(tmp_path / "nas")}
    reply = await admin.put("/api/v1/config", {"config": config})
    assert reply.status == 200, reply
    volumes = {v["volume"]: v for v in (await viewer.get("/api/v1/storage")).body["volumes"]}
    assert volumes["local"]["state"] == "ok"
    assert volumes["share"]["state"] == "failure"
    assert "mounted" in volumes["share"]["error"]
    assert (await viewer.get("/api/v1/media?volume=share")).status == 200


async def test_video_status_without_video(video: VideoService, viewer: Any) -> None:
    reply = await viewer.get("/api/v1/video")
    assert reply.status == 200, reply
    body = reply.body
    assert body["enabled"] is video.enabled
    assert body["source"] == "test"
    assert body["state"] == video.state
    assert body["stream"] is None and body["worker"] is None
    assert body["recordings"] == []
    if not video.enabled:
        assert body["state"] == "off"
        reply = await viewer.get("/api/v1/video/snapshot")
        assert reply.status == 404, reply
        assert "no video source" in reply.body["message"]


async def test_a_snapshot_while_the_video_is_down_is_a_503(
    video: VideoService, viewer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(video, "_allowed", True)  # video on, but no worker answers

    async def down(**_: Any) -> Any:
        raise VideoError("the video worker is not running")

    monkeypatch.setattr(video, "snapshot", down)
    reply = await viewer.get("/api/v1/video/snapshot")
    assert reply.status == 503, reply
    assert reply.body == {
        "error": "video_unavailable",
        "message": "the video worker is not running",
    }


async def test_without_a_video_service_the_routes_are_404(
    server: Server, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = server.app.device
    assert device is not None
    bare = Services()
    monkeypatch.setattr(device, "services", bare)
    for path in (
        "/api/v1/video",
        "/api/v1/video/snapshot",
        "/api/v1/storage",
        "/api/v1/media",
        f"/api/v1/media/{SNAP_B}",
    ):
        reply = await admin.get(path)
        assert reply.status == 404, (path, reply)
        assert reply.body["error"] == "not_found"
        assert "video" in reply.body["message"]
    assert (await admin.post("/api/v1/storage/check")).status == 404
    assert (await admin.delete(f"/api/v1/media/{SNAP_B}")).status == 404


# -- with the video worker --------------------------------------------------------------------


async def test_a_live_snapshot_is_a_fresh_jpeg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMIO_ADMIN_USER", ADMIN[0])
    monkeypatch.setenv("CAMIO_ADMIN_PASSWORD", ADMIN[1])
    server = await start_server(tmp_path / "data", video=True)
    try:
        conn, users = open_users(server.data_dir)
        try:
            users.add(*VIEWER, Role.VIEWER)
        finally:
            conn.close()
        raw = Raw(server, VIEWER)
        viewer = server.basic(*VIEWER)
        stream = await server.stream("?topic=video/source", credentials=VIEWER)
        await stream.until(lambda e: e["data"]["state"] == "connected", within=30)
        status = (await viewer.get("/api/v1/video")).body
        assert status["enabled"] is True and status["worker_pid"]
        assert status["stream"]["width"] > 0
        assert status["worker"] is not None
        status_code, headers, body = await raw.get("/api/v1/video/snapshot")
        assert status_code == 200, body[:300]
        assert headers["Content-Type"] == "image/jpeg"
        assert headers["Cache-Control"] == "no-store"
        assert body[:2] == b"\xff\xd8" and body[-2:] == b"\xff\xd9"
        # Not saved: a live snapshot leaves no media behind.
        assert (await viewer.get("/api/v1/media")).body["items"] == []
    finally:
        await server.close()
        await server.app.stop()
