"""The outbox runner: drains the durable outbox with backoff, owned by the Device.

No polling: the runner sleeps on the injected clock until the next due attempt and is woken
by :meth:`Outbox.enqueue` and by every finished attempt, so an idle device schedules nothing
and tests drive retries with a ManualClock. Due times are wall-clock nanoseconds because they
are persisted: monotonic time restarts at every boot.

At most one attempt per recipient runs at a time (a receiver sees notifications in order and
is not hammered while it is down) and at most :data:`MAX_PARALLEL` overall.

Fallback: the action that enqueued a delivery may pass ``on_failed``; it runs when the delivery
finally fails (permanent error, out of attempts, expired) and starts the rule's fallback action.
That callback lives in memory only: after a restart a resumed delivery that fails just publishes
``outbox/failed`` (the rule context that would run the fallback is gone).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from camio.core.clock import NS_PER_MS, NS_PER_S, Timer
from camio.core.events import Cause, EventKind, Topic
from camio.recipients.base import Delivery, DeliveryError, sender_for
from camio.store.outbox import DuplicateDelivery, OutboxRow, OutboxStore, RecipientSummary

if TYPE_CHECKING:
    from camio.engine.device import Device

_LOGGER = logging.getLogger(__name__)

MAX_PARALLEL = 8
PRUNE_AFTER_NS = 7 * 86_400 * NS_PER_S
"""Finished deliveries stay visible this long, then are deleted (at start and every
:data:`PRUNE_EVERY` finished deliveries)."""
PRUNE_EVERY = 100

FailureCallback = Callable[[str], None]


class Outbox:
    """Sends stored deliveries with each recipient's sender until done, failed or expired."""

    def __init__(
        self, device: Device, store: OutboxStore, *, rng: random.Random | None = None
    ) -> None:
        self._device = device
        self.store = store
        self._rng = rng or random.Random()
        self._timer: Timer | None = None
        self._busy: set[str] = set()  # recipients with an attempt in flight
        self._in_flight: set[int] = set()
        self._on_failed: dict[str, FailureCallback] = {}
        self._summaries: dict[str, RecipientSummary] = {}
        self._running = False
        self._finished = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Resume what a previous run left queued (the first pump runs on the clock)."""
        self._running = True
        clock = self._device.clock
        self.store.prune(clock.wall_ns() - PRUNE_AFTER_NS)
        for row in self.store.pending():
            if row.state == "retrying":
                summary = self.summary(row.delivery.recipient_id)
                summary.state, summary.last_error = "retrying", row.last_error
                summary.since_wall_ns = summary.since_wall_ns or row.created_wall_ns
        self._arm(0)

    def stop(self) -> None:
        """Stop scheduling; attempts in flight are cancelled with the device's tasks and
        their rows stay pending for the next start."""
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- API -----------------------------------------------------------------------------------

    def enqueue(self, delivery: Delivery, on_failed: FailureCallback | None = None) -> bool:
        """Persist ``delivery`` and wake the runner. False when its key is already stored.

        Raises :class:`~camio.store.outbox.OutboxFull` or ``ValueError`` (too large)."""
        try:
            self.store.add(
                delivery,
                self._device.clock.wall_ns(),
                max_pending=self._device.config.outbox.max_queued,
            )
        except DuplicateDelivery:
            return False
        if on_failed is not None:
            self._on_failed[delivery.key] = on_failed
        self._pump()
        return True

    def summary(self, recipient_id: str) -> RecipientSummary:
        summary = self._summaries.get(recipient_id)
        if summary is None:
            summary = self._summaries[recipient_id] = RecipientSummary(recipient_id)
        return summary

    def recipient_states(self) -> list[dict[str, Any]]:
        """Each configured recipient: ok / retrying / failing, since when, why, how many wait."""
        pending = self.store.pending_counts()
        recipients = []
        for spec in self._device.config.recipients:
            summary = self.summary(spec.id)
            summary.pending = pending.get(spec.id, 0)
            recipients.append(summary.to_dict())
        return recipients

    def status(self) -> dict[str, Any]:
        rows = self.store.listing(("queued", "retrying", "failed", "expired"))
        return {"deliveries": [r.to_dict() for r in rows], "recipients": self.recipient_states()}

    # -- the runner ----------------------------------------------------------------------------

    def _arm(self, delay_ns: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._device.clock.call_later(max(0, delay_ns), self._pump)

    def _pump(self) -> None:
        """Start every due attempt the concurrency limits allow; sleep until the next one."""
        if not self._running:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a synchronous test without a loop: nothing can be sent
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self._device.clock.wall_ns()
        next_due: int | None = None
        for row_id, rid, due in self.store.due_list(1000):
            if row_id in self._in_flight:
                continue
            if due > now:
                next_due = due if next_due is None else next_due
                continue
            if rid in self._busy or len(self._in_flight) >= MAX_PARALLEL:
                continue  # the end of the attempt in flight pumps again
            row = self.store.get(row_id)
            if row is None:
                continue
            self._busy.add(rid)
            self._in_flight.add(row_id)
            self._device.spawn(self._attempt(row))
        if next_due is not None:
            self._arm(next_due - now)

    async def _attempt(self, row: OutboxRow) -> None:
        delivery = row.delivery
        rid = delivery.recipient_id
        try:
            await self._try(row)
        except Exception as exc:  # a bug in a sender must not stop the outbox
            _LOGGER.exception("outbox: delivery %s", delivery.key)
            self._retry_or_give_up(row, f"internal error: {exc}", permanent=False)
        finally:
            self._busy.discard(rid)
            self._in_flight.discard(row.id)
        if self._running:
            self._pump()

    async def _try(self, row: OutboxRow) -> None:
        delivery = row.delivery
        cfg = self._device.config.outbox
        clock = self._device.clock
        if clock.wall_ns() - row.created_wall_ns >= cfg.expire_after_s * NS_PER_S:
            self._give_up(row, "expired", row.last_error or "expired before it could be sent")
            return
        spec = next((r for r in self._device.config.recipients if r.id == delivery.recipient_id),
                    None)  # fmt: skip
        if spec is None:
            self._give_up(row, "failed", f"recipient {delivery.recipient_id!r} does not exist")
            return
        if not spec.enabled:
            self._give_up(row, "failed", f"recipient {spec.id!r} is disabled")
            return
        try:
            await sender_for(spec).send(spec, delivery)
        except DeliveryError as exc:
            self._retry_or_give_up(row, str(exc), permanent=exc.permanent)
            return
        except (TimeoutError, OSError) as exc:
            self._retry_or_give_up(row, str(exc) or type(exc).__name__, permanent=False)
            return
        now = clock.wall_ns()
        self.store.complete(row.id, now)
        self._on_failed.pop(delivery.key, None)
        self._publish(Topic.OUTBOX_DELIVERED, row, {"attempts": row.attempts + 1})
        self._set_state(delivery.recipient_id, "ok", None)

    def _retry_or_give_up(self, row: OutboxRow, error: str, *, permanent: bool) -> None:
        cfg = self._device.config.outbox
        attempts = row.attempts + 1
        if permanent:
            self._give_up(row, "failed", error, tried=True)
            return
        if cfg.max_attempts is not None and attempts >= cfg.max_attempts:
            self._give_up(row, "failed", f"{error} (after {attempts} attempts)", tried=True)
            return
        now = self._device.clock.wall_ns()
        backoff_ms = min(cfg.backoff_max_ms, cfg.backoff_base_ms * 2 ** min(attempts - 1, 30))
        delay_ns = int(backoff_ms * NS_PER_MS * (0.5 + 0.5 * self._rng.random()))  # jitter
        expires = row.created_wall_ns + cfg.expire_after_s * NS_PER_S
        self.store.reschedule(row.id, error, min(now + delay_ns, max(expires, now)))
        self._set_state(row.delivery.recipient_id, "retrying", error)

    def _give_up(self, row: OutboxRow, state: str, error: str, *, tried: bool = False) -> None:
        self.store.finish(row.id, state, error, self._device.clock.wall_ns(), tried=tried)
        self._publish(
            Topic.OUTBOX_FAILED,
            row,
            {"state": state, "error": error, "attempts": row.attempts + (1 if tried else 0)},
        )
        self._set_state(row.delivery.recipient_id, "failing", error)
        callback = self._on_failed.pop(row.delivery.key, None)
        if callback is not None:
            callback(f"delivery to {row.delivery.recipient_id!r} {state}: {error}")

    def _publish(self, topic: Topic, row: OutboxRow, extra: dict[str, Any]) -> None:
        if topic is not Topic.RECIPIENT_STATE:
            self._finished += 1
            if self._finished % PRUNE_EVERY == 0:
                self.store.prune(self._device.clock.wall_ns() - PRUNE_AFTER_NS)
        event_id = row.delivery.event.get("id")
        self._device.bus.publish(
            topic,
            row.delivery.recipient_id,
            {"key": row.delivery.key, "delivery": row.id, **extra},
            kind=EventKind.PULSE,
            stateful=False,
            cause=Cause("outbox", event_id=event_id if isinstance(event_id, int) else None),
        )

    def _set_state(self, recipient_id: str, state: str, error: str | None) -> None:
        summary = self.summary(recipient_id)
        if error is not None:
            summary.last_error = error
        if summary.state == state:
            return
        summary.state = state
        summary.since_wall_ns = self._device.clock.wall_ns()
        self._device.bus.publish(
            Topic.RECIPIENT_STATE,
            recipient_id,
            {"state": state, "last_error": summary.last_error},
            cause=Cause("outbox"),
        )
