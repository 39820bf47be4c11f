"""``GET /ISAPI/Event/notification/alertStream``: the device's events as a multipart stream.

The reply is ``multipart/mixed; boundary=boundary``, sent chunked with one HTTP chunk per part
(pyhik reads 512-byte blocks: without chunking an alert would wait for the next one to fill
the block). Each part::

    --boundary\\r\\n
    Content-Type: application/xml; charset="UTF-8"\\r\\n
    Content-Length: <n>\\r\\n
    \\r\\n
    <EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
    ...one element per line...
    </EventNotificationAlert>\\r\\n

pyhik only parses alerts whose opening and closing tags are on lines of their own, so the
document is never written on one line.

* An input that goes into alarm (active and armed) sends ``eventType IO``, ``eventState
  active``, its 1-based ``inputIOPortID`` (no ``channelID``: pyhik would take that for the
  port), and the alert is sent again every ``alert_repeat_ms`` (1 s, as devices do) with a
  growing ``activePostCount`` while it lasts; clients that never see ``inactive`` (pyhik
  resets a sensor not refreshed for 5 s) rely on it. Leaving the alarm sends ``inactive``.
  A client that connects while an input is in alarm gets its ``active`` alert at once.
* After ``heartbeat_s`` without a part, a ``videoloss`` / ``inactive`` alert keeps the
  connection alive, as cameras do (pyhik's watchdog counts on it; it gives up after 60 s).
* Output changes are not alerts (devices do not send them); clients poll their status.

Each stream is one bus subscription, closed when the client goes away, when the dialect is
turned off, or at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

from aiohttp import web

from camio.api.spec import spec
from camio.core.clock import NS_PER_S
from camio.core.events import Event, Topic
from camio.dialects.isapi.common import DIALECT, NS, IsapiError, caller, device_of, handled
from camio.dialects.isapi.identity import hik_identity
from camio.dialects.isapi.numbering import HikNumbering
from camio.engine.device import Device
from camio.store.users import Role

routes = web.RouteTableDef()

BOUNDARY: Final = "boundary"
#: How often a quiet stream looks whether its client is still connected.
_POLL_S = 0.5
#: Open alert streams per app, cancelled at shutdown.
STREAMS: Final = web.AppKey("isapi_alert_streams", set[asyncio.Task[None]])
#: Open alert streams per device at most; more are refused with 503 (Device Busy).
MAX_STREAMS = 64


def _alarms(device: Device) -> set[str]:
    """The inputs in alarm now: active (which implies enabled) and armed."""
    found: set[str] = set()
    for port in HikNumbering(device).inputs():
        status = device.port_status(port.port_id, dump_config=False)
        if status["active"] and status["armed"]:
            found.add(port.port_id)
    return found


class _Writer:
    """Formats and writes the parts of one stream."""

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        self._request = request
        self._response = response
        device = device_of(request)
        self._device = device
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        address = sockname if isinstance(sockname, tuple) and len(sockname) >= 2 else ("", 0)
        self._ip = str(address[0])
        self._port = str(address[1])
        self._protocol = "HTTPS" if request.secure else "HTTP"
        self._mac = hik_identity(device.config.device).mac

    def _time(self, wall_ns: int) -> str:
        try:
            zone = ZoneInfo(self._device.config.device.timezone)
        except (KeyError, ValueError):
            zone = ZoneInfo("UTC")
        moment = datetime.fromtimestamp(wall_ns // NS_PER_S, tz=UTC).astimezone(zone)
        return moment.isoformat(timespec="seconds")

    async def alert(
        self,
        *,
        event_type: str,
        state: str,
        description: str,
        count: int,
        port: int | None = None,
        channel: int | None = None,
        wall_ns: int | None = None,
    ) -> None:
        when = self._time(self._device.clock.wall_ns() if wall_ns is None else wall_ns)
        lines = [
            f'<EventNotificationAlert version="2.0" xmlns="{NS}">',
            f"<ipAddress>{self._ip}</ipAddress>",
            f"<portNo>{self._port}</portNo>",
            f"<protocol>{self._protocol}</protocol>",
            f"<macAddress>{self._mac}</macAddress>",
        ]
        if channel is not None:
            lines.append(f"<channelID>{channel}</channelID>")
        lines += [
            f"<dateTime>{when}</dateTime>",
            f"<activePostCount>{count}</activePostCount>",
            f"<eventType>{event_type}</eventType>",
            f"<eventState>{state}</eventState>",
            f"<eventDescription>{description}</eventDescription>",
        ]
        if port is not None:
            lines.append(f"<inputIOPortID>{port}</inputIOPortID>")
        lines.append("</EventNotificationAlert>")
        body = "\r\n".join(lines).encode()
        head = (
            f"--{BOUNDARY}\r\n"
            f'Content-Type: application/xml; charset="UTF-8"\r\n'
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        await self._response.write(head + body + b"\r\n")

    async def io(self, device: Device, port_id: str, active: bool, count: int) -> None:
        hik = HikNumbering(device).of(port_id)
        if hik is None or hik.direction != "input":
            return
        await self.alert(
            event_type="IO",
            state="active" if active else "inactive",
            description="IO alarm",
            count=count,
            port=hik.hik_id,
        )

    async def heartbeat(self) -> None:
        await self.alert(
            event_type="videoloss",
            state="inactive",
            description="videoloss alarm",
            count=0,
            channel=1,
        )


async def _stream(
    request: web.Request, response: web.StreamResponse, queue: asyncio.Queue[Event | None]
) -> None:
    device = device_of(request)
    writer = _Writer(request, response)
    loop = asyncio.get_running_loop()
    config = device.config.dialects.isapi
    alarms: dict[str, int] = {}  # port id -> activePostCount
    for port_id in sorted(_alarms(device), key=device.port_ids().index):
        alarms[port_id] = 1
        await writer.io(device, port_id, True, 1)
    repeat_at = loop.time() + config.alert_repeat_ms / 1000
    heartbeat_at = loop.time() + config.heartbeat_s
    while True:
        config = device.config.dialects.isapi
        transport = request.transport
        if not config.enabled or transport is None or transport.is_closing():
            return  # the dialect was turned off, or the client went away
        now = loop.time()
        if alarms and now >= repeat_at:
            for port_id in list(alarms):
                alarms[port_id] += 1
                await writer.io(device, port_id, True, alarms[port_id])
            repeat_at = now + config.alert_repeat_ms / 1000
            heartbeat_at = now + config.heartbeat_s
        if now >= heartbeat_at:
            await writer.heartbeat()
            heartbeat_at = now + config.heartbeat_s
        due = heartbeat_at if not alarms else min(heartbeat_at, repeat_at)
        try:
            item = await asyncio.wait_for(queue.get(), max(0.0, min(_POLL_S, due - now)))
        except TimeoutError:
            continue
        if item is None or item.topic == Topic.CONFIG_CHANGED:
            # A configuration change (ports renumbered, disabled, disarmed) or a lost event:
            # compare the alarms with the device's state.
            wanted = _alarms(device)
            changes = [(p, True) for p in device.port_ids() if p in wanted and p not in alarms]
            changes += [(p, False) for p in list(alarms) if p not in wanted]
        else:
            changes = [(item.source, bool(item.data.get("active") and item.data.get("armed")))]
        for port_id, alarm in changes:
            if alarm and port_id not in alarms:
                if not alarms:
                    repeat_at = loop.time() + config.alert_repeat_ms / 1000
                alarms[port_id] = 1
                await writer.io(device, port_id, True, 1)
            elif not alarm and port_id in alarms:
                del alarms[port_id]
                await writer.io(device, port_id, False, 0)
            else:
                continue
            heartbeat_at = loop.time() + config.heartbeat_s


@routes.get("/ISAPI/Event/notification/alertStream")
@spec("ISAPI: the event stream (multipart XML alerts)", role=Role.VIEWER, dialect=DIALECT)
@handled
async def alert_stream(request: web.Request) -> web.StreamResponse:
    caller(request, Role.VIEWER)
    if len(request.app.get(STREAMS, ())) >= MAX_STREAMS:
        raise IsapiError(503, 2, "deviceBusy", "too many alert streams")
    device = device_of(request)
    queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=256)

    def accept(event: Event) -> bool:
        return (event.topic == Topic.INPUT and event.source in device.inputs) or (
            event.topic == Topic.CONFIG_CHANGED
        )

    def on_event(event: Event) -> None:
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:
            # A client far behind: drop the backlog, then resynchronise from the state.
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)

    subscription = device.subscribe(on_event, accept=accept, replay_state=False)
    task = asyncio.current_task()
    streams = request.app.get(STREAMS)
    if task is not None and streams is not None:
        streams.add(task)
    response = web.StreamResponse(
        headers={
            "Content-Type": f"multipart/mixed; boundary={BOUNDARY}",
            "Cache-Control": "no-cache",
        }
    )
    response.enable_chunked_encoding()
    response.force_close()
    try:
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            await _stream(request, response, queue)
        return response
    finally:
        subscription.close()
        if task is not None and streams is not None:
            streams.discard(task)


async def close_streams(app: web.Application) -> None:
    for task in list(app.get(STREAMS, ())):
        task.cancel()
