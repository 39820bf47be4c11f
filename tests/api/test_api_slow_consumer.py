"""A stream client that stops reading is cut once its bounded queue fills; the others are not.

The daemon queues at most ``STREAM_QUEUE_SIZE`` events per stream client. A client that stops
reading first fills the socket buffers (the kernel's on both sides, aiohttp's, asyncio's); the
daemon's send for it then waits for the client (TCP backpressure) and its queue fills. At that
point the daemon must drop the client, even though its sender is blocked, while a client that
reads, connected at the same time, keeps receiving every event. The test makes the queue small
and the events large (32 kB), so that a few hundred events fill every buffer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from apihelpers import Server, Stream

from camio.api import events as events_api
from camio.engine.bus import QueueSubscription

QUEUE = 8
BLOB = "x" * 32_000
TOPIC = "test/bulk"
STREAM = f"?topic={TOPIC}&initial=0"


async def wait_for(condition: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (nothing to await on)
            await asyncio.sleep(0.001)


async def collect(stream: Stream, into: list[dict[str, Any]]) -> aiohttp.WSMessage:
    """Read every text message into ``into``; returns the message that ended the stream."""
    while True:
        msg = await stream.ws.receive()
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return msg
        into.append(json.loads(msg.data))


async def test_a_client_that_stops_reading_is_cut_and_a_reading_client_gets_every_event(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_api, "STREAM_QUEUE_SIZE", QUEUE)
    assert server.app.device is not None
    bus = server.app.device.bus
    baseline = bus.subscriber_count
    reader = await server.stream(STREAM)
    stalled = await server.stream(STREAM)  # never read until the daemon dropped it
    await wait_for(lambda: bus.subscriber_count == baseline + 2)

    received: list[dict[str, Any]] = []
    reading = asyncio.ensure_future(collect(reader, received))
    published = 0

    def publish(count: int) -> None:
        nonlocal published
        for _ in range(count):
            bus.publish(TOPIC, "test", {"n": published, "blob": BLOB}, stateful=False)
            published += 1

    try:
        # Half a queue at a time, then wait until the reading client has it all: it never
        # falls a queue behind, the stalled one falls further behind with every round.
        async with asyncio.timeout(30):
            while bus.subscriber_count > baseline + 1:
                publish(QUEUE // 2)
                await wait_for(lambda: len(received) == published)
        dropped_at = published
        assert dropped_at > QUEUE  # the socket buffers took events before the queue filled

        # The reading client is still connected and still gets everything.
        publish(QUEUE // 2)
        await wait_for(lambda: len(received) == published)
        assert bus.subscriber_count == baseline + 1
        assert not reader.ws.closed
        assert [e["data"]["n"] for e in received] == list(range(published))
        ids = [e["id"] for e in received]
        assert ids == sorted(ids)
        assert all(e["data"]["blob"] == BLOB for e in received)
    finally:
        await reader.ws.close()
        async with asyncio.timeout(10):
            await reading

    # The stalled client reads again: what was already in flight, in order, then the end of
    # the stream, well before the events published after it fell a queue behind.
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        end = await collect(stalled, got)
    assert end.type in (
        aiohttp.WSMsgType.CLOSE,
        aiohttp.WSMsgType.CLOSING,
        aiohttp.WSMsgType.CLOSED,
        aiohttp.WSMsgType.ERROR,
    ), end
    assert [e["data"]["n"] for e in got] == list(range(len(got)))
    assert len(got) < dropped_at


async def test_a_reading_client_keeps_up_with_events_published_faster_than_it_waits(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several events per loop iteration, many more in all than a queue holds: a client that
    reads gets every one and stays connected (the stream sends everything queued at each
    wake-up, not one event per wait)."""
    monkeypatch.setattr(events_api, "STREAM_QUEUE_SIZE", 64)
    assert server.app.device is not None
    bus = server.app.device.bus
    reader = await server.stream(STREAM)
    received: list[dict[str, Any]] = []
    reading = asyncio.ensure_future(collect(reader, received))
    try:
        for n in range(2000):
            bus.publish(TOPIC, "test", {"n": n}, stateful=False)
            if n % 4 == 3:
                await asyncio.sleep(0)  # one loop iteration per four events
        await wait_for(lambda: len(received) == 2000 or reading.done())
        assert not reading.done(), reading.result()
        assert [e["data"]["n"] for e in received] == list(range(2000))
    finally:
        await reader.ws.close()
        async with asyncio.timeout(10):
            await reading


def stream_queues(server: Server) -> list[QueueSubscription]:
    """The queues of the open streams (the bus holds their ``_put`` callbacks)."""
    assert server.app.device is not None
    owners = (getattr(s.callback, "__self__", None) for s in server.app.device.bus._subscribers)
    return [owner for owner in owners if isinstance(owner, QueueSubscription)]


async def test_a_stalled_client_that_resets_ends_its_stream_quietly(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """The daemon is waiting to send to a client that stopped reading (its queue not full) when
    the client's connection is reset: the stream ends without an 'unexpected error'."""
    assert server.app.device is not None
    bus = server.app.device.bus
    baseline = bus.subscriber_count
    stalled = await server.stream(STREAM)
    await wait_for(lambda: bus.subscriber_count == baseline + 1)
    (queue,) = stream_queues(server)
    with caplog.at_level(logging.ERROR):
        # 3.2 MB at a time until every socket buffer on the way is full: the sender then
        # stops taking events from the queue (it waits for the client), far from its bound.
        published = 0
        async with asyncio.timeout(20):
            while True:
                for _ in range(100):
                    bus.publish(TOPIC, "test", {"n": published, "blob": BLOB}, stateful=False)
                    published += 1
                sizes = [-1]
                while len(sizes) < 20 or len(set(sizes[-20:])) > 1:
                    sizes.append(queue.queue.qsize())
                    await asyncio.sleep(0.005)
                if sizes[-1] > 0:
                    break
        assert not queue.overflowed
        # The client's socket is closed with unread data in its receive buffer: the kernel
        # answers with a reset (aiohttp has no public way to drop a WebSocket's connection).
        connection = stalled.ws._response.connection
        assert connection is not None and connection.transport is not None
        connection.transport.abort()
        await wait_for(lambda: bus.subscriber_count == baseline)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
