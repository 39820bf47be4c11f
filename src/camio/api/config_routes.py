"""Routes for the configuration document, rules and schedules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from camio.api.context import caller, cause_of, device_of
from camio.api.errors import BadRequest, new_item_id, read_object, same_id
from camio.api.schemas import (
    ConfigBody,
    ConfigDocument,
    RuleList,
    RuleStatus,
    ScheduleList,
    ScheduleStatus,
    respond,
)
from camio.api.spec import spec
from camio.core.config import DeviceConfig
from camio.core.rules import RuleConfig
from camio.core.schedules import ScheduleConfig
from camio.engine.device import Device
from camio.store.users import Role

routes = web.RouteTableDef()


def _revision_header(request: web.Request) -> int | None:
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    try:
        return int(raw.strip().strip('"'))
    except ValueError:
        raise BadRequest("If-Match must be a configuration revision number") from None


def _config_response(device_config: DeviceConfig, revision: int) -> web.Response:
    return respond(
        ConfigDocument,
        ConfigDocument(revision=revision, config=device_config),
        headers={"ETag": f'"{revision}"'},
    )


@routes.get("/api/v1/config")
@spec("The whole configuration with its revision", role=Role.ADMIN, response=ConfigDocument)
async def get_config(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    device = device_of(request)
    return _config_response(device.config, device.revision)


@routes.put("/api/v1/config")
@spec(
    "Replace the whole configuration (If-Match: <revision> refuses lost updates)",
    role=Role.ADMIN,
    body=ConfigBody,
    response=ConfigDocument,
)
async def put_config(request: web.Request) -> web.Response:
    """Replace the whole configuration. ``If-Match: <revision>`` guards against lost updates."""
    caller(request, Role.ADMIN)
    device = device_of(request)
    body = await read_object(request)
    document = body.get("config", body) if set(body) <= {"config", "revision"} else body
    if not isinstance(document, dict):
        raise BadRequest("'config' must be an object", status=422)
    new = DeviceConfig.model_validate(document)
    revision = device.update_config(new, expected_revision=_revision_header(request))
    return _config_response(device.config, revision)


@routes.get("/api/v1/rules")
@spec("Every rule with its live status", role=Role.VIEWER, response=RuleList)
async def list_rules(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    device = device_of(request)
    return respond(RuleList, {"rules": [device.rule_status(r.id) for r in device.config.rules]})


async def _create(
    request: web.Request,
    noun: str,
    existing: Callable[[Device], list[str]],
    put: Callable[[Device, dict[str, Any]], object],
    status_of: Callable[[Device, str], dict[str, Any]],
    model: type[RuleStatus] | type[ScheduleStatus],
) -> web.Response:
    """POST a new rule or schedule: 201 with its status, 409 when the id is taken."""
    caller(request, Role.ADMIN)
    device = device_of(request)
    body = await read_object(request)
    item_id = new_item_id(body, noun, existing(device))
    put(device, body)
    return respond(model, status_of(device, item_id), status=201)


@routes.post("/api/v1/rules")
@spec(
    "Create a rule (409 if the id exists)",
    role=Role.ADMIN,
    body=RuleConfig,
    response=RuleStatus,
    status=201,
)
async def create_rule(request: web.Request) -> web.Response:
    return await _create(
        request,
        "rule",
        lambda device: [r.id for r in device.config.rules],
        Device.put_rule,
        Device.rule_status,
        RuleStatus,
    )


@routes.get("/api/v1/rules/{id}")
@spec("One rule with its live status", role=Role.VIEWER, response=RuleStatus)
async def get_rule(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    return respond(RuleStatus, device_of(request).rule_status(request.match_info["id"]))


@routes.put("/api/v1/rules/{id}")
@spec(
    "Create or replace a rule (the id comes from the URL)",
    role=Role.ADMIN,
    body=RuleConfig,
    response=RuleStatus,
)
async def put_rule(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    device = device_of(request)
    rule_id = request.match_info["id"]
    body = await read_object(request)
    body = same_id(body, rule_id)
    device.put_rule(body)
    return respond(RuleStatus, device.rule_status(rule_id))


@routes.delete("/api/v1/rules/{id}")
@spec("Delete a rule", role=Role.ADMIN, status=204)
async def delete_rule(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    device_of(request).delete_rule(request.match_info["id"])
    return web.Response(status=204)


@routes.post("/api/v1/rules/{id}/test")
@spec("Run the rule's action now, whatever its conditions", role=Role.OPERATOR, response=RuleStatus)
async def test_rule(request: web.Request) -> web.Response:
    """Run the rule's action now, whatever its conditions."""
    user = caller(request, Role.OPERATOR)
    device = device_of(request)
    rule_id = request.match_info["id"]
    device.test_rule(rule_id, cause_of(request, user, "manual"))
    return respond(RuleStatus, device.rule_status(rule_id))


@routes.get("/api/v1/schedules")
@spec("Every schedule, with whether it is active now", role=Role.VIEWER, response=ScheduleList)
async def list_schedules(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    device = device_of(request)
    return respond(
        ScheduleList,
        {"schedules": [device.schedule_status(s.id) for s in device.config.schedules]},
    )


@routes.post("/api/v1/schedules")
@spec(
    "Create a schedule (409 if the id exists)",
    role=Role.ADMIN,
    body=ScheduleConfig,
    response=ScheduleStatus,
    status=201,
)
async def create_schedule(request: web.Request) -> web.Response:
    return await _create(
        request,
        "schedule",
        lambda device: [s.id for s in device.config.schedules],
        Device.put_schedule,
        Device.schedule_status,
        ScheduleStatus,
    )


@routes.get("/api/v1/schedules/{id}")
@spec("One schedule", role=Role.VIEWER, response=ScheduleStatus)
async def get_schedule(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    return respond(ScheduleStatus, device_of(request).schedule_status(request.match_info["id"]))


@routes.put("/api/v1/schedules/{id}")
@spec(
    "Create or replace a schedule (the id comes from the URL)",
    role=Role.ADMIN,
    body=ScheduleConfig,
    response=ScheduleStatus,
)
async def put_schedule(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    device = device_of(request)
    sched_id = request.match_info["id"]
    body = same_id(await read_object(request), sched_id)
    device.put_schedule(body)
    return respond(ScheduleStatus, device.schedule_status(sched_id))


@routes.delete("/api/v1/schedules/{id}")
@spec("Delete a schedule (refused while something uses it)", role=Role.ADMIN, status=204)
async def delete_schedule(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    device_of(request).delete_schedule(request.match_info["id"])
    return web.Response(status=204)
