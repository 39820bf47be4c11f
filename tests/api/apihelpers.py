"""Helpers for the API tests: a daemon handle, JSON calls with one identity, the event stream.

Nothing sleeps: waiting for something asynchronous reads the WebSocket event stream until the
expected event arrives, under an ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from camio.app import CamioApp, Settings

ADMIN = ("admin", "admin-secret-1")
OPERATOR = ("oper", "oper-secret-1")
VIEWER = ("watcher", "viewer-secret-1")

_NO_BODY = object()


def basic_header(user: str, password: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any

    def __repr__(self) -> str:  # shown by pytest when an assertion fails
        return f"Reply({self.status}, {self.body!r})"


class Api:
    """JSON calls to ``/api/v1`` with one session (one identity)."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def call(
        self,
        method: str,
        path: str,
        body: Any = _NO_BODY,
        *,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        kwargs: dict[str, Any] = {"headers": headers}
        if body is not _NO_BODY:
            kwargs["json"] = body
        elif data is not None:
            kwargs["data"] = data
        async with self.session.request(method, self.base + path, **kwargs) as resp:
            text = await resp.text()
            try:
                parsed = json.loads(text) if text else None
            except json.JSONDecodeError:
                parsed = text
            return Reply(resp.status, parsed, resp.headers)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.call("GET", path, **kw)

    async def put(self, path: str, body: Any = _NO_BODY, **kw: Any) -> Reply:
        return await self.call("PUT", path, body, **kw)

    async def post(self, path: str, body: Any = _NO_BODY, **kw: Any) -> Reply:
        return await self.call("POST", path, body, **kw)

    async def patch(self, path: str, body: Any = _NO_BODY, **kw: Any) -> Reply:
        return await self.call("PATCH", path, body, **kw)

    async def delete(self, path: str, **kw: Any) -> Reply:
        return await self.call("DELETE", path, **kw)

    async def port(self, port_id: str) -> dict[str, Any]:
        reply = await self.get(f"/api/v1/ports/{port_id}")
        assert reply.status == 200, reply
        body: dict[str, Any] = reply.body
        return body

    async def events(self, **params: Any) -> list[dict[str, Any]]:
        reply = await self.get(f"/api/v1/events?{urlencode(params)}")
        assert reply.status == 200, reply
        items: list[dict[str, Any]] = reply.body["events"]
        return items


class Stream:
    """The WebSocket event stream, read until an expected event arrives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def next(self, within: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            msg = await self.ws.receive()
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        event: dict[str, Any] = json.loads(msg.data)
        self.seen.append(event)
        return event

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 5.0
    ) -> dict[str, Any]:
        """The first event (from now on) matching ``predicate``; fails after ``within`` s."""
        async with asyncio.timeout(within):
            while True:
                event = await self.next(within)
                if predicate(event):
                    return event


@dataclass
class Server:
    app: CamioApp
    data_dir: Path
    url: str
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    def _session(self, **kwargs: Any) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(**kwargs)
        self.sessions.append(session)
        return session

    def digest(self, user: str, password: str) -> Api:
        middleware = aiohttp.DigestAuthMiddleware(user, password)
        return Api(self._session(middlewares=(middleware,)), self.url)

    def basic(self, user: str, password: str) -> Api:
        return Api(self._session(headers=basic_header(user, password)), self.url)

    def anonymous(self) -> Api:
        return Api(self._session(), self.url)

    async def stream(self, query: str = "", credentials: tuple[str, str] = ADMIN) -> Stream:
        """Open the event stream (Basic: aiohttp's Digest middleware does not do WebSockets)."""
        session = self._session(headers=basic_header(*credentials))
        ws = await session.ws_connect(f"{self.ws_url}/api/v1/events/stream{query}")
        return Stream(ws)

    async def close(self) -> None:
        for session in self.sessions:
            await session.close()


async def start_server(data_dir: Path, *, https: bool = False, video: bool = False) -> Server:
    """A daemon on an ephemeral port; HTTPS only when asked (making its certificate costs a
    child process, which most API tests do not need)."""
    settings = Settings(
        data_dir=data_dir, host="127.0.0.1", port=0, https_off=not https, video=video
    )
    app = CamioApp(settings, out=io.StringIO())
    await app.start()
    return Server(app, data_dir, app.url)


async def fast_inputs(api: Api, *port_ids: str) -> None:
    """Debounce 0 on these inputs, so a simulated edge counts at once (no real-time wait)."""
    for port_id in port_ids:
        reply = await api.patch(
            f"/api/v1/ports/{port_id}", {"debounce_on_ms": 0, "debounce_off_ms": 0}
        )
        assert reply.status == 200, reply
