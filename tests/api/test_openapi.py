"""The OpenAPI document: valid, complete, and true of a real daemon (checked by schemathesis).

The daemon is a real :class:`~camio.app.CamioApp` on a loopback port, run in its own thread
with its own event loop, because schemathesis calls it with blocking ``requests``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_openapi
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

import camio.app
from camio.api import openapi_routes
from camio.api.auth import Authenticator, FailureThrottle
from camio.api.openapi import MissingSpec, build_openapi
from camio.api.spec import spec
from camio.app import CamioApp, Settings
from camio.store.users import Role

ADMIN = ("admin", "admin-secret-1")
AUTH = {"Authorization": "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()}
PREFIX = "/api/"

#: Ids that exist on the daemon: a generated path parameter is sometimes replaced by one of
#: these so the handlers run past their 404 (user names are left alone: the fuzzer must not
#: change the password it authenticates with).
KNOWN_IDS = {"id": ["in1", "in2", "out1", "door", "night"], "n": ["1", "7", "32"]}
#: The same for an operation's path prefix: the clip uploaded by a valid body.
KNOWN_NAMES = {"/api/v1/audio/": {"name": ["bell"]}}

RULE = {
    "id": "door",
    "name": "Door",
    "conditions": [{"kind": "input", "port": "in1"}],
    "action": {"kind": "set_output", "port": "out1", "duration_ms": 1000},
}
SCHEDULE = {
    "id": "night",
    "name": "Night",
    "timezone": "Europe/Berlin",
    "entries": [{"start": "2026-01-01T22:00:00", "duration_s": 28800, "rrule": "FREQ=DAILY"}],
}
SHARE = {"kind": "share", "id": "door", "name": "Share", "path": "/tmp", "min_free_mb": 0}


def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(1600))
    return buf.getvalue()


# A clip upload is the WAV file itself: send generated and valid bodies as raw bytes.
schemathesis.serializer.alias("audio/wav", "application/octet-stream")
#: Valid bodies mixed into the generated ones, so the success paths are checked too.
VALID_BODIES: dict[tuple[str, str], list[Any]] = {
    ("POST", "/api/v1/rules"): [{**RULE, "id": "door2"}],
    ("PUT", "/api/v1/rules/{id}"): [RULE, {**RULE, "action_mode": "while_active"}],
    ("POST", "/api/v1/schedules"): [{**SCHEDULE, "id": "night2"}],
    ("PUT", "/api/v1/schedules/{id}"): [SCHEDULE, {**SCHEDULE, "kind": "pulse"}],
    ("PUT", "/api/v1/config"): [{"config": {}}],
    ("POST", "/api/v1/recipients"): [SHARE],
    ("PUT", "/api/v1/recipients/{id}"): [SHARE, {**SHARE, "kind": "tcp"}],
    ("PUT", "/api/v1/audio/clips/{name}"): [_wav()],
    ("POST", "/api/v1/audio/clips/{name}/play"): [{"repeat": 2}],
    ("PATCH", "/api/v1/ports/{id}"): [{"name": "Door"}, {"debounce_on_ms": 0}],
    ("PUT", "/api/v1/ports/{id}/state"): [{"active": True, "duration_ms": 500}],
    ("POST", "/api/v1/ports/{id}/sequence"): [{"steps": [{"active": True, "duration_ms": 10}]}],
    ("POST", "/api/v1/sim/ports/{id}/circuit"): [{"circuit": "closed"}, {"circuit": "cut"}],
    ("POST", "/api/v1/sim/ports/{id}/fault"): [
        {"fault": "bounce", "edges": 4, "interval_ms": 1},
        {"fault": "stuck", "level": "closed"},
    ],
}


class ThreadedDaemon:
    """A CamioApp serving from a background thread (schemathesis' calls block)."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        # Plain HTTP whatever the fuzzed configuration says (as with --listen), no HTTPS.
        settings = Settings(
            data_dir=data_dir, host="127.0.0.1", port=0, https_off=True, explicit_listen=True
        )
        self.app = CamioApp(settings, out=io.StringIO())
        asyncio.run_coroutine_threadsafe(self.app.start(), self.loop).result(timeout=30)
        self.url = self.app.url
        self.baseline: dict[str, Any] = {}
        self.changed_by: tuple[str, str] | None = None  # the operation that left it changed

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.app.stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ThreadedDaemon, web.Application]]:
    """A daemon whose application also serves the OpenAPI document."""
    built: list[web.Application] = []
    original = camio.app.build_api

    def build_api(
        device: Any, authenticator: Authenticator, *args: Any, **kwargs: Any
    ) -> web.Application:
        app = original(device, authenticator, *args, **kwargs)
        if not any(
            r.resource and r.resource.canonical == "/api/v1/openapi.json"
            for r in app.router.routes()
        ):
            app.add_routes(openapi_routes.routes)
        # The fuzzer logs in with wrong passwords (on purpose): it must not lock itself out.
        for name, value in list(vars(authenticator).items()):
            if isinstance(value, FailureThrottle):
                setattr(
                    authenticator,
                    name,
                    FailureThrottle(now_ns=time.monotonic_ns, max_failures=1 << 30),
                )
        built.append(app)
        return app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAMIO_ADMIN_USER", ADMIN[0])
        patch.setenv("CAMIO_ADMIN_PASSWORD", ADMIN[1])
        patch.setattr(camio.app, "build_api", build_api)
        srv = ThreadedDaemon(tmp_path_factory.mktemp("openapi") / "data")
    try:
        for path, body in (("/api/v1/schedules", SCHEDULE), ("/api/v1/rules", RULE)):
            reply = requests.post(srv.url + path, json=body, headers=AUTH, timeout=10)
            assert reply.status_code == 201, reply.text
        srv.baseline = requests.get(srv.url + "/api/v1/config", headers=AUTH, timeout=10).json()[
            "config"
        ]
        yield srv, built[0]
    finally:
        srv.close()


@pytest.fixture(scope="module")
def document(daemon: tuple[ThreadedDaemon, web.Application]) -> dict[str, Any]:
    srv, _ = daemon
    reply = requests.get(srv.url + "/api/v1/openapi.json", timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = reply.json()
    return body


# -- the document -----------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate_openapi(document)


def test_every_route_of_the_router_is_documented(
    daemon: tuple[ThreadedDaemon, web.Application], document: dict[str, Any]
) -> None:
    _, app = daemon
    routed = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and route.resource.canonical.startswith(PREFIX)
    }
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert routed == documented
    assert ("get", "/api/v1/events/stream") in documented
    assert "101" in document["paths"]["/api/v1/events/stream"]["get"]["responses"]


def test_security_follows_the_role(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert paths["/api/v1/health"]["get"]["security"] == []
    assert paths["/api/v1/openapi.json"]["get"]["security"] == []
    ports = paths["/api/v1/ports"]["get"]
    assert ports["x-camio-role"] == "viewer"
    assert {"basic": []} in ports["security"] and {"digest": []} in ports["security"]
    assert {"session": []} in ports["security"]
    state = paths["/api/v1/ports/{id}/state"]["put"]
    assert state["x-camio-role"] == "operator"
    assert {"session": [], "csrf": []} in state["security"]
    assert paths["/api/v1/config"]["put"]["x-camio-role"] == "admin"
    assert paths["/api/v1/rules/{id}/test"]["post"]["x-camio-role"] == "operator"
    schemes = document["components"]["securitySchemes"]
    assert schemes["basic"] == {"type": "http", "scheme": "basic"}
    assert schemes["digest"] == {"type": "http", "scheme": "digest"}
    assert schemes["session"]["in"] == "cookie" and schemes["session"]["name"] == "camio_session"
    assert schemes["csrf"]["in"] == "header" and schemes["csrf"]["name"] == "X-CSRF-Token"


def test_operations_declare_their_bodies_answers_and_errors(document: dict[str, Any]) -> None:
    paths = document["paths"]
    state = paths["/api/v1/ports/{id}/state"]["put"]
    assert state["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PortStateBody"
    }
    assert state["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    assert {"200", "400", "401", "403", "404", "409", "413", "422", "429"} <= set(
        state["responses"]
    )
    error = state["responses"]["422"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(paths["/api/v1/health"]["get"]["responses"]) == {"200"}
    assert "204" in paths["/api/v1/rules/{id}"]["delete"]["responses"]
    assert "201" in paths["/api/v1/rules"]["post"]["responses"]
    events = paths["/api/v1/events"]["get"]
    names = {p["name"]: p for p in events["parameters"]}
    assert names["limit"]["schema"] == {"type": "integer", "minimum": 1}
    assert names["after"]["schema"] == {"type": "integer", "minimum": 0, "maximum": (1 << 63) - 1}
    assert names["since"]["schema"] == {"type": "string", "format": "date-time"}
    assert names["order"]["schema"]["enum"] == ["asc", "desc"]
    assert not any(p["required"] for p in events["parameters"])
    schemas = document["components"]["schemas"]
    # Conditions and actions: one of the registered kinds, chosen by "kind".
    assert set(schemas["ConditionBase"]["discriminator"]["mapping"]) >= {"input", "schedule"}
    assert "set_output" in schemas["ActionSpec"]["discriminator"]["mapping"]
    assert "kind" in schemas["InputCondition"]["required"]
    # A port is an input or an output, told apart by "direction".
    port = schemas["Port"]
    assert port["discriminator"]["propertyName"] == "direction"


def _app_with(handler: Any, path: str = "/api/v1/x") -> web.Application:
    app = web.Application()
    app.router.add_get(path, handler)
    return app


def test_a_route_without_a_spec_is_refused() -> None:
    async def forgotten(request: web.Request) -> web.Response:
        return web.json_response({})

    with pytest.raises(MissingSpec, match="GET /api/v1/x"):
        build_openapi(_app_with(forgotten))
    # Outside the API (the web interface's pages, static files) is not the API's business.
    build_openapi(_app_with(forgotten, "/static/x"))


def test_a_websocket_without_a_spec_is_still_listed() -> None:
    async def live(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        return ws

    document = build_openapi(_app_with(live))
    operation = document["paths"]["/api/v1/x"]["get"]
    assert "101" in operation["responses"]
    assert operation["security"]  # not public: a route without a spec fails closed


def test_public_route_and_path_parameters() -> None:
    @spec("Hello", role=None)
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({})

    @spec("Thing", role=Role.ADMIN, status=204)
    async def thing(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/api/v1/hello", hello)
    app.router.add_delete(r"/api/v1/things/{kind}/{n:\d+}", thing)
    document = build_openapi(app)
    assert document["paths"]["/api/v1/hello"]["get"]["security"] == []
    assert "401" not in document["paths"]["/api/v1/hello"]["get"]["responses"]
    delete = document["paths"]["/api/v1/things/{kind}/{n}"]["delete"]
    assert [p["name"] for p in delete["parameters"]] == ["kind", "n"]
    assert {"204", "401", "403", "404"} <= set(delete["responses"])
    assert "content" not in delete["responses"]["204"]


# -- what fuzzing found ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        # Beyond SQLite's 64-bit integers: was a 500 (OverflowError), now refused or clamped.
        ("GET", "/api/v1/events?after=99999999999999999999", None, 422),
        ("GET", "/api/v1/events?since=9999-12-31T00:00:00Z", None, 200),
        ("GET", "/api/v1/events?until=0001-01-01T00:00:00%2B14:00", None, 200),
        # A JSON body nested deeper than the parser's recursion limit: was a 500.
        ("PUT", "/api/v1/triggers/manual", "[" * 100_000 + "]" * 100_000, 400),
        # "٣" is a digit to str.isdigit() (and int() reads it as 3): not a virtual input number.
        ("GET", "/api/v1/virtual-inputs/%D9%A3", None, 404),
    ],
)
def test_bad_input_is_refused_not_a_server_error(
    daemon: tuple[ThreadedDaemon, web.Application],
    method: str,
    path: str,
    body: str | None,
    status: int,
) -> None:
    srv, _ = daemon
    headers = {**AUTH, "Content-Type": "application/json"}
    reply = requests.request(method, srv.url + path, data=body, headers=headers, timeout=10)
    assert reply.status_code == status, reply.text
    if status == 200:
        assert reply.json()["events"] == []


# -- schemathesis against the daemon ----------------------------------------------------------


@pytest.fixture
def api_schema(
    request: pytest.FixtureRequest, daemon: tuple[ThreadedDaemon, web.Application]
) -> Any:
    # schemathesis 4.32 renames the test node through ``_nodeid``, which pytest 9.2 no longer
    # has (node ids live in ``_id``): give it the attribute it reads.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    srv, _ = daemon
    schema = schemathesis.openapi.from_url(srv.url + "/api/v1/openapi.json", timeout=10)

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        ids = dict(KNOWN_IDS)
        for prefix, names in KNOWN_NAMES.items():
            if context.operation.path.startswith(prefix):
                ids.update(names)
        known = {name: ids[name] for name in path_parameters or () if name in ids}
        if not known:
            return st.just(path_parameters)
        chosen = st.fixed_dictionaries({name: st.sampled_from(ids) for name, ids in known.items()})
        return st.one_of(
            st.just(path_parameters), chosen.map(lambda ids: {**path_parameters, **ids})
        )

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        operation = context.operation
        bodies = VALID_BODIES.get((operation.method.upper(), operation.path))
        if not bodies:
            return st.just(body)
        return st.one_of(st.just(body), st.sampled_from(bodies))

    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


#: Successful calls here change the configuration. Before the first call of another operation
#: the baseline is put back, so every operation meets the same ports, rule and schedule
#: (a PUT /api/v1/config with ``"inputs": []`` would leave nothing to fuzz after it).
CONFIG_CHANGES = (
    "/api/v1/config",
    "/api/v1/rules",
    "/api/v1/schedules",
    "/api/v1/system",
    "/api/v1/recipients",
)


def _changes_config(case: Any, status: int) -> bool:
    changed = case.path.startswith(CONFIG_CHANGES) or case.path == "/api/v1/ports/{id}"
    return case.method.upper() != "GET" and 200 <= status < 300 and changed


def _restore_baseline(srv: ThreadedDaemon, operation: tuple[str, str]) -> None:
    if srv.changed_by is None or srv.changed_by == operation:
        return
    reply = requests.put(srv.url + "/api/v1/config", json=srv.baseline, headers=AUTH, timeout=10)
    assert reply.status_code == 200, reply.text
    srv.changed_by = None


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_daemon_answers_as_documented(
    case: Any, daemon: tuple[ThreadedDaemon, web.Application]
) -> None:
    srv, _ = daemon
    operation = (case.method.upper(), case.path)
    _restore_baseline(srv, operation)
    response = case.call(base_url=srv.url, headers=AUTH, timeout=10)
    if _changes_config(case, response.status_code):
        srv.changed_by = operation
    if case.path == "/api/v1/events/stream":
        # A WebSocket: plain HTTP gets no upgrade, and still must not fail.
        assert response.status_code < 500, response.text
        return
    case.validate_response(
        response,
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
    )
