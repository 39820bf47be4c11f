"""Recipients end to end against real servers on 127.0.0.1: an aiohttp webhook receiver, a TCP
listener and a directory standing in for a mounted share.

The receiver deduplicates by ``Idempotency-Key`` as a real one should; the outage tests stop
its listening site during a burst of alarms (and make it lose an acknowledgement) and check
that every notification arrives exactly once per event, also across a camio restart.
Waits are bounded by asyncio timeouts; nothing sleeps on the wall clock for a fixed time.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import BodyPartReader, web
from apihelpers import ADMIN, Api, Server, fast_inputs, start_server

from camio.recipients.base import Attachment, Delivery

HOOK_AUTH = ("hook", "hook-secret")


@dataclass
class Webhook:
    """A webhook receiver: records every request, keeps each Idempotency-Key once."""

    port: int = 0
    requests: list[str] = field(default_factory=list)
    received: dict[str, dict[str, Any]] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    lose_ack_once: set[str] = field(default_factory=set)
    lose_acks: bool = False
    runner: web.AppRunner | None = None
    site: web.TCPSite | None = None

    async def handle(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(":".join(HOOK_AUTH).encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401, text="bad credentials")
        key = request.headers["Idempotency-Key"]
        self.requests.append(key)
        if key not in self.received:
            self.received[key] = await self._payload(request)
            self.headers[key] = dict(request.headers)
        if self.lose_acks and key not in self.lose_ack_once:
            self.lose_ack_once.add(key)  # processed, but the answer is "lost": a retry comes
            return web.Response(status=503)
        return web.Response(status=200)

    @staticmethod
    async def _payload(request: web.Request) -> dict[str, Any]:
        if not request.content_type.startswith("multipart/"):
            body: dict[str, Any] = await request.json()
            return body
        payload: dict[str, Any] = {"files": {}}
        async for part in await request.multipart():
            assert isinstance(part, BodyPartReader)
            if part.name == "payload":
                payload.update(await part.json() or {})
            else:
                payload["files"][part.filename] = (part.headers["Content-Type"], await part.read())
        return payload

    async def start(self) -> None:
        if self.runner is None:
            app = web.Application()
            app.router.add_post("/hook", self.handle)
            self.runner = web.AppRunner(app, access_log=None)
            await self.runner.setup()
        self.site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await self.site.start()
        server = self.site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def kill(self) -> None:
        assert self.site is not None
        await self.site.stop()
        self.site = None

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?src={{event.source}}"


@dataclass
class LineListener:
    lines: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            self.lines.append(line.decode().rstrip("\n"))
        writer.close()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    hook = Webhook()
    await hook.start()
    yield hook
    await hook.close()


@pytest.fixture
async def listener() -> AsyncIterator[LineListener]:
    lst = LineListener()
    await lst.start()
    yield lst
    await lst.close()


async def until(
    check: Callable[[], bool | Awaitable[bool]], what: str, within: float = 10.0
) -> None:
    """Poll ``check`` (the receivers and the API have nothing to await on) within a bound."""
    try:
        async with asyncio.timeout(within):
            while True:
                result = check()
                if await result if inspect.isawaitable(result) else result:
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def http_recipient(hook: Webhook, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "http",
        "id": "hook",
        "name": "Webhook",
        "url": hook.url,
        "auth": "basic",
        "username": HOOK_AUTH[0],
        "password": HOOK_AUTH[1],
        "timeout_s": 2,
        **extra,
    }


async def setup_rule(api: Api, recipients: list[str]) -> None:
    await fast_inputs(api, "in1")
    rule = {
        "id": "door",
        "name": "Door",
        "conditions": [{"kind": "input", "port": "in1"}],
        "action": {
            "kind": "notify",
            "recipients": recipients,
            "subject": "{device.name}: {event.source} {event.data.active}",
        },
    }
    reply = await api.post("/api/v1/rules", rule)
    assert reply.status == 201, reply


async def fast_retries(api: Api) -> None:
    config = (await api.get("/api/v1/config")).body["config"]
    config["outbox"] = {"backoff_base_ms": 20, "backoff_max_ms": 100}
    reply = await api.put("/api/v1/config", {"config": config})
    assert reply.status == 200, reply


async def alarm(api: Api) -> None:
    for circuit in ("closed", "open"):
        reply = await api.post("/api/v1/sim/ports/in1/circuit", {"circuit": circuit})
        assert reply.status == 200, reply


async def test_a_rule_notifies_webhook_tcp_and_share(
    admin: Api, webhook: Webhook, listener: LineListener, tmp_path: Path
) -> None:
    assert listener.server is not None
    tcp_port = listener.server.sockets[0].getsockname()[1]
    share = tmp_path / "share"
    share.mkdir()
    for body in (
        http_recipient(webhook),
        {"kind": "tcp", "id": "line", "name": "Line", "host": "127.0.0.1", "port": tcp_port},
        {
            "kind": "share",
            "id": "nas",
            "name": "NAS",
            "path": str(share),
            "directory": "{device.name}/{event.source}",
            "min_free_mb": 0,
        },
    ):
        reply = await admin.post("/api/v1/recipients", body)
        assert reply.status == 201, reply
    templated = http_recipient(
        webhook,
        id="hook2",
        headers={"X-Camera": "{device.name}"},
        body={"alarm": "{event.source}", "text": "{subject}", "level": 3},
    )
    assert (await admin.post("/api/v1/recipients", templated)).status == 201
    await setup_rule(admin, ["hook", "line", "nas", "hook2"])
    await alarm(admin)
    await until(lambda: len(webhook.received) == 2 and len(listener.lines) == 1, "deliveries")
    key = next(k for k in webhook.received if k.endswith("-hook"))
    assert re.fullmatch(r"door-\d+-hook", key)
    payload = webhook.received[key]
    assert payload["subject"] == "camio: in1 True"
    assert payload["event"]["topic"] == "io/input"
    key2 = key + "2"
    assert webhook.received[key2] == {"alarm": "in1", "text": "camio: in1 True", "level": 3}
    assert webhook.headers[key2]["X-Camera"] == "camio"
    event_id = key.split("-")[1]
    assert listener.lines == [f"door-{event_id}-line io/input in1 camio: in1 True"]
    files = sorted(p.name for p in (share / "camio" / "in1").iterdir())
    assert files == [f"door-{event_id}-nas-message.txt"]
    outbox = await admin.get("/api/v1/outbox")
    assert outbox.status == 200
    states = {r["recipient"]: r["state"] for r in outbox.body["recipients"]}
    assert set(states) == {"hook", "line", "nas", "hook2"}
    refused = await admin.delete("/api/v1/recipients/hook")  # the rule still names it
    assert refused.status == 422 and "no recipient 'hook'" in str(refused.body), refused


async def test_passwords_are_write_only_and_test_says_what_to_fix(
    admin: Api, operator: Api, viewer: Api, webhook: Webhook
) -> None:
    reply = await admin.post("/api/v1/recipients", http_recipient(webhook))
    assert reply.status == 201, reply
    got = await viewer.get("/api/v1/recipients/hook")
    assert got.status == 200 and got.body["password"] == "********"
    assert HOOK_AUTH[1] not in str((await viewer.get("/api/v1/recipients")).body)
    # The placeholder keeps the stored password: the test still authenticates.
    reply = await admin.put(
        "/api/v1/recipients/hook", {k: v for k, v in got.body.items() if k != "status"}
    )
    assert reply.status == 200, reply
    result = await operator.post("/api/v1/recipients/hook/test")
    assert result.status == 200 and result.body["ok"] is True, result
    assert webhook.requests and webhook.requests[-1].startswith("test-")
    reply = await admin.put("/api/v1/recipients/hook", http_recipient(webhook, password="wrong"))
    result = await operator.post("/api/v1/recipients/hook/test")
    assert result.body["ok"] is False and "HTTP 401" in result.body["message"], result
    assert "check username, password" in result.body["message"]
    reply = await admin.post(
        "/api/v1/recipients",
        {"kind": "tcp", "id": "line", "name": "Line", "host": "127.0.0.1", "port": 1},
    )
    result = await operator.post("/api/v1/recipients/line/test")
    assert result.body["ok"] is False and "cannot send to 127.0.0.1:1" in result.body["message"]
    full = {"kind": "share", "id": "full", "name": "Full", "path": "/tmp", "min_free_mb": 999_999}
    assert (await admin.post("/api/v1/recipients", full)).status == 201
    result = await operator.post("/api/v1/recipients/full/test")
    assert result.body["ok"] is False and "needs 999999 MB to spare" in result.body["message"]
    assert (await viewer.post("/api/v1/recipients/hook/test")).status == 403
    assert (await operator.delete("/api/v1/recipients/hook")).status == 403
    assert (await admin.delete("/api/v1/recipients/hook")).status == 204
    assert (await admin.get("/api/v1/recipients/hook")).status == 404


async def test_a_burst_during_an_outage_arrives_exactly_once_per_event(
    admin: Api, webhook: Webhook
) -> None:
    reply = await admin.post("/api/v1/recipients", http_recipient(webhook))
    assert reply.status == 201, reply
    await setup_rule(admin, ["hook"])
    await fast_retries(admin)
    await webhook.kill()
    for _ in range(5):
        await alarm(admin)

    async def retrying() -> bool:
        body = (await admin.get("/api/v1/outbox")).body
        return len(body["deliveries"]) == 5 and body["recipients"][0]["state"] == "retrying"

    await until(retrying, "retrying")
    webhook.lose_acks = True  # back, but each first answer is lost: the retry is a duplicate
    await webhook.start()
    await until(lambda: len(webhook.requests) >= 10, "retries after the lost answers")

    async def drained() -> bool:
        return (await admin.get("/api/v1/outbox")).body["deliveries"] == []

    await until(drained, "drained")
    assert len(webhook.received) == 5  # exactly once per event after deduplication
    assert all(webhook.requests.count(key) >= 2 for key in webhook.received)  # same key
    delivered = await admin.get("/api/v1/events?topic=outbox/delivered")
    assert sorted(e["data"]["key"] for e in delivered.body["events"]) == sorted(webhook.received)


async def test_queued_deliveries_survive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook: Webhook
) -> None:
    monkeypatch.setenv("CAMIO_ADMIN_USER", ADMIN[0])
    monkeypatch.setenv("CAMIO_ADMIN_PASSWORD", ADMIN[1])
    data_dir = tmp_path / "data"
    first: Server = await start_server(data_dir)
    try:
        api = first.digest(*ADMIN)
        assert (await api.post("/api/v1/recipients", http_recipient(webhook))).status == 201
        await setup_rule(api, ["hook"])
        await fast_retries(api)
        await webhook.kill()
        for _ in range(3):
            await alarm(api)

        async def tried() -> bool:
            rows = (await api.get("/api/v1/outbox")).body["deliveries"]
            return len(rows) == 3 and all(r["attempts"] >= 1 for r in rows)

        await until(tried, "tried")
    finally:
        await first.close()
        await first.app.stop()
    assert webhook.received == {}
    await webhook.start()
    second = await start_server(data_dir)
    try:
        await until(lambda: len(webhook.received) == 3, "the queued deliveries after restart")
        assert all(re.fullmatch(r"door-\d+-hook", key) for key in webhook.received)
        assert len(set(webhook.requests)) == 3
    finally:
        await second.close()
        await second.app.stop()


async def test_attachments_go_as_multipart_and_as_files(
    server: Server, admin: Api, webhook: Webhook, tmp_path: Path
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    assert (await admin.post("/api/v1/recipients", http_recipient(webhook))).status == 201
    nas = {"kind": "share", "id": "nas", "name": "NAS", "path": str(share), "min_free_mb": 0}
    assert (await admin.post("/api/v1/recipients", nas)).status == 201
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"
    device = server.app.device
    assert device is not None
    for rid in ("hook", "nas"):
        delivery = Delivery(
            key=f"snap-1-{rid}",
            recipient_id=rid,
            subject="Snapshot",
            body="Door",
            event={"topic": "io/input", "source": "in1"},
            attachments=(Attachment("snap.jpg", "image/jpeg", jpeg),),
        )
        assert device.enqueue(delivery)
    await until(lambda: "snap-1-hook" in webhook.received, "the multipart upload")
    await until(lambda: (share / "snap-1-nas-snap.jpg").exists(), "the file on the share")
    got = webhook.received["snap-1-hook"]
    assert got["subject"] == "Snapshot"
    assert got["files"] == {"snap.jpg": ("image/jpeg", jpeg)}
    assert (share / "snap-1-nas-snap.jpg").read_bytes() == jpeg
    assert (share / "snap-1-nas-message.txt").read_text() == "Snapshot\n\nDoor\n"
    assert not [p for p in share.iterdir() if p.name.endswith(".tmp")]


async def test_digest_auth_against_a_real_digest_server(
    server: Server, admin: Api, operator: Api
) -> None:
    """camio's own API speaks Digest: a recipient pointed at it authenticates with it."""
    body = {
        "kind": "http",
        "id": "self",
        "name": "Self",
        "url": server.url + "/api/v1/ports",
        "method": "GET",
        "auth": "digest",
        "username": ADMIN[0],
        "password": ADMIN[1],
    }
    assert (await admin.post("/api/v1/recipients", body)).status == 201
    result = await operator.post("/api/v1/recipients/self/test")
    assert result.body["ok"] is True and result.body["message"].startswith("HTTP 200"), result
    body["password"] = "not-the-password"
    assert (await admin.put("/api/v1/recipients/self", body)).status == 200
    result = await operator.post("/api/v1/recipients/self/test")
    assert result.body["ok"] is False and "HTTP 401" in result.body["message"], result


async def test_certificates_are_checked_by_default(
    admin: Api, operator: Api, tmp_path: Path
) -> None:
    other = await start_server(tmp_path / "other", https=True)
    try:
        assert other.app.https_url is not None
        body = {
            "kind": "http",
            "id": "tls",
            "name": "TLS",
            "url": other.app.https_url + "/api/v1/health",
            "method": "GET",
        }
        assert (await admin.post("/api/v1/recipients", body)).status == 201
        result = await operator.post("/api/v1/recipients/tls/test")
        assert result.body["ok"] is False, result
        assert "not trusted" in result.body["message"] and "verify_tls" in result.body["message"]
        body["verify_tls"] = False
        assert (await admin.put("/api/v1/recipients/tls", body)).status == 200
        result = await operator.post("/api/v1/recipients/tls/test")
        assert result.body["ok"] is True, result
    finally:
        await other.close()
        await other.app.stop()
