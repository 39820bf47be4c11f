"""VAPIX event streaming over WebSocket (what axis v69+ and Home Assistant 2026.5+ use).

1. ``GET /axis-cgi/wssession.cgi`` (HTTP auth, any role) answers a token: ``text/plain``,
   single use, valid :data:`TOKEN_LIFETIME_S` seconds; at most :data:`MAX_TOKENS` are
   outstanding (the oldest is dropped).
2. ``GET /vapix/ws-data-stream?sources=events&wssession=<token>`` upgrades; the token is the
   credential. Without a token the upgrade may carry HTTP credentials instead (the client
   falls back to Basic when wssession.cgi fails).
3. The client sends ``events:configure`` (``eventFilterList`` of ``topicFilter``s); the first
   frame of the server is its answer, ``data: {}``. Then one ``events:notify`` per current
   state (the client counts the first message per source as Initialized), then every change.

Pings are answered (aiohttp's autoping); a client that falls too far behind is disconnected
rather than buffered, like the native event stream; every stream ends with 1001 when the
device stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import WSCloseCode, WSMsgType, web

from camio.api.auth import REALM_AUTH_KEY, require_role
from camio.api.context import DEVICE
from camio.api.spec import spec
from camio.core.events import Event, Topic
from camio.dialects.vapix.common import DIALECT
from camio.dialects.vapix.events import MAPPED_TOPICS, AxisEventMapper, TopicFilter, render_json
from camio.engine.bus import QueueSubscription
from camio.engine.device import Device
from camio.store.users import Role

routes = web.RouteTableDef()

TOKEN_LIFETIME_S: Final = 15
MAX_TOKENS: Final = 256
#: How long the client has to send events:configure after the upgrade.
CONFIGURE_TIMEOUT_S: Final = 30.0
#: Events a client may fall behind before it is disconnected (a module constant for tests).
QUEUE_SIZE = 10_000
#: Open streams per device at most; more are refused with 503.
MAX_STREAMS: Final = 64
API_VERSION: Final = "1.0"


@dataclass(slots=True)
class WsState:
    """Per application: outstanding tokens and open streams."""

    tokens: OrderedDict[str, int] = field(default_factory=OrderedDict)  # token -> expiry ns
    streams: set[web.WebSocketResponse] = field(default_factory=set)


_STATES: weakref.WeakKeyDictionary[web.Application, WsState] = weakref.WeakKeyDictionary()


def ws_state(app: web.Application) -> WsState:
    """The token store and open streams of ``app`` (created on first use)."""
    state = _STATES.get(app)
    if state is None:
        state = _STATES[app] = WsState()
    return state


def _now_ns(device: Device) -> int:
    return device.clock.monotonic_ns()


def issue_token(state: WsState, device: Device) -> str:
    now = _now_ns(device)
    _expire(state, now)
    token = secrets.token_hex(16)
    state.tokens[token] = now + TOKEN_LIFETIME_S * 1_000_000_000
    while len(state.tokens) > MAX_TOKENS:
        state.tokens.popitem(last=False)
    return token


def redeem_token(state: WsState, device: Device, token: str) -> bool:
    """True once for a valid, unexpired token; it is gone afterwards."""
    now = _now_ns(device)
    _expire(state, now)
    expiry = state.tokens.pop(token, None)
    return expiry is not None and expiry > now


def _expire(state: WsState, now: int) -> None:
    tokens = state.tokens
    while tokens:
        token, expiry = next(iter(tokens.items()))
        if expiry > now:
            break
        del tokens[token]


@routes.get("/axis-cgi/wssession.cgi")
@spec(
    "A single-use token (valid 15 s) for the VAPIX event WebSocket",
    role=Role.VIEWER,
    response=None,
    content_type="text/plain",
    tags=("vapix",),
    dialect=DIALECT,
)
async def wssession(request: web.Request) -> web.Response:
    require_role(request, Role.VIEWER)
    token = issue_token(ws_state(request.app), request.app[DEVICE])
    return web.Response(
        text=token, content_type="text/plain", headers={"Cache-Control": "no-store"}
    )


def _reply(
    context: Any, method: Any, *, data: Any = None, error: tuple[int, str] | None = None
) -> str:
    out: dict[str, Any] = {"apiVersion": API_VERSION}
    if context is not None:
        out["context"] = context
    out["method"] = method
    if error is not None:
        out["error"] = {"code": error[0], "message": error[1]}
    else:
        out["data"] = {} if data is None else data
    return json.dumps(out, separators=(",", ":"))


def _configure(message: dict[str, Any]) -> TopicFilter | tuple[int, str]:
    """The filter an events:configure asks for, or an error (code, message)."""
    params = message.get("params")
    if params is None:
        return TopicFilter.all()
    if not isinstance(params, dict):
        return 2104, "params must be an object"
    filters = params.get("eventFilterList")
    if filters is None:
        return TopicFilter.all()
    if not isinstance(filters, list) or len(filters) > 64:
        return 2104, "eventFilterList must be a list"
    expressions: list[str] = []
    for item in filters:
        if not isinstance(item, dict):
            return 2104, "every eventFilterList item must be an object"
        topic = item.get("topicFilter")
        if topic is None:
            expressions.append("//.")
        elif isinstance(topic, str) and len(topic) <= 4096:
            expressions.append(topic)
        else:
            return 2104, "topicFilter must be a string"
    return TopicFilter.parse(expressions) if expressions else TopicFilter.all()


def _authenticated(request: web.Request) -> bool:
    """A valid single-use token, else HTTP credentials on the upgrade (401 if neither)."""
    state = ws_state(request.app)
    device = request.app[DEVICE]
    token = request.query.get("wssession")
    if token and redeem_token(state, device, token):
        return True
    if REALM_AUTH_KEY not in request:
        raise web.HTTPUnauthorized(text="a wssession token is required")
    authenticator = request[REALM_AUTH_KEY]  # realm AXIS_<serial>, with its Basic setting
    user = authenticator.check_request(request)  # raises 401 (with challenges) or 429
    return user.role.allows(Role.VIEWER)


@routes.get("/vapix/ws-data-stream")
@spec(
    "VAPIX event stream over WebSocket: authenticated by a wssession token (or HTTP auth)",
    role=None,
    response=None,
    tags=("vapix",),
    dialect=DIALECT,
)
async def ws_data_stream(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise web.HTTPBadRequest(text="a WebSocket upgrade is expected here")
    sources = request.query.get("sources", "events")
    if "events" not in sources.split(","):
        raise web.HTTPBadRequest(text="only sources=events is supported")
    if not _authenticated(request):
        raise web.HTTPForbidden(text="forbidden")
    state = ws_state(request.app)
    if len(state.streams) >= MAX_STREAMS:
        raise web.HTTPServiceUnavailable(text="too many event streams")
    device: Device = request.app[DEVICE]
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024, autoping=True)
    await ws.prepare(request)
    state.streams.add(ws)
    try:
        await _serve(request, ws, device)
    finally:
        state.streams.discard(ws)
        await ws.close()
    return ws


async def _next_text(ws: web.WebSocketResponse) -> dict[str, Any] | None:
    """The next JSON object the client sends; None when it closes or sends binary."""
    while True:
        msg = await ws.receive()
        if msg.type is WSMsgType.TEXT:
            try:
                parsed = json.loads(msg.data)
            except ValueError:
                await ws.send_str(_reply(None, None, error=(4002, "invalid JSON")))
                continue
            if isinstance(parsed, dict):
                return parsed
            await ws.send_str(_reply(None, None, error=(4002, "expected a JSON object")))
            continue
        if msg.type in (WSMsgType.PING, WSMsgType.PONG):
            continue
        return None


async def _serve(request: web.Request, ws: web.WebSocketResponse, device: Device) -> None:
    # 1. events:configure first; its answer is the first frame we send.
    topic_filter: TopicFilter | None = None
    try:
        async with asyncio.timeout(CONFIGURE_TIMEOUT_S):
            while topic_filter is None:
                message = await _next_text(ws)
                if message is None:
                    return
                topic_filter = await _answer(ws, message)
    except TimeoutError:
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"events:configure expected")
        return
    # 2. Current states, then changes, until the client or the device goes.
    incoming: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(16)
    stopping = asyncio.Event()

    def too_slow() -> None:
        transport = request.transport
        if transport is not None and transport.get_write_buffer_size() > 0:
            transport.abort()

    def accept(event: Event) -> bool:
        if event.topic == Topic.DEVICE_STOPPING:
            stopping.set()
            return False
        if event.topic == Topic.CONFIG_CHANGED and not device.config.dialects.vapix.enabled:
            stopping.set()  # the dialect was turned off: it serves nothing any more
            return False
        return event.topic in MAPPED_TOPICS

    mapper = AxisEventMapper(device)
    sub = QueueSubscription(
        device.bus, accept=accept, replay_state=True, maxsize=QUEUE_SIZE, on_overflow=too_slow
    )
    if not device.config.dialects.vapix.enabled:  # turned off before the subscription
        stopping.set()
    reader = asyncio.get_running_loop().create_task(_read(ws, incoming))
    stop_wait = asyncio.get_running_loop().create_task(stopping.wait())
    try:
        while not ws.closed:
            getter = asyncio.ensure_future(sub.get())
            message_getter = asyncio.ensure_future(incoming.get())
            done, _ = await asyncio.wait(
                {getter, message_getter, stop_wait}, return_when=asyncio.FIRST_COMPLETED
            )
            if getter not in done:
                getter.cancel()
            if message_getter not in done:
                message_getter.cancel()
            if stop_wait in done:
                reason = b"device stopping" if device.config.dialects.vapix.enabled else b"off"
                await ws.close(code=WSCloseCode.GOING_AWAY, message=reason)
                break
            if sub.overflowed:
                await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"consumer too slow")
                break
            try:
                if message_getter in done:
                    message = message_getter.result()
                    if message is None:
                        break  # the client closed
                    new_filter = await _answer(ws, message)
                    if new_filter is not None:
                        topic_filter = new_filter
                if getter in done:
                    await _send(ws, mapper, topic_filter, getter.result())
                    queue = sub.queue
                    while not queue.empty() and not sub.overflowed and not ws.closed:
                        await _send(ws, mapper, topic_filter, queue.get_nowait())
            except ConnectionError:
                break
    finally:
        sub.close()
        for task in (reader, stop_wait):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _send(
    ws: web.WebSocketResponse, mapper: AxisEventMapper, topic_filter: TopicFilter, event: Event
) -> None:
    for msg in mapper.map(event):
        if topic_filter.matches(msg.topic):
            await ws.send_str(render_json(msg))


async def _answer(ws: web.WebSocketResponse, message: dict[str, Any]) -> TopicFilter | None:
    """Answer one client request; the new filter for an accepted events:configure."""
    context = message.get("context")
    method = message.get("method")
    if method != "events:configure":
        await ws.send_str(_reply(context, method, error=(2002, "method not supported")))
        return None
    api_version = message.get("apiVersion", API_VERSION)
    if not isinstance(api_version, str) or not api_version.startswith("1."):
        await ws.send_str(_reply(context, method, error=(2001, "apiVersion not supported")))
        return None
    result = _configure(message)
    if isinstance(result, tuple):
        await ws.send_str(_reply(context, method, error=result))
        return None
    await ws.send_str(_reply(context, method))
    return result


async def _read(ws: web.WebSocketResponse, incoming: asyncio.Queue[dict[str, Any] | None]) -> None:
    """Pass the client's requests on; None when it closes (or sends binary)."""
    try:
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.TEXT:
                try:
                    parsed = json.loads(msg.data)
                except ValueError:
                    continue
                if isinstance(parsed, dict):
                    await incoming.put(parsed)
                continue
            if msg.type in (WSMsgType.PING, WSMsgType.PONG):
                continue
            break
    finally:
        with contextlib.suppress(asyncio.QueueFull):
            incoming.put_nowait(None)
