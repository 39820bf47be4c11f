"""Routes for the event log and the live event stream (WebSocket)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json

from aiohttp import WSMsgType, web

from camio.api.context import caller, device_of
from camio.api.errors import BadRequest
from camio.core.events import Event
from camio.engine.bus import QueueSubscription
from camio.engine.persistence import EventQuery, matches
from camio.store.users import Role

routes = web.RouteTableDef()

MAX_LIMIT = 1000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _int_param(request: web.Request, name: str, *, minimum: int = 0) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}: must be an integer", status=422) from None
    if value < minimum:
        raise BadRequest(f"{name}: must be >= {minimum}", status=422)
    return value


def _time_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        stamp = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}: must be an ISO 8601 time", status=422) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    # Integer arithmetic: a float timestamp is off by up to ~100 ns today, enough to drop an
    # event whose own time was given as ``since``.
    return (stamp - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def query_from(request: web.Request) -> EventQuery:
    """Filters shared by the log and the stream: topic (``x*`` = prefix), source, times."""
    limit = _int_param(request, "limit", minimum=1) or 100
    order = request.query.get("order", "asc")
    if order not in ("asc", "desc"):
        raise BadRequest("order: must be 'asc' or 'desc'", status=422)
    return EventQuery(
        after=_int_param(request, "after"),
        before=_int_param(request, "before"),
        since_ns=_time_param(request, "since"),
        until_ns=_time_param(request, "until"),
        topic=request.query.get("topic") or None,
        source=request.query.get("source") or None,
        limit=min(limit, MAX_LIMIT),
        newest_first=order == "desc",
    )


@routes.get("/api/v1/events")
async def list_events(request: web.Request) -> web.Response:
    """The event log, oldest first; page with ``after=<last id>`` and ``limit``."""
    caller(request, Role.VIEWER)
    query = query_from(request)
    events = device_of(request).events(query)
    body: dict[str, object] = {"events": [e.to_dict() for e in events]}
    if events:
        body["last_id"] = max(e.id for e in events)
    return web.json_response(body)


@routes.get("/api/v1/events/stream")
async def stream_events(request: web.Request) -> web.WebSocketResponse:
    """Live events: the current state of every stateful source first, then every change."""
    caller(request, Role.VIEWER)
    query = query_from(request)
    filters = EventQuery(topic=query.topic, source=query.source)
    replay = request.query.get("initial", "1") not in ("0", "false", "no")
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
    await ws.prepare(request)
    device = device_of(request)

    def accept(event: Event) -> bool:
        return matches(event, filters)

    sub = QueueSubscription(device.bus, accept=accept, replay_state=replay)
    reader = asyncio.get_running_loop().create_task(_drain_client(ws))
    try:
        while not ws.closed:
            getter = asyncio.ensure_future(sub.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done or reader in done or ws.closed:
                # The client closed (or went away): nobody is left to send to.
                getter.cancel()
                break
            if sub.overflowed:
                await ws.close(code=1013, message=b"consumer too slow; reconnect")
                break
            try:
                await ws.send_str(json.dumps(getter.result().to_dict()))
            except ConnectionResetError:
                break
    finally:
        sub.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await ws.close()
    return ws


async def _drain_client(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) what the client sends, so a close from its side ends the stream."""
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
