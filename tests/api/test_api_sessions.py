"""Browser sessions, first-start setup, CSRF, origin checks, user management, audit."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from apihelpers import ADMIN, OPERATOR, Server, basic_header

from camio.app import CamioApp, Settings, open_users

pytestmark = pytest.mark.asyncio


class Browser:
    """A cookie-keeping client that behaves like the web interface's scripts."""

    def __init__(self, server: Server) -> None:
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Sec-Fetch-Dest": "empty"}
        )
        server.sessions.append(self.session)
        self.base = server.url
        self.csrf: str | None = None

    async def call(
        self, method: str, path: str, body: Any = None, *, csrf: bool = True, **headers: str
    ) -> tuple[int, Any, Any]:
        hdrs = dict(headers)
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            hdrs["X-CSRF-Token"] = self.csrf
        async with self.session.request(method, self.base + path, json=body, headers=hdrs) as resp:
            text = await resp.text()
            data = None
            if text and resp.content_type == "application/json":
                data = await resp.json()
            return resp.status, data, resp.headers

    async def login(self, user: str, password: str) -> tuple[int, Any, Any]:
        status, body, headers = await self.call(
            "POST", "/api/v1/session", {"username": user, "password": password}, csrf=False
        )
        if status == 200:
            self.csrf = body["csrf_token"]
        return status, body, headers


@pytest.fixture
async def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    """A daemon with no account at all (the first start)."""
    monkeypatch.delenv("CAMIO_ADMIN_USER", raising=False)
    monkeypatch.delenv("CAMIO_ADMIN_PASSWORD", raising=False)
    app = CamioApp(Settings(data_dir=tmp_path / "data", port=0), out=io.StringIO())
    await app.start()
    server = Server(app, tmp_path / "data", app.url)
    try:
        yield server
    finally:
        await server.close()
        await app.stop()


async def test_first_start_setup_with_the_console_code(fresh: Server) -> None:
    browser = Browser(fresh)
    assert (await browser.call("GET", "/api/v1/setup"))[1] == {"needed": True}
    status, body, _ = await browser.call(
        "POST",
        "/api/v1/setup",
        {"code": "WRONG-CODE-0000", "username": "root", "password": "a long password"},
    )
    assert status == 403 and "setup code" in body["message"]
    code = fresh.app._setup_code.code  # what the console printed
    status, body, headers = await browser.call(
        "POST",
        "/api/v1/setup",
        {"code": code.lower(), "username": "root", "password": "a long password"},
    )
    assert status == 201, body
    assert body["user"] == {"name": "root", "role": "admin", "created": body["user"]["created"]}
    cookie = headers.getall("Set-Cookie")[0]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    browser.csrf = body["csrf_token"]
    assert (await browser.call("GET", "/api/v1/ports"))[0] == 200
    assert (await browser.call("GET", "/api/v1/setup"))[1] == {"needed": False}
    again = await Browser(fresh).call(
        "POST", "/api/v1/setup", {"code": code, "username": "evil", "password": "a long password"}
    )
    assert again[0] == 409


async def test_login_csrf_and_logout(server: Server) -> None:
    browser = Browser(server)
    status, body, headers = await browser.login(ADMIN[0], "wrong password")
    assert status == 401
    assert "WWW-Authenticate" not in headers  # no browser login dialog over the web page
    status, body, _ = await browser.login(*ADMIN)
    assert status == 200 and body["user"]["role"] == "admin" and body["csrf_token"]
    assert (await browser.call("GET", "/api/v1/session"))[1]["user"]["name"] == ADMIN[0]
    no_token = await browser.call("PUT", "/api/v1/ports/out1/state", {"active": True}, csrf=False)
    assert no_token[0] == 403 and "CSRF" in no_token[1]["message"]
    assert (await browser.call("GET", "/api/v1/ports/out1"))[1]["active"] is False
    ok = await browser.call("PUT", "/api/v1/ports/out1/state", {"active": True})
    assert ok[0] == 200 and ok[1]["cause"]["user"] == ADMIN[0]
    assert (await browser.call("DELETE", "/api/v1/session"))[0] == 204
    assert (await browser.call("GET", "/api/v1/ports"))[0] == 401


async def test_a_password_change_ends_other_sessions_everywhere(server: Server) -> None:
    first, second = Browser(server), Browser(server)
    await first.login(*OPERATOR)
    await second.login(*OPERATOR)
    status, body, _ = await first.call(
        "PUT",
        "/api/v1/session/password",
        {"old_password": OPERATOR[1], "new_password": "brand new password"},
    )
    assert status == 200, body
    first.csrf = body["csrf_token"]
    assert (await first.call("GET", "/api/v1/ports"))[0] == 200  # this browser stays in
    assert (await second.call("GET", "/api/v1/ports"))[0] == 401
    # Changed from another process (the CLI): the session and cached Basic logins end too.
    basic = aiohttp.ClientSession(headers=basic_header(OPERATOR[0], "brand new password"))
    server.sessions.append(basic)
    async with basic.get(server.url + "/api/v1/ports") as resp:
        assert resp.status == 200
    conn, users = open_users(server.data_dir)
    try:
        users.set_password(OPERATOR[0], "changed by the cli")
    finally:
        conn.close()
    assert (await first.call("GET", "/api/v1/ports"))[0] == 401
    async with basic.get(server.url + "/api/v1/ports") as resp:
        assert resp.status == 401


async def test_cross_origin_writes_are_refused_even_with_credentials(server: Server) -> None:
    session = aiohttp.ClientSession(headers=basic_header(*ADMIN))
    server.sessions.append(session)
    url = server.url + "/api/v1/ports/out1/state"
    async with session.put(
        url, json={"active": True}, headers={"Origin": "http://evil.example"}
    ) as resp:
        assert resp.status == 403
    host = server.url.split("//", 1)[1]
    async with session.put(url, json={"active": True}, headers={"Origin": f"http://{host}"}) as r:
        assert r.status == 200


async def test_security_headers_on_every_answer(server: Server) -> None:
    session = aiohttp.ClientSession()
    server.sessions.append(session)
    for path in ("/api/v1/health", "/api/v1/ports", "/no/such/page"):
        async with session.get(server.url + path) as resp:
            csp = resp.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert resp.headers["X-Frame-Options"] == "DENY"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_user_management_by_admin_only(server: Server) -> None:
    admin, operator = Browser(server), Browser(server)
    await admin.login(*ADMIN)
    await operator.login(*OPERATOR)
    assert (await operator.call("GET", "/api/v1/users"))[0] == 403
    created = await admin.call(
        "POST", "/api/v1/users", {"name": "guard", "password": "guard password", "role": "viewer"}
    )
    assert created[0] == 201 and created[1]["role"] == "viewer"
    dup = await admin.call("POST", "/api/v1/users", {"name": "GUARD", "password": "guard password"})
    assert dup[0] == 409
    short = await admin.call("POST", "/api/v1/users", {"name": "x", "password": "short"})
    assert short[0] == 422
    promoted = await admin.call("PATCH", "/api/v1/users/guard", {"role": "operator"})
    assert promoted[1]["role"] == "operator"
    names = {u["name"] for u in (await admin.call("GET", "/api/v1/users"))[1]["users"]}
    assert {"admin", "oper", "guard"} <= names
    last_admin = await admin.call("DELETE", f"/api/v1/users/{ADMIN[0]}")
    assert last_admin[0] == 409
    assert (await admin.call("DELETE", "/api/v1/users/guard"))[0] == 204
    assert (await admin.call("DELETE", "/api/v1/users/guard"))[0] == 404


async def test_logins_and_failures_are_audited(server: Server) -> None:
    browser = Browser(server)
    await browser.login(ADMIN[0], "not it at all")
    await browser.login(*ADMIN)
    status, body, _ = await browser.call("GET", "/api/v1/events?topic=audit/*&limit=100")
    assert status == 200
    topics = [
        (e["topic"], e["data"].get("username"), e["cause"].get("user")) for e in body["events"]
    ]
    assert ("audit/login_failed", ADMIN[0], None) in topics
    assert ("audit/login", None, ADMIN[0]) in topics
    assert all("password" not in str(e["data"]) for e in body["events"])
