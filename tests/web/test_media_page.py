"""The Media page in a real browser (Playwright driving Debian's chromium, see conftest.py).

Media are planted as real files (a JPEG and an H.264 MP4 made with PyAV) where the store looks
for them: the page lists them newest first, shows the snapshot as a thumbnail and the recording
in a playable <video>, filters by kind, pages with "Load older", and lets an administrator (and
only an administrator) delete. The live snapshot uses the real video worker (test pattern).
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

pytest.importorskip("playwright.async_api", reason="playwright is not installed (test extra)")

from playwright.async_api import Locator, Page, expect

from camio.app import CamioApp, Settings, open_users
from camio.store.users import Role
from camio.video import VIDEO, VideoService

if TYPE_CHECKING:
    from conftest import Daemon

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN = ("admin", "admin-secret-1")  # as conftest.py's daemon fixture
VIEWER = ("watcher", "viewer-secret-1")
SNAP = "local/snapshots/2026-11-22/20261122T031500.123Z_door.jpg"
REC = "local/recordings/2026-11-22/20261122T031501.500Z_door.mp4"


def jpeg(width: int = 160, height: int = 90) -> bytes:
    """A real JPEG (a flat colour): the thumbnail must decode in the browser."""
    import av

    ctx = av.CodecContext.create("mjpeg", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuvj420p"
    ctx.time_base = Fraction(1, 25)
    frame = av.VideoFrame(width, height, "yuvj420p")
    for plane, value in zip(frame.planes, (90, 200, 60), strict=True):
        plane.update(bytes([value]) * plane.buffer_size)
    return b"".join(bytes(p) for p in ctx.encode(frame) + ctx.encode(None))


def write_mp4(path: Path, frames: int = 10) -> None:
    """A real one-second H.264 MP4, as the recorder writes them (faststart)."""
    import av

    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 90, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame(160, 90, "yuv420p")
            for plane, value in zip(frame.planes, (i * 20, 128, 128), strict=True):
                plane.update(bytes([value]) * plane.buffer_size)
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def video_of(app: CamioApp) -> VideoService:
    assert app.device is not None
    return app.device.services.need(VIDEO)


def plant_path(app: CamioApp, item_id: str) -> Path:
    volume, rest = item_id.split("/", 1)
    path = video_of(app).media.root(volume) / rest
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def plant(app: CamioApp) -> tuple[Path, Path]:
    snap = plant_path(app, SNAP)
    snap.write_bytes(jpeg())
    rec = plant_path(app, REC)
    write_mp4(rec)
    return snap, rec


async def sign_in(page: Page, url: str, user: str, password: str) -> None:
    await page.goto(f"{url}/#/login")
    await page.get_by_label("User name").fill(user)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/#/live*")
    await expect(page.locator("#conn")).to_have_attribute("data-status", "live")


async def shot(page: Page, directory: Path, name: str) -> None:
    await page.mouse.move(0, 0)
    await page.screenshot(path=str(directory / f"{name}.png"), animations="disabled", caret="hide")


def media_row(page: Page, item_id: str) -> Locator:
    return page.locator(f'tr[data-media="{item_id}"]')


async def test_media_are_listed_filtered_played_and_deleted(
    daemon: Daemon, page: Page, screenshots: Path
) -> None:
    snap, rec = plant(daemon.app)
    await sign_in(page, daemon.url, *daemon.admin)
    await page.locator('#nav a[data-route="media"]').click()
    await page.wait_for_url("**/#/media")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Media")

    # Newest first: the recording (03:15:01.5) above the snapshot (03:15:00.123).
    rows = page.locator("tr[data-media]")
    await expect(rows).to_have_count(2)
    assert await rows.nth(0).get_attribute("data-media") == REC
    assert await rows.nth(1).get_attribute("data-media") == SNAP

    # The snapshot's thumbnail decoded; the recording plays in place.
    thumb = media_row(page, SNAP).locator("img.media-thumb")
    await expect(thumb).to_have_attribute("src", f"/api/v1/media/{SNAP}")
    await page.wait_for_function(
        "img => img.complete && img.naturalWidth === 160", arg=await thumb.element_handle()
    )
    player = media_row(page, REC).locator("video")
    await expect(player).to_have_attribute("src", f"/api/v1/media/{REC}")
    await player.evaluate("v => { v.muted = true; v.preload = 'metadata'; v.load(); }")
    await page.wait_for_function(
        "v => v.readyState >= 1 && v.duration > 0.5", arg=await player.element_handle()
    )
    download = media_row(page, REC).get_by_role("link", name=re.compile("^Download"))
    await expect(download).to_have_attribute("href", f"/api/v1/media/{REC}?download=1")

    # The volume and the (turned off) video source.
    local = page.locator('.volume[data-volume="local"]')
    await expect(local.locator(".badge")).to_have_text("ok")
    # The numbers are those of the last check (every minute): files planted behind the
    # device's back count once the administrator checks now.
    await expect(local).to_contain_text("0 files")
    await page.get_by_role("button", name="Check storage now").click()
    await expect(local).to_contain_text("2 files")
    await expect(page.locator(".toast-success")).to_contain_text("every volume is ok")
    await expect(page.locator('.badge[data-state="off"]')).to_be_visible()
    await expect(page.get_by_role("button", name="Live snapshot")).to_be_disabled()
    await shot(page, screenshots, "40-media")

    # The kind filter: snapshots only (and it is in the URL, so Back works).
    await page.get_by_label("Show").select_option("snapshot")
    await page.wait_for_url("**/#/media?kind=snapshot")
    await expect(rows).to_have_count(1)
    await expect(media_row(page, SNAP)).to_be_visible()
    await page.get_by_label("Show").select_option("recording")
    await page.wait_for_url("**/#/media?kind=recording")
    await expect(rows).to_have_count(1)
    await expect(media_row(page, REC)).to_be_visible()

    # Full size on a click, then delete the snapshot as the administrator.
    await page.get_by_label("Show").select_option("")
    await page.wait_for_url(re.compile(r".*#/media$"))
    await expect(rows).to_have_count(2)
    await media_row(page, SNAP).locator(".thumb-btn").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.locator("img.media-full")).to_be_visible()
    await dialog.locator(".dialog-foot").get_by_role("button", name="Close").click()
    await expect(dialog).to_have_count(0)

    await media_row(page, SNAP).get_by_role("button", name=re.compile("^Delete")).click()
    confirm = page.get_by_role("dialog")
    await expect(confirm).to_contain_text("20261122T031500.123Z_door.jpg")
    await confirm.get_by_role("button", name="Delete snapshot").click()
    await expect(media_row(page, SNAP)).to_have_count(0)
    await expect(page.locator(".toast-success").last).to_have_text("The snapshot was deleted.")
    assert not snap.exists() and rec.is_file()
    await expect(local).to_contain_text("1 file,")
    await page.reload()
    await expect(rows).to_have_count(1)


async def test_a_viewer_pages_through_media_but_cannot_delete(
    daemon: Daemon, page: Page, screenshots: Path
) -> None:
    conn, users = open_users(daemon.app.settings.data_dir)
    try:
        users.add(*VIEWER, Role.VIEWER)
    finally:
        conn.close()
    picture = jpeg()
    for n in range(60):  # 60 snapshots one second apart: more than a page (50)
        item = f"local/snapshots/2026-11-22/20261122T0400{n:02d}.000Z_tick.jpg"
        plant_path(daemon.app, item).write_bytes(picture)
    await sign_in(page, daemon.url, *VIEWER)
    await page.goto(f"{daemon.url}/#/media")
    rows = page.locator("tr[data-media]")
    await expect(rows).to_have_count(50)
    assert await rows.first.get_attribute("data-media") == (
        "local/snapshots/2026-11-22/20261122T040059.000Z_tick.jpg"
    )
    await expect(page.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)
    await expect(page.get_by_role("button", name="Check storage now")).to_have_count(0)
    await page.get_by_role("button", name="Load older").click()
    await expect(rows).to_have_count(60)
    assert await rows.last.get_attribute("data-media") == (
        "local/snapshots/2026-11-22/20261122T040000.000Z_tick.jpg"
    )
    await expect(page.get_by_role("button", name="Load older")).to_be_hidden()


@pytest_asyncio.fixture(loop_scope="module")
async def video_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CamioApp]:
    """A device running the video worker on the built-in test pattern."""
    monkeypatch.setenv("CAMIO_ADMIN_USER", ADMIN[0])
    monkeypatch.setenv("CAMIO_ADMIN_PASSWORD", ADMIN[1])
    settings = Settings(
        data_dir=tmp_path / "data", host="127.0.0.1", port=0, https_off=True, video=True
    )
    app = CamioApp(settings, out=io.StringIO())
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def test_a_live_snapshot_from_the_video_source(
    video_app: CamioApp, page: Page, screenshots: Path
) -> None:
    await sign_in(page, video_app.url, *ADMIN)
    await page.goto(f"{video_app.url}/#/media")
    # The source state follows the event stream: connecting, then connected.
    await expect(page.locator('.badge[data-state="connected"]')).to_be_visible(timeout=30_000)
    await page.get_by_role("button", name="Live snapshot").click()
    live = page.locator("img.live-snapshot")
    await expect(live).to_be_visible(timeout=15_000)
    await expect(live).to_have_attribute("src", re.compile(r"^data:image/jpeg;base64,"))
    await page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=await live.element_handle()
    )
    await shot(page, screenshots, "41-media-live-snapshot")
