"""Schedules, virtual inputs and the manual trigger over the API."""

from __future__ import annotations

from typing import Any

import pytest
from apihelpers import Api, Server, fast_inputs

ALWAYS = {
    "id": "always",
    "name": "Every day, all day",
    "kind": "interval",
    "timezone": "Europe/Zurich",
    "entries": [{"start": "2020-01-01T00:00:00", "duration_s": 86_400, "rrule": "FREQ=DAILY"}],
}
LATER = {
    "id": "later",
    "name": "Far future",
    "kind": "interval",
    "entries": [{"start": "2099-01-01T00:00:00", "duration_s": 60}],
}


def change(topic: str, source: str, active: bool) -> Any:
    return lambda e: (
        e["topic"] == topic
        and e["source"] == source
        and e["kind"] == "changed"
        and e["data"].get("active") is active
    )


# -- schedules --------------------------------------------------------------------------------


async def test_schedule_crud(admin: Api) -> None:
    assert (await admin.get("/api/v1/schedules")).body == {"schedules": []}
    reply = await admin.post("/api/v1/schedules", ALWAYS)
    assert reply.status == 201, reply
    assert reply.body["active"] is True
    assert reply.body["entries"][0]["rrule"] == "FREQ=DAILY"

    reply = await admin.post("/api/v1/schedules", LATER)
    assert reply.status == 201
    assert reply.body["active"] is False

    assert (await admin.post("/api/v1/schedules", ALWAYS)).status == 409
    listed = (await admin.get("/api/v1/schedules")).body["schedules"]
    assert [(s["id"], s["active"]) for s in listed] == [("always", True), ("later", False)]

    changed = {**LATER, "name": "Renamed"}
    reply = await admin.put("/api/v1/schedules/later", changed)
    assert reply.status == 200, reply
    assert (await admin.get("/api/v1/schedules/later")).body["name"] == "Renamed"

    assert (await admin.delete("/api/v1/schedules/later")).status == 204
    assert (await admin.get("/api/v1/schedules/later")).status == 404
    assert (await admin.delete("/api/v1/schedules/later")).status == 404
    assert [s["id"] for s in (await admin.get("/api/v1/config")).body["config"]["schedules"]] == [
        "always"
    ]


@pytest.mark.parametrize(
    ("schedule", "needle"),
    [
        ({**LATER, "entries": [{"start": "2099-01-01T00:00:00", "duration_s": 0}]}, "duration_s"),
        ({**LATER, "timezone": "Atlantis/Capital"}, "Atlantis"),
        (
            {**LATER, "entries": [{"start": "2099-01-01T00:00:00", "rrule": "FREQ=SOMETIMES"}]},
            "RRULE",
        ),
        ({**LATER, "entries": []}, "entries"),
        ({**LATER, "kind": "weekly"}, "kind"),
        ({"name": "no id", "entries": LATER["entries"]}, "id"),
    ],
)
async def test_invalid_schedules_are_422(admin: Api, schedule: dict[str, Any], needle: str) -> None:
    reply = await admin.post("/api/v1/schedules", schedule)
    assert reply.status == 422, reply
    assert needle in reply.body["message"]
    assert (await admin.get("/api/v1/schedules")).body == {"schedules": []}


async def test_a_schedule_in_use_cannot_be_deleted(admin: Api) -> None:
    assert (await admin.post("/api/v1/schedules", ALWAYS)).status == 201
    rule = {
        "id": "office",
        "name": "Office hours",
        "conditions": [{"kind": "schedule", "schedule": "always"}],
        "action_mode": "while_active",
        "action": {"kind": "set_output", "port": "out1"},
    }
    assert (await admin.post("/api/v1/rules", rule)).status == 201
    # The interval schedule is active, so the while-active rule holds the output.
    port = await admin.port("out1")
    assert port["active"] is True
    assert port["cause"]["rule"] == "office"

    reply = await admin.delete("/api/v1/schedules/always")
    assert reply.status == 422
    assert "always" in reply.body["message"]
    assert (await admin.get("/api/v1/schedules/always")).status == 200


async def test_disarmed_input_does_not_trigger(server: Server, admin: Api) -> None:
    await fast_inputs(admin, "in1")
    assert (await admin.post("/api/v1/schedules", LATER)).status == 201
    reply = await admin.patch("/api/v1/ports/in1", {"arming_schedule": "later"})
    assert reply.status == 200, reply
    assert reply.body["armed"] is False
    rule = {
        "id": "alarm",
        "name": "Alarm",
        "conditions": [{"kind": "input", "port": "in1"}],
        "action": {"kind": "set_output", "port": "out1"},
    }
    assert (await admin.post("/api/v1/rules", rule)).status == 201
    stream = await server.stream("?topic=io/input&initial=0")
    await admin.post("/api/v1/sim/ports/in1/circuit", {"circuit": "closed"})
    event = await stream.until(change("io/input", "in1", True))
    assert event["data"]["armed"] is False  # it reports its state, but does not trigger
    assert (await admin.port("out1"))["active"] is False
    assert await admin.events(topic="rule/fired") == []


# -- virtual inputs ---------------------------------------------------------------------------


async def test_virtual_inputs_list(viewer: Api) -> None:
    items = (await viewer.get("/api/v1/virtual-inputs")).body["virtual_inputs"]
    assert [v["number"] for v in items] == list(range(1, 33))
    assert all(v["active"] is False and v["cause"] is None for v in items)


async def test_set_a_virtual_input(server: Server, operator: Api) -> None:
    stream = await server.stream("?topic=io/virtual_input&initial=0")
    reply = await operator.put("/api/v1/virtual-inputs/32", {"active": True})
    assert reply.status == 200, reply
    assert reply.body["number"] == 32
    assert reply.body["active"] is True
    assert reply.body["cause"]["user"] == "oper"
    event = await stream.until(change("io/virtual_input", "32", True))
    assert event["cause"]["user"] == "oper"
    assert (await operator.get("/api/v1/virtual-inputs/32")).body["active"] is True
    assert (await operator.get("/api/v1/virtual-inputs/1")).body["active"] is False

    reply = await operator.put("/api/v1/virtual-inputs/32", {"active": False})
    assert reply.body["active"] is False


async def test_virtual_input_with_a_duration_reverts(server: Server, operator: Api) -> None:
    stream = await server.stream("?topic=io/virtual_input&source=7&initial=0")
    reply = await operator.put("/api/v1/virtual-inputs/7", {"active": True, "duration_ms": 30})
    assert reply.status == 200
    assert reply.body["active"] is True
    await stream.until(change("io/virtual_input", "7", True))
    back = await stream.until(change("io/virtual_input", "7", False))
    assert back["cause"]["kind"] == "timer"
    assert (await operator.get("/api/v1/virtual-inputs/7")).body["active"] is False


@pytest.mark.parametrize("number", ["0", "33", "-1", "abc", "1.5", "100000000000000000000"])
async def test_virtual_input_out_of_range_is_404(operator: Api, number: str) -> None:
    reply = await operator.put(f"/api/v1/virtual-inputs/{number}", {"active": True})
    assert reply.status == 404, reply
    assert reply.body["error"] == "not_found"
    assert (await operator.get(f"/api/v1/virtual-inputs/{number}")).status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"active": "on"}, "active"),
        ({}, "active"),
        ({"active": True, "duration_ms": 0}, "duration_ms"),
        ({"active": True, "duration_ms": -3}, "duration_ms"),
    ],
)
async def test_bad_virtual_input_body_is_422(
    operator: Api, body: dict[str, Any], field: str
) -> None:
    reply = await operator.put("/api/v1/virtual-inputs/2", body)
    assert reply.status == 422, reply
    assert field in reply.body["message"]
    assert (await operator.get("/api/v1/virtual-inputs/2")).body["active"] is False


async def test_virtual_input_rule_chain(server: Server, admin: Api, operator: Api) -> None:
    rule = {
        "id": "v5",
        "name": "Virtual 5 drives the relay",
        "conditions": [{"kind": "virtual_input", "number": 5}],
        "action_mode": "while_active",
        "action": {"kind": "set_output", "port": "out1"},
    }
    assert (await admin.post("/api/v1/rules", rule)).status == 201
    stream = await server.stream("?topic=io/output&initial=0")
    await operator.put("/api/v1/virtual-inputs/5", {"active": True})
    on = await stream.until(change("io/output", "out1", True))
    assert on["cause"]["rule"] == "v5"
    vin_events = await admin.events(topic="io/virtual_input", source="5")
    assert on["cause"]["event_id"] == vin_events[-1]["id"]
    await operator.put("/api/v1/virtual-inputs/5", {"active": False})
    await stream.until(change("io/output", "out1", False))


# -- manual trigger ---------------------------------------------------------------------------


async def test_manual_trigger_on_and_off(operator: Api) -> None:
    assert (await operator.get("/api/v1/triggers/manual")).body == {"active": False, "cause": None}
    reply = await operator.put("/api/v1/triggers/manual", {"active": True})
    assert reply.status == 200, reply
    assert reply.body == {"active": True}
    state = (await operator.get("/api/v1/triggers/manual")).body
    assert state["active"] is True
    assert state["cause"]["kind"] == "manual"
    assert state["cause"]["user"] == "oper"
    assert (await operator.put("/api/v1/triggers/manual", {"active": False})).body == {
        "active": False
    }


async def test_manual_trigger_pulse_fires_a_once_rule(server: Server, admin: Api) -> None:
    rule = {
        "id": "button",
        "name": "Manual button",
        "conditions": [{"kind": "manual_trigger"}],
        "action": {"kind": "set_output", "port": "out1", "duration_ms": 5_000},
    }
    assert (await admin.post("/api/v1/rules", rule)).status == 201
    stream = await server.stream("?topic=trigger/manual&initial=0")
    reply = await admin.put("/api/v1/triggers/manual", {"pulse": True})
    assert reply.status == 200
    assert reply.body == {"active": False}
    await stream.until(lambda e: e["data"]["active"] is True)
    await stream.until(lambda e: e["data"]["active"] is False)
    port = await admin.port("out1")
    assert port["active"] is True
    assert port["cause"]["rule"] == "button"
    assert len(await admin.events(topic="rule/fired", source="button")) == 1


@pytest.mark.parametrize("body", [{}, {"active": "yes"}, {"pulse": "please"}, {"press": True}])
async def test_bad_manual_trigger_body_is_422(operator: Api, body: dict[str, Any]) -> None:
    reply = await operator.put("/api/v1/triggers/manual", body)
    assert reply.status == 422, reply
    assert reply.body["error"] == "invalid"
    assert (await operator.get("/api/v1/triggers/manual")).body["active"] is False
