"""The configuration document over the API: revisions, If-Match, validation, the file on disk."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from apihelpers import Api, Server

from camio.core.config import DeviceConfig


def saved(server: Server) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((server.data_dir / "config.yaml").read_text())
    return data


async def test_get_config_has_revision_and_etag(server: Server, admin: Api) -> None:
    reply = await admin.get("/api/v1/config")
    assert reply.status == 200
    assert set(reply.body) == {"revision", "config"}
    assert reply.body["revision"] == 1  # the defaults, saved at the first start
    assert reply.headers["ETag"] == '"1"'
    DeviceConfig.model_validate(reply.body["config"])  # a valid document
    assert [p["id"] for p in reply.body["config"]["inputs"]] == ["in1", "in2"]
    assert saved(server)["revision"] == 1


async def test_put_config_bumps_the_revision_and_saves_the_file(server: Server, admin: Api) -> None:
    config = (await admin.get("/api/v1/config")).body["config"]
    config["device"]["name"] = "Gate camera"
    config["inputs"].append({"id": "in3", "name": "Back door", "normal_state": "closed"})
    reply = await admin.put("/api/v1/config", {"config": config}, headers={"If-Match": '"1"'})
    assert reply.status == 200, reply
    assert reply.body["revision"] == 2
    assert reply.headers["ETag"] == '"2"'
    assert reply.body["config"]["device"]["name"] == "Gate camera"

    on_disk = saved(server)
    assert on_disk["revision"] == 2
    assert on_disk["device"]["name"] == "Gate camera"
    assert on_disk["inputs"][2]["id"] == "in3"
    assert (server.data_dir / "config.yaml.bak").exists()
    assert yaml.safe_load((server.data_dir / "config.yaml.bak").read_text())["revision"] == 1

    # The change applies at once: the new input is a port, wired to a sensor at rest.
    port = await admin.port("in3")
    assert port["normal_state"] == "closed"
    assert port["circuit"] == "closed"
    assert port["active"] is False
    device = (await admin.get("/api/v1/device")).body
    assert device["name"] == "Gate camera"
    assert device["revision"] == 2
    changed = await admin.events(topic="config/changed")
    assert changed[-1]["data"] == {"revision": 2}


async def test_put_config_accepts_the_bare_document(admin: Api) -> None:
    config = (await admin.get("/api/v1/config")).body["config"]
    config["device"]["name"] = "bare"
    reply = await admin.put("/api/v1/config", config)
    assert reply.status == 200, reply
    assert reply.body["config"]["device"]["name"] == "bare"
    assert reply.body["revision"] == 2


async def test_stale_if_match_is_a_conflict_and_changes_nothing(server: Server, admin: Api) -> None:
    first = (await admin.get("/api/v1/config")).body
    mine = copy.deepcopy(first["config"])
    theirs = copy.deepcopy(first["config"])
    theirs["device"]["name"] = "theirs"
    ok = await admin.put("/api/v1/config", {"config": theirs}, headers={"If-Match": '"1"'})
    assert ok.status == 200
    file_after_theirs = (server.data_dir / "config.yaml").read_bytes()

    mine["device"]["name"] = "mine"
    reply = await admin.put("/api/v1/config", {"config": mine}, headers={"If-Match": '"1"'})
    assert reply.status == 409, reply
    assert reply.body["error"] == "conflict"
    assert "2" in reply.body["message"]
    current = (await admin.get("/api/v1/config")).body
    assert current["revision"] == 2
    assert current["config"]["device"]["name"] == "theirs"
    assert (server.data_dir / "config.yaml").read_bytes() == file_after_theirs

    # Reload, apply again with the current revision: accepted.
    reply = await admin.put("/api/v1/config", {"config": mine}, headers={"If-Match": "2"})
    assert reply.status == 200
    assert reply.body["revision"] == 3


async def test_bad_if_match_is_400(admin: Api) -> None:
    config = (await admin.get("/api/v1/config")).body["config"]
    reply = await admin.put("/api/v1/config", {"config": config}, headers={"If-Match": "abc"})
    assert reply.status == 400
    assert "If-Match" in reply.body["message"]
    assert (await admin.get("/api/v1/config")).body["revision"] == 1


async def test_invalid_config_is_422_listing_every_field(server: Server, admin: Api) -> None:
    file_before = (server.data_dir / "config.yaml").read_bytes()
    config = (await admin.get("/api/v1/config")).body["config"]
    config["inputs"][0]["debounce_on_ms"] = -5
    config["outputs"][0]["mode"] = "strobe"
    config["device"]["timezone"] = "Mars/Olympus"
    reply = await admin.put("/api/v1/config", {"config": config})
    assert reply.status == 422, reply
    fields = {e["field"] for e in reply.body["errors"]}
    assert {"inputs.0.debounce_on_ms", "outputs.0.mode", "device.timezone"} <= fields
    for name in ("debounce_on_ms", "mode", "timezone"):
        assert name in reply.body["message"]
    assert (server.data_dir / "config.yaml").read_bytes() == file_before
    assert (await admin.get("/api/v1/config")).body["revision"] == 1


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda c: c["inputs"].append({"id": "out1", "name": "dup"}), "out1"),
        (lambda c: c.__setitem__("port_order", ["in1"]), "port_order"),
        (lambda c: c["outputs"][0].__setitem__("interlock_group", "g9"), "g9"),
        (lambda c: c.__setitem__("colour", "blue"), "colour"),
        (lambda c: c.__setitem__("inputs", "in1"), "inputs"),
    ],
)
async def test_inconsistent_configs_are_422(admin: Api, mutate: Any, needle: str) -> None:
    config = (await admin.get("/api/v1/config")).body["config"]
    mutate(config)
    reply = await admin.put("/api/v1/config", {"config": config})
    assert reply.status == 422, reply
    assert needle in reply.body["message"]
    assert (await admin.get("/api/v1/config")).body["revision"] == 1


@pytest.mark.parametrize(
    ("mutate", "field", "needle"),
    [
        (lambda c: c["inputs"].append({"id": "out1", "name": "dup"}), "(document)", "twice"),
        (
            lambda c: c.__setitem__(
                "rules",
                [
                    {
                        "id": "r",
                        "name": "r",
                        "conditions": [{"kind": "manual_trigger"}],
                        "action": {"kind": "set_output", "port": "out7"},
                    }
                ],
            ),
            "rules.0",
            "no output port 'out7'",
        ),
        (
            lambda c: c["outputs"][0].__setitem__("timed_schedule", "s9"),
            "outputs.0.timed_schedule",
            "no schedule 's9'",
        ),
    ],
)
async def test_document_errors_name_their_field(
    admin: Api, mutate: Any, field: str, needle: str
) -> None:
    config = (await admin.get("/api/v1/config")).body["config"]
    mutate(config)
    reply = await admin.put("/api/v1/config", {"config": config})
    assert reply.status == 422, reply
    assert reply.body["errors"] == [{"field": field, "message": reply.body["errors"][0]["message"]}]
    assert needle in reply.body["errors"][0]["message"]
    assert reply.body["message"] == f"{field}: {reply.body['errors'][0]['message']}"
    assert "Value error" not in reply.body["message"]


@pytest.mark.parametrize("body", [[1], {"config": [1]}, {"config": "x"}])
async def test_config_body_must_be_an_object(admin: Api, body: Any) -> None:
    reply = await admin.put("/api/v1/config", body)
    assert reply.status == 422, reply


async def test_config_survives_a_restart(server: Server, admin: Api) -> None:
    """What the API saved is what the next start loads (same revision, same content)."""
    from apihelpers import ADMIN, start_server

    config = (await admin.get("/api/v1/config")).body["config"]
    config["outputs"][0]["alarm_time_ms"] = 1234
    assert (await admin.put("/api/v1/config", {"config": config})).status == 200
    await server.close()
    await server.app.stop()
    again = await start_server(server.data_dir)
    try:
        api = again.digest(*ADMIN)
        body = (await api.get("/api/v1/config")).body
        assert body["revision"] == 2
        assert body["config"]["outputs"][0]["alarm_time_ms"] == 1234
        assert body["config"] == config
    finally:
        await again.close()
        await again.app.stop()
