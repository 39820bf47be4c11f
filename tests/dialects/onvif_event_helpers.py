"""Helpers for the ONVIF event tests: the real onvif-zeep-async client against the daemon,
pull points, message decoding, a push consumer on loopback, and a manual-clock device.

(A module of its own, named so no other test folder collides with it.)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import onvif
from aiohttp import web
from lxml import etree
from onvif import ONVIFCamera
from vapix_helpers import VIEWER, Server

from camio.core.clock import ManualClock
from camio.core.config import DeviceConfig
from camio.engine.device import Device
from camio.hardware.sim import SimDriver

WSDL_DIR = os.path.join(os.path.dirname(onvif.__file__), "wsdl")
PULLPOINT_NS = "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription"
DIGITAL_INPUT = "tns1:Device/Trigger/DigitalInput"
RELAY = "tns1:Device/Trigger/Relay"


async def connect(server: Server, user: tuple[str, str] = VIEWER) -> ONVIFCamera:
    """An ONVIFCamera as Home Assistant builds it, with its service addresses read."""
    cam = ONVIFCamera(server.host, server.port, user[0], user[1], wsdl_dir=WSDL_DIR, no_cache=True)
    await cam.update_xaddrs()
    return cam


@dataclass
class PullPoint:
    """A pull point created with CreatePullPointSubscription and its two client services."""

    cam: ONVIFCamera
    address: str
    created: Any
    pull: Any  # PullPointSubscription binding: PullMessages, SetSynchronizationPoint
    manager: Any  # SubscriptionManager binding: Renew, Unsubscribe

    async def messages(self, wait: str = "PT5S", limit: int = 100) -> list[Msg]:
        resp = await self.pull.PullMessages({"Timeout": wait, "MessageLimit": limit})
        return decode(resp)


async def create_pullpoint(cam: ONVIFCamera, termination: str = "PT60S", **extra: Any) -> PullPoint:
    events = await cam.create_events_service()
    created = await events.CreatePullPointSubscription(
        {"InitialTerminationTime": termination, **extra}
    )
    address = created.SubscriptionReference.Address._value_1
    cam.xaddrs[PULLPOINT_NS] = address
    pull = await cam.create_pullpoint_service()
    manager = await cam.create_subscription_service("PullPointSubscription")
    return PullPoint(cam, address, created, pull, manager)


@dataclass(frozen=True)
class Msg:
    """One decoded notification message."""

    topic: str
    operation: str
    source: tuple[str, str]
    data: tuple[str, str]
    utc_time: Any


def _items(part: Any) -> tuple[str, str]:
    item = part.SimpleItem[0]
    return str(item.Name), str(item.Value)


def decode(resp: Any) -> list[Msg]:
    """Messages of a PullMessagesResponse / Notify, as Home Assistant's parsers read them."""
    out: list[Msg] = []
    for msg in resp.NotificationMessage or []:
        topic = str(msg.Topic._value_1).rstrip("/.")
        payload = msg.Message._value_1
        out.append(
            Msg(
                topic,
                str(payload.PropertyOperation),
                _items(payload.Source),
                _items(payload.Data),
                payload.UtcTime,
            )
        )
    return out


def states(messages: list[Msg]) -> dict[tuple[str, str], str]:
    """(topic, token) -> last value."""
    return {(m.topic, m.source[1]): m.data[1] for m in messages}


@dataclass
class Consumer:
    """An aiohttp notification consumer on loopback: collects every POST body."""

    url: str
    bodies: list[bytes] = field(default_factory=list)
    status: int = 200
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def next_body(self, within: float = 5.0) -> bytes:
        seen = len(self.bodies)
        while len(self.bodies) <= seen:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), within)
        return self.bodies[seen]


@asynccontextmanager
async def consumer_server(path: str = "/notify") -> AsyncIterator[Consumer]:
    consumer = Consumer("")

    async def handle(request: web.Request) -> web.Response:
        consumer.bodies.append(await request.read())
        consumer.arrived.set()
        return web.Response(status=consumer.status)

    app = web.Application()
    app.router.add_post(path, handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    consumer.url = f"http://127.0.0.1:{port}{path}"
    try:
        yield consumer
    finally:
        await runner.cleanup()


def notify_messages(body: bytes) -> list[tuple[str, str, str, str]]:
    """(topic, operation, token, value) of each message of a raw Notify envelope."""
    ns = {
        "wsnt": "http://docs.oasis-open.org/wsn/b-2",
        "tt": "http://www.onvif.org/ver10/schema",
    }
    root = etree.fromstring(body)
    out = []
    for nm in root.iterfind(".//wsnt:Notify/wsnt:NotificationMessage", ns):
        topic = nm.findtext("wsnt:Topic", namespaces=ns) or ""
        msg = nm.find("wsnt:Message/tt:Message", ns)
        assert msg is not None
        src = msg.find("tt:Source/tt:SimpleItem", ns)
        data = msg.find("tt:Data/tt:SimpleItem", ns)
        assert src is not None and data is not None
        out.append(
            (topic, msg.get("PropertyOperation", ""), src.get("Value", ""), data.get("Value", ""))
        )
    return out


def manual_device() -> tuple[Device, ManualClock]:
    """A started device on a manual clock (wall time = now, so times look real)."""
    clock = ManualClock(wall_ns=int(dt.datetime.now(dt.UTC).timestamp() * 1e9))
    device = Device(DeviceConfig(), driver=SimDriver(), clock=clock)
    device.start()
    return device, clock
