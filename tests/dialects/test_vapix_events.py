"""VAPIX events: the RTSP metadata stream (with the real ``axis`` library) and the WebSocket
event stream, against a real daemon on loopback."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import struct
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from vapix_event_helpers import (
    ADMIN,
    AXIS74_CLIENT,
    SERIAL,
    VIEWER,
    EventServer,
    RawRtsp,
    axis74_python,
    free_port,
    rtp_socket,
    start_event_server,
)

from camio.core.events import Cause, Event, EventKind
from camio.core.ports import Circuit
from camio.dialects.vapix import events as axis_events
from camio.dialects.vapix import websocket as axis_ws
from camio.dialects.vapix.rtsp import FALLBACK_PORT, STREAM_PATH, parse_head, rtp_packet

axis = pytest.importorskip("axis")
httpx = pytest.importorskip("httpx")

from axis import rtsp as axis_rtsp  # noqa: E402
from axis import stream_manager as axis_stream_manager  # noqa: E402
from axis.device import AxisDevice  # noqa: E402
from axis.models.configuration import Configuration  # noqa: E402
from axis.models.event import Event as AxisEvent  # noqa: E402
from axis.models.event import EventOperation, EventTopic  # noqa: E402

CAUSE = Cause("api", user="test")
URL_QUERY = "?video=0&audio=0&event=on"


@pytest.fixture
async def srv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[EventServer]:
    server = await start_event_server(tmp_path, monkeypatch)
    try:
        yield server
    finally:
        await server.app.stop()


async def wait_for(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 (polls server-side counters)
            await asyncio.sleep(0.01)


class Collector:
    def __init__(self) -> None:
        self.events: list[AxisEvent] = []
        self.changed = asyncio.Event()

    def __call__(self, event: AxisEvent) -> None:
        self.events.append(event)
        self.changed.set()

    async def until(self, predicate: Callable[[AxisEvent], bool], within: float = 5.0) -> AxisEvent:
        async with asyncio.timeout(within):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                self.changed.clear()
                await self.changed.wait()


def _axis_device(session: Any, srv: EventServer, user: str, password: str) -> AxisDevice:
    config = Configuration(
        session, "127.0.0.1", port=srv.http_port, username=user, password=password
    )
    return AxisDevice(config)


# -- RTSP with the real axis library (v60) ------------------------------------------------------


async def test_axis_library_receives_states_and_changes_over_rtsp(
    srv: EventServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(axis_rtsp, "RTSP_PORT", srv.rtsp_port)
    rtsp = srv.app.rtsp
    assert rtsp is not None
    subscribers = srv.device.bus.subscriber_count
    async with httpx.AsyncClient() as session:
        dev = _axis_device(session, srv, *VIEWER)
        got = Collector()
        signals: list[str] = []
        dev.stream.connection_status_callback.append(lambda s: signals.append(str(s)))
        dev.enable_events()
        dev.event.subscribe(got)
        dev.stream.start()
        try:
            for port, topic in (("0", EventTopic.PORT_INPUT), ("1", EventTopic.PORT_INPUT)):
                init = await got.until(lambda e, p=port, t=topic: e.id == p and e.topic_base == t)
                assert init.operation is EventOperation.INITIALIZED
                assert init.is_tripped is False
            relay = await got.until(lambda e: e.topic_base == EventTopic.RELAY)
            assert (relay.id, relay.operation, relay.state) == (
                "2",
                EventOperation.INITIALIZED,
                "inactive",
            )
            assert "playing" in signals

            srv.device.sim_set_circuit("in1", Circuit.CLOSED)
            changed = await got.until(
                lambda e: e.id == "0" and e.operation is EventOperation.CHANGED
            )
            assert changed.topic_base == EventTopic.PORT_INPUT and changed.is_tripped

            srv.device.set_output("out1", True, CAUSE)
            on = await got.until(
                lambda e: e.topic_base == EventTopic.RELAY and e.operation is EventOperation.CHANGED
            )
            assert on.id == "2" and on.is_tripped and on.state == "active"
            srv.device.set_output("out1", False, CAUSE)
            await got.until(
                lambda e: (
                    e.topic_base == EventTopic.RELAY
                    and e.operation is EventOperation.CHANGED
                    and not e.is_tripped
                )
            )
            assert len(rtsp.sessions) == 1
        finally:
            dev.stream.stop()
    # TEARDOWN ends the session and its subscription.
    await wait_for(lambda: not rtsp.sessions and not rtsp.connections)
    assert srv.device.bus.subscriber_count == subscribers


async def test_wrong_rtsp_password_is_refused(
    srv: EventServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(axis_rtsp, "RTSP_PORT", srv.rtsp_port)
    monkeypatch.setattr(axis_rtsp, "TIME_OUT_LIMIT", 0.5)
    monkeypatch.setattr(axis_stream_manager, "RETRY_TIMER", 3600)
    rtsp = srv.app.rtsp
    assert rtsp is not None
    async with httpx.AsyncClient() as session:
        dev = _axis_device(session, srv, ADMIN[0], "wrong-password")
        got = Collector()
        signals: list[str] = []
        dev.stream.connection_status_callback.append(lambda s: signals.append(str(s)))
        dev.enable_events()
        dev.event.subscribe(got)
        dev.stream.start()
        try:
            await wait_for(lambda: "failed" in signals, within=10)
        finally:
            dev.stream.stop()
    assert "playing" not in signals
    assert got.events == []
    assert not rtsp.sessions
    await wait_for(lambda: not rtsp.connections)


# -- RTSP on the wire ---------------------------------------------------------------------------


def _digest(user: str, password: str, realm: str, nonce: str, method: str, uri: str) -> str:
    import hashlib

    def h(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    response = h(f"{h(f'{user}:{realm}:{password}')}:{nonce}:{h(f'{method}:{uri}')}")
    return (
        f'Digest username="{user}", realm="{realm}", algorithm="MD5", nonce="{nonce}", '
        f'uri="{uri}", response="{response}"'
    )


async def _authorized_session(srv: EventServer) -> tuple[RawRtsp, Callable[[str], dict[str, str]]]:
    conn = await RawRtsp.connect(srv.rtsp_port)
    url = f"rtsp://127.0.0.1{STREAM_PATH}{URL_QUERY}"
    status, headers, _ = await conn.request("OPTIONS", url, 0)
    assert status == 401
    challenge = headers["www-authenticate"]
    match = re.fullmatch(
        r'Digest realm="(AXIS_[A-Z0-9]+)", nonce="([0-9a-f]+)", stale=FALSE', challenge
    )
    assert match is not None, challenge
    assert match.group(1) == f"AXIS_{SERIAL}"
    realm, nonce = match.groups()

    def auth(method: str) -> dict[str, str]:
        return {"Authorization": _digest(*ADMIN, realm, nonce, method, url)}

    return conn, auth


async def test_rtsp_exchange_sdp_and_rtp_packets(srv: EventServer) -> None:
    rtsp = srv.app.rtsp
    assert rtsp is not None
    url = f"rtsp://127.0.0.1{STREAM_PATH}{URL_QUERY}"
    conn, auth = await _authorized_session(srv)
    udp, receiver, rtp_port = await rtp_socket()
    try:
        status, headers, _ = await conn.request("OPTIONS", url, 0, auth("OPTIONS"))
        assert status == 200 and "DESCRIBE" in headers["public"]
        status, headers, body = await conn.request(
            "DESCRIBE", url, 1, {**auth("DESCRIBE"), "Accept": "application/sdp"}
        )
        assert status == 200
        assert headers["content-type"] == "application/sdp"
        assert headers["content-base"] == url + "/"
        control = f"rtsp://127.0.0.1{STREAM_PATH}/stream=0{URL_QUERY}"
        assert body.splitlines() == [
            "v=0",
            "o=- 1 1 IN IP4 127.0.0.1",
            "s=Session streamed with GStreamer",
            "t=0 0",
            "m=application 0 RTP/AVP 98",
            "a=rtpmap:98 vnd.onvif.metadata/90000",
            f"a=control:{control}",
        ]
        status, headers, _ = await conn.request(
            "SETUP",
            control,
            2,
            {
                **auth("SETUP"),
                "Transport": f"RTP/AVP;unicast;client_port={rtp_port}-{rtp_port + 1}",
            },
        )
        assert status == 200
        session_id, _, timeout = headers["session"].partition(";")
        assert timeout == "timeout=60"
        assert f"client_port={rtp_port}-{rtp_port + 1}" in headers["transport"]
        status, headers, _ = await conn.request(
            "PLAY", url, 3, {**auth("PLAY"), "Session": session_id}
        )
        assert status == 200

        packets = []
        async with asyncio.timeout(5):
            while len(packets) < 2 + 2 + 32 + 1:  # inputs, relay + output port, vinputs, manual
                packets.append(await receiver.packets.get())
        seqs, stamps, docs = [], [], []
        for packet in packets:
            b0, b1, seq, ts, _ssrc = struct.unpack("!BBHII", packet[:12])
            assert b0 == 0x80 and b1 == 0x80 | 98  # version 2, marker bit, PT 98
            seqs.append(seq)
            stamps.append(ts)
            root = ET.fromstring(packet[12:])  # one complete document per datagram
            docs.append(root)
            assert AxisEvent.decode(packet[12:]).operation is EventOperation.INITIALIZED
        assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))
        assert all(b > a for a, b in itertools.pairwise(stamps))
        first = AxisEvent.decode(packets[0][12:])
        assert (first.topic, first.id, first.state) == ("tns1:Device/tnsaxis:IO/Port", "0", "0")

        # Keep-alive without credentials, on the session.
        status, headers, _ = await conn.request("OPTIONS", url, 4, {"Session": session_id})
        assert status == 200
        status, _, _ = await conn.request("GET_PARAMETER", url, 4, {"Session": session_id})
        assert status == 200

        srv.device.sim_set_circuit("in2", Circuit.CLOSED)
        async with asyncio.timeout(5):
            packet = await receiver.packets.get()
        event = AxisEvent.decode(packet[12:])
        assert (event.id, event.operation, event.is_tripped) == ("1", EventOperation.CHANGED, True)
        assert 'UtcTime="' in packet[12:].decode()

        status, _, _ = await conn.request("TEARDOWN", url, 5, {"Session": session_id})
        assert status == 200
        assert not rtsp.sessions
    finally:
        udp.close()
        await conn.close()


async def test_malformed_rtsp_requests_get_400_and_the_server_lives(srv: EventServer) -> None:
    rtsp = srv.app.rtsp
    assert rtsp is not None
    url = f"rtsp://127.0.0.1{STREAM_PATH}{URL_QUERY}"
    conn = await RawRtsp.connect(srv.rtsp_port)
    try:
        await conn.send_raw(b"HELLO\r\n\r\n")
        assert (await conn.response())[0] == 400
        await conn.send_raw(b"OPTIONS " + url.encode() + b" RTSP/1.0\r\nNoColonHere\r\n\r\n")
        assert (await conn.response())[0] == 400
        await conn.send_raw(b"OPTIONS " + url.encode() + b" RTSP/1.0\r\nUser-Agent: x\r\n\r\n")
        assert (await conn.response())[0] == 400  # no CSeq
        await conn.send_raw(b"\xff\xfe\x00garbage\r\n\r\n")
        assert (await conn.response())[0] == 400
        status, _, _ = await conn.request("FROB", url, 7)
        assert status == 501
        status, _, _ = await conn.request("OPTIONS", url, 8)
        assert status == 401  # still parsing requests after all that
        await conn.send_raw(
            b"DESCRIBE " + url.encode() + b" RTSP/1.0\r\nCSeq: 9\r\nX: " + b"a" * 9000
        )
        assert (await conn.response())[0] == 400
        assert await conn.closed()
    finally:
        await conn.close()
    conn = await RawRtsp.connect(srv.rtsp_port)
    try:
        await conn.send_raw(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 99999999\r\n\r\n")
        assert (await conn.response())[0] == 400
    finally:
        await conn.close()
    # A fresh, well-formed client still gets through.
    conn, auth = await _authorized_session(srv)
    try:
        status, _, _ = await conn.request("OPTIONS", url, 1, auth("OPTIONS"))
        assert status == 200
        status, _, _ = await conn.request("DESCRIBE", "rtsp://127.0.0.1/other", 2, auth("DESCRIBE"))
        assert status == 404
        status, _, _ = await conn.request("PLAY", url, 3, {**auth("PLAY"), "Session": "NOPE"})
        assert status == 454
        status, _, _ = await conn.request(
            "SETUP", url, 4, {**auth("SETUP"), "Transport": "RTP/AVP/TCP;interleaved=0-1"}
        )
        assert status == 461
    finally:
        await conn.close()
    await wait_for(lambda: not rtsp.connections)


async def test_rtsp_wrong_digest_closes_after_a_few_attempts(srv: EventServer) -> None:
    url = f"rtsp://127.0.0.1{STREAM_PATH}{URL_QUERY}"
    conn, _ = await _authorized_session(srv)
    try:
        status, headers, _ = await conn.request("OPTIONS", url, 0)
        nonce = re.search(r'nonce="([^"]+)"', headers["www-authenticate"])
        assert nonce is not None
        bad = _digest(ADMIN[0], "nope", f"AXIS_{SERIAL}", nonce.group(1), "OPTIONS", url)
        for _ in range(3):
            status, _, _ = await conn.request("OPTIONS", url, 0, {"Authorization": bad})
            assert status == 401
        assert await conn.closed()
    finally:
        await conn.close()


async def test_rtsp_clients_come_and_go_without_leaks(srv: EventServer) -> None:
    rtsp = srv.app.rtsp
    assert rtsp is not None
    subscribers = srv.device.bus.subscriber_count
    url = f"rtsp://127.0.0.1{STREAM_PATH}{URL_QUERY}"
    for round_ in range(15):
        conn, auth = await _authorized_session(srv)
        udp, _receiver, rtp_port = await rtp_socket()
        status, headers, _ = await conn.request(
            "SETUP",
            url,
            1,
            {**auth("SETUP"), "Transport": f"RTP/AVP;unicast;client_port={rtp_port}"},
        )
        assert status == 200
        if round_ % 3:
            session_id = headers["session"].split(";")[0]
            status, _, _ = await conn.request(
                "PLAY", url, 2, {**auth("PLAY"), "Session": session_id}
            )
            assert status == 200
        if round_ % 2:
            conn.writer.transport.abort()  # dropped, no TEARDOWN
        else:
            await conn.close()
        udp.close()
    await wait_for(lambda: not rtsp.sessions and not rtsp.connections)
    assert srv.device.bus.subscriber_count == subscribers


async def test_idle_rtsp_sessions_are_reaped(srv: EventServer) -> None:
    rtsp = srv.app.rtsp
    assert rtsp is not None
    rtsp.session_timeout_s = 0
    url = f"rtsp://127.0.0.1{STREAM_PATH}{URL_QUERY}"
    conn, auth = await _authorized_session(srv)
    udp, _receiver, rtp_port = await rtp_socket()
    try:
        status, _, _ = await conn.request(
            "SETUP",
            url,
            1,
            {**auth("SETUP"), "Transport": f"RTP/AVP;unicast;client_port={rtp_port}"},
        )
        assert status == 200
        assert len(rtsp.sessions) == 1
        await wait_for(lambda: not rtsp.sessions, within=15)
    finally:
        udp.close()
        await conn.close()


def test_parse_head_and_rtp_packet() -> None:
    assert parse_head(b"OPTIONS * RTSP/1.0\r\nCSeq: 1") == (
        "OPTIONS",
        "*",
        "RTSP/1.0",
        {"cseq": "1"},
    )
    packet = rtp_packet(65535, 1 << 33, 7, b"<x/>")
    assert packet[:2] == b"\x80\xe2" and packet[2:4] == b"\xff\xff" and packet[12:] == b"<x/>"


async def test_rtsp_port_falls_back_and_follows_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    busy = blocker.getsockname()[1]
    try:
        srv = await start_event_server(tmp_path, monkeypatch, rtsp_port=busy)
    except AssertionError:
        blocker.close()
        pytest.skip(f"the fallback port {FALLBACK_PORT} is taken on this machine")
    try:
        rtsp = srv.app.rtsp
        assert rtsp is not None
        assert rtsp.port == FALLBACK_PORT and rtsp.fallback_reason is not None
        run = json.loads((srv.data_dir / "run.json").read_text())
        assert run["rtsp_url"] == f"rtsp://127.0.0.1:{FALLBACK_PORT}{STREAM_PATH}{URL_QUERY}"

        def edit(doc: dict[str, Any]) -> None:
            doc["dialects"]["vapix"]["rtsp_port"] = 0

        srv.device.edit_config(edit)
        await wait_for(lambda: srv.app.rtsp is None)

        def enable(doc: dict[str, Any]) -> None:
            doc["dialects"]["vapix"]["rtsp_port"] = free_port()

        srv.device.edit_config(enable)
        await wait_for(lambda: srv.app.rtsp is not None)
    finally:
        blocker.close()
        await srv.app.stop()


# -- WebSocket ----------------------------------------------------------------------------------


CONFIGURE = {
    "apiVersion": "1.0",
    "context": "axis-py",
    "method": "events:configure",
    "params": {"eventFilterList": [{"topicFilter": "//."}]},
}


async def _token(session: aiohttp.ClientSession, srv: EventServer) -> str:
    async with session.get(f"{srv.url}/axis-cgi/wssession.cgi") as resp:
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "text/plain"
        return (await resp.text()).strip()


def _basic(user: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(*user)}


def _digest_session(user: tuple[str, str]) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(middlewares=(aiohttp.DigestAuthMiddleware(*user),))


async def _receive_json(ws: aiohttp.ClientWebSocketResponse, within: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        msg = await ws.receive()
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    data: dict[str, Any] = json.loads(msg.data)
    return data


def _notification(msg: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, str]]:
    assert msg["method"] == "events:notify"
    note = msg["params"]["notification"]
    assert isinstance(note["timestamp"], int)
    return note["topic"], note["message"]["source"], note["message"]["data"]


async def test_websocket_exchange(srv: EventServer) -> None:
    subscribers = srv.device.bus.subscriber_count
    async with _digest_session(VIEWER) as session:
        token = await _token(session, srv)
        url = (
            f"ws://127.0.0.1:{srv.http_port}/vapix/ws-data-stream?sources=events&wssession={token}"
        )
        async with aiohttp.ClientSession() as plain:
            ws = await plain.ws_connect(url, autoping=False)
            await ws.send_json(CONFIGURE)
            assert await _receive_json(ws) == {
                "apiVersion": "1.0",
                "context": "axis-py",
                "method": "events:configure",
                "data": {},
            }
            first = [_notification(await _receive_json(ws)) for _ in range(4)]
            assert first == [
                ("tns1:Device/tnsaxis:IO/Port", {"port": "0"}, {"state": "0"}),
                ("tns1:Device/tnsaxis:IO/Port", {"port": "1"}, {"state": "0"}),
                ("tns1:Device/Trigger/Relay", {"RelayToken": "2"}, {"LogicalState": "inactive"}),
                ("tns1:Device/tnsaxis:IO/OutputPort", {"port": "2"}, {"state": "low"}),
            ]
            rest = [_notification(await _receive_json(ws)) for _ in range(33)]
            assert rest[0] == (
                "tns1:Device/tnsaxis:IO/VirtualInput",
                {"port": "1"},
                {"active": "0"},
            )
            assert rest[-1] == ("tns1:Device/tnsaxis:IO/VirtualPort", {"port": "1"}, {"state": "0"})

            await ws.ping(b"hi")
            async with asyncio.timeout(5):
                pong = await ws.receive()
            assert pong.type is aiohttp.WSMsgType.PONG and pong.data == b"hi"

            srv.device.sim_set_circuit("in1", Circuit.CLOSED)
            assert _notification(await _receive_json(ws)) == (
                "tns1:Device/tnsaxis:IO/Port",
                {"port": "0"},
                {"state": "1"},
            )
            srv.device.set_virtual_input(3, True, CAUSE)
            assert _notification(await _receive_json(ws)) == (
                "tns1:Device/tnsaxis:IO/VirtualInput",
                {"port": "3"},
                {"active": "1"},
            )
            # A new configure narrows the stream.
            await ws.send_json(
                {
                    **CONFIGURE,
                    "params": {"eventFilterList": [{"topicFilter": "tns1:Device/Trigger/Relay"}]},
                }
            )
            assert (await _receive_json(ws))["data"] == {}
            srv.device.sim_set_circuit("in1", Circuit.OPEN)
            srv.device.set_output("out1", True, CAUSE)
            assert _notification(await _receive_json(ws)) == (
                "tns1:Device/Trigger/Relay",
                {"RelayToken": "2"},
                {"LogicalState": "active"},
            )
            await ws.close()
        # The token was single-use.
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await plain.ws_connect(url)
            assert refused.value.status == 401
    await wait_for(lambda: srv.device.bus.subscriber_count == subscribers)


async def test_websocket_token_expiry_basic_fallback_and_errors(
    srv: EventServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = f"ws://127.0.0.1:{srv.http_port}/vapix/ws-data-stream?sources=events"
    async with _digest_session(VIEWER) as session:
        async with session.get(f"{srv.url}/axis-cgi/wssession.cgi") as resp:
            assert resp.status == 200
        monkeypatch.setattr(axis_ws, "TOKEN_LIFETIME_S", 0)
        token = await _token(session, srv)
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await plain.ws_connect(f"{base}&wssession={token}")
        assert refused.value.status == 401
        async with plain.get(f"{srv.url}/axis-cgi/wssession.cgi") as resp:
            assert resp.status == 401
        # Basic on the upgrade instead of a token (the client's fallback).
        ws = await plain.ws_connect(base, headers=_basic(VIEWER))
        await ws.send_json({"apiVersion": "1.0", "context": "c", "method": "events:frob"})
        error = await _receive_json(ws)
        assert error["method"] == "events:frob" and "error" in error
        await ws.send_json({**CONFIGURE, "context": "c2"})
        assert await _receive_json(ws) == {
            "apiVersion": "1.0",
            "context": "c2",
            "method": "events:configure",
            "data": {},
        }
        assert _notification(await _receive_json(ws))[0] == "tns1:Device/tnsaxis:IO/Port"
        await ws.close()


async def test_websocket_slow_consumer_is_cut_and_shutdown_closes(
    srv: EventServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(axis_ws, "QUEUE_SIZE", 50)
    base = f"ws://127.0.0.1:{srv.http_port}/vapix/ws-data-stream?sources=events"
    async with aiohttp.ClientSession() as plain:
        slow = await plain.ws_connect(base, headers=_basic(ADMIN))
        await slow.send_json(CONFIGURE)
        assert (await _receive_json(slow))["data"] == {}
        for i in range(200):  # in one loop iteration: the stream cannot keep up
            srv.device.set_virtual_input(1 + i % 32, i % 2 == 0, CAUSE)
        async with asyncio.timeout(10):
            while True:
                msg = await slow.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
        assert slow.close_code in (1013, 1006, None)

        live = await plain.ws_connect(base, headers=_basic(ADMIN))
        await live.send_json(CONFIGURE)
        assert (await _receive_json(live))["data"] == {}
        state = axis_ws.ws_state(srv.app._runner.app)  # type: ignore[union-attr]
        await wait_for(lambda: len(state.streams) == 1)
        stopper = asyncio.create_task(srv.app.stop())
        async with asyncio.timeout(10):
            while True:
                msg = await live.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
        assert live.close_code == 1001
        async with asyncio.timeout(10):
            await stopper


async def test_websocket_clients_come_and_go_without_leaks(srv: EventServer) -> None:
    subscribers = srv.device.bus.subscriber_count
    base = f"ws://127.0.0.1:{srv.http_port}/vapix/ws-data-stream?sources=events"
    async with _digest_session(ADMIN) as session, aiohttp.ClientSession() as plain:
        for round_ in range(12):
            token = await _token(session, srv)
            ws = await plain.ws_connect(f"{base}&wssession={token}")
            if round_ % 3:
                await ws.send_json(CONFIGURE)
                await _receive_json(ws)
            if round_ % 2:
                await ws.close()
            else:
                ws._response.connection.transport.abort()  # type: ignore[union-attr]
                await ws.close()
    state = axis_ws.ws_state(srv.app._runner.app)  # type: ignore[union-attr]
    await wait_for(lambda: not state.streams)
    await wait_for(lambda: srv.device.bus.subscriber_count == subscribers)
    assert len(state.tokens) == 0


# -- mapping units ------------------------------------------------------------------------------


def test_topic_filters() -> None:
    f = axis_events.TopicFilter.parse(["tns1:Device/tnsaxis:IO//."])
    assert f.matches("tns1:Device/tnsaxis:IO/Port")
    assert not f.matches("tns1:Device/Trigger/Relay")
    f = axis_events.TopicFilter.parse(["onvif:Device/axis:IO/Port|tns1:Device/Trigger/Relay"])
    assert f.matches("tns1:Device/tnsaxis:IO/Port") and f.matches("tns1:Device/Trigger/Relay")
    assert not f.matches("tns1:Device/tnsaxis:IO/PortX")
    assert axis_events.TopicFilter.parse(["//."]).matches("anything")


def test_xml_rendering_is_parsed_by_the_library() -> None:
    msg = axis_events.AxisMessage(
        axis_events.TOPIC_RELAY,
        (("RelayToken", "2"),),
        (("LogicalState", "active"),),
        axis_events.CHANGED,
        1_704_110_400_000_000_000,
    )
    doc = axis_events.render_xml(msg, "0f0e")
    assert b'UtcTime="2024-01-01T12:00:00.000000Z" PropertyOperation="Changed"' in doc
    event = AxisEvent.decode(doc)
    assert (event.topic_base, event.id, event.is_tripped) == (EventTopic.RELAY, "2", True)


async def test_supervised_input_and_manual_trigger_mapping(srv: EventServer) -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["inputs"][1]["supervised"] = True

    srv.device.edit_config(edit)
    mapper = axis_events.AxisEventMapper(srv.device)
    seen: list[axis_events.AxisMessage] = []

    def collect(event: Event) -> None:
        seen.extend(mapper.map(event))

    sub = srv.device.subscribe(collect, accept=axis_events.accepts)
    try:
        supervised = [m for m in seen if m.topic == axis_events.TOPIC_SUPERVISED_PORT]
        assert [(m.source, m.data) for m in supervised] == [
            ((("port", "1"),), (("state", "0"), ("tampered", "0")))
        ]
        srv.device.pulse_manual_trigger(CAUSE)
        manual = [m for m in seen if m.topic == axis_events.TOPIC_VIRTUAL_PORT]
        assert [m.data for m in manual] == [(("state", "0"),), (("state", "1"),), (("state", "0"),)]
        assert [m.operation for m in manual] == ["Initialized", "Changed", "Changed"]
        assert all(m.operation != EventKind.INITIALIZED for m in manual)
    finally:
        sub.close()


# -- the current library (axis 74) on a newer interpreter ---------------------------------------


@pytest.fixture(scope="module")
def axis74() -> Path:
    python = axis74_python()
    if python is None:
        pytest.skip("no Python >= 3.13 (pyenv) with axis==74 available")
    return python


@pytest.mark.parametrize("mode", ["rtsp", "websocket"])
async def test_axis_v74_library(srv: EventServer, axis74: Path, tmp_path: Path, mode: str) -> None:
    script = tmp_path / "axis74_client.py"
    script.write_text(AXIS74_CLIENT)
    proc = await asyncio.create_subprocess_exec(
        str(axis74),
        str(script),
        str(srv.http_port),
        str(srv.rtsp_port),
        *VIEWER,
        mode,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    stdout = proc.stdout
    seen: list[dict[str, Any]] = []

    async def until(predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async with asyncio.timeout(20):
            while True:
                for item in seen:
                    if predicate(item):
                        return item
                raw = await stdout.readline()
                if not raw:
                    assert proc.stderr is not None
                    raise AssertionError((await proc.stderr.read()).decode()[-2000:])
                seen.append(json.loads(raw))

    def event(topic: str, ident: str, operation: str) -> Callable[[dict[str, Any]], bool]:
        return lambda e: (
            (e.get("topic"), e.get("id"), e.get("operation"))
            == (
                topic,
                ident,
                operation,
            )
        )

    try:
        port, relay = "tns1:Device/tnsaxis:IO/Port", "tns1:Device/Trigger/Relay"
        for ident in ("0", "1"):
            assert not (await until(event(port, ident, "Initialized")))["tripped"]
        assert not (await until(event(relay, "2", "Initialized")))["tripped"]
        assert {"signal": "playing"} in seen
        srv.device.sim_set_circuit("in1", Circuit.CLOSED)
        assert (await until(event(port, "0", "Changed")))["tripped"]
        srv.device.set_output("out1", True, CAUSE)
        assert (await until(event(relay, "2", "Changed")))["state"] == "active"
    finally:
        proc.stdin.close()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
