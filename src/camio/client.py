"""A small client for a running camio daemon, used by the ``camio`` command.

It finds the daemon through ``<data>/run.json`` (written at start) and authenticates with the
local token in ``<data>/cli-token`` (only accepted from loopback), or with a user and password
given in the environment.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from camio.app import RUN_FILE, TOKEN_FILE


class ClientError(Exception):
    """The daemon refused or could not be reached; the message is for the user."""


class DaemonClient:
    """HTTP calls to ``/api/v1`` of a running daemon."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._headers: dict[str, str] = {}
        if user and password is not None:
            pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {pair}"
        elif token:
            self._headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def from_data_dir(cls, data_dir: Path, url: str | None = None) -> DaemonClient:
        """Locate the daemon of ``data_dir`` (or ``url``) and pick credentials.

        Without ``url`` the daemon is the one whose ``run.json`` is in ``data_dir``; when there
        is none, no daemon runs for it. (Guessing a default address could reach a daemon of
        another data directory and change *its* configuration.)
        """
        if url is None:
            try:
                url = str(json.loads((data_dir / RUN_FILE).read_text())["url"])
            except (OSError, ValueError, KeyError):
                raise ClientError(
                    f"cannot reach camio: no daemon is running for {data_dir} (start it with "
                    f"'camio run --data {data_dir}', or give --url)"
                ) from None
        user = os.environ.get("CAMIO_USER")
        password = os.environ.get("CAMIO_PASSWORD")
        token = None
        if not user:
            try:
                token = (data_dir / TOKEN_FILE).read_text().strip()
            except OSError:
                token = None
        return cls(url, token=token, user=user, password=password)

    def _session(self) -> aiohttp.ClientSession:
        """A session for the daemon. Its HTTPS certificate is self-signed until the user
        uploads one, so on this machine (loopback) it is not checked: the local token only
        works from loopback anyway, and nothing crosses a network."""
        host = urlsplit(self.url).hostname or ""
        loopback = host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
        if self.url.startswith("https://") and loopback:
            return aiohttp.ClientSession(
                headers=self._headers, connector=aiohttp.TCPConnector(ssl=False)
            )
        return aiohttp.ClientSession(headers=self._headers)

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        try:
            async with (
                self._session() as session,
                session.request(
                    method,
                    self.url + path,
                    json=body,
                    timeout=aiohttp.ClientTimeout(total=30),
                ) as resp,
            ):
                text = await resp.text()
                data = json.loads(text) if text else None
                if resp.status >= 400:
                    message = data.get("message") if isinstance(data, dict) else text
                    raise ClientError(f"{resp.status}: {message}")
                return data
        except aiohttp.ClientConnectionError as exc:
            raise ClientError(f"cannot reach camio at {self.url}: {exc}") from None

    async def stream(self, path: str) -> AsyncIterator[dict[str, Any]]:
        """Events from the WebSocket stream, one dict each, until the daemon closes it."""
        ws_url = self.url.replace("http", "ws", 1) + path
        try:
            async with (
                self._session() as session,
                session.ws_connect(ws_url, heartbeat=30) as ws,
            ):
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        yield json.loads(msg.data)
                    elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break
        except aiohttp.WSServerHandshakeError as exc:
            raise ClientError(f"{exc.status}: event stream refused") from None
        except aiohttp.ClientConnectionError as exc:
            raise ClientError(f"cannot reach camio at {self.url}: {exc}") from None
