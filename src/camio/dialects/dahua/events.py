"""eventManager.cgi: the ``attach`` event stream and ``getEventIndexes``.

Internal topics map one-to-one: ``io/input`` -> ``AlarmLocal``, ``io/output`` ->
``AlarmOutput``; ``action=Start`` when the port goes active, ``Stop`` when it goes idle,
``index`` its 0-based channel (:mod:`.numbering`).

The attach stream is ``multipart/x-mixed-replace; boundary=myboundary``, one part per event::

    --myboundary\\r\\n
    Content-Type: text/plain\\r\\n
    Content-Length: 36\\r\\n
    \\r\\n
    Code=AlarmLocal;action=Start;index=0\\r\\n
    \\r\\n

``Content-Length`` is the last header and exactly one blank line follows it: amcrest reads
``length + 2`` characters after that header. The response is *not* chunked (amcrest's
synchronous reader stops after the first event of a chunked stream): it is close-delimited,
each part written and flushed as it happens. A ``Heartbeat`` part is sent only when the
request asks for one (``&heartbeat=<s>``), since amcrest crashes on a part without ``Code``.
At attach, every port that is active at that moment is sent as ``Start`` (so a client that
reconnects, as amcrest's async reader does every ~6 s on a quiet stream, learns the current
state); idle ports are not announced. The device subscription is closed when the client goes
away or the app shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from aiohttp import web

from camio.api.spec import spec
from camio.core.events import Event, EventKind, Topic
from camio.dialects.dahua.common import (
    CRLF,
    DIALECT,
    DahuaError,
    action_of,
    caller,
    device_of,
    error,
    lines,
)
from camio.dialects.dahua.numbering import channel_of, input_ids, output_ids
from camio.store.users import Role

routes = web.RouteTableDef()

BOUNDARY: Final = "myboundary"
CODES: Final = {Topic.INPUT: "AlarmLocal", Topic.OUTPUT: "AlarmOutput"}
#: How often a quiet stream looks whether its client is still connected.
POLL_S: float = 0.5
MAX_HEARTBEAT_S = 3600
#: Open attach streams per app, cancelled at shutdown.
STREAMS: Final = web.AppKey("dahua_streams", set[asyncio.Task[None]])
#: Open attach streams per device at most; more are refused with 503.
MAX_STREAMS = 64


def part(body: str) -> bytes:
    """One multipart part in the exact Dahua framing (see the module docstring)."""
    data = body.encode()
    head = f"--{BOUNDARY}{CRLF}Content-Type: text/plain{CRLF}Content-Length: {len(data)}{CRLF}"
    return f"{head}{CRLF}".encode() + data + f"{CRLF}{CRLF}".encode()


def parse_codes(value: str) -> set[str]:
    """``[AlarmLocal,AlarmOutput]`` (brackets optional, ``All`` = every code) -> codes."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    codes = {c.strip() for c in text.split(",") if c.strip()}
    if not codes or len(codes) > 64:
        raise DahuaError("bad codes")
    if any(c.lower() == "all" for c in codes):
        return set(CODES.values())
    return codes


async def _attach(request: web.Request) -> web.StreamResponse:
    caller(request, Role.VIEWER)
    device = device_of(request)
    codes = parse_codes(request.query.get("codes", ""))
    heartbeat_text = request.query.get("heartbeat")
    heartbeat: float | None = None
    if heartbeat_text is not None:
        if not heartbeat_text.isdigit() or not 1 <= int(heartbeat_text) <= MAX_HEARTBEAT_S:
            raise DahuaError("bad heartbeat")
        heartbeat = float(heartbeat_text)
    topics = {topic for topic, code in CODES.items() if code in codes}
    if len(request.app.get(STREAMS, ())) >= MAX_STREAMS:
        return error("too many event streams", status=503)
    queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=1024)

    def accept(event: Event) -> bool:
        return event.topic in topics

    def on_event(event: Event) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(event)

    response = web.StreamResponse(
        headers={"Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}"}
    )
    # Close-delimited, not chunked (see the module docstring).
    response._length_check = False
    response.force_close()
    subscription = device.subscribe(on_event, accept=accept, replay_state=True)
    task = asyncio.current_task()
    streams = request.app.get(STREAMS)
    if task is not None and streams is not None:
        streams.add(task)
    try:
        await response.prepare(request)
        last: dict[str, bool] = {}
        loop = asyncio.get_running_loop()
        beat_at = loop.time() + heartbeat if heartbeat is not None else None
        while True:
            transport = request.transport
            if not device.config.dialects.dahua.enabled:
                return response  # the dialect was turned off: it serves nothing any more
            if transport is None or transport.is_closing():
                return response  # the client went away
            wait = POLL_S if beat_at is None else max(0.0, min(POLL_S, beat_at - loop.time()))
            try:
                event = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                if beat_at is not None and heartbeat is not None and loop.time() >= beat_at:
                    await response.write(part("Heartbeat"))
                    beat_at = loop.time() + heartbeat
                continue
            active = bool(event.data.get("active"))
            key = f"{event.topic}:{event.source}"
            if event.kind is EventKind.INITIALIZED and not active:
                last[key] = active  # idle at attach: not announced
                continue
            if last.get(key) == active:
                continue  # a change of something else (armed, remaining time)
            last[key] = active
            channel = channel_of(device, event.source)
            if channel is None:
                continue
            action = "Start" if active else "Stop"
            body = f"Code={CODES[Topic(event.topic)]};action={action};index={channel}"
            await response.write(part(body))
    except (ConnectionResetError, ConnectionError):
        return response
    finally:
        subscription.close()
        if task is not None and streams is not None:
            streams.discard(task)


async def close_streams(app: web.Application) -> None:
    for task in list(app.get(STREAMS, ())):
        task.cancel()


def _event_indexes(request: web.Request) -> web.Response:
    caller(request, Role.VIEWER)
    device = device_of(request)
    code = request.query.get("code", "")
    if code == "AlarmLocal":
        flags = [device.inputs[pid].active for pid in input_ids(device)]
    elif code == "AlarmOutput":
        flags = [device.outputs[pid].active for pid in output_ids(device)]
    else:
        flags = []
    channels = [i for i, flag in enumerate(flags) if flag]
    if not channels:
        # No channel has the event: Error, with 200 (amcrest reads that as "none").
        return error(status=200)
    return lines((f"channels[{k}]", ch) for k, ch in enumerate(channels))


@routes.get("/cgi-bin/eventManager.cgi")
@spec(
    "Dahua eventManager.cgi: attach (event stream), getEventIndexes",
    role=Role.VIEWER,
    dialect=DIALECT,
    content_type="text/plain",
)
async def event_manager(request: web.Request) -> web.StreamResponse:
    try:
        action = action_of(request)
        if action == "attach":
            return await _attach(request)
        if action == "getEventIndexes":
            return _event_indexes(request)
        raise DahuaError("unknown action")
    except DahuaError:
        return error()
