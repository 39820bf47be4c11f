"""Routes for the event log and the live event stream (WebSocket)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections import OrderedDict

from aiohttp import WSCloseCode, WSMsgType, web

from camio.api.context import caller, device_of
from camio.api.models import EventQueryParams, Q, StreamQueryParams
from camio.api.schemas import EventList
from camio.api.spec import spec
from camio.core.events import Event
from camio.engine.bus import QueueSubscription
from camio.engine.persistence import EventQuery, matches
from camio.store.users import Role

routes = web.RouteTableDef()

#: The event streams open now, so the daemon can close them when it stops (a browser tab left
#: open must not keep the process alive).
STREAMS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("event_streams", set)


# Every open stream sends the same event: encode it once. Keyed by object identity (several
# simulated devices in one process number their events alike); holding the event keeps its
# id from being reused while it is cached.
_ENCODED: OrderedDict[int, tuple[Event, str]] = OrderedDict()
_ENCODED_SIZE = 256


def encode_event(event: Event) -> str:
    """The event's JSON text, shared by every stream that sends it."""
    hit = _ENCODED.get(id(event))
    if hit is not None and hit[0] is event:
        return hit[1]
    text = json.dumps(event.to_dict())
    _ENCODED[id(event)] = (event, text)
    if len(_ENCODED) > _ENCODED_SIZE:
        _ENCODED.popitem(last=False)
    return text


async def close_streams(app: web.Application) -> None:
    """``on_shutdown``: tell every stream client the device is going away (1001)."""
    for ws in list(app.get(STREAMS, ())):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"device stopping")


MAX_LIMIT = 1000
#: How many events a stream client may fall behind (queued, not yet sent) before it is
#: disconnected; a module constant so that tests can make it small.
STREAM_QUEUE_SIZE = 10_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


_NS_MIN, _NS_MAX = -(1 << 63), (1 << 63) - 1


def _time_ns(stamp: dt.datetime | None) -> int | None:
    """Epoch nanoseconds of ``stamp`` (UTC when it has no offset), clamped to the range the
    event log can store: a far-off ``since`` or ``until`` just matches nothing, or everything.
    """
    if stamp is None:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    # Integer arithmetic: a float timestamp is off by up to ~100 ns today, enough to drop an
    # event whose own time was given as ``since``.
    ns = (stamp - _EPOCH) // dt.timedelta(microseconds=1) * 1000
    return min(max(ns, _NS_MIN), _NS_MAX)


def query_params(request: web.Request, model: type[Q]) -> Q:
    """The query string validated by ``model`` (its errors are a 422 naming the parameter).

    An empty value (``limit=``) counts as absent; a repeated parameter counts once (the first).
    """
    values: dict[str, str] = {}
    for key, value in request.query.items():
        if value != "" and key not in values:
            values[key] = value
    return model.model_validate(values)


def query_from(request: web.Request) -> EventQuery:
    """Filters shared by the log and the stream: topic (``x*`` = prefix), source, times."""
    params = query_params(request, EventQueryParams)
    return EventQuery(
        after=params.after,
        before=params.before,
        since_ns=_time_ns(params.since),
        until_ns=_time_ns(params.until),
        topic=params.topic,
        source=params.source,
        limit=min(params.limit or 100, MAX_LIMIT),
        newest_first=params.order == "desc",
    )


@routes.get("/api/v1/events")
@spec(
    "The event log, oldest first; page with after=<last_id> and limit",
    role=Role.VIEWER,
    response=EventList,
    query=EventQueryParams,
)
async def list_events(request: web.Request) -> web.Response:
    """The event log, oldest first; page with ``after=<last id>`` and ``limit``."""
    caller(request, Role.VIEWER)
    query = query_from(request)
    events = device_of(request).events(query)
    page = EventList.model_validate(
        {
            "events": [e.to_dict() for e in events],
            "last_id": max(e.id for e in events) if events else None,
        }
    )
    # ``last_id`` is absent (not null) on an empty page.
    return web.Response(
        text=page.model_dump_json(exclude=None if events else {"last_id"}),
        content_type="application/json",
    )


@routes.get("/api/v1/events/stream")
@spec(
    "Live events over a WebSocket: the state of every stateful source, then every change",
    role=Role.VIEWER,
    query=StreamQueryParams,
)
async def stream_events(request: web.Request) -> web.WebSocketResponse:
    """Live events: the current state of every stateful source first, then every change."""
    caller(request, Role.VIEWER)
    query = query_from(request)
    filters = EventQuery(topic=query.topic, source=query.source)
    replay = query_params(request, StreamQueryParams).initial not in ("0", "false", "no")
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
    await ws.prepare(request)
    device = device_of(request)

    def accept(event: Event) -> bool:
        return matches(event, filters)

    def too_slow() -> None:
        # The client fell STREAM_QUEUE_SIZE events behind. If it stopped reading, this handler
        # is blocked in a send (TCP backpressure: the transport holds unsent data) and would
        # never look at the queue again, nor could a close frame reach the client: cut the
        # connection. Otherwise the loop below sees ``overflowed`` and closes with 1013.
        transport = request.transport
        if transport is not None and transport.get_write_buffer_size() > 0:
            transport.abort()

    sub = QueueSubscription(
        device.bus,
        accept=accept,
        replay_state=replay,
        maxsize=STREAM_QUEUE_SIZE,
        on_overflow=too_slow,
    )
    reader = asyncio.get_running_loop().create_task(_drain_client(ws))
    open_streams = request.app.get(STREAMS)
    if open_streams is not None:
        open_streams.add(ws)
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
                await ws.send_str(encode_event(getter.result()))
                # Then whatever else is queued, before waiting again: a wait takes several
                # loop iterations, and a client that reads must not fall behind (and be cut)
                # only because events were published faster than one per wait.
                queue = sub.queue
                while not queue.empty() and not sub.overflowed and not ws.closed:
                    await ws.send_str(encode_event(queue.get_nowait()))
            except ConnectionError:
                # Reset by the client, or lost while waiting for it to read (aiohttp raises
                # a plain ConnectionError then): nobody is left to send to.
                break
    finally:
        if open_streams is not None:
            open_streams.discard(ws)
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
