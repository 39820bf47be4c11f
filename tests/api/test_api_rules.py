"""Rules over the API: CRUD, validation, end-to-end input → rule → output, the Test button."""

from __future__ import annotations

from typing import Any

import pytest
from apihelpers import Api, Server, fast_inputs


def door_rule(rule_id: str = "r1", **extra: Any) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": "Door opens the siren",
        "conditions": [{"kind": "input", "port": "in1"}],
        "action": {"kind": "set_output", "port": "out1", "duration_ms": 60_000},
        **extra,
    }


def output_change(active: bool) -> Any:
    return lambda e: (
        e["topic"] == "io/output" and e["kind"] == "changed" and e["data"]["active"] is active
    )


async def test_rule_crud(server: Server, admin: Api) -> None:
    assert (await admin.get("/api/v1/rules")).body == {"rules": []}

    reply = await admin.post("/api/v1/rules", door_rule())
    assert reply.status == 201, reply
    assert reply.body["id"] == "r1"
    assert reply.body["action"]["port"] == "out1"
    assert reply.body["status"] == {"value": False, "holding": False, "fired": 0, "suppressed": 0}

    reply = await admin.post("/api/v1/rules", door_rule(name="again"))
    assert reply.status == 409
    assert reply.body["error"] == "conflict"
    assert (await admin.get("/api/v1/rules/r1")).body["name"] == "Door opens the siren"

    reply = await admin.get("/api/v1/rules/r1")
    assert reply.status == 200
    assert reply.body["conditions"][0] == {
        "kind": "input",
        "invert": False,
        "port": "in1",
        "state": "active",
        "require_armed": True,
    }

    changed = door_rule(name="Renamed", wait_between_actions_ms=500)
    del changed["id"]  # the URL names the rule
    reply = await admin.put("/api/v1/rules/r1", changed)
    assert reply.status == 200, reply
    assert reply.body["name"] == "Renamed"
    assert reply.body["wait_between_actions_ms"] == 500

    listed = (await admin.get("/api/v1/rules")).body["rules"]
    assert [r["id"] for r in listed] == ["r1"]
    revision = (await admin.get("/api/v1/config")).body["revision"]
    assert revision == 3  # defaults, create, replace

    reply = await admin.delete("/api/v1/rules/r1")
    assert reply.status == 204
    assert (await admin.get("/api/v1/rules/r1")).status == 404
    assert (await admin.get("/api/v1/rules")).body == {"rules": []}
    assert (await admin.get("/api/v1/config")).body["config"]["rules"] == []


async def test_put_creates_a_rule_too(admin: Api) -> None:
    reply = await admin.put("/api/v1/rules/r2", door_rule("r2"))
    assert reply.status == 200, reply
    assert (await admin.get("/api/v1/rules/r2")).status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/rules/ghost"),
        ("DELETE", "/api/v1/rules/ghost"),
        ("POST", "/api/v1/rules/ghost/test"),
    ],
)
async def test_unknown_rule_is_404(admin: Api, method: str, path: str) -> None:
    reply = await admin.call(method, path)
    assert reply.status == 404, reply
    assert reply.body["error"] == "not_found"
    assert "ghost" in reply.body["message"]


async def test_put_with_another_id_in_the_body_is_422(admin: Api) -> None:
    reply = await admin.put("/api/v1/rules/r1", door_rule("r9"))
    assert reply.status == 422
    assert "id" in reply.body["message"]
    assert (await admin.get("/api/v1/rules")).body == {"rules": []}


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        (door_rule(conditions=[{"kind": "full_moon"}]), "unknown condition kind 'full_moon'"),
        (door_rule(conditions=[]), "conditions"),
        (door_rule(conditions=[{"kind": "input", "port": "in7"}]), "in7"),
        (door_rule(action={"kind": "launch"}), "unknown action kind 'launch'"),
        (door_rule(action={"kind": "set_output", "port": "in1"}), "in1"),
        (door_rule(action_mode="sometimes"), "action_mode"),
        (
            door_rule(
                conditions=[{"kind": "recurrence", "interval_s": 5}], action_mode="while_active"
            ),
            "stateful",
        ),
        ({"name": "no id", "conditions": [{"kind": "manual_trigger"}]}, "id"),
        ({**door_rule(), "id": 5}, "id"),
    ],
)
async def test_invalid_rules_are_422_with_a_message(
    admin: Api, rule: dict[str, Any], needle: str
) -> None:
    reply = await admin.post("/api/v1/rules", rule)
    assert reply.status == 422, reply
    assert needle in reply.body["message"], reply.body
    assert "Value error" not in reply.body["message"]
    assert reply.body["errors"] or reply.body["message"].startswith("id")
    assert (await admin.get("/api/v1/rules")).body == {"rules": []}
    assert (await admin.get("/api/v1/config")).body["revision"] == 1


async def test_rule_drives_the_output_end_to_end(server: Server, admin: Api) -> None:
    await fast_inputs(admin, "in1")
    assert (await admin.post("/api/v1/rules", door_rule())).status == 201
    stream = await server.stream("?initial=0")

    reply = await admin.post("/api/v1/sim/ports/in1/circuit", {"circuit": "closed"})
    assert reply.status == 200
    on = await stream.until(output_change(True))

    inputs = await admin.events(topic="io/input", source="in1")
    assert inputs, "the input edge is in the log"
    edge = inputs[-1]
    assert edge["data"]["active"] is True
    port = await admin.port("out1")
    assert port["active"] is True
    assert port["cause"]["kind"] == "rule"
    assert port["cause"]["rule"] == "r1"
    assert port["cause"]["event_id"] == edge["id"]
    assert on["cause"] == port["cause"]
    assert on["id"] > edge["id"]
    assert 0 < port["remaining_ms"] <= 60_000

    fired = await admin.events(topic="rule/fired", source="r1")
    assert [e["data"]["transition"] for e in fired] == ["fire"]
    assert fired[0]["cause"]["event_id"] == edge["id"]
    status = (await admin.get("/api/v1/rules/r1")).body["status"]
    assert status["fired"] == 1
    assert status["value"] is True

    device = (await admin.get("/api/v1/device")).body
    assert device["stats"]["rule_actions"] >= 1
    assert device["stats"]["last_latency_us"] is not None


async def test_while_active_rule_follows_the_input(server: Server, admin: Api) -> None:
    await fast_inputs(admin, "in2")
    rule = {
        "id": "follow",
        "name": "Follow in2",
        "conditions": [{"kind": "input", "port": "in2"}],
        "action_mode": "while_active",
        "action": {"kind": "set_output", "port": "out1"},
    }
    assert (await admin.post("/api/v1/rules", rule)).status == 201
    stream = await server.stream("?topic=io/output&initial=0")
    await admin.post("/api/v1/sim/ports/in2/circuit", {"circuit": "closed"})
    on = await stream.until(output_change(True))
    assert on["cause"]["rule"] == "follow"
    assert (await admin.port("out1"))["holds"] == ["rule:follow"]
    await admin.post("/api/v1/sim/ports/in2/circuit", {"circuit": "open"})
    off = await stream.until(output_change(False))
    assert off["cause"]["rule"] == "follow"
    assert (await admin.port("out1"))["holds"] == []


async def test_disabled_rule_does_nothing(server: Server, admin: Api) -> None:
    await fast_inputs(admin, "in1")
    assert (await admin.post("/api/v1/rules", door_rule(enabled=False))).status == 201
    stream = await server.stream("?topic=io/input&initial=0")
    await admin.post("/api/v1/sim/ports/in1/circuit", {"circuit": "closed"})
    await stream.until(lambda e: e["data"]["active"] is True)
    assert await admin.events(topic="rule/fired") == []
    assert (await admin.port("out1"))["active"] is False


async def test_test_button_runs_the_action_now(server: Server, admin: Api, operator: Api) -> None:
    assert (await admin.post("/api/v1/rules", door_rule())).status == 201
    stream = await server.stream("?topic=io/output&initial=0")
    reply = await operator.post("/api/v1/rules/r1/test")
    assert reply.status == 200, reply
    assert reply.body["status"]["fired"] == 0  # a test is not a real firing
    on = await stream.until(output_change(True))
    assert on["cause"]["kind"] == "manual"
    assert on["cause"]["user"] == "oper"
    port = await admin.port("out1")
    assert port["active"] is True
    assert 0 < port["remaining_ms"] <= 60_000
    fired = await admin.events(topic="rule/fired", source="r1")
    assert len(fired) == 1
    assert fired[0]["cause"]["user"] == "oper"
    # The input never changed.
    assert (await admin.port("in1"))["active"] is False
