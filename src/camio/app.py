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
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

import camio.actions  # noqa: F401  (registers the action kinds)
from camio import __version__
from camio.api.app import build_api
from camio.api.auth import Authenticator
from camio.api.session_routes import SetupCode
from camio.core.clock import SystemClock
from camio.core.config import DeviceConfig
from camio.core.events import Cause
from camio.engine.device import Device
from camio.hardware.sim import SimDriver
from camio.store.atomic import atomic_write_bytes
from camio.store.config_store import ConfigStore
from camio.store.db import open_database
from camio.store.persistence import StorePersistence
from camio.store.secrets import SecretBox, random_token
from camio.store.users import Role, UserError, UserStore

_LOGGER = logging.getLogger("camio")

DEFAULT_DATA = Path("camio-data")
DEFAULT_LISTEN = ("127.0.0.1", 8080)
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

    @property
    def config_file(self) -> Path:
        return self.config_path or self.data_dir / "config.yaml"


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
        self._setup_code: SetupCode | None = None

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
            driver=SimDriver(),
            clock=clock,
            persistence=self._persistence,
            save_config=lambda doc, expected: store.save(doc, expected),
            revision=revision,
        )
        device.start()
        self.device = device
        authenticator = Authenticator(users, realm="camio", local_token=token, on_event=self._audit)
        self._setup_code = SetupCode() if users.count() == 0 else None
        app = build_api(device, authenticator, setup_code=self._setup_code)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.host, settings.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            raise StartupError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
            ) from None
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else settings.port
        self._write_run_file()
        self._announce(users)

    @property
    def url(self) -> str:
        host = self.settings.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

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
        info = {"url": self.url, "pid": os.getpid(), "version": __version__}
        atomic_write_bytes(self.settings.data_dir / RUN_FILE, json.dumps(info).encode(), mode=0o600)

    def _announce(self, users: UserStore) -> None:
        assert self.device is not None
        ident = self.device.config.device
        print(
            f"camio {__version__}: {ident.name} ({ident.model}, serial {ident.serial})",
            file=self._out,
        )
        print(f"  listening on {self.url}  (API: {self.url}/api/v1/ports)", file=self._out)
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
        if self.device is not None:
            self.device.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
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
