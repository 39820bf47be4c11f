"""Recipients (where notifications go), their Test button, and the outbox.

Secrets in a recipient (passwords, private keys) are write-only: answers carry
:data:`PLACEHOLDER` where one is set, and a PUT that sends the placeholder back keeps the stored
value, so a form can round-trip a recipient without ever seeing its password.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import ConfigDict

from camio.api.context import caller, device_of
from camio.api.errors import new_item_id, read_object, same_id
from camio.api.schemas import Out, respond
from camio.api.spec import spec
from camio.core.recipients import RecipientSpec
from camio.engine.device import Device
from camio.engine.errors import InvalidRequest
from camio.store.users import Role

routes = web.RouteTableDef()

PLACEHOLDER = "********"
SECRET_FIELDS = frozenset({"password", "private_key", "private_key_passphrase", "passphrase"})


class RecipientState(Out):
    recipient: str
    state: Literal["ok", "retrying", "failing"]
    since_wall_ns: int | None
    last_error: str | None
    pending: int


class RecipientStatus(RecipientSpec):
    """A recipient as configured (secrets masked) with its delivery state; ``kind`` decides
    the other fields."""

    model_config = ConfigDict(extra="allow")

    status: RecipientState


class RecipientList(Out):
    recipients: list[RecipientStatus]


class RecipientTestResult(Out):
    ok: bool
    message: str


class DeliveryOut(Out):
    id: int
    recipient: str
    key: str
    subject: str
    state: Literal["queued", "retrying", "delivered", "failed", "expired"]
    attempts: int
    created_wall_ns: int
    next_attempt_wall_ns: int
    last_error: str | None


class OutboxStatus(Out):
    deliveries: list[DeliveryOut]
    recipients: list[RecipientState]


def _masked(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (PLACEHOLDER if k in SECRET_FIELDS and v else v) for k, v in data.items()}


def _status(device: Device, recipient_id: str) -> dict[str, Any]:
    spec_ = device.recipient(recipient_id)
    out = _masked(spec_.model_dump(mode="json"))
    out["status"] = device.recipient_states().get(recipient_id) or {
        "recipient": recipient_id,
        "state": "ok",
        "since_wall_ns": None,
        "last_error": None,
        "pending": 0,
    }
    return out


def _keep_secrets(device: Device, body: dict[str, Any]) -> dict[str, Any]:
    """Replace placeholders by the stored secrets (only for the same recipient and kind)."""
    stored: dict[str, Any] = {}
    for existing in device.config.recipients:
        if existing.id == body.get("id") and existing.kind == body.get("kind"):
            stored = existing.model_dump(mode="json")
    out = dict(body)
    for name in SECRET_FIELDS:
        if out.get(name) == PLACEHOLDER:
            if name not in stored:
                raise InvalidRequest(f"{name}: no stored value to keep; send the secret itself")
            out[name] = stored[name]
    return out


@routes.get("/api/v1/recipients")
@spec("Every recipient with its delivery state", role=Role.VIEWER, response=RecipientList)
async def list_recipients(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    device = device_of(request)
    items = [_status(device, r.id) for r in device.config.recipients]
    return respond(RecipientList, {"recipients": items})


@routes.post("/api/v1/recipients")
@spec(
    "Create a recipient (409 if the id exists)",
    role=Role.ADMIN,
    body=RecipientSpec,
    response=RecipientStatus,
    status=201,
)
async def create_recipient(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    device = device_of(request)
    body = await read_object(request)
    recipient_id = new_item_id(body, "recipient", [r.id for r in device.config.recipients])
    device.put_recipient(_keep_secrets(device, body))
    return respond(RecipientStatus, _status(device, recipient_id), status=201)


@routes.get("/api/v1/recipients/{id}")
@spec("One recipient (secrets masked) with its state", role=Role.VIEWER, response=RecipientStatus)
async def get_recipient(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    return respond(RecipientStatus, _status(device_of(request), request.match_info["id"]))


@routes.put("/api/v1/recipients/{id}")
@spec(
    "Create or replace a recipient; a secret sent as ******** keeps the stored one",
    role=Role.ADMIN,
    body=RecipientSpec,
    response=RecipientStatus,
)
async def put_recipient(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    device = device_of(request)
    recipient_id = request.match_info["id"]
    body = same_id(await read_object(request), recipient_id)
    device.put_recipient(_keep_secrets(device, body))
    return respond(RecipientStatus, _status(device, recipient_id))


@routes.delete("/api/v1/recipients/{id}")
@spec("Delete a recipient (refused while a rule names it)", role=Role.ADMIN, status=204)
async def delete_recipient(request: web.Request) -> web.Response:
    caller(request, Role.ADMIN)
    device_of(request).delete_recipient(request.match_info["id"])
    return web.Response(status=204)


@routes.post("/api/v1/recipients/{id}/test")
@spec(
    "Try the recipient now; the message says what to fix when it fails",
    role=Role.OPERATOR,
    response=RecipientTestResult,
)
async def test_recipient(request: web.Request) -> web.Response:
    caller(request, Role.OPERATOR)
    device = device_of(request)
    recipient_id = request.match_info["id"]
    device.recipient(recipient_id)  # 404 before any network work
    ok, message = await device.test_recipient(recipient_id)
    return respond(RecipientTestResult, {"ok": ok, "message": message})


@routes.get("/api/v1/outbox")
@spec(
    "Pending and failed deliveries, and each recipient's state",
    role=Role.VIEWER,
    response=OutboxStatus,
)
async def outbox(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    return respond(OutboxStatus, device_of(request).outbox_status())
