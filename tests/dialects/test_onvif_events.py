"""The ONVIF Event service: pull points (true long poll), push (Notify), filters, lifetime,
bounds — with the real onvif-zeep-async client against the daemon, and the subscription
machinery on a manual clock."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from typing import Any

import pytest
from lxml import etree
from onvif_event_helpers import (
    DIGITAL_INPUT,
    RELAY,
    connect,
    consumer_server,
    create_pullpoint,
    manual_device,
    notify_messages,
    states,
)
from onvif_helpers import (
    RawSoap,
    body_child,
    build_schema,
    envelope,
    fault_subcodes,
    username_token,
)
from vapix_helpers import VIEWER, Server
from zeep.exceptions import Fault

from camio.core.clock import NS_PER_S
from camio.core.events import Cause
from camio.core.ports import Circuit
from camio.dialects.onvif import events as onvif_events
from camio.dialects.onvif.subscriptions import (
    PULL,
    LimitReached,
    SubscriptionRegistry,
    TerminationError,
    format_time,
    parse_datetime_ns,
    parse_duration_ns,
    registry_of,
    requested_lifetime_ns,
)
from camio.dialects.onvif.topics import (
    DIALECT_CONCRETE,
    DIALECT_CONCRETE_SET,
    TOPIC_DIGITAL_INPUT,
    TOPIC_RELAY,
    TOPIC_STORAGE_FAILURE,
    TopicDialectError,
    TopicExpressionError,
    TopicFilter,
)

TNS1 = "http://www.onvif.org/ver10/topics"
STORAGE_FAILURE = "tns1:Device/HardwareFailure/StorageFailure"
CAUSE = Cause("api", user="test")

# =========================================================================================
# Pure parts: durations, times, topic filters
# =========================================================================================


def test_durations_and_times() -> None:
    assert parse_duration_ns("PT60S") == 60 * NS_PER_S
    assert parse_duration_ns("PT1M") == 60 * NS_PER_S
    assert parse_duration_ns("PT0.5S") == NS_PER_S // 2
    assert parse_duration_ns("P1DT2H") == 26 * 3600 * NS_PER_S
    assert parse_duration_ns("-PT5S") == -5 * NS_PER_S
    for bad in ("P", "PT", "60", "PT5", "P1S", ""):
        with pytest.raises(ValueError):
            parse_duration_ns(bad)
    assert parse_datetime_ns("1970-01-01T00:01:00Z") == 60 * NS_PER_S
    assert parse_datetime_ns("1970-01-01T00:01:00.5") == 60 * NS_PER_S + NS_PER_S // 2
    assert format_time(60 * NS_PER_S + 123_456_789) == "1970-01-01T00:01:00.123Z"


def test_requested_lifetime_relative_absolute_and_invalid() -> None:
    device, clock = manual_device()
    try:
        assert requested_lifetime_ns("PT600S", clock) == 600 * NS_PER_S
        assert requested_lifetime_ns(None, clock) == 60 * NS_PER_S
        later = format_time(clock.wall_ns() + 90 * NS_PER_S)
        assert abs(requested_lifetime_ns(later, clock) - 90 * NS_PER_S) < NS_PER_S // 1000
        assert requested_lifetime_ns("P30D", clock) == 24 * 3600 * NS_PER_S  # clamped
        for bad in ("PT0S", "-PT5S", format_time(clock.wall_ns() - NS_PER_S), "soon"):
            with pytest.raises(TerminationError):
                requested_lifetime_ns(bad, clock)
    finally:
        device.stop()


def test_topic_filters() -> None:
    ns = {"tns1": TNS1, "x": TNS1, "other": "urn:other"}
    relay = TopicFilter.parse("tns1:Device/Trigger/Relay", DIALECT_CONCRETE_SET, ns)
    assert relay.matches(TOPIC_RELAY)
    assert not relay.matches(TOPIC_DIGITAL_INPUT)
    both = TopicFilter.parse(
        "x:Device/Trigger/DigitalInput | tns1:Device/Trigger/Relay", DIALECT_CONCRETE_SET, ns
    )
    assert both.matches(TOPIC_RELAY) and both.matches(TOPIC_DIGITAL_INPUT)
    assert not both.matches(TOPIC_STORAGE_FAILURE)
    subtree = TopicFilter.parse("tns1:Device/Trigger//.", DIALECT_CONCRETE_SET, ns)
    assert subtree.matches(TOPIC_RELAY) and subtree.matches(TOPIC_DIGITAL_INPUT)
    assert not subtree.matches(TOPIC_STORAGE_FAILURE)
    everything = TopicFilter.parse("tns1:Device//.", DIALECT_CONCRETE, ns)
    assert everything.matches(TOPIC_STORAGE_FAILURE)
    wildcard = TopicFilter.parse("tns1:Device/*/Relay", DIALECT_CONCRETE_SET, ns)
    assert wildcard.matches(TOPIC_RELAY)
    # Another namespace is another topic, whatever the local names.
    assert not TopicFilter.parse("other:Device//.", None, ns).matches(TOPIC_RELAY)
    # A trailing slash (as some clients write) is the topic itself.
    assert TopicFilter.parse("tns1:Device/Trigger/Relay/", None, ns).matches(TOPIC_RELAY)
    with pytest.raises(TopicExpressionError):
        TopicFilter.parse("nope:Device", None, ns)
    with pytest.raises(TopicExpressionError):
        TopicFilter.parse("tns1:Device//Relay|", DIALECT_CONCRETE_SET, ns)
    with pytest.raises(TopicDialectError):
        TopicFilter.parse("tns1:Device", "urn:xpath", ns)


# =========================================================================================
# Subscriptions on a manual clock: long poll, expiry, bounds, ChangedOnly
# =========================================================================================


def _registry(**kwargs: Any) -> tuple[SubscriptionRegistry, Any, Any]:
    device, clock = manual_device()
    return SubscriptionRegistry(device, **kwargs), device, clock


def _values(msgs: list[Any]) -> dict[tuple[str, str], str]:
    return {(m.topic, m.source[1]): m.data[1] for m in msgs}


async def test_initialized_then_changed_and_long_poll_on_device_clock() -> None:
    registry, device, clock = _registry()
    try:
        sub = registry.create(
            PULL, base_address="http://x/onvif/subscription", lifetime_ns=NS_PER_S * 60
        )
        first = sub.take(100)
        assert {m.operation for m in first} == {"Initialized"}
        assert _values(first) == {
            (TOPIC_DIGITAL_INPUT, "in1"): "false",
            (TOPIC_DIGITAL_INPUT, "in2"): "false",
            (TOPIC_RELAY, "out1"): "inactive",
        }
        # Nothing queued: the poll waits, until the device clock passes the timeout.
        waiter = asyncio.ensure_future(sub.wait(5 * NS_PER_S))
        await asyncio.sleep(0)
        assert not waiter.done()
        clock.advance(4_999)
        await asyncio.sleep(0)
        assert not waiter.done()
        clock.advance(1)
        assert await waiter is False
        assert sub.take(10) == []
        # A change wakes it at once.
        waiter = asyncio.ensure_future(sub.wait(60 * NS_PER_S))
        await asyncio.sleep(0)
        device.set_output("out1", True, CAUSE)
        assert await asyncio.wait_for(waiter, 1) is False
        (msg,) = sub.take(10)
        assert (msg.topic, msg.operation, msg.source, msg.data) == (
            TOPIC_RELAY,
            "Changed",
            ("RelayToken", "out1"),
            ("LogicalState", "active"),
        )
        # A second poll supersedes the first (a client that went away holds nothing).
        old = asyncio.ensure_future(sub.wait(60 * NS_PER_S))
        await asyncio.sleep(0)
        new = asyncio.ensure_future(sub.wait(60 * NS_PER_S))
        await asyncio.sleep(0)
        assert await asyncio.wait_for(old, 1) is True
        device.sim_set_circuit("in2", Circuit.CLOSED)
        clock.advance(60)  # debounce
        assert await asyncio.wait_for(new, 1) is False
        assert _values(sub.take(10)) == {(TOPIC_DIGITAL_INPUT, "in2"): "true"}
        # SetSynchronizationPoint: every state again, Initialized.
        registry.synchronize(sub)
        again = sub.take(100)
        assert {m.operation for m in again} == {"Initialized"}
        assert _values(again)[(TOPIC_RELAY, "out1")] == "active"
        assert len(again) == 3
    finally:
        registry.close_all()
        device.stop()


async def test_expiry_renew_and_reaping_on_device_clock() -> None:
    registry, device, clock = _registry()
    try:
        baseline = device.bus.subscriber_count
        sub = registry.create(PULL, base_address="http://x/s", lifetime_ns=10 * NS_PER_S)
        other = registry.create(PULL, base_address="http://x/s", lifetime_ns=30 * NS_PER_S)
        assert len(registry) == 2
        clock.advance(9_000)
        sub.set_lifetime(10 * NS_PER_S)  # Renew
        clock.advance(9_000)
        assert registry.get(sub.id) is sub
        # A waiting poll keeps its pull point alive past the termination time...
        waiter = asyncio.ensure_future(sub.wait(20 * NS_PER_S))
        await asyncio.sleep(0)
        sub.keep_alive(21 * NS_PER_S)
        clock.advance(12_000)  # other expires at 30 s
        assert registry.get(other.id) is None and other.closed
        assert registry.get(sub.id) is sub
        clock.advance(8_000)
        assert await waiter is False
        clock.advance(1_001)
        assert registry.get(sub.id) is None and sub.closed
        assert len(registry) == 0
        assert device.bus.subscriber_count == baseline - 0  # every bus subscription closed
    finally:
        registry.close_all()
        device.stop()


async def test_limit_queue_bound_and_changed_only() -> None:
    registry, device, _ = _registry(max_subscriptions=2, queue_size=4)
    try:
        a = registry.create(PULL, base_address="http://x/s", lifetime_ns=NS_PER_S)
        registry.create(PULL, base_address="http://x/s", lifetime_ns=NS_PER_S)
        with pytest.raises(LimitReached):
            registry.create(PULL, base_address="http://x/s", lifetime_ns=NS_PER_S)
        registry.remove(a)
        quiet = registry.create(
            PULL, base_address="http://x/s", lifetime_ns=60 * NS_PER_S, changed_only=True
        )
        assert quiet.take(10) == []  # ChangedOnly: no Initialized burst
        for _ in range(5):
            device.set_output("out1", True, CAUSE)
            device.set_output("out1", False, CAUSE)
        # 10 changes into a queue of 4: the oldest went, the newest stayed.
        assert quiet.dropped == 6
        kept = quiet.take(10)
        assert [m.data[1] for m in kept] == ["active", "inactive", "active", "inactive"]
        # Device stop ends every subscription.
        device.stop()
        assert len(registry) == 0 and quiet.closed
    finally:
        registry.close_all()
        device.stop()


# =========================================================================================
# The real client against the daemon
# =========================================================================================


def _subcodes(fault: Fault) -> str:
    """Every subcode text of a zeep Fault (as Home Assistant's is_auth_error reads them)."""
    out = [getattr(code, "text", str(code)) for code in fault.subcodes or []]
    if fault.detail is not None:
        out.append(etree.tostring(fault.detail).decode())
    return " ".join(out)


async def test_pull_point_initialized_changed_relay_and_lifecycle(server: Server) -> None:
    cam = await connect(server)
    try:
        pp = await create_pullpoint(cam, "PT600S")
        assert pp.address.startswith(server.url.rstrip("/") + "/onvif/subscription/")
        created = pp.created
        span = created.TerminationTime - created.CurrentTime
        assert dt.timedelta(seconds=599) <= span <= dt.timedelta(seconds=601)
        await pp.pull.SetSynchronizationPoint()  # as HA does right after creating
        first = await pp.messages("PT5S")
        assert {m.operation for m in first} == {"Initialized"}
        assert states(first) == {
            (DIGITAL_INPUT, "in1"): "false",
            (DIGITAL_INPUT, "in2"): "false",
            (RELAY, "out1"): "inactive",
            (STORAGE_FAILURE, "local"): "false",  # the daemon's recording volume
        }
        assert {m.source[0] for m in first if m.topic == DIGITAL_INPUT} == {"InputToken"}
        assert {m.source[0] for m in first if m.topic == RELAY} == {"RelayToken"}

        # A long poll: the input change arrives while it waits, not at its timeout.
        poll = asyncio.ensure_future(pp.messages("PT30S"))
        await asyncio.sleep(0.3)
        assert not poll.done()
        started = time.monotonic()
        server.device.sim_set_circuit("in1", Circuit.CLOSED)
        changed = await asyncio.wait_for(poll, 10)
        assert time.monotonic() - started < 2.0
        assert [(m.topic, m.operation, m.source, m.data) for m in changed] == [
            (DIGITAL_INPUT, "Changed", ("InputToken", "in1"), ("LogicalState", "true"))
        ]
        assert abs(changed[0].utc_time - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)

        # A relay change -> Relay message.
        poll = asyncio.ensure_future(pp.messages("PT30S"))
        await asyncio.sleep(0.1)
        server.device.set_output("out1", True, CAUSE)
        relay = await asyncio.wait_for(poll, 5)
        assert [(m.topic, m.operation, m.data) for m in relay] == [
            (RELAY, "Changed", ("LogicalState", "active"))
        ]

        # Nothing queued: the answer comes (empty) at the timeout, not before.
        started = time.monotonic()
        assert await pp.messages("PT1S") == []
        assert 0.9 <= time.monotonic() - started < 3

        # SetSynchronizationPoint: the current states again, as Initialized.
        await pp.pull.SetSynchronizationPoint()
        sync = await pp.messages("PT5S")
        assert {m.operation for m in sync} == {"Initialized"}
        assert states(sync)[(DIGITAL_INPUT, "in1")] == "true"
        assert states(sync)[(RELAY, "out1")] == "active"

        renewed = await pp.manager.Renew({"TerminationTime": "PT120S"})
        span = renewed.TerminationTime - renewed.CurrentTime
        assert dt.timedelta(seconds=119) <= span <= dt.timedelta(seconds=121)

        await pp.manager.Unsubscribe()
        assert len(registry_of(server.device)) == 0
        with pytest.raises(Fault) as err:
            await pp.pull.PullMessages({"Timeout": "PT1S", "MessageLimit": 10})
        assert "ResourceUnknownFault" in _subcodes(err.value)
    finally:
        await cam.close()


async def test_message_limit_keeps_the_rest(server: Server) -> None:
    cam = await connect(server)
    try:
        pp = await create_pullpoint(cam)
        one = await pp.messages("PT1S", limit=1)
        two = await pp.messages("PT1S", limit=2)
        assert len(one) == 1 and len(two) == 2
        assert len({m.source[1] for m in one + two}) == 3
        await pp.manager.Unsubscribe()
    finally:
        await cam.close()


async def test_unknown_subscription_fault(server: Server) -> None:
    cam = await connect(server)
    try:
        pp = await create_pullpoint(cam)
        await pp.manager.Unsubscribe()
        with pytest.raises(Fault) as err:
            await pp.manager.Renew({"TerminationTime": "PT60S"})
        assert "ResourceUnknownFault" in _subcodes(err.value)
    finally:
        await cam.close()


async def test_short_termination_is_reaped(server: Server) -> None:
    cam = await connect(server)
    try:
        pp = await create_pullpoint(cam, "PT1S")
        registry = registry_of(server.device)
        assert len(registry) == 1
        await asyncio.sleep(1.3)
        assert len(registry) == 0
        with pytest.raises(Fault):
            await pp.pull.PullMessages({"Timeout": "PT1S", "MessageLimit": 10})
    finally:
        await cam.close()


async def test_subscription_limit(server: Server) -> None:
    registry = registry_of(server.device)
    registry.max_subscriptions = 2
    cam = await connect(server)
    try:
        events = await cam.create_events_service()
        caps = await events.GetServiceCapabilities()
        assert caps.MaxPullPoints == 2 and caps.WSPullPointSupport is True
        for _ in range(2):
            await events.CreatePullPointSubscription({"InitialTerminationTime": "PT60S"})
        with pytest.raises(Fault) as err:
            await events.CreatePullPointSubscription({"InitialTerminationTime": "PT60S"})
        assert "MaxPullPoints" in _subcodes(err.value)
        assert len(registry) == 2
    finally:
        registry.close_all()
        registry.max_subscriptions = None
        await cam.close()


async def test_event_properties_list_the_device_topics(server: Server) -> None:
    cam = await connect(server)
    try:
        events = await cam.create_events_service()
        props = await events.GetEventProperties()
        assert props.FixedTopicSet is True
        dialects = set(props.TopicExpressionDialect)
        assert "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet" in dialects
        topic_set = props.TopicSet._value_1
        device = next(e for e in topic_set if etree.QName(e).localname == "Device")
        assert etree.QName(device).namespace == TNS1
        trigger = device.find("Trigger")
        assert trigger is not None
        di = trigger.find("DigitalInput")
        relay = trigger.find("Relay")
        assert di is not None and relay is not None
        tt = "{http://www.onvif.org/ver10/schema}"
        for node, source, dtype in (
            (di, "InputToken", "xs:boolean"),
            (relay, "RelayToken", "tt:RelayLogicalState"),
        ):
            assert node.get("{http://docs.oasis-open.org/wsn/t-1}topic") == "true"
            desc = node.find(f"{tt}MessageDescription")
            assert desc is not None and desc.get("IsProperty") == "true"
            src = desc.find(f"{tt}Source/{tt}SimpleItemDescription")
            data = desc.find(f"{tt}Data/{tt}SimpleItemDescription")
            assert src is not None and data is not None
            assert src.get("Name") == source and data.get("Name") == "LogicalState"
            assert data.get("Type") == dtype
        # The daemon has a recording volume: StorageFailure (ONVIF Core) is there too.
        storage = device.find("HardwareFailure/StorageFailure")
        assert storage is not None
        src = storage.find(f"{tt}MessageDescription/{tt}Source/{tt}SimpleItemDescription")
        assert src is not None and src.get("Name") == "Token"
        # What the device does not have is not listed.
        assert [c.tag for c in device] == ["Trigger", "HardwareFailure"]
    finally:
        await cam.close()


async def test_topic_filter_on_create(server: Server) -> None:
    cam = await connect(server)
    try:
        wsnt = "http://docs.oasis-open.org/wsn/b-2"
        expr = etree.Element(
            f"{{{wsnt}}}TopicExpression",
            Dialect=DIALECT_CONCRETE_SET,
            nsmap={"wsnt": wsnt, "t1": TNS1},
        )
        expr.text = "t1:Device/Trigger/Relay"
        pp = await create_pullpoint(cam, Filter={"_value_1": [expr]})
        first = await pp.messages("PT1S")
        assert states(first) == {(RELAY, "out1"): "inactive"}
        server.device.sim_set_circuit("in1", Circuit.CLOSED)
        await asyncio.sleep(0.2)
        server.device.set_output("out1", True, CAUSE)
        later = await pp.messages("PT2S")
        assert states(later) == {(RELAY, "out1"): "active"}
        await pp.manager.Unsubscribe()
    finally:
        await cam.close()


async def test_push_subscription_notifies_the_consumer(server: Server) -> None:
    cam = await connect(server)
    async with consumer_server() as consumer:
        try:
            lost: list[bool] = []
            manager = await cam.create_notification_manager(
                consumer.url, dt.timedelta(seconds=60), lambda: lost.append(True)
            )
            registry = registry_of(server.device)
            assert len(registry) == 1
            body = await consumer.next_body()
            initial = notify_messages(body)
            assert {op for _, op, _, _ in initial} == {"Initialized"}
            assert {(t, tok): v for t, _, tok, v in initial} == {
                (DIGITAL_INPUT, "in1"): "false",
                (DIGITAL_INPUT, "in2"): "false",
                (RELAY, "out1"): "inactive",
                (STORAGE_FAILURE, "local"): "false",
            }
            # The client library parses the Notify as Home Assistant does.
            parsed = manager.process(body)
            assert parsed is not None and len(parsed.NotificationMessage) == 4

            server.device.sim_set_circuit("in2", Circuit.CLOSED)
            changed = notify_messages(await consumer.next_body())
            assert changed == [(DIGITAL_INPUT, "Changed", "in2", "true")]

            await manager.set_synchronization_point()
            sync = notify_messages(await consumer.next_body())
            assert {op for _, op, _, _ in sync} == {"Initialized"} and len(sync) == 4

            await manager.shutdown()  # Unsubscribe
            assert len(registry) == 0
            assert not lost
        finally:
            await cam.close()


async def test_push_to_a_failing_consumer_is_bounded(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camio.dialects.onvif import notify

    monkeypatch.setattr(notify, "PUSH_BACKOFF_MS", (10, 10))
    cam = await connect(server)
    async with consumer_server() as consumer:
        consumer.status = 503
        try:
            service = await cam.create_notification_service()
            await service.Subscribe(
                {"InitialTerminationTime": "PT60S", "ConsumerReference": {"Address": consumer.url}}
            )
            for _ in range(notify.PUSH_ATTEMPTS):
                await consumer.next_body()
            await asyncio.sleep(0.2)
            assert len(consumer.bodies) == notify.PUSH_ATTEMPTS  # then the batch is dropped
            consumer.status = 200
            server.device.set_output("out1", True, CAUSE)
            assert notify_messages(await consumer.next_body()) == [
                (RELAY, "Changed", "out1", "active")
            ]
        finally:
            registry_of(server.device).close_all()
            await cam.close()


async def test_many_cycles_leave_nothing_behind(server: Server) -> None:
    device = server.device
    registry = registry_of(device)
    baseline = device.bus.subscriber_count
    cam = await connect(server)
    try:
        events = await cam.create_events_service()
        for _ in range(30):
            pp = await create_pullpoint(cam)
            assert device.bus.subscriber_count > baseline
            await pp.manager.Unsubscribe()
        # An abandoned long poll (client gone) is superseded, never piles up.
        pp = await create_pullpoint(cam)
        polls = [asyncio.ensure_future(pp.messages("PT30S")) for _ in range(3)]
        await asyncio.sleep(0.3)
        done = [p for p in polls if p.done()]
        assert len(done) >= 1
        await pp.manager.Unsubscribe()
        for p in polls:
            with contextlib.suppress(Fault):
                await asyncio.wait_for(p, 5)
        assert len(registry) == 0
        assert device.bus.subscriber_count == baseline
        del events
    finally:
        await cam.close()


def test_module_registers_its_services() -> None:
    from camio.dialects.onvif.soap import find_service

    events_service = find_service("/onvif/event_service")
    assert events_service is not None
    assert {"CreatePullPointSubscription", "GetEventProperties", "Subscribe"} <= set(
        events_service.operations
    )
    sub = find_service("/onvif/subscription/abc")
    assert sub is not None
    assert {"PullMessages", "Renew", "Unsubscribe", "SetSynchronizationPoint"} <= set(
        sub.operations
    )
    assert onvif_events.TOPIC_NAMESPACE_LOCATION.startswith("http://www.onvif.org/")


# =========================================================================================
# Every event response is valid against the ONVIF schemas the client package ships
# =========================================================================================

_EV = (
    'xmlns:tev="http://www.onvif.org/ver10/events/wsdl" '
    'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" '
    'xmlns:wsa="http://www.w3.org/2005/08/addressing"'
)


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> etree.XMLSchema:
    return build_schema(tmp_path_factory.mktemp("onvif-events-xsd"))


async def test_responses_are_schema_valid(server: Server, schema: etree.XMLSchema) -> None:
    raw = RawSoap(server.url.rstrip("/"))

    async def call(path: str, body: str) -> etree._Element:
        resp = await raw.post(path, envelope(body, username_token(*VIEWER)))
        assert resp.status_code == 200, resp.text[:500]
        child = body_child(resp.content)
        schema.assertValid(child)
        return child

    await call("/onvif/event_service", f"<tev:GetServiceCapabilities {_EV}/>")
    await call("/onvif/event_service", f"<tev:GetEventProperties {_EV}/>")
    created = await call(
        "/onvif/event_service",
        f"<tev:CreatePullPointSubscription {_EV}>"
        '<tev:Filter><wsnt:TopicExpression Dialect="http://www.onvif.org/ver10/tev/'
        'topicExpression/ConcreteSet" xmlns:tns1="http://www.onvif.org/ver10/topics">'
        "tns1:Device/Trigger//.</wsnt:TopicExpression></tev:Filter>"
        "<tev:InitialTerminationTime>PT60S</tev:InitialTerminationTime>"
        "</tev:CreatePullPointSubscription>",
    )
    address = created.findtext(".//{http://www.w3.org/2005/08/addressing}Address")
    assert address is not None
    path = address.removeprefix(raw.url)
    pulled = await call(
        path,
        f"<tev:PullMessages {_EV}><tev:Timeout>PT1S</tev:Timeout>"
        "<tev:MessageLimit>10</tev:MessageLimit></tev:PullMessages>",
    )
    assert len(pulled.findall("{http://docs.oasis-open.org/wsn/b-2}NotificationMessage")) == 3
    await call(path, f"<tev:SetSynchronizationPoint {_EV}/>")
    await call(
        path, f"<wsnt:Renew {_EV}><wsnt:TerminationTime>PT30S</wsnt:TerminationTime></wsnt:Renew>"
    )
    await call(path, f"<wsnt:Unsubscribe {_EV}/>")
    # A bad termination time is a Sender fault, not a 500.
    resp = await raw.post(
        "/onvif/event_service",
        envelope(
            f"<tev:CreatePullPointSubscription {_EV}><tev:InitialTerminationTime>-PT5S"
            "</tev:InitialTerminationTime></tev:CreatePullPointSubscription>",
            username_token(*VIEWER),
        ),
    )
    assert resp.status_code == 400
    assert "wsnt:UnacceptableInitialTerminationTimeFault" in fault_subcodes(resp.content)
    # Without credentials: refused (viewer role needed), but capabilities are public.
    resp = await raw.post("/onvif/event_service", envelope(f"<tev:GetEventProperties {_EV}/>"))
    assert resp.status_code in (400, 401)
    resp = await raw.post("/onvif/event_service", envelope(f"<tev:GetServiceCapabilities {_EV}/>"))
    assert resp.status_code == 200
    # A push subscription's Notify is schema-valid too.
    async with consumer_server() as consumer:
        subscribed = await call(
            "/onvif/event_service",
            f"<wsnt:Subscribe {_EV}><wsnt:ConsumerReference><wsa:Address>{consumer.url}"
            "</wsa:Address></wsnt:ConsumerReference>"
            "<wsnt:InitialTerminationTime>PT60S</wsnt:InitialTerminationTime></wsnt:Subscribe>",
        )
        notify = body_child(await consumer.next_body())
        schema.assertValid(notify)
        address = subscribed.findtext(".//{http://www.w3.org/2005/08/addressing}Address")
        assert address is not None
        await call(address.removeprefix(raw.url), f"<wsnt:Unsubscribe {_EV}/>")
    assert len(registry_of(server.device)) == 0
