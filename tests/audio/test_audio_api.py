"""The audio routes on a real daemon: upload, list, play, what played, delete, and refusals."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from audio_helpers import wav_bytes

from camio.app import CamioApp, Settings, open_users
from camio.audio.library import MAX_CLIP_BYTES
from camio.store.users import Role

ADMIN = ("admin", "admin-secret-1")
OPERATOR = ("op", "operator-secret-1")
VIEWER = ("view", "viewer-secret-1")


def _auth(user: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(":".join(user).encode()).decode()}


@pytest.fixture
async def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CamioApp]:
    monkeypatch.setenv("CAMIO_ADMIN_USER", ADMIN[0])
    monkeypatch.setenv("CAMIO_ADMIN_PASSWORD", ADMIN[1])
    settings = Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0, https_off=True)
    app = CamioApp(settings, out=io.StringIO())
    await app.start()
    conn, users = open_users(settings.data_dir)
    try:
        users.add(*OPERATOR, Role.OPERATOR)
        users.add(*VIEWER, Role.VIEWER)
    finally:
        conn.close()
    try:
        yield app
    finally:
        await app.stop()


async def _call(
    app: CamioApp, user: tuple[str, str], method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession(headers=_auth(user)) as session,
        session.request(method, app.url + path, **kwargs) as resp,
    ):
        body = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, body


async def test_upload_list_play_and_delete(daemon: CamioApp) -> None:
    wav = wav_bytes(1.25, rate=22050)
    headers = {"Content-Type": "audio/wav"}
    status, clip = await _call(
        daemon, ADMIN, "PUT", "/api/v1/audio/clips/bell", data=wav, headers=headers
    )
    assert status == 200, clip
    assert clip == {
        "name": "bell",
        "size": len(wav),
        "channels": 1,
        "sample_rate": 22050,
        "sample_bits": 16,
        "duration_s": 1.25,
    }
    assert (daemon.settings.data_dir / "clips" / "bell.wav").read_bytes() == wav
    status, listing = await _call(daemon, VIEWER, "GET", "/api/v1/audio/clips")
    assert status == 200 and listing == {"output": "sim", "clips": [clip]}

    status, record = await _call(
        daemon, OPERATOR, "POST", "/api/v1/audio/clips/bell/play", json={"repeat": 2}
    )
    assert status == 200, record
    assert record["clip"] == "bell" and record["repeat"] == 2 and record["source"] == "api:op"
    assert record["outcome"] == "playing"
    status, played = await _call(daemon, VIEWER, "GET", "/api/v1/audio/played")
    assert status == 200 and played["output"] == "sim" and played["played"] == [record]
    # No body: once.
    status, record = await _call(daemon, OPERATOR, "POST", "/api/v1/audio/clips/bell/play")
    assert status == 200 and record["repeat"] == 1

    # A rule can use it.
    rule = {
        "id": "door",
        "name": "Door",
        "conditions": [{"kind": "manual_trigger"}],
        "action": {"kind": "play_audio", "clip": "bell", "repeat": 3},
    }
    status, body = await _call(daemon, ADMIN, "POST", "/api/v1/rules", json=rule)
    assert status == 201, body
    status, body = await _call(daemon, OPERATOR, "POST", "/api/v1/rules/door/test")
    assert status < 300, body
    _, played = await _call(daemon, VIEWER, "GET", "/api/v1/audio/played")
    assert played["played"][-1]["source"] == "rule:door"
    assert played["played"][-1]["repeat"] == 3

    status, _ = await _call(daemon, ADMIN, "DELETE", "/api/v1/audio/clips/bell")
    assert status == 204
    status, body = await _call(daemon, OPERATOR, "POST", "/api/v1/audio/clips/bell/play")
    assert status == 404, body


async def test_refusals(daemon: CamioApp) -> None:
    put = "/api/v1/audio/clips/x"
    status, body = await _call(daemon, ADMIN, "PUT", put, data=b"ID3 not a wav")
    assert status == 422 and "not a WAV" in body["message"]
    status, body = await _call(
        daemon, ADMIN, "PUT", put, data=io.BytesIO(b"RIFF" + bytes(MAX_CLIP_BYTES))
    )
    assert status == 413, body
    status, body = await _call(daemon, ADMIN, "PUT", "/api/v1/audio/clips/.x", data=wav_bytes())
    assert status == 422, body
    status, _ = await _call(daemon, OPERATOR, "PUT", put, data=wav_bytes())
    assert status == 403
    status, _ = await _call(daemon, OPERATOR, "DELETE", put)
    assert status == 403
    status, _ = await _call(daemon, VIEWER, "POST", put + "/play")
    assert status == 403
    status, body = await _call(daemon, ADMIN, "POST", put + "/play", json={"repeat": 0})
    assert status == 422, body
    status, _ = await _call(daemon, ADMIN, "GET", "/api/v1/audio/clips/x")
    assert status in (404, 405)
    status, _ = await _call(daemon, ADMIN, "DELETE", put)
    assert status == 404
