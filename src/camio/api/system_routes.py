"""System page routes: identity, backup and restore, factory reset, HTTPS, audit log, CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field

from camio import __version__
from camio.api.context import caller, device_of
from camio.api.errors import BadRequest, read_object
from camio.api.events import query_from
from camio.api.models import parse_body
from camio.api.spec import spec
from camio.core.config import DeviceConfig
from camio.core.ports import Model, TimeZone
from camio.engine.errors import InvalidRequest
from camio.engine.persistence import EventQuery
from camio.store.config_store import ConfigFileError, dump_yaml, load_yaml_text
from camio.store.users import Role

routes = web.RouteTableDef()

FACTORY_RESET_CONFIRMATION = "factory reset"


@dataclass(slots=True)
class SystemHooks:
    """What the routes need from the running daemon beyond the device (set by app.py)."""

    tls_info: Callable[[], dict[str, Any]]
    install_tls: Callable[[str, str], dict[str, Any]]
    https_port: Callable[[], int | None]


SYSTEM: web.AppKey[SystemHooks] = web.AppKey("system_hooks", SystemHooks)


class IdentityPatch(Model):
    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    timezone: TimeZone | None = None


class ResetBody(Model):
    confirm: str


class TlsBody(Model):
    certificate: Annotated[str, Field(min_length=1, max_length=256 * 1024)]
    private_key: Annotated[str, Field(min_length=1, max_length=64 * 1024)]


class HttpModeBody(Model):
    mode: Literal["both", "redirect", "off"]


class SystemInfo(Model):
    identity: dict[str, Any]
    version: str
    uptime_s: float
    revision: int
    tls: dict[str, Any]
    http: dict[str, Any]


class Revision(Model):
    revision: int


def _hooks(request: web.Request) -> SystemHooks | None:
    return request.app.get(SYSTEM)


def _system(request: web.Request) -> dict[str, Any]:
    device = device_of(request)
    hooks = _hooks(request)
    network = device.config.network
    tls: dict[str, Any] = {"enabled": network.https, "port": None}
    if hooks is not None:
        tls.update(hooks.tls_info())
        tls["port"] = hooks.https_port()
    return {
        "identity": device.config.device.model_dump(mode="json"),
        "version": __version__,
        "uptime_s": (device.clock.wall_ns() - device.stats.started_wall_ns) / 1e9,
        "revision": device.revision,
        "tls": tls,
        "http": {"mode": network.http_mode},
    }


@routes.get("/api/v1/system")
@spec("Device identity, version, HTTPS and HTTP settings", role=Role.VIEWER, response=SystemInfo)
async def get_system(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    return web.json_response(_system(request))


@routes.patch("/api/v1/system/identity")
@spec(
    "Rename the device or set its time zone",
    role=Role.ADMIN,
    body=IdentityPatch,
    response=SystemInfo,
)
async def patch_identity(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    body = parse_body(IdentityPatch, await read_object(request))
    changes = body.model_dump(exclude_none=True)
    device_of(request).edit_config(lambda data: data["device"].update(changes))
    return web.json_response(_system(request))


@routes.get("/api/v1/system/backup")
@spec("Download the configuration (YAML)", role=Role.ADMIN, content_type="application/yaml")
async def get_backup(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    device = device_of(request)
    name = f"camio-{device.config.device.serial}-r{device.revision}.yaml"
    return web.Response(
        text=dump_yaml(device.config, device.revision),
        content_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@routes.post("/api/v1/system/restore")
@spec("Restore a configuration backup (YAML body)", role=Role.ADMIN, response=Revision)
async def post_restore(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    raw = await request.read()
    if len(raw) > 2 * 1024 * 1024:
        raise BadRequest("backup larger than 2 MiB", status=413)
    try:
        config = load_yaml_text(raw.decode("utf-8"), DeviceConfig)
    except UnicodeDecodeError:
        raise BadRequest("the backup is not UTF-8 text") from None
    except ConfigFileError as exc:
        raise InvalidRequest("; ".join(exc.messages)) from None
    revision = device_of(request).update_config(config)
    return web.json_response({"revision": revision})


@routes.post("/api/v1/system/factory-reset")
@spec(
    "Restore the default configuration (accounts are kept)",
    role=Role.ADMIN,
    body=ResetBody,
    response=Revision,
)
async def post_factory_reset(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    body = parse_body(ResetBody, await read_object(request))
    if body.confirm.strip().lower() != FACTORY_RESET_CONFIRMATION:
        raise InvalidRequest(f"confirm: type {FACTORY_RESET_CONFIRMATION!r} to reset")
    device = device_of(request)
    defaults = DeviceConfig(device=device.config.device)  # the device keeps its identity
    revision = device.update_config(defaults)
    return web.json_response({"revision": revision})


@routes.get("/api/v1/system/tls")
@spec("The HTTPS certificate in use", role=Role.ADMIN)
async def get_tls(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    hooks = _hooks(request)
    return web.json_response(hooks.tls_info() if hooks else {})


@routes.put("/api/v1/system/tls")
@spec("Replace the HTTPS certificate and key (PEM)", role=Role.ADMIN, body=TlsBody)
async def put_tls(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    body = parse_body(TlsBody, await read_object(request))
    hooks = _hooks(request)
    if hooks is None:
        raise InvalidRequest("HTTPS is not served by this process")
    try:
        info = hooks.install_tls(body.certificate, body.private_key)
    except ValueError as exc:
        raise InvalidRequest(f"certificate: {exc}") from None
    return web.json_response(info)


@routes.put("/api/v1/system/http")
@spec(
    "Plain HTTP: both, redirect to HTTPS, or off",
    role=Role.ADMIN,
    body=HttpModeBody,
    response=SystemInfo,
)
async def put_http(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    body = parse_body(HttpModeBody, await read_object(request))
    device_of(request).edit_config(lambda data: data["network"].update(http_mode=body.mode))
    return web.json_response(_system(request))


@routes.get("/api/v1/audit")
@spec(
    "The audit log: logins, failed logins, configuration changes, manual control", role=Role.ADMIN
)
async def get_audit(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    query = query_from(request)
    audit_query = EventQuery(
        after=query.after,
        before=query.before,
        since_ns=query.since_ns,
        until_ns=query.until_ns,
        topic="audit/*",
        source=query.source,
        limit=query.limit,
        newest_first=query.newest_first,
    )
    events = device_of(request).events(audit_query)
    return web.json_response({"events": [e.to_dict() for e in events]})


@routes.get("/api/v1/events.csv")
@spec(
    "The event log as CSV (same filters as /api/v1/events)",
    role=Role.VIEWER,
    content_type="text/csv",
)
async def get_events_csv(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    events = device_of(request).events(query_from(request))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "time", "topic", "source", "kind", "data", "cause"])
    for event in events:
        row = event.to_dict()
        writer.writerow(
            [
                row["id"],
                row["time"],
                row["topic"],
                row["source"],
                row["kind"],
                json.dumps(row["data"], separators=(",", ":")),
                json.dumps(row["cause"], separators=(",", ":")) if row["cause"] else "",
            ]
        )
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="camio-events.csv"'},
    )
