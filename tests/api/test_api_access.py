"""Who may do what over the native API: no account, viewer, operator, administrator.

(The authentication mechanics themselves are tested in test_auth.py; here every route of the
real application is checked end to end.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from apihelpers import ADMIN, OPERATOR, VIEWER, Api, Server, basic_header, start_server

from camio.api import config_routes, device_routes, events, ports
from camio.app import TOKEN_FILE, open_users
from camio.store.users import Role


def all_routes() -> list[tuple[str, str]]:
    """Every route of the API, with sample values for its path parameters."""
    out = []
    for table in (ports.routes, config_routes.routes, events.routes, device_routes.routes):
        for route in table:
            path = route.path.replace("{id}", "in1").replace("{n}", "1")  # type: ignore[attr-defined]
            out.append((route.method, path))  # type: ignore[attr-defined]
    return out


ROUTES = all_routes()
PUBLIC = {("GET", "/api/v1/health")}


@pytest.fixture
async def empty_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    """A first start: no account at all, and no administrator in the environment."""
    monkeypatch.delenv("CAMIO_ADMIN_USER", raising=False)
    monkeypatch.delenv("CAMIO_ADMIN_PASSWORD", raising=False)
    srv = await start_server(tmp_path / "fresh")
    try:
        yield srv
    finally:
        await srv.close()
        await srv.app.stop()


def test_the_route_list_is_complete() -> None:
    assert len(ROUTES) >= 25
    assert ("PUT", "/api/v1/ports/in1/state") in ROUTES
    assert ("GET", "/api/v1/events/stream") in ROUTES


async def test_without_any_account_every_route_is_401(empty_server: Server) -> None:
    conn, users = open_users(empty_server.data_dir)
    assert users.count() == 0
    conn.close()
    api = empty_server.anonymous()
    for method, path in ROUTES:
        if (method, path) in PUBLIC:
            continue
        reply = await api.call(method, path, {"active": True})
        assert reply.status == 401, (method, path, reply)
        assert reply.body["error"] == "unauthorized"
        challenges = reply.headers.getall("WWW-Authenticate")
        assert any(c.startswith("Digest ") for c in challenges)
        assert any(c.startswith("Basic ") for c in challenges)
    # Nothing happened.
    assert empty_server.app.device is not None
    assert not empty_server.app.device.outputs["out1"].active


async def test_no_default_password(empty_server: Server) -> None:
    for user, password in [("admin", "admin"), ("admin", ""), ("root", "root")]:
        api = empty_server.basic(user, password)
        assert (await api.get("/api/v1/ports")).status in (401, 429)


async def test_health_is_public(empty_server: Server) -> None:
    reply = await empty_server.anonymous().get("/api/v1/health")
    assert reply.status == 200
    assert reply.body == {"status": "ok"}


async def test_local_token_works_from_loopback(empty_server: Server) -> None:
    """The CLI's token in the data directory is accepted (as an administrator) from this
    machine, even before the first account exists."""
    token = (empty_server.data_dir / TOKEN_FILE).read_text().strip()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        api = Api(session, empty_server.url)
        reply = await api.put("/api/v1/ports/out1/state", {"active": True})
        assert reply.status == 200, reply
        assert reply.body["cause"]["user"] == "@local"
        assert (await api.get("/api/v1/config")).status == 200
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer " + "x" * 43}) as session:
        assert (await Api(session, empty_server.url).get("/api/v1/ports")).status == 401


async def test_wrong_credentials_are_401(server: Server) -> None:
    assert (await server.basic("admin", "not-the-password").get("/api/v1/ports")).status == 401
    assert (await server.digest("admin", "not-the-password").get("/api/v1/ports")).status == 401
    assert (await server.digest(*ADMIN).get("/api/v1/ports")).status == 200
    assert (await server.basic(*ADMIN).get("/api/v1/ports")).status == 200


async def test_repeated_failures_are_throttled(server: Server) -> None:
    bad = server.basic("admin", "guess-guess")
    statuses = [(await bad.get("/api/v1/ports")).status for _ in range(6)]
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    reply = await server.basic(*ADMIN).get("/api/v1/ports")
    assert reply.status == 429  # even the right password waits: guessing stops costing
    assert int(reply.headers["Retry-After"]) >= 1
    assert (await server.anonymous().get("/api/v1/health")).status == 200


# -- roles ------------------------------------------------------------------------------------

READS = [
    "/api/v1/ports",
    "/api/v1/ports/in1",
    "/api/v1/events",
    "/api/v1/rules",
    "/api/v1/schedules",
    "/api/v1/virtual-inputs",
    "/api/v1/virtual-inputs/1",
    "/api/v1/triggers/manual",
    "/api/v1/device",
]

OPERATOR_WRITES: list[tuple[str, str, Any]] = [
    ("PUT", "/api/v1/ports/out1/state", {"active": True}),
    ("POST", "/api/v1/ports/out1/sequence", {"steps": [{"active": True, "duration_ms": 10}]}),
    ("POST", "/api/v1/sim/ports/in1/circuit", {"circuit": "closed"}),
    ("POST", "/api/v1/sim/ports/in2/fault", {"fault": "stuck"}),
    ("PUT", "/api/v1/virtual-inputs/1", {"active": True}),
    ("PUT", "/api/v1/triggers/manual", {"active": True}),
]

RULE = {
    "id": "r1",
    "name": "r",
    "conditions": [{"kind": "manual_trigger"}],
    "action": {"kind": "set_output", "port": "out1", "duration_ms": 100},
}
SCHEDULE = {
    "id": "s1",
    "name": "s",
    "entries": [{"start": "2099-01-01T00:00:00", "duration_s": 60}],
}

ADMIN_WRITES: list[tuple[str, str, Any]] = [
    ("PATCH", "/api/v1/ports/in1", {"name": "Door"}),
    ("POST", "/api/v1/rules", RULE),
    ("PUT", "/api/v1/rules/r2", {**RULE, "id": "r2"}),
    ("POST", "/api/v1/schedules", SCHEDULE),
    ("PUT", "/api/v1/schedules/s2", {**SCHEDULE, "id": "s2"}),
]


async def state_of(admin: Api) -> dict[str, Any]:
    """Everything a refused request must not have changed."""
    return {
        "ports": [
            {k: p[k] for k in ("id", "name", "active", "circuit", "cause")}
            for p in (await admin.get("/api/v1/ports")).body["ports"]
        ],
        "config": (await admin.get("/api/v1/config")).body,
        "vinputs": (await admin.get("/api/v1/virtual-inputs")).body,
        "manual": (await admin.get("/api/v1/triggers/manual")).body,
    }


async def test_viewer_reads_but_cannot_change_anything(viewer: Api, admin: Api) -> None:
    for path in READS:
        reply = await viewer.get(path)
        assert reply.status == 200, (path, reply)
    before = await state_of(admin)
    for method, path, body in OPERATOR_WRITES + ADMIN_WRITES:
        reply = await viewer.call(method, path, body)
        assert reply.status == 403, (method, path, reply)
        assert reply.body["error"] == "forbidden"
    reply = await viewer.get("/api/v1/config")
    assert reply.status == 403  # the configuration is for administrators
    assert await state_of(admin) == before


async def test_operator_drives_outputs_but_cannot_configure(
    server: Server, operator: Api, admin: Api
) -> None:
    for method, path, body in OPERATOR_WRITES:
        reply = await operator.call(method, path, body)
        assert reply.status == 200, (method, path, reply)
    assert (await admin.port("out1"))["cause"]["user"] == "oper"
    config = (await admin.get("/api/v1/config")).body
    for method, path, body in ADMIN_WRITES:
        reply = await operator.call(method, path, body)
        assert reply.status == 403, (method, path, reply)
    assert (await operator.get("/api/v1/config")).status == 403
    assert (await operator.put("/api/v1/config", config)).status == 403
    assert (await admin.get("/api/v1/config")).body == config
    # An administrator's rule may be tested by an operator.
    assert (await admin.post("/api/v1/rules", RULE)).status == 201
    assert (await operator.post("/api/v1/rules/r1/test")).status == 200
    assert (await operator.delete("/api/v1/rules/r1")).status == 403


async def test_admin_may_do_everything(admin: Api) -> None:
    for path in [*READS, "/api/v1/config"]:
        assert (await admin.get(path)).status == 200, path
    for method, path, body in OPERATOR_WRITES + ADMIN_WRITES:
        reply = await admin.call(method, path, body)
        assert reply.status in (200, 201), (method, path, reply)
    config = (await admin.get("/api/v1/config")).body
    reply = await admin.put(
        "/api/v1/config", config["config"], headers={"If-Match": str(config["revision"])}
    )
    assert reply.status == 200
    assert (await admin.delete("/api/v1/rules/r1")).status == 204
    assert (await admin.delete("/api/v1/schedules/s1")).status == 204


async def test_role_changes_apply_at_once(server: Server, viewer: Api) -> None:
    assert (await viewer.put("/api/v1/ports/out1/state", {"active": True})).status == 403
    conn, users = open_users(server.data_dir)
    try:
        users.set_role(VIEWER[0], Role.OPERATOR)
    finally:
        conn.close()
    assert (await viewer.put("/api/v1/ports/out1/state", {"active": True})).status == 200


async def test_deleted_user_is_locked_out(server: Server) -> None:
    api = server.basic(*OPERATOR)
    assert (await api.get("/api/v1/ports")).status == 200
    conn, users = open_users(server.data_dir)
    try:
        users.delete(OPERATOR[0])
    finally:
        conn.close()
    assert (await api.get("/api/v1/ports")).status == 401


async def test_stream_refuses_a_wrong_password_but_not_a_viewer(server: Server) -> None:
    async with aiohttp.ClientSession(headers=basic_header(VIEWER[0], "nope-nope")) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(f"{server.ws_url}/api/v1/events/stream")
        assert info.value.status == 401
