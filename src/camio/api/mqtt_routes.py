"""The MQTT client's status: connection state, broker, counters (the password masked).

The MQTT settings themselves are the ``mqtt`` section of the configuration
(``GET``/``PUT /api/v1/config``); this route shows what the client does with them.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from camio.api.context import caller, device_of
from camio.api.schemas import Out, respond
from camio.api.spec import spec
from camio.core.events import iso_utc
from camio.mqtt import MQTT
from camio.store.users import Role

routes = web.RouteTableDef()


class MqttStatus(Out):
    enabled: bool
    state: Literal["disabled", "connecting", "connected", "disconnected"]
    broker: str
    protocol: Literal["3.1.1", "5"]
    tls: bool
    client_id: str
    node_id: str
    topic_prefix: str
    username: str | None
    password: Literal["********"] | None
    since: str
    last_error: str | None
    next_retry_s: float | None
    connects: int
    messages_in: int
    messages_out: int
    messages_dropped: int
    commands_done: int
    commands_refused: int
    commands_ignored: int
    acked_event_id: int
    replayed_events: int
    subscriptions: dict[str, str]
    condition_filters: list[str]
    discovery_entities: int


@routes.get("/api/v1/mqtt")
@spec(
    "The MQTT client: connection state since when, last error, messages in and out",
    role=Role.VIEWER,
    response=MqttStatus,
    tags=("mqtt",),
)
async def mqtt_status(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    device = device_of(request)
    service = device.services.get(MQTT)
    if service is not None:
        return respond(MqttStatus, service.status())
    cfg = device.config.mqtt
    node = cfg.node(device.config.device.serial)
    return respond(
        MqttStatus,
        {
            "enabled": cfg.enabled,
            "state": "disabled",
            "broker": f"{cfg.host}:{cfg.port}",
            "protocol": cfg.protocol,
            "tls": cfg.tls.enabled,
            "client_id": cfg.client_id or f"camio-{node}",
            "node_id": node,
            "topic_prefix": cfg.topic_prefix,
            "username": cfg.username,
            "password": "********" if cfg.password else None,
            "since": iso_utc(device.stats.started_wall_ns),
            "last_error": None,
            "next_retry_s": None,
            "connects": 0,
            "messages_in": 0,
            "messages_out": 0,
            "messages_dropped": 0,
            "commands_done": 0,
            "commands_refused": 0,
            "commands_ignored": 0,
            "acked_event_id": 0,
            "replayed_events": 0,
            "subscriptions": {},
            "condition_filters": [],
            "discovery_entities": 0,
        },
    )
