"""The event bus through the device: ids, initial state for subscribers, ordering, log."""

from __future__ import annotations

from typing import Any

from engine_helpers import USER, MakeRig, fast_inputs, outputs

from camio.core.clock import ManualClock
from camio.core.events import Cause, Event, EventKind, Topic, iso_utc
from camio.engine.bus import EventBus
from camio.engine.persistence import EventQuery


def chain_config() -> dict[str, Any]:
    return {
        "inputs": fast_inputs("in1"),
        "outputs": outputs("out1", "out2"),
        "rules": [
            {
                "id": "r1",
                "name": "r1",
                "conditions": [{"kind": "input", "port": "in1"}],
                "action": {"kind": "set_output", "port": "out1", "duration_ms": 100},
            },
            {
                "id": "r2",
                "name": "r2",
                "action_mode": "while_active",
                "conditions": [{"kind": "output", "port": "out1"}],
                "action": {"kind": "set_output", "port": "out2"},
            },
        ],
    }


def test_event_ids_increase_by_one(make_rig: MakeRig) -> None:
    rig = make_rig(chain_config())
    for _ in range(3):
        rig.close("in1")
        rig.advance(200)
        rig.open("in1")
    ids = [e.id for e in rig.events]
    assert ids == list(range(1, len(ids) + 1))
    assert rig.device.bus.last_id == ids[-1]


def test_new_subscriber_gets_initialized_states_first(make_rig: MakeRig) -> None:
    rig = make_rig(
        {
            "inputs": fast_inputs("in1", "in2"),
            "outputs": outputs("out1"),
            "port_order": ["out1", "in2", "in1"],
            "schedules": [
                {
                    "id": "s",
                    "name": "s",
                    "entries": [{"start": "2025-12-31T23:00:00", "duration_s": 7200}],
                }
            ],
        }
    )
    rig.close("in2")
    rig.device.set_output("out1", True, USER)
    rig.device.set_virtual_input(3, True, USER)
    seen: list[Event] = []
    rig.device.subscribe(seen.append)
    initial = [e for e in seen if e.kind is EventKind.INITIALIZED]
    assert seen == initial  # nothing else yet
    assert all(e.id == 0 for e in initial)
    assert [(e.topic, e.source) for e in initial[:3]] == [
        (Topic.OUTPUT, "out1"),
        (Topic.INPUT, "in2"),
        (Topic.INPUT, "in1"),
    ]
    by_key = {(e.topic, e.source): e for e in initial}
    assert by_key[(Topic.OUTPUT, "out1")].data["active"] is True
    assert by_key[(Topic.OUTPUT, "out1")].cause == USER
    assert by_key[(Topic.INPUT, "in2")].data["active"] is True
    assert by_key[(Topic.INPUT, "in1")].data["active"] is False
    assert by_key[(Topic.VIRTUAL_INPUT, "3")].data == {"active": True}
    assert by_key[(Topic.VIRTUAL_INPUT, "32")].data == {"active": False}
    assert by_key[(Topic.MANUAL_TRIGGER, "manual")].data == {"active": False}
    assert by_key[(Topic.SCHEDULE, "s")].data == {"active": True}
    rig.open("in2")
    assert seen[-1].kind is EventKind.CHANGED
    assert (seen[-1].topic, seen[-1].source, seen[-1].data["active"]) == (Topic.INPUT, "in2", False)


def test_subscribe_without_replay_and_with_a_filter(make_rig: MakeRig) -> None:
    rig = make_rig(chain_config())
    plain: list[Event] = []
    outputs_only: list[Event] = []
    rig.device.subscribe(plain.append, replay_state=False)
    rig.device.subscribe(outputs_only.append, accept=lambda e: e.topic == Topic.OUTPUT)
    rig.close("in1")
    assert plain[0].topic == Topic.INPUT
    assert {e.topic for e in outputs_only} == {Topic.OUTPUT}
    assert [e.kind for e in outputs_only[:2]] == [EventKind.INITIALIZED] * 2
    assert [e.source for e in outputs_only if e.kind is EventKind.CHANGED] == ["out1", "out2"]


def test_nested_publishes_reach_every_subscriber_in_id_order(make_rig: MakeRig) -> None:
    rig = make_rig(chain_config())
    first: list[Event] = []
    last: list[Event] = []

    def reacting(event: Event) -> None:
        first.append(event)
        if event.topic == Topic.OUTPUT and event.source == "out2" and event.data["active"]:
            # A subscriber that itself changes the device, in the middle of a dispatch.
            rig.device.set_virtual_input(5, True, Cause("api", client="test"))

    rig.device.subscribe(reacting, replay_state=False)
    rig.device.subscribe(last.append, replay_state=False)
    rig.close("in1")
    rig.advance(100)
    ids_first = [e.id for e in first]
    ids_last = [e.id for e in last]
    assert ids_first == ids_last
    assert ids_first == sorted(ids_first)
    topics = [(e.topic, e.source) for e in last if e.topic != Topic.RULE_FIRED]
    assert topics[:3] == [(Topic.INPUT, "in1"), (Topic.OUTPUT, "out1"), (Topic.OUTPUT, "out2")]
    assert (Topic.VIRTUAL_INPUT, "5") in topics
    # The rule that followed out1 acted on out1's event, before the subscriber's own change.
    out2_on = next(e for e in last if e.source == "out2")
    out1_on = next(e for e in last if e.source == "out1")
    assert out2_on.cause is not None and out2_on.cause.event_id == out1_on.id
    assert out2_on.cause.rule == "r2"


def test_a_failing_subscriber_does_not_stop_the_others(make_rig: MakeRig) -> None:
    rig = make_rig(chain_config())
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    rig.device.subscribe(broken, replay_state=False)
    rig.device.subscribe(seen.append, replay_state=False)
    rig.close("in1")
    assert rig.active("out1")
    assert [e.source for e in seen[:2]] == ["in1", "out1"]


def test_closed_subscription_gets_nothing_more(make_rig: MakeRig) -> None:
    rig = make_rig(chain_config())
    seen: list[Event] = []
    sub = rig.device.subscribe(seen.append, replay_state=False)
    count = rig.device.bus.subscriber_count
    sub.close()
    assert rig.device.bus.subscriber_count == count - 1
    rig.close("in1")
    assert seen == []


def test_events_are_logged_and_queryable(make_rig: MakeRig) -> None:
    rig = make_rig(chain_config())
    rig.close("in1")
    rig.advance(100)
    logged = rig.device.events(EventQuery(topic="io/*", limit=100))
    assert [e.id for e in logged] == [e.id for e in rig.events if e.topic.startswith("io/")]
    outputs_log = rig.device.events(EventQuery(topic=Topic.OUTPUT, source="out2"))
    assert [e.data["active"] for e in outputs_log] == [True, False]
    newest = rig.device.events(EventQuery(limit=1, newest_first=True))
    assert newest[0].id == rig.device.bus.last_id


def test_event_shape() -> None:
    clock = ManualClock()
    bus = EventBus(clock, first_id=41)
    event = bus.publish(
        Topic.OUTPUT, "out1", {"active": True}, cause=Cause("rule", rule="r", event_id=40)
    )
    assert event.id == 41
    assert event.to_dict() == {
        "id": 41,
        "topic": "io/output",
        "source": "out1",
        "kind": "changed",
        "stateful": True,
        "data": {"active": True},
        "time": "2026-01-01T00:00:00.000000Z",
        "mono_ns": clock.monotonic_ns(),
        "cause": {"kind": "rule", "rule": "r", "event_id": 40},
    }
    assert Cause.from_dict({"kind": "manual", "user": "x", "future": 1}) == Cause(
        "manual", user="x"
    )
    # Truncated, never rounded up past the real time.
    assert iso_utc(1_767_225_600_123_456_789) == "2026-01-01T00:00:00.123456Z"
    assert iso_utc(1_767_225_600_999_999_999) == "2026-01-01T00:00:00.999999Z"
    assert iso_utc(0) == "1970-01-01T00:00:00.000000Z"


def test_event_stamped_at_the_edge_time() -> None:
    clock = ManualClock()
    bus = EventBus(clock)
    edge = clock.monotonic_ns()
    clock.advance(50)
    event = bus.publish(Topic.INPUT, "in1", {}, mono_ns=edge)
    assert event.mono_ns == edge
    assert event.wall_ns == clock.wall_ns() - 50_000_000


def test_event_ids_continue_after_a_restart(make_rig: MakeRig) -> None:
    rig = make_rig(chain_config())
    rig.close("in1")
    last = rig.device.bus.last_id
    rig.device.stop()
    again = make_rig(chain_config(), persistence=rig.persistence)
    assert again.events[0].id == last + 2  # +1 was the device/stopping event
    assert rig.changes(Topic.DEVICE_STOPPING)[0].id == last + 1
