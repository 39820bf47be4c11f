"""Ports over the native API: listing, manual control, sequences, the simulator, PATCH."""

from __future__ import annotations

from typing import Any

import pytest
from apihelpers import ADMIN, Api, Server, fast_inputs

DEFAULT_ORDER = ["in1", "in2", "out1"]


def is_output_event(port: str, active: bool) -> Any:
    def check(event: dict[str, Any]) -> bool:
        return (
            event["topic"] == "io/output"
            and event["source"] == port
            and event["kind"] == "changed"
            and event["data"]["active"] is active
        )

    return check


def is_input_event(port: str, active: bool) -> Any:
    def check(event: dict[str, Any]) -> bool:
        return (
            event["topic"] == "io/input"
            and event["source"] == port
            and event["kind"] == "changed"
            and event["data"]["active"] is active
        )

    return check


# -- listing ----------------------------------------------------------------------------------


async def test_list_ports_shape_in_terminal_order(admin: Api) -> None:
    reply = await admin.get("/api/v1/ports")
    assert reply.status == 200
    assert set(reply.body) == {"ports"}
    ports = reply.body["ports"]
    assert [p["id"] for p in ports] == DEFAULT_ORDER
    for port in ports:
        assert isinstance(port["id"], str)
        assert isinstance(port["name"], str) and port["name"]
        assert port["direction"] in ("input", "output")
        assert isinstance(port["active"], bool)
        assert port["circuit"] in ("open", "closed", "cut", "short")
        assert isinstance(port["cause"], dict)
        assert isinstance(port["cause"]["kind"], str)
    assert [p["direction"] for p in ports] == ["input", "input", "output"]
    assert all(p["active"] is False for p in ports)
    # The default output's valid signal is "closed": idle is open.
    assert ports[2]["circuit"] == "open"
    assert ports[2]["cause"] == {"kind": "boot", "detail": "initial state"}


async def test_port_order_follows_the_configured_terminal_order(admin: Api) -> None:
    config = (await admin.get("/api/v1/config")).body["config"]
    config["port_order"] = ["out1", "in2", "in1"]
    assert (await admin.put("/api/v1/config", {"config": config})).status == 200
    ports = (await admin.get("/api/v1/ports")).body["ports"]
    assert [p["id"] for p in ports] == ["out1", "in2", "in1"]


async def test_get_one_port(admin: Api) -> None:
    port = await admin.port("in2")
    assert port["id"] == "in2"
    assert port["name"] == "Input 2"
    assert port["direction"] == "input"
    assert port["active"] is False
    assert port["circuit"] == "open"
    assert port["normal_state"] == "open"
    out = await admin.port("out1")
    assert out["direction"] == "output"
    assert out["remaining_ms"] is None


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/ports/nope",
        "/api/v1/ports/nope/state",
        "/api/v1/ports/nope/sequence",
        "/api/v1/sim/ports/nope/circuit",
        "/api/v1/sim/ports/nope/fault",
    ],
)
async def test_unknown_port_is_a_json_404(admin: Api, path: str) -> None:
    if path == "/api/v1/ports/nope":
        reply = await admin.get(path)
    elif path.endswith("/state"):
        reply = await admin.put(path, {"active": True})
    elif path.endswith("/sequence"):
        reply = await admin.post(path, {"steps": [{"active": True, "duration_ms": 10}]})
    elif path.endswith("/circuit"):
        reply = await admin.post(path, {"circuit": "closed"})
    else:
        reply = await admin.post(path, {"fault": "bounce"})
    assert reply.status == 404, reply
    assert set(reply.body) >= {"error", "message"}
    assert reply.body["error"] == "not_found"
    assert "nope" in reply.body["message"]
    assert reply.headers["Content-Type"].startswith("application/json")


async def test_unknown_route_is_a_json_404(admin: Api) -> None:
    reply = await admin.get("/api/v1/no-such-thing")
    assert reply.status == 404
    assert reply.body["error"] == "not_found"


async def test_wrong_method_is_a_json_405(admin: Api) -> None:
    reply = await admin.delete("/api/v1/ports")
    assert reply.status == 405
    assert set(reply.body) >= {"error", "message"}
    assert "GET" in reply.headers["Allow"]


# -- manual control ---------------------------------------------------------------------------


async def test_put_state_with_duration(server: Server, admin: Api) -> None:
    stream = await server.stream("?topic=io/output&initial=0")
    reply = await admin.put("/api/v1/ports/out1/state", {"active": True, "duration_ms": 60_000})
    assert reply.status == 200, reply
    port = reply.body
    assert port["active"] is True
    assert port["circuit"] == "closed"
    assert 0 < port["remaining_ms"] <= 60_000
    assert port["latched"] is False
    assert port["cause"]["kind"] == "api"
    assert port["cause"]["user"] == "admin"
    assert port["cause"]["client"] == "127.0.0.1"
    event = await stream.until(is_output_event("out1", True))
    assert event["cause"]["user"] == "admin"
    assert 0 < event["data"]["remaining_ms"] <= 60_000

    reply = await admin.put("/api/v1/ports/out1/state", {"active": False})
    assert reply.status == 200
    assert reply.body["active"] is False
    assert reply.body["remaining_ms"] is None
    assert reply.body["circuit"] == "open"
    await stream.until(is_output_event("out1", False))


async def test_put_state_without_duration_is_continuous(operator: Api) -> None:
    reply = await operator.put("/api/v1/ports/out1/state", {"active": True})
    assert reply.status == 200, reply
    assert reply.body["active"] is True
    assert reply.body["latched"] is True
    assert reply.body["remaining_ms"] is None
    assert reply.body["cause"]["user"] == "oper"
    port = await operator.port("out1")
    assert port["active"] is True


async def test_short_activation_ends_by_itself(server: Server, admin: Api) -> None:
    stream = await server.stream("?topic=io/output&source=out1&initial=0")
    reply = await admin.put("/api/v1/ports/out1/state", {"active": True, "duration_ms": 30})
    assert reply.status == 200
    off = await stream.until(is_output_event("out1", False))
    assert off["cause"]["kind"] == "timer"
    assert off["cause"]["user"] == "admin"
    assert (await admin.port("out1"))["active"] is False


async def test_put_state_on_an_input_is_a_conflict(admin: Api) -> None:
    reply = await admin.put("/api/v1/ports/in1/state", {"active": True})
    assert reply.status == 409
    assert reply.body["error"] == "conflict"
    assert "sim" in reply.body["message"]
    assert (await admin.port("in1"))["active"] is False


BAD_STATE_BODIES: list[tuple[str, dict[str, Any], int, str | None]] = [
    ("not json", {"data": b"{active: true"}, 400, None),
    ("empty", {"data": b""}, 400, None),
    ("not an object", {"body": [True]}, 422, None),
    ("a string", {"body": "on"}, 422, None),
    ("active missing", {"body": {"duration_ms": 10}}, 422, "active"),
    ("active yes", {"body": {"active": "yes"}}, 422, "active"),
    ("active null", {"body": {"active": None}}, 422, "active"),
    ("active 1", {"body": {"active": 1}}, 422, "active"),
    ("duration as text", {"body": {"active": True, "duration_ms": "10"}}, 422, "duration_ms"),
    ("negative duration", {"body": {"active": True, "duration_ms": -1}}, 422, "duration_ms"),
    ("huge duration", {"body": {"active": True, "duration_ms": 10**12}}, 422, "duration_ms"),
    ("float duration", {"body": {"active": True, "duration_ms": 1.5}}, 422, "duration_ms"),
    ("unknown field", {"body": {"active": True, "colour": "red"}}, 422, "colour"),
    ("huge body", {"data": b'{"active": true, "x": "' + b"a" * (2 << 20) + b'"}'}, 413, None),
]


@pytest.mark.parametrize(
    ("case", "request_kw", "status", "field"),
    BAD_STATE_BODIES,
    ids=[case[0] for case in BAD_STATE_BODIES],
)
async def test_bad_state_bodies_are_refused_and_change_nothing(
    admin: Api, case: str, request_kw: dict[str, Any], status: int, field: str | None
) -> None:
    before = await admin.port("out1")
    last = (await admin.get("/api/v1/device")).body["stats"]["last_event_id"]
    if "body" in request_kw:
        reply = await admin.put("/api/v1/ports/out1/state", request_kw["body"])
    else:
        reply = await admin.put(
            "/api/v1/ports/out1/state",
            data=request_kw["data"],
            headers={"Content-Type": "application/json"},
        )
    assert reply.status == status, reply
    assert isinstance(reply.body, dict)
    assert set(reply.body) >= {"error", "message"}
    if field is not None:
        assert field in reply.body["message"]
        assert field in [e["field"] for e in reply.body["errors"]]
    after = await admin.port("out1")
    assert after["active"] is False
    assert after["cause"] == before["cause"]
    assert await admin.events(after=last, topic="io/output") == []


async def test_huge_chunked_body_is_413(operator: Api) -> None:
    """Without a Content-Length the limit still holds (Basic: a streamed body cannot be
    replayed after a Digest challenge)."""

    async def chunks() -> Any:
        yield b'{"active": true, "x": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}'

    reply = await operator.put("/api/v1/ports/out1/state", data=chunks())
    assert reply.status == 413, reply
    assert reply.body["error"]
    assert (await operator.port("out1"))["active"] is False


async def test_disabled_output_cannot_be_driven(admin: Api) -> None:
    assert (await admin.patch("/api/v1/ports/out1", {"enabled": False})).status == 200
    reply = await admin.put("/api/v1/ports/out1/state", {"active": True})
    assert reply.status == 422
    assert "disabled" in reply.body["message"]
    assert (await admin.port("out1"))["active"] is False


# -- sequences --------------------------------------------------------------------------------


async def test_sequence_runs_its_steps(server: Server, operator: Api) -> None:
    stream = await server.stream("?topic=io/output&source=out1&initial=0")
    steps = [
        {"active": True, "duration_ms": 20},
        {"active": False, "duration_ms": 20},
        {"active": True, "duration_ms": 20},
    ]
    reply = await operator.post("/api/v1/ports/out1/sequence", {"steps": steps})
    assert reply.status == 200, reply
    assert reply.body["sequence_running"] is True
    changes = [
        await stream.until(is_output_event("out1", True)),
        await stream.until(is_output_event("out1", False)),
        await stream.until(is_output_event("out1", True)),
    ]
    assert [e["cause"]["detail"] for e in changes] == [
        "sequence step 1",
        "sequence step 2",
        "sequence step 3",
    ]
    assert all(e["cause"]["user"] == "oper" for e in changes)
    assert changes[0]["id"] < changes[1]["id"] < changes[2]["id"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"steps": []},
        {"steps": [{"active": True}]},
        {"steps": [{"active": True, "duration_ms": -5}]},
        {"steps": "2:/300\\500/300\\"},
    ],
)
async def test_bad_sequences_are_422(admin: Api, body: dict[str, Any]) -> None:
    reply = await admin.post("/api/v1/ports/out1/sequence", body)
    assert reply.status == 422, reply
    assert "steps" in reply.body["message"]
    assert (await admin.port("out1"))["sequence_running"] is False


async def test_sequence_on_an_input_is_404(admin: Api) -> None:
    reply = await admin.post(
        "/api/v1/ports/in1/sequence", {"steps": [{"active": True, "duration_ms": 10}]}
    )
    assert reply.status == 404


# -- simulator --------------------------------------------------------------------------------


async def test_sim_circuit_closes_and_opens_an_input(server: Server, operator: Api) -> None:
    await fast_inputs(server.digest(*ADMIN), "in1")
    stream = await server.stream("?topic=io/input&source=in1&initial=0")
    reply = await operator.post("/api/v1/sim/ports/in1/circuit", {"circuit": "closed"})
    assert reply.status == 200, reply
    assert reply.body["circuit"] == "closed"
    event = await stream.until(is_input_event("in1", True))
    assert event["cause"] == {"kind": "sim"}
    assert event["data"]["circuit"] == "closed"
    assert (await operator.port("in1"))["active"] is True

    assert (await operator.post("/api/v1/sim/ports/in1/circuit", {"circuit": "open"})).status == 200
    await stream.until(is_input_event("in1", False))
    assert (await operator.port("in1"))["active"] is False


async def test_sim_cut_needs_a_supervised_input(server: Server, admin: Api) -> None:
    reply = await admin.post("/api/v1/sim/ports/in1/circuit", {"circuit": "cut"})
    assert reply.status == 422
    assert "supervised" in reply.body["message"]
    port = await admin.port("in1")
    assert port["circuit"] == "open" and port["tamper"] is False

    await fast_inputs(admin, "in1")
    assert (await admin.patch("/api/v1/ports/in1", {"supervised": True})).status == 200
    stream = await server.stream("?topic=io/input&source=in1&initial=0")
    reply = await admin.post("/api/v1/sim/ports/in1/circuit", {"circuit": "cut"})
    assert reply.status == 200, reply
    event = await stream.until(lambda e: e["data"]["tamper"] is True)
    assert event["data"]["circuit"] == "cut"
    port = await admin.port("in1")
    assert port["circuit"] == "cut"
    assert port["tamper"] is True


@pytest.mark.parametrize("body", [{"circuit": "ajar"}, {"circuit": None}, {}, {"state": "open"}])
async def test_sim_bad_circuit_is_422(admin: Api, body: dict[str, Any]) -> None:
    reply = await admin.post("/api/v1/sim/ports/in1/circuit", body)
    assert reply.status == 422, reply
    assert reply.body["errors"]


async def test_sim_circuit_on_an_output_is_404(admin: Api) -> None:
    reply = await admin.post("/api/v1/sim/ports/out1/circuit", {"circuit": "closed"})
    assert reply.status == 404


async def test_sim_bounce_is_filtered_by_debounce(server: Server, admin: Api) -> None:
    """Six edges 2 ms apart ending closed: with the default 50 ms debounce the input goes
    active exactly once, after the level settled."""
    stream = await server.stream("?topic=io/input&source=in1&initial=0")
    reply = await admin.post(
        "/api/v1/sim/ports/in1/fault", {"fault": "bounce", "edges": 6, "interval_ms": 2}
    )
    assert reply.status == 200, reply
    assert reply.body["sim"]["bouncing"] is True
    event = await stream.until(is_input_event("in1", True))
    assert event["data"]["circuit"] == "closed"
    port = await admin.port("in1")
    assert port["active"] is True
    assert port["debouncing"] is False
    inputs = await admin.events(topic="io/input", source="in1")
    assert [e["data"]["active"] for e in inputs] == [True]


async def test_sim_stuck_and_clear(server: Server, admin: Api) -> None:
    await fast_inputs(admin, "in2")
    reply = await admin.post("/api/v1/sim/ports/in2/fault", {"fault": "stuck"})
    assert reply.status == 200, reply
    assert reply.body["sim"]["stuck"] == "open"
    await admin.post("/api/v1/sim/ports/in2/circuit", {"circuit": "closed"})
    assert (await admin.port("in2"))["active"] is False

    stream = await server.stream("?topic=io/input&source=in2&initial=0")
    reply = await admin.post("/api/v1/sim/ports/in2/fault", {"fault": "clear"})
    assert reply.status == 200
    assert reply.body["sim"]["stuck"] is None
    await admin.post("/api/v1/sim/ports/in2/circuit", {"circuit": "closed"})
    await stream.until(is_input_event("in2", True))


@pytest.mark.parametrize(
    "body",
    [
        {"fault": "zap"},
        {},
        {"fault": "bounce", "edges": 0},
        {"fault": "bounce", "edges": 100_000},
        {"fault": "bounce", "interval_ms": -1},
        {"fault": "stuck", "level": "cut"},
        {"fault": "bounce", "volume": 11},
    ],
)
async def test_sim_bad_fault_is_422(admin: Api, body: dict[str, Any]) -> None:
    reply = await admin.post("/api/v1/sim/ports/in1/fault", body)
    assert reply.status == 422, reply
    assert reply.body["error"] == "invalid"
    assert (await admin.port("in1"))["circuit"] == "open"


async def test_sim_cut_fault_on_unsupervised_input_is_422(admin: Api) -> None:
    reply = await admin.post("/api/v1/sim/ports/in1/fault", {"fault": "cut"})
    assert reply.status == 422
    assert "supervised" in reply.body["message"]


# -- PATCH ------------------------------------------------------------------------------------


async def test_patch_normal_state_closed_makes_the_input_active(server: Server, admin: Api) -> None:
    revision = (await admin.get("/api/v1/config")).body["revision"]
    stream = await server.stream("?topic=io/input&source=in1&initial=0")
    reply = await admin.patch("/api/v1/ports/in1", {"normal_state": "closed"})
    assert reply.status == 200, reply
    assert reply.body["normal_state"] == "closed"
    assert reply.body["active"] is True  # the circuit is open, the normal state closed
    assert reply.body["config"]["normal_state"] == "closed"
    await stream.until(is_input_event("in1", True))
    config = (await admin.get("/api/v1/config")).body
    assert config["revision"] == revision + 1
    assert config["config"]["inputs"][0]["normal_state"] == "closed"


async def test_patch_output_name_and_rating(admin: Api) -> None:
    reply = await admin.patch("/api/v1/ports/out1", {"name": "Siren", "rating": "12 V 0.5 A"})
    assert reply.status == 200, reply
    assert reply.body["name"] == "Siren"
    assert reply.body["config"]["rating"] == "12 V 0.5 A"
    assert (await admin.port("out1"))["name"] == "Siren"


@pytest.mark.parametrize(
    ("port", "patch", "field"),
    [
        ("in1", {"normal_state": "ajar"}, "normal_state"),
        ("in1", {"debounce_on_ms": -1}, "debounce_on_ms"),
        ("in2", {"bogus": 1}, "bogus"),
        ("out1", {"active_state": 5}, "active_state"),
        ("out1", {"alarm_time_ms": "long"}, "alarm_time_ms"),
        ("out1", {"name": ""}, "name"),
        ("in2", {"arming_schedule": "nope"}, "arming_schedule"),
        ("out1", {"interlock_group": "g1"}, "interlock_group"),
    ],
)
async def test_patch_invalid_is_422_naming_the_field_and_changes_nothing(
    server: Server, admin: Api, port: str, patch: dict[str, Any], field: str
) -> None:
    before = (await admin.get("/api/v1/config")).body
    file_before = (server.data_dir / "config.yaml").read_bytes()
    reply = await admin.patch(f"/api/v1/ports/{port}", patch)
    assert reply.status == 422, reply
    assert reply.body["message"].startswith(f"{field}: ")
    assert [e["field"] for e in reply.body["errors"]] == [field], reply.body
    assert "Value error" not in reply.body["message"]
    assert (await admin.get("/api/v1/config")).body == before
    assert (server.data_dir / "config.yaml").read_bytes() == file_before


async def test_patch_cannot_change_the_id(admin: Api) -> None:
    reply = await admin.patch("/api/v1/ports/in1", {"id": "door"})
    assert reply.status == 422
    assert "id" in reply.body["message"]
    ids = [p["id"] for p in (await admin.get("/api/v1/ports")).body["ports"]]
    assert ids == DEFAULT_ORDER
    # The same id is no change at all.
    assert (await admin.patch("/api/v1/ports/in1", {"id": "in1", "name": "Door"})).status == 200


@pytest.mark.parametrize("body", [[1, 2], "x", 3])
async def test_patch_needs_an_object(admin: Api, body: Any) -> None:
    reply = await admin.patch("/api/v1/ports/in1", body)
    assert reply.status == 422


async def test_patch_unknown_port_is_404(admin: Api) -> None:
    reply = await admin.patch("/api/v1/ports/nope", {"name": "x"})
    assert reply.status == 404
