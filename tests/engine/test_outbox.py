"""The durable outbox under a ManualClock: backoff, permanent errors, expiry, the fallback,
per-recipient concurrency and a restart, with a fake sender registered here.

Time only moves through ``clock.advance``; the sends themselves are coroutines on the test's
loop, so after moving time the test lets the loop run until the expected state is reached
(bounded by an asyncio timeout, never a sleep).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

import camio.actions  # noqa: F401  (registers the action kinds)
from camio.core.clock import ManualClock
from camio.core.config import DeviceConfig
from camio.core.events import Event, EventKind
from camio.core.ports import Circuit
from camio.core.recipients import RecipientSpec
from camio.engine.device import Device
from camio.hardware.sim import SimDriver
from camio.recipients.base import Delivery, DeliveryError, Sender, register_recipient
from camio.recipients.templates import TemplateError, render
from camio.store.db import open_database
from camio.store.outbox import OutboxStore


class FakeRecipient(RecipientSpec):
    kind: Literal["fake"] = "fake"


@dataclass
class FakeSender(Sender[FakeRecipient]):
    """Fails with the queued errors first, then succeeds; ``gate`` holds sends when set."""

    errors: list[DeliveryError] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None
    in_flight: int = 0
    max_in_flight: int = 0

    async def send(self, spec: FakeRecipient, delivery: Delivery) -> None:
        self.attempts.append(delivery.key)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.errors:
                raise self.errors.pop(0)
            self.delivered.append(delivery.key)
        finally:
            self.in_flight -= 1

    async def test(self, spec: FakeRecipient) -> str:
        return "fine"


SENDER = FakeSender()
register_recipient(FakeRecipient, SENDER)


@pytest.fixture(autouse=True)
def fresh_sender() -> None:
    SENDER.errors.clear()
    SENDER.attempts.clear()
    SENDER.delivered.clear()
    SENDER.gate = None
    SENDER.max_in_flight = 0


def config(**outbox: Any) -> DeviceConfig:
    return DeviceConfig.model_validate(
        {
            "inputs": [{"id": "in1", "name": "in1", "debounce_on_ms": 0, "debounce_off_ms": 0}],
            "outputs": [{"id": "out1", "name": "out1"}],
            "recipients": [{"kind": "fake", "id": "hook", "name": "Hook"}],
            "outbox": {"backoff_base_ms": 1000, "backoff_max_ms": 60_000, **outbox},
            "rules": [
                {
                    "id": "door",
                    "name": "Door",
                    "conditions": [{"kind": "input", "port": "in1"}],
                    "action": {"kind": "notify", "recipients": ["hook"]},
                    "fallback": {"kind": "set_output", "port": "out1"},
                }
            ],
        }
    )


@dataclass
class Rig:
    device: Device
    clock: ManualClock
    events: list[Event]

    def topics(self, topic: str) -> list[Event]:
        return [e for e in self.events if e.topic == topic and e.kind is not EventKind.INITIALIZED]

    def alarm(self) -> None:
        self.device.sim_set_circuit("in1", Circuit.CLOSED)
        self.device.sim_set_circuit("in1", Circuit.OPEN)


def make(
    cfg: DeviceConfig, store: OutboxStore | None = None, clock: ManualClock | None = None
) -> Rig:
    clock = clock or ManualClock()
    device = Device(cfg, driver=SimDriver(), clock=clock, outbox_store=store)
    events: list[Event] = []
    device.subscribe(events.append, replay_state=False)
    device.start()
    return Rig(device, clock, events)


async def until(check: Callable[[], bool], what: str = "condition") -> None:
    """Let the loop run until ``check()`` holds (the sends are coroutines)."""
    try:
        async with asyncio.timeout(5):
            while not check():  # noqa: ASYNC110 (the sends run on this loop)
                await asyncio.sleep(0)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_rule_notifies_once_with_a_stable_key() -> None:
    rig = make(config())
    rig.alarm()
    await until(lambda: len(SENDER.delivered) == 1)
    fired = rig.topics("io/input")[0]
    assert SENDER.delivered == [f"door-{fired.id}-hook"]
    await until(lambda: len(rig.topics("outbox/delivered")) == 1)
    assert rig.topics("outbox/delivered")[0].data["key"] == SENDER.delivered[0]
    assert rig.device.outbox_status()["deliveries"] == []
    assert rig.device.recipient_states()["hook"]["state"] == "ok"


async def test_retries_back_off_exponentially_with_jitter() -> None:
    SENDER.errors[:] = [DeliveryError("down"), DeliveryError("down"), DeliveryError("down")]
    rig = make(config())
    rig.alarm()
    await until(lambda: len(SENDER.attempts) == 1)
    await settle()
    # First retry after 1 s * [0.5, 1): not before half of it, surely by the whole of it.
    rig.clock.advance(499)
    await settle()
    assert len(SENDER.attempts) == 1
    rig.clock.advance(501)
    await until(lambda: len(SENDER.attempts) == 2, "second attempt")
    await settle()
    # Second retry after 2 s * [0.5, 1).
    rig.clock.advance(999)
    await settle()
    assert len(SENDER.attempts) == 2
    rig.clock.advance(1001)
    await until(lambda: len(SENDER.attempts) == 3, "third attempt")
    await settle()
    status = rig.device.outbox_status()
    assert status["deliveries"][0]["state"] == "retrying"
    assert status["deliveries"][0]["attempts"] == 3
    assert status["recipients"][0]["state"] == "retrying"
    assert status["recipients"][0]["last_error"] == "down"
    rig.clock.advance(4000)
    await until(lambda: len(SENDER.delivered) == 1, "delivery")
    assert len(set(SENDER.attempts)) == 1  # every retry carried the same key
    states = [e.data["state"] for e in rig.topics("recipient/state")]
    assert states == ["retrying", "ok"]
    assert not rig.device.outputs["out1"].active  # no fallback: it got through


async def test_a_permanent_error_is_not_retried_and_runs_the_fallback() -> None:
    SENDER.errors[:] = [DeliveryError("HTTP 401 Unauthorized", permanent=True)]
    rig = make(config())
    rig.alarm()
    await until(lambda: len(rig.topics("outbox/failed")) == 1, "outbox/failed")
    failed = rig.topics("outbox/failed")[0]
    assert failed.data["state"] == "failed" and "401" in failed.data["error"]
    assert rig.device.outputs["out1"].active  # the rule's fallback ran
    assert rig.topics("rule/failed")
    rig.clock.advance(600_000)
    await settle()
    assert len(SENDER.attempts) == 1
    assert rig.device.outbox_status()["deliveries"][0]["state"] == "failed"
    assert rig.device.recipient_states()["hook"]["state"] == "failing"


async def test_out_of_attempts_fails_and_runs_the_fallback() -> None:
    SENDER.errors[:] = [DeliveryError("down")] * 5
    rig = make(config(max_attempts=2))
    rig.alarm()
    await until(lambda: len(SENDER.attempts) == 1)
    await settle()
    rig.clock.advance(1000)
    await until(lambda: len(rig.topics("outbox/failed")) == 1, "outbox/failed")
    assert len(SENDER.attempts) == 2
    assert "after 2 attempts" in rig.topics("outbox/failed")[0].data["error"]
    assert rig.device.outputs["out1"].active


async def test_a_delivery_expires_and_runs_the_fallback() -> None:
    SENDER.errors[:] = [DeliveryError("down")] * 100
    rig = make(config(expire_after_s=60, backoff_max_ms=10_000))
    rig.alarm()
    await until(lambda: len(SENDER.attempts) == 1)
    for _ in range(20):
        await settle()
        rig.clock.advance(5_000)
    await until(lambda: len(rig.topics("outbox/failed")) == 1, "expiry")
    assert rig.topics("outbox/failed")[0].data["state"] == "expired"
    assert any(e.data["active"] for e in rig.topics("io/output"))  # the fallback ran
    count = len(SENDER.attempts)
    rig.clock.advance(600_000)
    await settle()
    assert len(SENDER.attempts) == count  # nothing more once expired


async def test_one_attempt_at_a_time_per_recipient() -> None:
    SENDER.gate = asyncio.Event()
    rig = make(config())
    for _ in range(3):
        rig.alarm()
    await until(lambda: len(SENDER.attempts) == 1)
    await settle()
    assert SENDER.in_flight == 1
    SENDER.gate.set()
    await until(lambda: len(SENDER.delivered) == 3, "three deliveries")
    assert SENDER.max_in_flight == 1
    assert len(set(SENDER.delivered)) == 3


async def test_the_same_key_is_queued_once() -> None:
    rig = make(config())
    delivery = Delivery(key="k1", recipient_id="hook", subject="s", body="b")
    assert rig.device.enqueue(delivery) is True
    assert rig.device.enqueue(delivery) is False
    await until(lambda: SENDER.delivered == ["k1"])


async def test_queued_deliveries_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "camio.db"
    SENDER.gate = asyncio.Event()  # the receiver hangs: the first attempt never ends
    clock = ManualClock()
    conn = open_database(path)
    first = make(config(), OutboxStore(conn), clock)
    first.alarm()
    first.alarm()
    await until(lambda: len(SENDER.attempts) == 1)
    await settle()
    first.device.stop()  # cancels the attempt in flight; both stay queued
    await settle()
    conn.close()
    assert SENDER.delivered == []

    SENDER.gate = None
    SENDER.errors[:] = [DeliveryError("no", permanent=True)]  # one resumed delivery fails
    conn = open_database(path)
    second = make(config(), OutboxStore(conn), clock)
    clock.advance(0)
    await until(lambda: len(SENDER.delivered) == 1 and second.topics("outbox/failed"))
    # The failure after a restart is published, but the fallback's context is gone.
    assert not second.device.outputs["out1"].active
    second.device.stop()
    conn.close()
    rows = sqlite3.connect(path).execute("SELECT state FROM outbox ORDER BY id").fetchall()
    assert sorted(r[0] for r in rows) == ["delivered", "failed"]


def test_templates_refuse_attribute_access() -> None:
    context = {"event": {"topic": "io/input", "data": {"active": True}}}
    assert render("{event.topic} {event.data.active} {event.nope}", context) == "io/input True "
    for bad in ("{event.__class__}", "{event[topic]}", "{}", "{event._x}"):
        with pytest.raises(TemplateError):
            render(bad, context)


def test_a_rule_naming_an_unknown_recipient_is_refused() -> None:
    data = config().model_dump(mode="json")
    data["rules"][0]["action"]["recipients"] = ["nobody"]
    with pytest.raises(ValueError, match="no recipient 'nobody'"):
        DeviceConfig.model_validate(data)
    data = config().model_dump(mode="json")
    data["recipients"].append(dict(data["recipients"][0]))
    with pytest.raises(ValueError, match="recipient ids must be unique"):
        DeviceConfig.model_validate(data)


async def test_a_full_outbox_refuses_and_runs_the_fallback() -> None:
    SENDER.gate = asyncio.Event()  # nothing drains
    rig = make(config(max_queued=10))
    for _ in range(11):
        rig.alarm()
    await settle()
    failed = rig.topics("rule/failed")
    assert len(failed) == 1 and "outbox.max_queued" in failed[0].data["error"]
    assert any(e.data["active"] for e in rig.topics("io/output"))
    assert len(rig.device.outbox_status()["deliveries"]) == 10
    SENDER.gate.set()
    await until(lambda: len(SENDER.delivered) == 10, "the queued ten")


async def test_finished_deliveries_are_pruned_after_a_week(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "camio.db")
    clock = ManualClock()
    rig = make(config(), OutboxStore(conn), clock)
    rig.alarm()
    await until(lambda: len(SENDER.delivered) == 1)
    await settle()
    rig.device.stop()
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1
    clock.advance(8 * 86_400_000)
    make(config(), OutboxStore(conn), clock).device.stop()
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    conn.close()
