"""Helpers for the VAPIX event tests: a real CamioApp with its RTSP event stream on an
ephemeral port, the WebSocket routes mounted, and small raw RTSP/RTP clients."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import camio.app
from camio.app import CamioApp, Settings, open_users
from camio.core.config import DeviceConfig
from camio.store.config_store import ConfigStore
from camio.store.users import Role

ADMIN = ("admin", "admin-secret-1")
VIEWER = ("watcher", "viewer-secret-1")
SERIAL = "ACCC8E012345"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def mount_websocket_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Add the VAPIX WebSocket routes to the daemon's app unless the VAPIX HTTP dialect
    already mounts them."""
    from camio.dialects.vapix import websocket

    original = camio.app.build_api

    def build(*args: Any, **kwargs: Any) -> web.Application:
        app = original(*args, **kwargs)
        paths = {r.canonical for r in app.router.resources()}
        if "/axis-cgi/wssession.cgi" not in paths:
            app.add_routes(websocket.routes)
        return app

    monkeypatch.setattr(camio.app, "build_api", build)


@dataclass
class EventServer:
    app: CamioApp
    data_dir: Path
    http_port: int
    rtsp_port: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def device(self) -> Any:
        assert self.app.device is not None
        return self.app.device


async def start_event_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, rtsp_port: int | None = None
) -> EventServer:
    """A daemon (admin + viewer, serial ACCC8E012345, instant inputs) with RTSP on a free
    port (or ``rtsp_port``)."""
    monkeypatch.setenv("CAMIO_ADMIN_USER", ADMIN[0])
    monkeypatch.setenv("CAMIO_ADMIN_PASSWORD", ADMIN[1])
    mount_websocket_routes(monkeypatch)
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True, mode=0o700)
    port = free_port() if rtsp_port is None else rtsp_port
    doc = DeviceConfig().model_dump(mode="json")
    doc["device"]["serial"] = SERIAL
    for inp in doc["inputs"]:
        inp["debounce_on_ms"] = 0
        inp["debounce_off_ms"] = 0
    doc["dialects"]["vapix"]["rtsp_port"] = port
    store = ConfigStore(data_dir / "config.yaml", DeviceConfig)
    store.save(DeviceConfig.model_validate(doc))
    settings = Settings(data_dir=data_dir, host="127.0.0.1", port=0, https_off=True)
    app = CamioApp(settings, out=io.StringIO())
    await app.start()
    conn, users = open_users(data_dir)
    try:
        users.add(*VIEWER, Role.VIEWER)
    finally:
        conn.close()
    assert app.port is not None
    assert app.rtsp is not None and app.rtsp.port is not None
    return EventServer(app, data_dir, app.port, app.rtsp.port)


# -- a raw RTSP client ------------------------------------------------------------------------


class RawRtsp:
    """One TCP connection speaking RTSP by hand (for protocol-level checks)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> RawRtsp:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, within: float = 5.0) -> tuple[int, dict[str, str], str]:
        async with asyncio.timeout(within):
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            status = int(lines[0].split(" ")[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if ": " in line:
                    name, value = line.split(": ", 1)
                    headers[name.lower()] = value
            body = b""
            if "content-length" in headers:
                body = await self.reader.readexactly(int(headers["content-length"]))
        return status, headers, body.decode()

    async def request(
        self, method: str, uri: str, cseq: int, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        lines = [f"{method} {uri} RTSP/1.0", f"CSeq: {cseq}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        await self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode())
        return await self.response()

    async def closed(self, within: float = 5.0) -> bool:
        async with asyncio.timeout(within):
            while True:
                data = await self.reader.read(4096)
                if not data:
                    return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


class RtpReceiver(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.packets.put_nowait(data)


async def rtp_socket() -> tuple[asyncio.DatagramTransport, RtpReceiver, int]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(RtpReceiver, local_addr=("127.0.0.1", 0))
    port: int = transport.get_extra_info("sockname")[1]
    return transport, proto, port


# -- the axis v74 library on a newer interpreter (optional) -------------------------------------

REPO = Path(__file__).resolve().parents[2]
AXIS74_VENV = REPO / "build" / "axis74-venv"
_FUTURE = "from __future__ import annotations\n"


def _patch_future_annotations(package: Path) -> None:
    """axis 74 declares Python >= 3.14 (lazy annotations); on 3.13 its modules import once
    ``from __future__ import annotations`` is added after each module docstring."""
    for path in package.rglob("*.py"):
        text = path.read_text()
        if _FUTURE in text:
            continue
        at = 0
        body = text.lstrip()
        if body.startswith('"""'):
            end = text.find('"""', len(text) - len(body) + 3)
            newline = text.find("\n", end) if end != -1 else -1
            at = newline + 1 if newline != -1 else 0
        path.write_text(text[:at] + _FUTURE + text[at:])


def axis74_python() -> Path | None:
    """A Python >= 3.13 with axis==74 installed and patched (cached under build/), or None."""
    import glob
    import os
    import subprocess

    python = AXIS74_VENV / "bin" / "python"
    marker = AXIS74_VENV / ".camio-ready"
    if marker.exists() and python.exists():
        return python
    roots = {os.path.expanduser("~/.pyenv"), "/root/.pyenv", os.environ.get("PYENV_ROOT", "")}
    found = sorted(
        p for root in roots if root for p in glob.glob(f"{root}/versions/3.1[3-9]*/bin/python")
    )
    if not found:
        return None
    try:
        subprocess.run(
            [found[-1], "-m", "venv", "--clear", str(AXIS74_VENV)], check=True, timeout=60
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--ignore-requires-python", "axis==74"],
            check=True,
            timeout=120,
            capture_output=True,
        )
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        _patch_future_annotations(Path(site) / "axis")
        subprocess.run(
            [str(python), "-c", "import axis.device, axis.websocket, axis.rtsp"],
            check=True,
            timeout=60,
            capture_output=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    marker.write_text("axis==74\n")
    return python


#: Run by the v74 interpreter: prints one JSON line per event the library dispatches and per
#: stream signal, until stdin closes.
AXIS74_CLIENT = r"""
import asyncio, json, sys
import aiohttp
from axis import rtsp
from axis.device import AxisDevice
from axis.models.configuration import Configuration

async def main():
    http_port, rtsp_port, user, password, mode = sys.argv[1:6]
    rtsp.RTSP_PORT = int(rtsp_port)
    async with aiohttp.ClientSession() as session:
        cfg = Configuration(session, "127.0.0.1", port=int(http_port), username=user,
                            password=password, websocket_force=(mode == "websocket"))
        dev = AxisDevice(cfg)
        def out(obj):
            print(json.dumps(obj), flush=True)
        dev.stream.connection_status_callback.append(lambda s: out({"signal": str(s)}))
        dev.enable_events()
        dev.event.subscribe(lambda e: out({"topic": e.topic, "id": e.id, "state": e.state,
                                           "operation": str(e.operation),
                                           "tripped": e.is_tripped}))
        dev.stream.start()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        dev.stream.stop()
        await asyncio.sleep(0.2)

asyncio.run(main())
"""
