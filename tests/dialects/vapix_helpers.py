"""Helpers for the dialect tests: a daemon on loopback, its accounts, Digest/Basic clients.

(A module of its own, named so no other test folder collides with it.)
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from camio.app import CamioApp, Settings
from camio.engine.device import Device

ADMIN = ("admin", "admin-secret-1")
OPERATOR = ("oper", "oper-secret-1")
VIEWER = ("watcher", "viewer-secret-1")


@dataclass
class Server:
    app: CamioApp
    data_dir: Path
    url: str
    host: str
    port: int
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def device(self) -> Device:
        device = self.app.device
        assert device is not None
        return device

    @property
    def serial(self) -> str:
        return self.device.config.device.serial.upper()

    def client(self, auth: httpx.Auth | None = None, **kwargs: Any) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=self.url, auth=auth, timeout=10, **kwargs)
        self.clients.append(client)
        return client

    def digest(self, user: str, password: str) -> httpx.AsyncClient:
        return self.client(httpx.DigestAuth(user, password))

    def basic(self, user: str, password: str) -> httpx.AsyncClient:
        return self.client(httpx.BasicAuth(user, password))

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


async def start_server(data_dir: Path) -> Server:
    settings = Settings(data_dir=data_dir, host="127.0.0.1", port=0, https_off=True)
    app = CamioApp(settings, out=io.StringIO())
    await app.start()
    url = app.url
    host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
    return Server(app, data_dir, url, host, int(port))
