"""The event log (paging, filters) and the live WebSocket stream."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import aiohttp
import pytest
from apihelpers import ADMIN, VIEWER, Api, Server, basic_header


async def make_events(api: Api, count: int) -> None:
    """``count`` events: a virtual input toggled on and off."""
    for index in range(count):
        reply = await api.put("/api/v1/virtual-inputs/3", {"active": index % 2 == 0})
        assert reply.status == 200


async def test_events_are_oldest_first_with_the_documented_shape(admin: Api) -> None:
    await make_events(admin, 2)
    events = await admin.events()
    # Each accepted change through the API is followed by its audit record.
    assert [e["topic"] for e in events] == [
        "device/started",
        "io/virtual_input",
        "audit/trigger",
        "io/virtual_input",
        "audit/trigger",
    ]
    assert events[2]["cause"]["user"] == "admin"
    assert events[2]["data"]["path"].startswith("/api/v1/virtual-inputs/")
    for event in events:
        assert set(event) == {
            "id",
            "topic",
            "source",
            "kind",
            "stateful",
            "data",
            "time",
            "mono_ns",
            "cause",
        }
        assert event["time"].endswith("Z")
    assert events[0]["kind"] == "pulse"
    assert events[0]["cause"] == {"kind": "boot"}
    assert events[1]["kind"] == "changed"
    assert events[1]["data"] == {"active": True}
    assert events[1]["cause"]["user"] == "admin"
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)
    assert events[0]["time"] <= events[1]["time"] <= events[2]["time"]


async def test_paging_with_after_and_limit_has_no_gaps_or_duplicates(admin: Api) -> None:
    await make_events(admin, 23)
    everything = await admin.events(limit=1000)
    assert len(everything) == 1 + 23 * 2  # started, then each change and its audit record
    ids = [e["id"] for e in everything]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # every published event is logged

    pages: list[list[dict[str, Any]]] = []
    after = 0
    while True:
        reply = await admin.get(f"/api/v1/events?after={after}&limit=5")
        assert reply.status == 200
        page = reply.body["events"]
        if not page:
            assert "last_id" not in reply.body
            break
        assert len(page) <= 5
        assert reply.body["last_id"] == page[-1]["id"]
        pages.append(page)
        after = reply.body["last_id"]
    assert [len(p) for p in pages] == [5] * 9 + [2]
    assert [e for page in pages for e in page] == everything


async def test_paging_newest_first_with_before(admin: Api) -> None:
    await make_events(admin, 9)
    everything = await admin.events(limit=1000)
    newest = await admin.events(order="desc", limit=4)
    assert newest == list(reversed(everything))[:4]
    older = await admin.events(order="desc", limit=4, before=newest[-1]["id"])
    assert older == list(reversed(everything))[4:8]


async def test_limit_is_capped(admin: Api) -> None:
    reply = await admin.get("/api/v1/events?limit=1000000")
    assert reply.status == 200
    assert len(reply.body["events"]) == 1


async def test_topic_and_source_filters(admin: Api, operator: Api) -> None:
    await make_events(admin, 3)
    assert (await operator.put("/api/v1/ports/out1/state", {"active": True})).status == 200
    assert (await operator.put("/api/v1/virtual-inputs/9", {"active": True})).status == 200

    outputs = await admin.events(topic="io/output")
    assert [(e["topic"], e["source"]) for e in outputs] == [("io/output", "out1")]
    vin = await admin.events(topic="io/virtual_input")
    assert [e["source"] for e in vin] == ["3", "3", "3", "9"]
    io_all = await admin.events(topic="io/*")
    assert {e["topic"] for e in io_all} == {"io/output", "io/virtual_input"}
    assert len(io_all) == 5
    only9 = await admin.events(source="9")
    assert [e["data"] for e in only9] == [{"active": True}]
    both = await admin.events(topic="io/virtual_input", source="3", limit=2)
    assert [e["data"]["active"] for e in both] == [True, False]
    assert await admin.events(topic="io/nothing") == []
    assert await admin.events(topic="io") == []  # exact unless it ends with *


def iso_minus_1us(stamp: str) -> str:
    moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (moment - dt.timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")


async def test_since_and_until_filter_on_time(admin: Api) -> None:
    await make_events(admin, 2)
    everything = await admin.events()
    # Just before the second event: the events are milliseconds apart (one request each).
    cut = iso_minus_1us(everything[1]["time"])
    assert await admin.events(since=cut) == everything[1:]
    assert await admin.events(until=cut) == everything[:1]
    assert await admin.events(since=everything[-1]["time"].replace("Z", "+01:00")) == everything


async def test_since_an_events_own_time_includes_it(admin: Api) -> None:
    """Paging by time with the times the API shows: since=<time of event> includes it."""
    await make_events(admin, 20)
    for event in await admin.events():
        found = await admin.events(since=event["time"], limit=1)
        assert found and found[0]["id"] == event["id"], event


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("limit=0", "limit"),
        ("limit=-3", "limit"),
        ("limit=ten", "limit"),
        ("after=-1", "after"),
        ("after=1.5", "after"),
        ("before=x", "before"),
        ("order=sideways", "order"),
        ("since=yesterday", "since"),
        ("until=2026-13-45", "until"),
    ],
)
async def test_bad_event_params_are_422(admin: Api, query: str, name: str) -> None:
    reply = await admin.get(f"/api/v1/events?{query}")
    assert reply.status == 422, reply
    assert reply.body["message"].startswith(name)


# -- the stream -------------------------------------------------------------------------------


async def test_stream_starts_with_the_state_of_every_port(server: Server, admin: Api) -> None:
    assert (await admin.put("/api/v1/ports/out1/state", {"active": True})).status == 200
    stream = await server.stream()
    first = [await stream.next() for _ in range(3)]
    assert [(e["topic"], e["source"]) for e in first] == [
        ("io/input", "in1"),
        ("io/input", "in2"),
        ("io/output", "out1"),
    ]
    assert all(e["kind"] == "initialized" for e in first)
    assert first[0]["data"] == {"active": False, "circuit": "open", "tamper": False, "armed": True}
    assert first[2]["data"] == {"active": True, "circuit": "closed"}
    assert first[2]["cause"]["user"] == "admin"
    rest = [await stream.next() for _ in range(33)]
    assert [e["source"] for e in rest[:32]] == [str(n) for n in range(1, 33)]
    assert {e["topic"] for e in rest[:32]} == {"io/virtual_input"}
    assert rest[32]["topic"] == "trigger/manual"
    assert all(e["kind"] == "initialized" for e in rest)
    # Then the services' states (video source, storage volumes, MQTT connection) ...
    assert (await admin.put("/api/v1/ports/out1/state", {"active": False})).status == 200
    services: list[dict[str, Any]] = []
    live = await stream.next()
    while live["kind"] == "initialized":
        services.append(live)
        live = await stream.next()
    assert [(e["topic"], e["source"]) for e in services][:3] == [
        ("video/source", "video"),
        ("storage/full", "local"),
        ("storage/failure", "local"),
    ]
    assert services[0]["data"] == {"state": "off", "active": False}
    assert "mqtt/connection" in {e["topic"] for e in services}

    # ... then changes, live, with their log ids.
    assert live["kind"] == "changed"
    assert live["topic"] == "io/output"
    assert live["data"]["active"] is False
    logged = await admin.events(topic="io/output")
    assert live["id"] == logged[-1]["id"]
    assert live == logged[-1]


async def test_stream_topic_filter(server: Server, admin: Api) -> None:
    stream = await server.stream("?topic=io/output")
    init = await stream.next()
    assert (init["topic"], init["source"], init["kind"]) == ("io/output", "out1", "initialized")
    await admin.put("/api/v1/virtual-inputs/1", {"active": True})
    await admin.put("/api/v1/triggers/manual", {"active": True})
    await admin.put("/api/v1/ports/out1/state", {"active": True, "duration_ms": 10_000})
    nxt = await stream.next()
    assert (nxt["topic"], nxt["kind"], nxt["data"]["active"]) == ("io/output", "changed", True)


async def test_stream_prefix_and_source_filters(server: Server, admin: Api) -> None:
    stream = await server.stream("?topic=io/*&source=in2&initial=0")
    await admin.post("/api/v1/sim/ports/in1/circuit", {"circuit": "closed"})
    await admin.patch("/api/v1/ports/in2", {"debounce_on_ms": 0})
    await admin.post("/api/v1/sim/ports/in2/circuit", {"circuit": "closed"})
    event = await stream.next()
    assert (event["source"], event["data"]["active"]) == ("in2", True)


async def test_stream_without_initial_state(server: Server, admin: Api) -> None:
    stream = await server.stream("?initial=0")
    await admin.put("/api/v1/virtual-inputs/4", {"active": True})
    event = await stream.next()
    assert event["kind"] == "changed"
    assert event["source"] == "4"


async def test_viewer_may_stream(server: Server, admin: Api) -> None:
    stream = await server.stream("?topic=io/virtual_input&initial=0", credentials=VIEWER)
    await admin.put("/api/v1/virtual-inputs/8", {"active": True})
    assert (await stream.next())["source"] == "8"


@pytest.mark.parametrize(
    "headers",
    [{}, basic_header("admin", "wrong-password"), basic_header("nobody", "whatever1")],
    ids=["anonymous", "wrong password", "unknown user"],
)
async def test_stream_needs_credentials(server: Server, headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession(headers=headers) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(f"{server.ws_url}/api/v1/events/stream")
    assert info.value.status == 401


async def test_bad_stream_params_are_422(server: Server) -> None:
    async with aiohttp.ClientSession(headers=basic_header(*ADMIN)) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(f"{server.ws_url}/api/v1/events/stream?order=up")
    assert info.value.status == 422


async def test_client_closing_mid_replay_is_clean(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that leaves while its replay is still being sent ends the stream quietly
    (no 'unexpected error' in the log) and leaves no subscriber behind."""
    assert server.app.device is not None
    bus = server.app.device.bus
    baseline = bus.subscriber_count
    with caplog.at_level(logging.ERROR):
        for _ in range(5):
            stream = await server.stream()
            await stream.next()
            await stream.ws.close()
        async with asyncio.timeout(5):
            while bus.subscriber_count != baseline:  # noqa: ASYNC110 (nothing to await on)
                await asyncio.sleep(0.01)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
