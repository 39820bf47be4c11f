"""Outages of the SMTP, TCP, FTP and SFTP recipients during a burst of alarms, end to end.

A real in-process CamioApp runs a rule ``input -> notify`` against a real server on 127.0.0.1
(aiosmtpd, an ``asyncio`` line listener, pyftpdlib, asyncssh). The server is killed in the
middle of a burst of alarms and brought back on the same port; later it is down again while
camio itself restarts. Every alarm event must arrive at the receiver, recognisable by its
delivery key (``X-Camio-Delivery`` / the start of the line / the file name): after
deduplication by key the keys received are exactly the keys of the events. Retries come
quickly because the device's ``outbox`` backoff is made small; every wait is bounded by an
asyncio timeout.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any, Protocol

import asyncssh
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from apihelpers import ADMIN, Api, Server, start_server
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
from test_recipients import alarm, fast_retries, setup_rule, until

KEY = re.compile(r"door-\d+-out")


def free_port() -> int:
    """A port nothing listens on; the servers below bind it (SO_REUSEADDR) on every start."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Receiver(Protocol):
    port: int

    async def start(self) -> None: ...

    async def kill(self) -> None: ...

    def keys(self) -> list[str]:
        """Every delivery key received, once per reception (duplicates kept)."""
        ...

    def recipient(self) -> dict[str, Any]: ...


# --- SMTP -----------------------------------------------------------------------------------


@dataclass
class SmtpReceiver:
    """aiosmtpd in its thread; a kill stops the controller, a start makes a new one."""

    port: int = field(default_factory=free_port)
    received: list[str] = field(default_factory=list)
    message_ids: dict[str, str] = field(default_factory=dict)
    controller: Controller | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = message_from_bytes(raw)
        key = str(msg["X-Camio-Delivery"])
        self.message_ids[key] = str(msg["Message-ID"])
        self.received.append(key)
        return "250 OK"

    async def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        await asyncio.to_thread(self.controller.start)

    async def kill(self) -> None:
        if self.controller is not None:
            controller, self.controller = self.controller, None
            await asyncio.to_thread(controller.stop)

    def keys(self) -> list[str]:
        return list(self.received)

    def recipient(self) -> dict[str, Any]:
        return {
            "kind": "email",
            "id": "out",
            "name": "Mail",
            "host": "127.0.0.1",
            "port": self.port,
            "security": "none",
            "from_address": "camio@example.com",
            "to": ["guard@example.com"],
            "timeout": 2,
        }


# --- TCP ------------------------------------------------------------------------------------


@dataclass
class TcpReceiver:
    port: int = field(default_factory=free_port)
    lines: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if line.endswith(b"\n"):  # a line cut by the kill is not a notification
                    self.lines.append(line.decode().rstrip("\n"))
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._client, "127.0.0.1", self.port, reuse_address=True
        )

    async def kill(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            server.close()
            await server.wait_closed()

    def keys(self) -> list[str]:
        return [line.split(" ", 1)[0] for line in self.lines]

    def recipient(self) -> dict[str, Any]:
        return {
            "kind": "tcp",
            "id": "out",
            "name": "Line",
            "host": "127.0.0.1",
            "port": self.port,
            "timeout_s": 2,
        }


# --- FTP ------------------------------------------------------------------------------------


@dataclass
class FtpReceiver:
    """pyftpdlib in a thread; a kill closes every connection and the listening socket."""

    root: Path
    port: int = field(default_factory=free_port)
    uploads: list[str] = field(default_factory=list)
    stop: threading.Event | None = None
    thread: threading.Thread | None = None

    async def start(self) -> None:
        self.root.mkdir(exist_ok=True)
        authorizer = DummyAuthorizer()
        authorizer.add_user("cam", "secret", str(self.root), perm="elradfmwMT")
        uploads = self.uploads

        class Handler(FTPHandler):  # type: ignore[misc]
            def on_file_received(self, file: str) -> None:
                uploads.append(Path(file).name)

        Handler.authorizer = authorizer
        Handler.auth_failed_timeout = 0
        server = FTPServer(("127.0.0.1", self.port), Handler)  # SO_REUSEADDR on POSIX
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                server.serve_forever(timeout=0.02, blocking=False)
            server.close_all()

        self.stop = stop
        self.thread = threading.Thread(target=serve, name="pyftpdlib", daemon=True)
        self.thread.start()

    async def kill(self) -> None:
        if self.stop is not None and self.thread is not None:
            self.stop.set()
            await asyncio.to_thread(self.thread.join, 5)
            assert not self.thread.is_alive()
            self.stop = self.thread = None

    def keys(self) -> list[str]:
        """One key per upload of a ``.part`` file (a retry uploads again), in order."""
        return [name.removesuffix("-message.txt.part") for name in self.uploads]

    def files(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir())

    def recipient(self) -> dict[str, Any]:
        return {
            "kind": "ftp",
            "id": "out",
            "name": "FTP",
            "host": "127.0.0.1",
            "port": self.port,
            "username": "cam",
            "password": "secret",
            "timeout": 2,
        }


# --- SFTP -----------------------------------------------------------------------------------


@dataclass
class SftpReceiver:
    """asyncssh with SFTP rooted in ``root``; a kill closes the acceptor and every connection."""

    root: Path
    port: int = field(default_factory=free_port)
    host_key: asyncssh.SSHKey = field(
        default_factory=lambda: asyncssh.generate_private_key("ssh-ed25519")
    )
    uploads: list[str] = field(default_factory=list)
    connections: set[asyncssh.SSHServerConnection] = field(default_factory=set)
    acceptor: asyncssh.SSHAcceptor | None = None

    async def start(self) -> None:
        self.root.mkdir(exist_ok=True)
        uploads, connections = self.uploads, self.connections

        class Login(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                self.conn = conn
                connections.add(conn)

            def connection_lost(self, exc: Exception | None) -> None:
                connections.discard(self.conn)

            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return (username, password) == ("cam", "secret")

        class Files(asyncssh.SFTPServer):
            async def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
                """The ``.part`` upload becomes the final file: one reception (a retry
                renames again)."""
                result = super().posix_rename(oldpath, newpath)
                if result is not None:
                    await result
                uploads.append(Path(newpath.decode()).name)

        root = str(self.root).encode()

        def sftp_factory(chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
            return Files(chan, chroot=root)

        self.acceptor = await asyncssh.listen(
            "127.0.0.1",
            self.port,
            reuse_address=True,
            server_host_keys=[self.host_key],
            server_factory=Login,
            sftp_factory=sftp_factory,
        )

    async def kill(self) -> None:
        if self.acceptor is not None:
            acceptor, self.acceptor = self.acceptor, None
            acceptor.close()
            connections = list(self.connections)
            self.connections.clear()
            for conn in connections:
                conn.abort()
            for conn in connections:
                await conn.wait_closed()
            await acceptor.wait_closed()

    def keys(self) -> list[str]:
        """One key per completed upload (rename of the ``.part`` file), in order."""
        return [name.removesuffix("-message.txt") for name in self.uploads]

    def files(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir())

    def recipient(self) -> dict[str, Any]:
        return {
            "kind": "sftp",
            "id": "out",
            "name": "SFTP",
            "host": "127.0.0.1",
            "port": self.port,
            "username": "cam",
            "password": "secret",
            "host_key": self.host_key.export_public_key().decode().strip(),
            "timeout": 2,
        }


@pytest.fixture(params=["smtp", "tcp", "ftp", "sftp"])
async def receiver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Receiver]:
    made: Receiver
    if request.param == "smtp":
        made = SmtpReceiver()
    elif request.param == "tcp":
        made = TcpReceiver()
    elif request.param == "ftp":
        made = FtpReceiver(tmp_path / "ftp")
    else:
        made = SftpReceiver(tmp_path / "sftp")
    await made.start()
    try:
        yield made
    finally:
        await made.kill()


# --- the test -------------------------------------------------------------------------------


async def _outbox(api: Api) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await api.get("/api/v1/outbox")).body["deliveries"]
    return rows


async def _delivered(api: Api) -> list[str]:
    reply = await api.get("/api/v1/events?topic=outbox/delivered")
    assert reply.status == 200, reply
    return [e["data"]["key"] for e in reply.body["events"]]


def _distinct(keys: Callable[[], list[str]]) -> Callable[[], int]:
    return lambda: len(set(keys()))


async def test_a_burst_through_an_outage_and_a_restart_arrives_once_per_event(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMIO_ADMIN_USER", ADMIN[0])
    monkeypatch.setenv("CAMIO_ADMIN_PASSWORD", ADMIN[1])
    data_dir = tmp_path / "data"
    distinct = _distinct(receiver.keys)
    alarms = 0

    async def burst(api: Api, count: int) -> None:
        nonlocal alarms
        for _ in range(count):
            await alarm(api)
            alarms += 1

    async def all_tried(api: Api, at_least: int) -> bool:
        """Every event is either received or queued, and every queued one was tried (a
        delivery cut off by the kill may be both: received, but not acknowledged)."""
        rows = await _outbox(api)
        queued = {r["key"] for r in rows}
        return (
            len(queued) >= at_least
            and len(queued | set(receiver.keys())) == alarms
            and all(r["attempts"] >= 1 for r in rows)
        )

    first: Server = await start_server(data_dir)
    try:
        api = first.digest(*ADMIN)
        assert (await api.post("/api/v1/recipients", receiver.recipient())).status == 201
        await setup_rule(api, ["out"])
        await fast_retries(api)
        # Phase 1: the server dies in the middle of a burst and comes back on the same port.
        await burst(api, 3)
        await receiver.kill()  # whatever is in flight now is cut off
        await burst(api, 3)
        await until(lambda: all_tried(api, 3), "failed attempts while down")
        before = distinct()
        assert before < alarms
        await receiver.start()
        await burst(api, 2)

        async def drained() -> bool:
            return await _outbox(api) == [] and distinct() == alarms

        await until(drained, "every event delivered after the server came back")
        # Phase 2: the server is down and camio restarts with the deliveries still queued.
        await receiver.kill()
        await burst(api, 2)
        await until(lambda: all_tried(api, 2), "failed attempts before the restart")
        delivered_first = await _delivered(api)
    finally:
        await first.close()
        await first.app.stop()
    assert distinct() == alarms - 2
    await receiver.start()
    second = await start_server(data_dir)
    try:
        api = second.digest(*ADMIN)
        await until(lambda: distinct() == alarms, "the queued deliveries after the restart")

        async def drained_again() -> bool:
            return await _outbox(api) == []

        await until(drained_again, "the outbox empty after the restart")
        delivered_second = await _delivered(api)
    finally:
        await second.close()
        await second.app.stop()

    received = Counter(receiver.keys())
    assert all(KEY.fullmatch(key) for key in received), received
    # Exactly once per event after deduplication by key; the events are those camio delivered.
    assert len(received) == alarms == 10
    assert set(received) == set(delivered_first) | set(delivered_second)
    duplicates = {key: n for key, n in received.items() if n > 1}
    assert sum(duplicates.values()) - len(duplicates) <= 1, duplicates  # only the cut-off one
    if isinstance(receiver, SmtpReceiver):
        assert all(receiver.message_ids[k] == f"<{k}@camio>" for k in received)
    if isinstance(receiver, FtpReceiver | SftpReceiver):
        assert receiver.files() == sorted(f"{key}-message.txt" for key in received)
