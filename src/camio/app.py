"""Composition root: builds one running device from a data directory and serves its API.

Everything long-lived has an owner here, started in :meth:`CamioApp.start` and stopped in
:meth:`CamioApp.stop`; nothing runs at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import glob
import json
import logging
import os
import signal
import sqlite3
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

import camio.actions  # (registers the action kinds)
import camio.recipients  # noqa: F401  (registers the recipient kinds)
from camio import __version__
from camio.api.app import build_api
from camio.api.auth import Authenticator
from camio.api.redirect import HTTP_POLICY, HttpPolicy
from camio.api.session_routes import SetupCode
from camio.api.system_routes import SYSTEM, SystemHooks
from camio.audio import AUDIO, AudioService
from camio.core.clock import SystemClock
from camio.core.config import DeviceConfig
from camio.core.events import Cause, Event, Topic
from camio.dialects.onvif.discovery import DiscoveryResponder
from camio.dialects.vapix.rtsp import RtspEventServer
from camio.engine.device import Device
from camio.hardware.gpio import create_driver
from camio.memory import return_large_blocks_to_the_system
from camio.mqtt import MQTT, MqttService
from camio.store.atomic import atomic_write_bytes
from camio.store.certs import (
    CERT_FILE,
    KEY_FILE,
    certificate_info,
    ensure_certificate,
    install_certificate,
    server_context,
    tls_dir,
)
from camio.store.config_store import ConfigStore
from camio.store.db import open_database
from camio.store.outbox import OutboxStore
from camio.store.persistence import StorePersistence
from camio.store.secrets import SecretBox, random_token
from camio.store.users import Role, UserError, UserStore
from camio.video import VIDEO, VideoService

_LOGGER = logging.getLogger("camio")

DEFAULT_DATA = Path("camio-data")
DEFAULT_LISTEN = ("127.0.0.1", 8080)
DEFAULT_HTTPS_PORT = 8443
TOKEN_FILE = "cli-token"
RUN_FILE = "run.json"
LOCK_FILE = "daemon.lock"


class StartupError(Exception):
    """The device cannot start; the message tells the user what to fix."""


@dataclass(slots=True)
class Settings:
    data_dir: Path = DEFAULT_DATA
    config_path: Path | None = None
    host: str = DEFAULT_LISTEN[0]
    port: int = DEFAULT_LISTEN[1]
    #: HTTPS listener; None = the HTTP host on port 8443 (on an ephemeral port when the HTTP
    #: port is 0, as in tests); ``https_off`` turns HTTPS off whatever the configuration says.
    https_host: str | None = None
    https_port: int | None = None
    https_off: bool = False
    #: The HTTP address was given explicitly (``--listen``): it serves plain HTTP whatever
    #: the configured HTTP mode, so scripts that speak only HTTP keep working.
    explicit_listen: bool = False
    #: The audio output of the play_audio action: ``sim``, ``alsa`` or ``alsa:<device>``.
    audio_output: str = "sim"
    #: Run the video worker for ``video.source`` (the CLI's default; ``--no-video`` turns it
    #: off). Off for embedded uses that do not ask, such as most tests.
    video: bool = False

    @property
    def config_file(self) -> Path:
        return self.config_path or self.data_dir / "config.yaml"

    def https_address(self) -> tuple[str, int]:
        host = self.https_host or self.host
        if self.https_port is not None:
            return host, self.https_port
        # The camera convention (80 -> 443, 8080 -> 8443); any other HTTP port gets an
        # ephemeral HTTPS port, announced in the banner and run.json, rather than a guess
        # that may collide with another daemon.
        return host, {80: 443, 8080: DEFAULT_HTTPS_PORT}.get(self.port, 0)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) into its parts, with a clear error."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen wants HOST:PORT, not {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def open_data_dir(data_dir: Path) -> sqlite3.Connection:
    """Create the data directory (owner-only) and open its database."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return open_database(data_dir / "camio.db")


def open_users(data_dir: Path) -> tuple[sqlite3.Connection, UserStore]:
    conn = open_data_dir(data_dir)
    return conn, UserStore(conn, SecretBox(data_dir))


def load_or_create_config(store: ConfigStore[DeviceConfig]) -> tuple[DeviceConfig, int]:
    """The saved configuration, or the defaults saved as revision 1 on the first start."""
    try:
        return store.load()
    except FileNotFoundError:
        config = DeviceConfig()
        return config, store.save(config)


def lock_data_dir(data_dir: Path) -> int:
    """Claim ``data_dir`` for this daemon (an exclusive ``flock``, released when the process
    ends, even by SIGKILL); the open descriptor holds it.

    A second daemon on the same directory would replace the CLI token and ``run.json`` of the
    first one, leaving it unreachable for ``camio``, even if it then fails to listen.
    """
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StartupError(f"another camio daemon is running on {data_dir}") from None
    return fd


def remove_stale_temp_files(data_dir: Path, store: ConfigStore[DeviceConfig]) -> None:
    """Delete what a kill in the middle of an atomic write left behind (``.<name>.*.tmp``,
    never read by anyone) for the files the daemon writes.

    Runs with the data directory claimed; the configuration's temporary files are removed
    under the store's own lock, so an offline ``camio config import`` is never disturbed.
    """

    def sweep(directory: Path, name: str) -> None:
        for path in directory.glob(f".{glob.escape(name)}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    for name in (TOKEN_FILE, RUN_FILE):
        sweep(data_dir, name)
    fd = os.open(store.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        sweep(store.path.parent, store.path.name)  # also matches the backup's
    finally:
        os.close(fd)


class CamioApp:
    """One device: configuration, database, engine, API server."""

    def __init__(self, settings: Settings, *, out: TextIO = sys.stdout) -> None:
        self.settings = settings
        self._out = out
        self.device: Device | None = None
        self._conn: sqlite3.Connection | None = None
        self._persistence: StorePersistence | None = None
        self._runner: web.AppRunner | None = None
        self._lock_fd: int | None = None
        self.port: int | None = None
        self.https_port: int | None = None
        self._http_site: web.TCPSite | None = None
        self._https_site: web.TCPSite | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._policy = HttpPolicy()
        self._setup_code: SetupCode | None = None
        self._authenticator: Authenticator | None = None
        #: The VAPIX RTSP event stream (None when off or not listening).
        self.rtsp: RtspEventServer | None = None
        self._rtsp_lock = asyncio.Lock()
        #: The ONVIF WS-Discovery responder (None when off).
        self.discovery: DiscoveryResponder | None = None
        self._discovery_key: tuple[object, ...] | None = None

    async def start(self) -> None:
        settings = self.settings
        data_dir = settings.data_dir
        self._conn = open_data_dir(data_dir)
        try:
            self._lock_fd = lock_data_dir(data_dir)
        except StartupError:
            self._conn.close()
            self._conn = None
            raise
        store = ConfigStore(settings.config_file, DeviceConfig)
        config, revision = load_or_create_config(store)
        remove_stale_temp_files(data_dir, store)
        users = UserStore(self._conn, SecretBox(data_dir))
        self._bootstrap_admin(users)
        token = random_token(32)
        atomic_write_bytes(data_dir / TOKEN_FILE, token.encode(), mode=0o600)
        loop = asyncio.get_running_loop()
        clock = SystemClock(loop)
        self._persistence = StorePersistence(
            self._conn,
            max_events=config.event_log.max_events,
            max_age_s=config.event_log.max_age_days * 86_400,
            wall_clock=clock.wall_ns,
        )
        device = Device(
            config,
            driver=create_driver(config.hardware, lambda: device),
            clock=clock,
            persistence=self._persistence,
            save_config=lambda doc, expected: store.save(doc, expected),
            revision=revision,
            outbox_store=OutboxStore(self._conn),
        )
        device.services.set(AUDIO, AudioService.create(data_dir, clock, settings.audio_output))
        video = VideoService(device, data_dir, enabled=settings.video)
        device.services.set(VIDEO, video)
        device.start()
        video.start()
        mqtt = MqttService(device, state_file=data_dir / "mqtt.json")  # connects if enabled
        device.services.set(MQTT, mqtt)
        mqtt.start()
        self.device = device
        authenticator = Authenticator(users, realm="camio", local_token=token, on_event=self._audit)
        self._authenticator = authenticator
        self._setup_code = SetupCode() if users.count() == 0 else None
        app = build_api(device, authenticator, setup_code=self._setup_code)
        app[SYSTEM] = SystemHooks(
            tls_info=lambda: certificate_info(data_dir),
            install_tls=self._install_tls,
            https_port=lambda: self.https_port,
        )
        app[HTTP_POLICY] = self._policy
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        try:
            await self._reconcile_listeners()
            await self._reconcile_rtsp()
            await self._reconcile_discovery()
        except StartupError:
            await self.stop()
            raise
        device.subscribe(self._on_event, replay_state=False)
        self._write_run_file()
        self._announce(users)

    async def _start_site(
        self, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> tuple[web.TCPSite, int]:
        assert self._runner is not None
        site = web.TCPSite(self._runner, host, port, reuse_address=True, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            scheme = "HTTPS" if ssl_context else "HTTP"
            raise StartupError(
                f"cannot listen on {host}:{port} ({scheme}): {exc.strerror}"
            ) from None
        sockets = getattr(site._server, "sockets", None) or []
        return site, sockets[0].getsockname()[1] if sockets else port

    async def _reconcile_listeners(self) -> None:
        """Start or stop the HTTP and HTTPS listeners to match the configuration."""
        assert self.device is not None
        settings = self.settings
        network = self.device.config.network
        want_https = network.https and not settings.https_off
        if want_https and self._https_site is None:
            host, port = settings.https_address()
            cert, key = ensure_certificate(settings.data_dir, [host, "localhost"])
            self._ssl_context = server_context(cert, key)
            self._https_site, self.https_port = await self._start_site(
                host, port, self._ssl_context
            )
        elif not want_https and self._https_site is not None:
            await self._https_site.stop()
            self._https_site, self.https_port = None, None
        http_off = network.http_mode == "off" and self.https_port is not None
        want_http = settings.explicit_listen or not http_off
        if want_http and self._http_site is None:
            self._http_site, self.port = await self._start_site(settings.host, settings.port)
        elif not want_http and self._http_site is not None:
            await self._http_site.stop()
            self._http_site = None
        redirect = network.http_mode == "redirect" and self.https_port is not None
        self._policy.redirect_to_port = self.https_port if redirect else None
        exempt = {self.port} if settings.explicit_listen and self.port is not None else set()
        self._policy.exempt_ports = frozenset(exempt)

    async def _reconcile_rtsp(self) -> None:
        """Start, stop or move the VAPIX RTSP event stream to match the configuration.

        Where the configured port cannot be bound (554 needs privileges), it falls back to
        8554 and says so; if that fails too, the daemon runs without it (logged)."""
        async with self._rtsp_lock:
            await self._reconcile_rtsp_locked()

    async def _reconcile_rtsp_locked(self) -> None:
        assert self.device is not None and self._authenticator is not None
        vapix = self.device.config.dialects.vapix
        want = vapix.rtsp_port if vapix.enabled else 0
        current = self.rtsp
        if current is not None and current.requested_port != want:
            await current.stop()
            self.rtsp = current = None
        if current is not None:
            current.allow_basic = vapix.allow_basic
        if current is None and want:
            server = RtspEventServer(
                self.device,
                self._authenticator,
                host=self.settings.host,
                port=want,
                allow_basic=vapix.allow_basic,
                on_auth_failure=self._audit,
            )
            try:
                await server.start()
            except OSError as exc:
                _LOGGER.error("VAPIX RTSP events: cannot listen on port %s: %s", want, exc)
                return
            self.rtsp = server
        if self._lock_fd is not None and self.port is not None:
            self._write_run_file()  # run.json names the RTSP URL

    def _on_event(self, event: Event) -> None:
        if event.topic == Topic.CONFIG_CHANGED and self.device is not None:
            self.device.spawn(self._reconcile_listeners())
            self.device.spawn(self._reconcile_rtsp())
            self.device.spawn(self._reconcile_discovery())

    async def _reconcile_discovery(self) -> None:
        """Start, stop or restart the ONVIF WS-Discovery responder to match the configuration
        (off when the dialect or discovery is off; a port it cannot bind is logged)."""
        async with self._rtsp_lock:
            assert self.device is not None
            onvif = self.device.config.dialects.onvif
            http_port = self.port or self.https_port
            want = onvif.enabled and onvif.discovery and http_port is not None
            interfaces = onvif.discovery_interfaces or [self.settings.host or "0.0.0.0"]
            key = (onvif.discovery_port, tuple(interfaces), http_port) if want else None
            if key == self._discovery_key:
                return
            if self.discovery is not None:
                await self.discovery.stop()
                self.discovery = None
            self._discovery_key = key
            if key is None or http_port is None:
                return
            responder = DiscoveryResponder(
                self.device,
                addresses=interfaces,
                port=onvif.discovery_port,
                http_port=http_port,
                scheme="http" if self.port else "https",
            )
            try:
                await responder.start()
            except OSError as exc:
                _LOGGER.error("ONVIF WS-Discovery: cannot listen on UDP %s: %s", key[0], exc)
                return
            self.discovery = responder

    def _install_tls(self, cert_pem: str, key_pem: str) -> dict[str, Any]:
        """Replace the certificate; new connections use it at once."""
        info: dict[str, Any] = install_certificate(self.settings.data_dir, cert_pem, key_pem)
        if self._ssl_context is not None:
            folder = tls_dir(self.settings.data_dir)
            self._ssl_context.load_cert_chain(folder / CERT_FILE, folder / KEY_FILE)
        return info

    @property
    def url(self) -> str:
        """The plain-HTTP URL (or the HTTPS one when plain HTTP is off)."""
        if self._http_site is None and self.https_url:
            return self.https_url
        host = self.settings.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def https_url(self) -> str | None:
        if self.https_port is None:
            return None
        host = self.settings.https_address()[0]
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.https_port}"

    def _bootstrap_admin(self, users: UserStore) -> None:
        """No default account: an automated install may create the first admin from the
        environment, once, when there is no user at all."""
        name = os.environ.get("CAMIO_ADMIN_USER")
        password = os.environ.get("CAMIO_ADMIN_PASSWORD")
        if users.count() > 0 or not name or not password:
            return
        try:
            users.add(name, password, Role.ADMIN)
        except UserError as exc:
            raise StartupError(f"CAMIO_ADMIN_USER/CAMIO_ADMIN_PASSWORD: {exc}") from None
        _LOGGER.info("created administrator %r from the environment", name)

    def _audit(self, kind: str, data: dict[str, Any]) -> None:
        """Failed and throttled logins of every entry point go to the audit log."""
        _LOGGER.warning("auth %s: %s", kind, data)
        if self.device is None:
            return
        remote = data.get("remote")
        cause = Cause("api", client=str(remote) if remote else None)
        action = "login_throttled" if kind == "auth.throttled" else "login_failed"
        details = {k: v for k, v in data.items() if k in ("scheme", "user", "reason", "realm")}
        if "user" in details:
            details["username"] = details.pop("user")
        self.device.audit(action, cause, **details)

    def _write_run_file(self) -> None:
        info = {
            "url": self.url,
            "https_url": self.https_url,
            "rtsp_url": self.rtsp.url if self.rtsp is not None else None,
            "pid": os.getpid(),
            "version": __version__,
        }
        atomic_write_bytes(self.settings.data_dir / RUN_FILE, json.dumps(info).encode(), mode=0o600)

    def _announce(self, users: UserStore) -> None:
        assert self.device is not None
        ident = self.device.config.device
        print(
            f"camio {__version__}: {ident.name} ({ident.model}, serial {ident.serial})",
            file=self._out,
        )
        print(f"  listening on {self.url}  (API: {self.url}/api/v1/ports)", file=self._out)
        if self.https_url and self.https_url != self.url:
            print(
                f"  HTTPS on {self.https_url}  (self-signed until you upload a certificate)",
                file=self._out,
            )
        if self.rtsp is not None:
            note = ""
            if self.rtsp.fallback_reason is not None:
                note = f"  (port {self.rtsp.requested_port}: {self.rtsp.fallback_reason})"
            print(f"  VAPIX RTSP events on {self.rtsp.url}{note}", file=self._out)
        print(f"  data in {self.settings.data_dir.resolve()}", file=self._out)
        if users.count() == 0:
            code = self._setup_code.code if self._setup_code else "(restart to get one)"
            print(
                "  no account yet (there is no default password). Create the administrator\n"
                f"  in the browser at {self.url}/ with the one-time setup code {code}\n"
                f"  or: camio user add admin --role admin --data {self.settings.data_dir}\n"
                "  or start with CAMIO_ADMIN_USER and CAMIO_ADMIN_PASSWORD set.",
                file=self._out,
            )
        else:
            print("  log in with your camio account (HTTP Digest or Basic)", file=self._out)
        print("  Ctrl-C stops it; outputs go to their safe state.", file=self._out, flush=True)

    async def stop(self) -> None:
        if self.discovery is not None:
            await self.discovery.stop()
            self.discovery = None
        if self.rtsp is not None:
            await self.rtsp.stop()
            self.rtsp = None
        if self.device is not None:
            video = self.device.services.get(VIDEO)
            if video is not None:
                await video.close()  # running recordings end with complete files
            self.device.stop()
            mqtt = self.device.services.get(MQTT)
            if mqtt is not None:
                await mqtt.close()  # the shutdown's events first, then "offline"
            audio = self.device.services.get(AUDIO)
            if audio is not None:
                audio.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._http_site = self._https_site = None
        if self._persistence is not None:
            self._persistence.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.settings.data_dir / RUN_FILE).unlink()
            os.close(self._lock_fd)  # the directory is free for the next daemon
            self._lock_fd = None


async def serve(settings: Settings) -> int:
    """Run until SIGINT/SIGTERM, then stop cleanly."""
    return_large_blocks_to_the_system()
    app = CamioApp(settings)
    # Handlers first: the banner says "Ctrl-C stops it", so a signal right after it (or during
    # the start) must already mean a clean stop, not a KeyboardInterrupt.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
    except StartupError as exc:
        print(f"camio: {exc}", file=sys.stderr)
        return 2
    try:
        await stop.wait()
    finally:
        print("camio: stopping", file=sys.stderr)
        await app.stop()
    return 0
