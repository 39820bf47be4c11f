"""Every route of the device, listed from the router itself, against every kind of caller.

A route without a spec fails here, and so does a route that answers a caller its declared role
should refuse (or refuses one it should serve): a new route cannot escape authorization.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from apihelpers import ADMIN, OPERATOR, VIEWER, Server, basic_header, start_server

from camio.api.auth import FailureThrottle
from camio.api.context import AUTHENTICATOR
from camio.api.spec import spec_of
from camio.app import open_users
from camio.store.users import Role

pytestmark = pytest.mark.asyncio

#: Values for path parameters: real ports where a port is meant, harmless names elsewhere.
PARAMS = {
    "{id}": "out1",
    "{n}": "1",
    "{name}": "nobody",
    "{path}": "app.js",
    "{tail}": "device_service",  # the ONVIF catch-all route: a real service
}

CALLERS: dict[str, tuple[tuple[str, str] | None, Role | None]] = {
    "anonymous": (None, None),
    "wrong password": ((ADMIN[0], "not the password"), None),
    "viewer": (VIEWER, Role.VIEWER),
    "operator": (OPERATOR, Role.OPERATOR),
    "admin": (ADMIN, Role.ADMIN),
}


@pytest.fixture
async def walk_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    monkeypatch.setenv("CAMIO_ADMIN_USER", ADMIN[0])
    monkeypatch.setenv("CAMIO_ADMIN_PASSWORD", ADMIN[1])
    server = await start_server(tmp_path / "data")
    conn, users = open_users(server.data_dir)
    try:
        users.add(*OPERATOR, Role.OPERATOR)
        users.add(*VIEWER, Role.VIEWER)
    finally:
        conn.close()
    assert server.app.device is not None

    def every_dialect_on(data: dict[str, Any]) -> None:
        # The camera dialects that are off by default answer 404: walk them switched on.
        for section in data["dialects"].values():
            section["enabled"] = True
        data["dialects"]["foscam"]["allow_plain_http"] = True

    server.app.device.edit_config(every_dialect_on)
    app = server.app._runner.app  # type: ignore[union-attr]
    # The walk sends many wrong passwords on purpose: no throttling in this test.
    authenticator = app[AUTHENTICATOR]
    authenticator.throttle = FailureThrottle(now_ns=time.monotonic_ns, max_failures=10**9)
    authenticator.user_throttle = FailureThrottle(now_ns=time.monotonic_ns, max_failures=10**9)
    try:
        yield server
    finally:
        await server.close()
        await server.app.stop()


def _routes(server: Server) -> list[tuple[str, str, Role | None, bool, bool]]:
    app = server.app._runner.app  # type: ignore[union-attr]
    found = []
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        assert path, route
        spec = spec_of(route.handler)
        assert spec is not None, f"{route.method} {path} has no spec (role, body, response)"
        for placeholder, value in PARAMS.items():
            path = path.replace(placeholder, value)
        found.append((route.method, path, spec.role, spec.csrf, spec.dialect is not None))
    return found


async def test_every_route_answers_each_caller_as_its_role_says(walk_server: Server) -> None:
    routes = _routes(walk_server)
    assert len(routes) >= 40
    sessions = {
        name: aiohttp.ClientSession(headers=basic_header(*creds) if creds else None)
        for name, (creds, _) in CALLERS.items()
    }
    walk_server.sessions.extend(sessions.values())
    problems = []
    # The dialects go first (a later PUT of the configuration may switch them off again);
    # logging out and deleting go last, so the walk does not cut the branch it sits on.
    routes.sort(key=lambda r: (not r[4], r[0] == "DELETE", r[1].startswith("/api/v1/system/")))
    for method, path, role, _, dialect in routes:
        for name, (_, caller_role) in CALLERS.items():
            async with sessions[name].request(
                method, walk_server.url + path, json={} if method != "GET" else None
            ) as resp:
                status = resp.status
            if role is None and dialect:
                # A dialect's public route checks a token of its own (VAPIX wssession).
                ok = status < 500
                expected = "served or refused by its own token check"
            elif role is None:
                ok = status not in (401, 403)
                expected = "served (public)"
            elif caller_role is None:
                ok = status == 401
                expected = "401"
            elif caller_role.allows(role):
                ok = status not in (401, 403) and status < 500
                expected = f"served ({role.value} allowed)"
            else:
                ok = status == 403
                expected = f"403 ({role.value} needed)"
            if not ok:
                problems.append(f"{method} {path} as {name}: {status}, expected {expected}")
    assert not problems, "\n".join(problems)
