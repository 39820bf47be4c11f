"""The Axis RTSP metadata event stream: an RTSP/1.0 server over TCP, events as RTP over UDP.

``rtsp://<host>:<port>/axis-media/media.amp?video=0&audio=0&event=on`` is where the ``axis``
library (every version) and Home Assistant read a camera's events. The exchange they need is
small and exact (docs/vapix.md, "Events"): OPTIONS, DESCRIBE (an SDP with one ONVIF metadata
track), SETUP (RTP/AVP over UDP to ``client_port``), PLAY, keep-alive OPTIONS every
``timeout - 5`` s, TEARDOWN. The client's parser matches substrings of each TCP segment, so:

* every response goes out in exactly one ``transport.write`` and nothing is ever sent
  unsolicited on the TCP connection;
* headers are ``Name: value`` and no header line contains another header's name;
* a Digest challenge has ``realm`` as its first quoted value, ``nonce`` as its second, and ends
  with ``stale=FALSE`` (the client indexes ``split('"')`` and ``split("stale=")``).

Authentication: Digest against camio's accounts (any role may read events), realm
``AXIS_<serial>``, one random nonce per TCP connection. The client signs without ``qop``
(RFC 2069), which has no nonce count; a per-connection nonce is what keeps a captured header
from working anywhere else. Basic is accepted when allowed. A request that carries the session
id of a session this connection set up (keep-alive OPTIONS, GET_PARAMETER, TEARDOWN) needs no
credentials again, as the client sends none there. Failed logins go through the
authenticator's throttle; after a few on one connection it is closed, because the client
would otherwise resend the same wrong credentials forever.

RTP: a 12-byte header (version 2, marker bit set on every packet, payload type 98), sequence
numbers and timestamps (90 kHz) increasing, one complete XML document per datagram (the v74
client joins packets until one has the marker bit). The current state of every port goes first
(``Initialized``), then every change.

Limits: sessions, connections, request size; sessions whose client stops sending keep-alives
are reaped after their timeout; malformed requests get 400 and never stop the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import logging
import re
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from camio.api.auth import (
    DIGEST_ALGORITHMS,
    MAX_AUTHORIZATION_LEN,
    Authenticated,
    Authenticator,
    AuthHeaderError,
    BasicCredentials,
    Throttled,
    client_key,
    digest_response,
    parse_auth_params,
    parse_authorization,
)
from camio.core.events import Event
from camio.dialects.vapix.events import AxisEventMapper, accepts, producer_uuid, render_xml
from camio.dialects.vapix.identity import axis_identity
from camio.store.users import Role, User

if TYPE_CHECKING:
    from camio.engine.bus import Subscription
    from camio.engine.device import Device

_LOGGER = logging.getLogger(__name__)

STREAM_PATH: Final = "/axis-media/media.amp"
DEFAULT_QUERY: Final = "video=0&audio=0&event=on"
FALLBACK_PORT: Final = 8554
PAYLOAD_TYPE: Final = 98
CLOCK_RATE: Final = 90_000
SESSION_TIMEOUT_S: Final = 60
#: A session lives this long after its timeout without a request before it is reaped.
REAP_GRACE_S: Final = 5.0
MAX_SESSIONS: Final = 32
MAX_CONNECTIONS: Final = 64
MAX_HEAD: Final = 8192
MAX_BODY: Final = 4096
MAX_HEADERS: Final = 64
#: Failed logins on one connection before it is closed.
MAX_FAILURES: Final = 3
#: Unsent RTP bytes (a blocked socket) before a session is dropped rather than buffered.
MAX_UDP_BACKLOG: Final = 256 * 1024
PUBLIC_METHODS: Final = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER"

STATUS: Final = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    453: "Not Enough Bandwidth",
    454: "Session Not Found",
    455: "Method Not Valid in This State",
    461: "Unsupported Transport",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    505: "RTSP Version Not Supported",
}

_TOKEN_RE: Final = re.compile(r"[A-Z_]{1,32}")
_HEADER_NAME_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")
_CLIENT_PORT_RE: Final = re.compile(r"(?:^|;)client_port=(\d{1,5})(?:-(\d{1,5}))?(?:;|$)")

AuthFailureHook = Callable[[str, dict[str, object]], None]


class BadRequest(Exception):
    """The request cannot be understood; answered 400."""


@dataclass(frozen=True, slots=True)
class RtspRequest:
    method: str
    uri: str
    version: str
    headers: dict[str, str]  # lower-case names, first value
    body: bytes

    @property
    def cseq(self) -> str | None:
        value = self.headers.get("cseq", "").strip()
        return value if value.isdigit() and len(value) <= 10 else None


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Request line and headers of one request (without the blank line); BadRequest if not."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[1]:
        raise BadRequest("malformed request line")
    method, uri, version = parts
    if _TOKEN_RE.fullmatch(method) is None or not version.startswith("RTSP/"):
        raise BadRequest("malformed request line")
    headers: dict[str, str] = {}
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest("too many headers")
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or _HEADER_NAME_RE.fullmatch(name.strip()) is None:
            raise BadRequest("malformed header line")
        headers.setdefault(name.strip().lower(), value.strip())
    return method, uri, version, headers


def rtp_packet(seq: int, timestamp: int, ssrc: int, payload: bytes) -> bytes:
    """An RTP packet: version 2, no padding/extension/CSRC, marker bit set, PT 98."""
    header = struct.pack(
        "!BBHII", 0x80, 0x80 | PAYLOAD_TYPE, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
    )
    return header + payload


def sdp(control: str) -> str:
    """The session description the axis client reads its SETUP URL from."""
    return (
        "v=0\r\n"
        "o=- 1 1 IN IP4 127.0.0.1\r\n"
        "s=Session streamed with GStreamer\r\n"
        "t=0 0\r\n"
        f"m=application 0 RTP/AVP {PAYLOAD_TYPE}\r\n"
        f"a=rtpmap:{PAYLOAD_TYPE} vnd.onvif.metadata/{CLOCK_RATE}\r\n"
        f"a=control:{control}\r\n"
    )


class _Rtp(asyncio.DatagramProtocol):
    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable: the client is gone or not listening yet; the session's
        # keep-alive timeout decides, not one lost datagram.
        _LOGGER.debug("RTP send error: %s", exc)


class RtpSession:
    """One SETUP: where the events go, and the subscription that feeds them while playing."""

    def __init__(
        self,
        server: RtspEventServer,
        conn: RtspConnection,
        session_id: str,
        transport: asyncio.DatagramTransport,
        client_ports: tuple[int, int],
    ) -> None:
        self.server = server
        self.conn = conn
        self.id = session_id
        self.transport = transport
        self.client_ports = client_ports
        sock = transport.get_extra_info("sockname")
        self.server_port: int = sock[1] if sock else 0
        self.ssrc = secrets.randbits(32)
        self.seq = secrets.randbits(16)
        self._ts_base = secrets.randbits(32)
        self._t0_ns = server.device.clock.monotonic_ns()
        self._last_ts = -1
        self.last_seen = asyncio.get_running_loop().time()
        self.playing = False
        self.closed = False
        self.sent = 0
        self._sub: Subscription | None = None
        self._mapper: AxisEventMapper | None = None
        self._producer = ""

    def touch(self) -> None:
        self.last_seen = asyncio.get_running_loop().time()

    def play(self) -> None:
        if self.playing or self.closed:
            return
        self.playing = True
        device = self.server.device
        self._mapper = AxisEventMapper(device)
        self._producer = producer_uuid(device.config.device.serial)
        # The current state of everything first (Initialized), then changes.
        self._sub = device.subscribe(self._on_event, accept=accepts, replay_state=True)

    def pause(self) -> None:
        self.playing = False
        if self._sub is not None:
            self._sub.close()
            self._sub = None

    def _timestamp(self) -> int:
        elapsed = self.server.device.clock.monotonic_ns() - self._t0_ns
        ts = self._ts_base + elapsed * CLOCK_RATE // 1_000_000_000
        ts = max(ts, self._last_ts + 1)  # strictly increasing, whatever the clock does
        self._last_ts = ts
        return ts

    def _on_event(self, event: Event) -> None:
        if self.closed or self._mapper is None:
            return
        for msg in self._mapper.map(event):
            self.send(render_xml(msg, self._producer))

    def send(self, payload: bytes) -> None:
        if self.closed:
            return
        backlog: int = getattr(self.transport, "get_write_buffer_size", lambda: 0)()
        if backlog > MAX_UDP_BACKLOG:
            _LOGGER.warning("RTSP session %s: the client does not keep up; dropped", self.id)
            self.server.end_session(self)
            return
        self.transport.sendto(rtp_packet(self.seq, self._timestamp(), self.ssrc, payload))
        self.seq = (self.seq + 1) & 0xFFFF
        self.sent += 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.pause()
        self.transport.close()


class RtspConnection(asyncio.Protocol):
    """One TCP connection: parses requests, answers each in one write."""

    def __init__(self, server: RtspEventServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.peer: str | None = None
        self.buffer = bytearray()
        self.nonce = secrets.token_hex(16)
        self.failures = 0
        self.sessions: dict[str, RtpSession] = {}
        self.last_seen = 0.0
        self.closing = False

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else None
        self.last_seen = asyncio.get_running_loop().time()
        if not self.server.admit(self):
            _LOGGER.warning("RTSP: too many connections; refused %s", self.peer)
            self.closing = True
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.forget(self)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.buffer += data
        try:
            self._process()
        except Exception:  # a bug must cost this connection, never the server
            _LOGGER.exception("RTSP: error handling a request from %s", self.peer)
            self._respond(500, None, close=True)

    # -- framing ----------------------------------------------------------------------------

    def _process(self) -> None:
        buf = self.buffer
        while buf and not self.closing:
            if buf[0] == 0x24:  # '$': interleaved binary data (RTCP over TCP); skip it
                if len(buf) < 4:
                    return
                size = 4 + int.from_bytes(buf[2:4], "big")
                if len(buf) < size:
                    return
                del buf[:size]
                continue
            end, sep_len = buf.find(b"\r\n\r\n"), 4
            lf_end = buf.find(b"\n\n")
            if lf_end != -1 and (end == -1 or lf_end < end):
                end, sep_len = lf_end, 2
            if end == -1:
                if len(buf) > MAX_HEAD:
                    self._respond(400, None, close=True)
                return
            if end > MAX_HEAD:
                self._respond(400, None, close=True)
                return
            head = bytes(buf[:end]).lstrip(b"\r\n")
            try:
                method, uri, version, headers = parse_head(head)
            except BadRequest:
                del buf[: end + sep_len]
                self._respond(400, None)
                continue
            length_text = headers.get("content-length", "0")
            if not length_text.isdigit() or int(length_text) > MAX_BODY:
                self._respond(400, headers.get("cseq"), close=True)
                return
            length = int(length_text)
            if len(buf) < end + sep_len + length:
                return
            body = bytes(buf[end + sep_len : end + sep_len + length])
            del buf[: end + sep_len + length]
            self.last_seen = asyncio.get_running_loop().time()
            self._handle(RtspRequest(method, uri, version, headers, body))

    # -- responses --------------------------------------------------------------------------

    def _respond(
        self,
        status: int,
        cseq: str | None,
        headers: list[tuple[str, str]] | None = None,
        body: str = "",
        *,
        close: bool = False,
    ) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        lines = [f"RTSP/1.0 {status} {STATUS.get(status, 'Error')}"]
        if cseq is not None:
            lines.append(f"CSeq: {cseq}")
        for name, value in headers or ():
            lines.append(f"{name}: {value}")
        data = body.encode("utf-8")
        if data:
            lines.append(f"Content-Length: {len(data)}")
        # One write per response: the client parses each TCP segment as one response.
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + data)
        if close:
            self.closing = True
            self.transport.close()

    # -- requests ---------------------------------------------------------------------------

    def _own_session(self, req: RtspRequest) -> RtpSession | None:
        value = req.headers.get("session")
        if value is None:
            return None
        return self.sessions.get(value.split(";", 1)[0].strip())

    def _handle(self, req: RtspRequest) -> None:
        cseq = req.cseq
        if cseq is None:
            self._respond(400, None)
            return
        if req.version != "RTSP/1.0":
            self._respond(505, cseq)
            return
        handler = {
            "OPTIONS": self._options,
            "DESCRIBE": self._describe,
            "SETUP": self._setup,
            "PLAY": self._play,
            "PAUSE": self._pause,
            "TEARDOWN": self._teardown,
            "GET_PARAMETER": self._get_parameter,
        }.get(req.method)
        if handler is None:
            self._respond(501, cseq, [("Public", PUBLIC_METHODS)])
            return
        session = self._own_session(req)
        if not self._authorized(req, session, cseq):
            return
        if session is not None:
            session.touch()
        handler(req, cseq, session)

    def _authorized(self, req: RtspRequest, session: RtpSession | None, cseq: str) -> bool:
        header = req.headers.get("authorization")
        if header is None:
            if session is not None:
                return True  # keep-alive and teardown of a session set up with credentials
            self._challenge(cseq)
            return False
        outcome = self.server.check_credentials(req.method, header, self.peer, self.nonce)
        if isinstance(outcome, User):
            if not outcome.role.allows(Role.VIEWER):
                self._respond(403, cseq)
                return False
            self.failures = 0
            return True
        if outcome is Throttled:
            self._challenge(cseq, close=True)
            return False
        self.failures += 1
        self._challenge(cseq, close=self.failures >= MAX_FAILURES)
        return False

    def _challenge(self, cseq: str, *, close: bool = False) -> None:
        realm = self.server.realm
        # realm first, nonce second, stale= last: the axis client indexes the quoted values.
        headers = [
            ("WWW-Authenticate", f'Digest realm="{realm}", nonce="{self.nonce}", stale=FALSE')
        ]
        self._respond(401, cseq, headers, close=close)

    def _stream_uri(self, uri: str) -> tuple[str, str] | None:
        """``(base, query)`` of a request URI for the event stream; None for anything else."""
        try:
            parts = urlsplit(uri)
        except ValueError:
            return None
        if parts.scheme.lower() not in ("rtsp", "") or not parts.path.startswith(STREAM_PATH):
            return None
        rest = parts.path[len(STREAM_PATH) :]
        if rest not in ("", "/") and not rest.startswith("/stream="):
            return None
        base = f"{parts.scheme}://{parts.netloc}{STREAM_PATH}" if parts.netloc else STREAM_PATH
        return base, parts.query or DEFAULT_QUERY

    def _options(self, req: RtspRequest, cseq: str, session: RtpSession | None) -> None:
        headers = [("Public", PUBLIC_METHODS)]
        if session is not None:
            headers.append(("Session", f"{session.id};timeout={self.server.session_timeout_s}"))
        self._respond(200, cseq, headers)

    def _get_parameter(self, req: RtspRequest, cseq: str, session: RtpSession | None) -> None:
        headers = []
        if session is not None:
            headers.append(("Session", f"{session.id};timeout={self.server.session_timeout_s}"))
        self._respond(200, cseq, headers)

    def _describe(self, req: RtspRequest, cseq: str, session: RtpSession | None) -> None:
        target = self._stream_uri(req.uri)
        if target is None:
            self._respond(404, cseq)
            return
        base, query = target
        accept = req.headers.get("accept", "application/sdp")
        if "application/sdp" not in accept and "*/*" not in accept:
            self._respond(400, cseq)
            return
        body = sdp(f"{base}/stream=0?{query}")
        url = f"{base}?{query}"
        headers = [("Content-Type", "application/sdp"), ("Content-Base", f"{url}/")]
        self._respond(200, cseq, headers, body)

    def _setup(self, req: RtspRequest, cseq: str, session: RtpSession | None) -> None:
        if self._stream_uri(req.uri) is None:
            self._respond(404, cseq)
            return
        if session is not None:
            self._respond(455, cseq)  # one track: a second SETUP has nothing to add
            return
        if req.headers.get("session") is not None:
            self._respond(454, cseq)
            return
        transport = req.headers.get("transport", "")
        spec = transport.split(",", 1)[0].replace(" ", "")
        profile = spec.split(";", 1)[0].upper()
        match = _CLIENT_PORT_RE.search(spec)
        if profile not in ("RTP/AVP", "RTP/AVP/UDP") or "multicast" in spec.lower():
            self._respond(461, cseq)
            return
        if match is None or self.peer is None:
            self._respond(461, cseq)
            return
        rtp_port = int(match.group(1))
        rtcp_port = int(match.group(2)) if match.group(2) else rtp_port + 1
        if not 1 <= rtp_port <= 65535 or not 1 <= rtcp_port <= 65535:
            self._respond(461, cseq)
            return
        self.server.open_session(self, cseq, (rtp_port, rtcp_port))

    def session_ready(self, session: RtpSession | None, cseq: str) -> None:
        """The UDP socket of a SETUP is ready (or could not be made)."""
        if session is None:
            self._respond(453 if self.server.full() else 500, cseq)
            return
        rtp, rtcp = session.client_ports
        transport = (
            f"RTP/AVP;unicast;client_port={rtp}-{rtcp};"
            f"server_port={session.server_port}-{session.server_port + 1};"
            f"ssrc={session.ssrc:08X};mode=play"
        )
        timeout = self.server.session_timeout_s
        self._respond(
            200, cseq, [("Session", f"{session.id};timeout={timeout}"), ("Transport", transport)]
        )

    def _play(self, req: RtspRequest, cseq: str, session: RtpSession | None) -> None:
        if session is None:
            self._respond(454, cseq)
            return
        timeout = self.server.session_timeout_s
        self._respond(
            200, cseq, [("Session", f"{session.id};timeout={timeout}"), ("Range", "npt=now-")]
        )
        session.play()  # after the answer: the states follow it

    def _pause(self, req: RtspRequest, cseq: str, session: RtpSession | None) -> None:
        if session is None:
            self._respond(454, cseq)
            return
        session.pause()
        self._respond(
            200, cseq, [("Session", f"{session.id};timeout={self.server.session_timeout_s}")]
        )

    def _teardown(self, req: RtspRequest, cseq: str, session: RtpSession | None) -> None:
        if session is None:
            self._respond(454, cseq)
            return
        self.server.end_session(session)
        self._respond(200, cseq)


class RtspEventServer:
    """The RTSP metadata event stream of one device."""

    def __init__(
        self,
        device: Device,
        authenticator: Authenticator,
        *,
        host: str = "127.0.0.1",
        port: int = 554,
        fallback_port: int | None = FALLBACK_PORT,
        allow_basic: bool = True,
        session_timeout_s: int = SESSION_TIMEOUT_S,
        max_sessions: int = MAX_SESSIONS,
        max_connections: int = MAX_CONNECTIONS,
        on_auth_failure: AuthFailureHook | None = None,
    ) -> None:
        self.device = device
        self.authenticator = authenticator
        self.host = host
        self.requested_port = port
        self.fallback_port = fallback_port
        self.allow_basic = allow_basic
        self.session_timeout_s = session_timeout_s
        self.max_sessions = max_sessions
        self.max_connections = max_connections
        self.on_auth_failure = on_auth_failure
        self.port: int | None = None
        #: Why the requested port was not used (None when it was).
        self.fallback_reason: str | None = None
        self.sessions: dict[str, RtpSession] = {}
        self.connections: set[RtspConnection] = set()
        self._pending = 0
        self._server: asyncio.Server | None = None
        self._reaper: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def realm(self) -> str:
        """``AXIS_<SERIAL>``, the realm of the device's VAPIX HTTP authentication too."""
        return axis_identity(self.device.config.device).realm

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"rtsp://{host}:{self.port}{STREAM_PATH}?{DEFAULT_QUERY}"

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> int:
        """Listen; on EACCES/EADDRINUSE for the requested port, on the fallback port."""
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: RtspConnection(self), self.host, self.requested_port, reuse_address=True
            )
        except OSError as exc:
            fallback = self.fallback_port
            usable = exc.errno in (errno.EACCES, errno.EADDRINUSE, errno.EPERM)
            if not usable or fallback is None or fallback == self.requested_port:
                raise
            self.fallback_reason = exc.strerror or str(exc)
            _LOGGER.warning(
                "RTSP: cannot listen on %s:%s (%s); using port %s instead",
                self.host,
                self.requested_port,
                self.fallback_reason,
                fallback,
            )
            self._server = await loop.create_server(
                lambda: RtspConnection(self), self.host, fallback, reuse_address=True
            )
        sockets = self._server.sockets or ()
        self.port = sockets[0].getsockname()[1] if sockets else self.requested_port
        self._schedule_reaper()
        return self.port

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        server, self._server = self._server, None
        for task in list(self._tasks):
            task.cancel()
        for session in list(self.sessions.values()):
            self.end_session(session)
        if server is not None:
            server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        self.connections.clear()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    # -- bookkeeping ------------------------------------------------------------------------

    def admit(self, conn: RtspConnection) -> bool:
        if len(self.connections) >= self.max_connections or self._server is None:
            return False
        self.connections.add(conn)
        return True

    def forget(self, conn: RtspConnection) -> None:
        self.connections.discard(conn)
        for session in list(conn.sessions.values()):
            self.end_session(session)

    def full(self) -> bool:
        return len(self.sessions) + self._pending >= self.max_sessions

    def open_session(self, conn: RtspConnection, cseq: str, ports: tuple[int, int]) -> None:
        """Make the UDP socket for a SETUP (asynchronously), then answer it."""
        if self.full() or conn.peer is None:
            conn.session_ready(None, cseq)
            return
        self._pending += 1
        peer = conn.peer

        async def make() -> None:
            session: RtpSession | None = None
            try:
                loop = asyncio.get_running_loop()
                transport, _ = await loop.create_datagram_endpoint(
                    _Rtp, remote_addr=(peer, ports[0])
                )
                session_id = secrets.token_hex(8).upper()
                session = RtpSession(self, conn, session_id, transport, ports)
                if conn.closing or self._server is None:
                    session.close()
                    return
                self.sessions[session_id] = session
                conn.sessions[session_id] = session
            except OSError as exc:
                _LOGGER.warning("RTSP: cannot open RTP to %s:%s: %s", peer, ports[0], exc)
                session = None
            finally:
                self._pending -= 1
            conn.session_ready(session, cseq)

        task = asyncio.get_running_loop().create_task(make())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def end_session(self, session: RtpSession) -> None:
        session.close()
        self.sessions.pop(session.id, None)
        session.conn.sessions.pop(session.id, None)

    def _schedule_reaper(self) -> None:
        interval = max(0.2, min(5.0, self.session_timeout_s / 4))
        loop = asyncio.get_running_loop()
        self._reaper = loop.call_later(interval, self._reap)

    def _reap(self) -> None:
        now = asyncio.get_running_loop().time()
        limit = self.session_timeout_s + REAP_GRACE_S
        for session in list(self.sessions.values()):
            if now - session.last_seen > limit:
                _LOGGER.info("RTSP session %s timed out", session.id)
                self.end_session(session)
        for conn in list(self.connections):
            # A connection without a session that sends nothing is a dead client (or a probe).
            if not conn.sessions and now - conn.last_seen > limit and conn.transport is not None:
                conn.transport.close()
        if self._server is not None:
            self._schedule_reaper()

    # -- authentication ---------------------------------------------------------------------

    def check_credentials(
        self, method: str, header: str, remote: str | None, nonce: str
    ) -> User | type[Throttled] | None:
        """The user these credentials name, ``Throttled``, or None (wrong or malformed)."""
        auth = self.authenticator
        client = client_key(remote)
        if auth.throttle.retry_after_ns(client) > 0:
            return Throttled
        if len(header) > MAX_AUTHORIZATION_LEN:
            return self._failed(client, remote, "other", None, "malformed")
        scheme, _, rest = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and self.allow_basic:
            try:
                creds = parse_authorization(header)
            except AuthHeaderError:
                return self._failed(client, remote, "basic", None, "malformed")
            if not isinstance(creds, BasicCredentials):
                return self._failed(client, remote, "basic", None, "malformed")
            outcome = auth.check_password(creds.username, creds.password, client, remote, "basic")
            if isinstance(outcome, Authenticated):
                return outcome.user
            return Throttled if isinstance(outcome, Throttled) else None
        if scheme != "digest":
            return self._failed(client, remote, "other", None, "malformed")
        try:
            params = parse_auth_params(rest)
        except AuthHeaderError:
            return self._failed(client, remote, "digest", None, "malformed")
        username = params.get("username", "")
        algorithm = params.get("algorithm", "MD5").upper()
        hash_fn = DIGEST_ALGORITHMS.get(algorithm)
        uri = params.get("uri", "")
        if not username or hash_fn is None or "response" not in params:
            return self._failed(client, remote, "digest", username or None, "malformed")
        if params.get("realm") != self.realm:
            return self._failed(client, remote, "digest", username, "realm_mismatch")
        if not hmac.compare_digest(params.get("nonce", ""), nonce):
            return self._failed(client, remote, "digest", username, "bad_nonce")
        if uri != "*" and not urlsplit(uri).path.startswith(STREAM_PATH):
            return self._failed(client, remote, "digest", username, "uri_mismatch")
        password = auth.users.password_of(username)
        secret = password if password is not None else secrets.token_hex(16)
        qop = params.get("qop")
        if qop:
            expected = digest_response(
                algorithm=algorithm,
                username=username,
                realm=self.realm,
                password=secret,
                method=method,
                uri=uri,
                nonce=nonce,
                nc=params.get("nc", ""),
                cnonce=params.get("cnonce", ""),
                qop=qop,
            )
        else:  # RFC 2069, what the axis client sends

            def h(text: str) -> str:
                return hash_fn(text.encode("utf-8")).hexdigest()

            ha1 = h(f"{username}:{self.realm}:{secret}")
            expected = h(f"{ha1}:{nonce}:{h(f'{method}:{uri}')}")
        if password is None or not hmac.compare_digest(expected, params["response"].lower()):
            return self._failed(client, remote, "digest", username, "bad_credentials")
        user = auth.users.get(username)
        if user is None:
            return self._failed(client, remote, "digest", username, "bad_credentials")
        auth.throttle.record_success(client)
        return user

    def _failed(
        self, client: str, remote: str | None, scheme: str, username: str | None, reason: str
    ) -> User | None:
        """Count and report a failed login; always None (``return self._failed(...)``)."""
        self.authenticator.throttle.record_failure(client)
        data: dict[str, object] = {
            "remote": remote,
            "scheme": scheme,
            "user": None if username is None else re.sub(r"[^A-Za-z0-9._-]", "?", username[:32]),
            "reason": reason,
            "realm": self.realm,
        }
        _LOGGER.info("RTSP login refused: %s", data)
        if self.on_auth_failure is not None:
            try:
                self.on_auth_failure("auth.failure", data)
            except Exception:
                _LOGGER.exception("audit hook failed")
        return None


__all__ = [
    "FALLBACK_PORT",
    "STREAM_PATH",
    "RtspEventServer",
    "parse_head",
    "rtp_packet",
    "sdp",
]
