"""Event subscriptions of the ONVIF dialect: pull points and push (base notification) ones.

One :class:`SubscriptionRegistry` per device holds them, bounded twice: at most
``dialects.onvif.max_subscriptions`` at once (more are refused), and at most ``queue_size``
undelivered messages each (the oldest is dropped, with a warning, rather than memory growing
for a client that stopped pulling). A subscription lives until its termination time, measured on the
device's clock (so tests drive expiry with a manual clock); Renew moves it, and a PullMessages
keeps it alive for at least its own timeout. Expired subscriptions are reaped by a timer each,
and all of them end when the device stops.

Events come through the Device facade: ``device.subscribe(..., replay_state=True)`` gives the
``Initialized`` state of every input and relay first, then changes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import secrets
import weakref
from collections import deque
from typing import TYPE_CHECKING, Final

from camio.core.clock import NS_PER_S, Clock, Timer
from camio.core.events import Event, Topic
from camio.dialects.onvif.topics import MessageMapper, OnvifMessage, TopicFilter, accepts

if TYPE_CHECKING:
    from camio.engine.bus import Subscription as BusSubscription
    from camio.engine.device import Device

_LOGGER = logging.getLogger(__name__)

#: Undelivered messages kept per subscription; older ones are dropped beyond that.
QUEUE_SIZE: Final = 1_000
#: Termination when the client asks for none, and the longest one granted.
DEFAULT_TERMINATION_NS: Final = 60 * NS_PER_S
MAX_TERMINATION_NS: Final = 24 * 3600 * NS_PER_S
#: Messages one PullMessages returns at most, whatever MessageLimit says.
MAX_MESSAGE_LIMIT: Final = 1_000

PULL: Final = "pull"
PUSH: Final = "push"


class TerminationError(ValueError):
    """A termination time in the past or unparsable (``UnacceptableTerminationTimeFault``)."""


class LimitReached(Exception):
    """No more subscriptions can be created."""


# -- time ------------------------------------------------------------------------------------

_DURATION: Final = re.compile(
    r"^(?P<sign>-)?P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration_ns(text: str) -> int:
    """An ``xs:duration`` (``PT60S``, ``PT1M``, ``P1DT2H``) in nanoseconds (may be negative).

    Years and months count as 365 and 30 days. Raises ValueError when it is not a duration.
    """
    text = text.strip()
    match = _DURATION.match(text)
    if match is None or text.endswith(("P", "T")):
        raise ValueError(f"not an xs:duration: {text!r}")
    parts = match.groupdict()
    days = (
        int(parts["y"] or 0) * 365
        + int(parts["mo"] or 0) * 30
        + int(parts["w"] or 0) * 7
        + int(parts["d"] or 0)
    )
    seconds = days * 86_400 + int(parts["h"] or 0) * 3600 + int(parts["mi"] or 0) * 60
    ns = seconds * NS_PER_S + round(float(parts["s"] or 0) * NS_PER_S)
    return -ns if parts["sign"] else ns


_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def parse_datetime_ns(text: str) -> int:
    """An ``xs:dateTime`` as UTC epoch nanoseconds (no zone = UTC). ValueError if invalid."""
    stamp = dt.datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    delta = stamp - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def format_time(wall_ns: int) -> str:
    """Epoch nanoseconds as ``2026-11-21T22:15:49.876Z`` (UTC, milliseconds)."""
    stamp = _EPOCH + dt.timedelta(microseconds=wall_ns // 1000)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def requested_lifetime_ns(text: str | None, clock: Clock) -> int:
    """How long from now a requested termination (relative or absolute) is, clamped.

    None or empty asks for the default; a time not in the future raises TerminationError.
    """
    if text is None or not text.strip():
        return DEFAULT_TERMINATION_NS
    text = text.strip()
    try:
        if text.startswith(("P", "-P")):
            lifetime = parse_duration_ns(text)
        else:
            lifetime = parse_datetime_ns(text) - clock.wall_ns()
    except ValueError:
        raise TerminationError(f"invalid termination time {text!r}") from None
    if lifetime <= 0:
        raise TerminationError(f"termination time {text!r} is not in the future")
    return min(lifetime, MAX_TERMINATION_NS)


async def clock_sleep(clock: Clock, delay_ns: int) -> None:
    """Sleep on the device's clock (a manual clock in tests)."""
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    timer = clock.call_later(delay_ns, wake)
    try:
        await fut
    finally:
        timer.cancel()


# -- subscriptions ---------------------------------------------------------------------------


class Subscription:
    """One pull point or push subscription: its filter, queue, waiter and lifetime."""

    def __init__(
        self,
        registry: SubscriptionRegistry,
        sub_id: str,
        kind: str,
        *,
        address: str,
        topic_filter: TopicFilter | None,
        consumer: str | None,
        queue_size: int,
    ) -> None:
        self.registry = registry
        self.id = sub_id
        self.kind = kind
        self.address = address
        self.filter = topic_filter
        self.consumer = consumer
        self.queue: deque[OnvifMessage] = deque()
        self.queue_size = queue_size
        self.dropped = 0
        self.closed = False
        self.expires_mono_ns = 0
        self.task: asyncio.Task[None] | None = None
        self._mapper = MessageMapper()
        self._bus_sub: BusSubscription | None = None
        self._timer: Timer | None = None
        self._waiter: asyncio.Future[bool] | None = None
        self._silent = False

    # -- events ------------------------------------------------------------------------------

    def on_event(self, event: Event, *, force: bool = False) -> None:
        """Map a camio event; queue it unless filtered out or a repeat; wake the waiter."""
        if self.closed:
            return
        msg = self._mapper.map(event, force=force)
        if msg is None or self._silent:
            return
        if self.filter is not None and not self.filter.matches(msg.topic):
            return
        if len(self.queue) >= self.queue_size:
            self.queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % self.queue_size == 0:
                _LOGGER.warning(
                    "ONVIF subscription %s is not collected: dropped %d old messages",
                    self.id,
                    self.dropped,
                )
        self.queue.append(msg)
        self._wake(False)

    def _wake(self, superseded: bool) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(superseded)

    def take(self, limit: int) -> list[OnvifMessage]:
        """Up to ``limit`` queued messages, oldest first (the rest stay queued)."""
        out: list[OnvifMessage] = []
        queue = self.queue
        while queue and len(out) < limit:
            out.append(queue.popleft())
        return out

    async def wait(self, timeout_ns: int | None = None) -> bool:
        """Wait until a message is queued, the subscription ends, or ``timeout_ns`` passes on
        the device's clock. Returns True when a newer waiter took over (this one should answer
        without taking messages). Only one waiter at a time: a new one supersedes the old, so
        a long poll whose client went away never holds the subscription."""
        if self.queue or self.closed:
            return False
        self._wake(True)
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiter = fut
        timer: Timer | None = None
        if timeout_ns is not None:

            def expire() -> None:
                if not fut.done():
                    fut.set_result(False)

            timer = self.registry.clock.call_later(timeout_ns, expire)
        try:
            return await fut
        finally:
            if timer is not None:
                timer.cancel()
            if self._waiter is fut:
                self._waiter = None

    @property
    def waiting(self) -> bool:
        return self._waiter is not None

    # -- lifetime ----------------------------------------------------------------------------

    def set_lifetime(self, lifetime_ns: int) -> None:
        """Terminate ``lifetime_ns`` from now (Renew, creation)."""
        clock = self.registry.clock
        self.expires_mono_ns = clock.monotonic_ns() + lifetime_ns
        if self._timer is not None:
            self._timer.cancel()
        self._timer = clock.call_later(lifetime_ns, self._expired)

    def keep_alive(self, lifetime_ns: int) -> None:
        """Make sure the subscription lives at least ``lifetime_ns`` more (a long poll)."""
        if self.expires_mono_ns - self.registry.clock.monotonic_ns() < lifetime_ns:
            self.set_lifetime(lifetime_ns)

    @property
    def termination_wall_ns(self) -> int:
        clock = self.registry.clock
        return clock.wall_ns() + (self.expires_mono_ns - clock.monotonic_ns())

    def _expired(self) -> None:
        self._timer = None
        if not self.closed:
            _LOGGER.info("ONVIF %s subscription %s expired", self.kind, self.id)
            self.registry.remove(self)

    def close(self) -> None:
        """End the subscription: no more events, wake any waiter, stop its push task."""
        if self.closed:
            return
        self.closed = True
        if self._bus_sub is not None:
            self._bus_sub.close()
            self._bus_sub = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake(False)
        self.queue.clear()
        task = self.task
        self.task = None
        if task is not None and not task.done() and task is not _current_task():
            task.cancel()


def _current_task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


class SubscriptionRegistry:
    """The event subscriptions of one device."""

    def __init__(
        self,
        device: Device,
        *,
        max_subscriptions: int | None = None,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.device = device
        self.clock = device.clock
        #: None: the configured ``dialects.onvif.max_subscriptions`` (read at each creation).
        self.max_subscriptions = max_subscriptions
        self.queue_size = queue_size
        self._subs: dict[str, Subscription] = {}
        self._stop_sub: BusSubscription | None = None

    @property
    def limit(self) -> int:
        """Subscriptions alive at once at most."""
        if self.max_subscriptions is not None:
            return self.max_subscriptions
        return self.device.config.dialects.onvif.max_subscriptions

    def __len__(self) -> int:
        return len(self._subs)

    def get(self, sub_id: str) -> Subscription | None:
        return self._subs.get(sub_id)

    def all(self) -> list[Subscription]:
        return list(self._subs.values())

    def create(
        self,
        kind: str,
        *,
        base_address: str,
        lifetime_ns: int,
        topic_filter: TopicFilter | None = None,
        consumer: str | None = None,
        changed_only: bool = False,
    ) -> Subscription:
        """A new subscription at ``base_address + "/" + id``, its current states queued."""
        if len(self._subs) >= self.limit:
            raise LimitReached(f"the device has {len(self._subs)} event subscriptions, its maximum")
        sub_id = secrets.token_hex(8)
        while sub_id in self._subs:  # pragma: no cover - 64 random bits
            sub_id = secrets.token_hex(8)
        sub = Subscription(
            self,
            sub_id,
            kind,
            address=f"{base_address}/{sub_id}",
            topic_filter=topic_filter,
            consumer=consumer,
            queue_size=self.queue_size,
        )
        sub.set_lifetime(lifetime_ns)
        self._subs[sub_id] = sub
        self._watch_stop()
        # Initialized for every current state first (recorded but not sent with ChangedOnly).
        sub._silent = changed_only
        try:
            sub._bus_sub = self.device.subscribe(sub.on_event, accept=accepts, replay_state=True)
        finally:
            sub._silent = False
        return sub

    def synchronize(self, sub: Subscription) -> None:
        """SetSynchronizationPoint: queue the current state of every property as Initialized."""

        def force(event: Event) -> None:
            sub.on_event(event, force=True)

        self.device.subscribe(force, accept=accepts, replay_state=True).close()

    def remove(self, sub: Subscription) -> None:
        """Unsubscribe or expiry: forget and close ``sub``."""
        if self._subs.get(sub.id) is sub:
            del self._subs[sub.id]
        sub.close()
        if not self._subs and self._stop_sub is not None:
            self._stop_sub.close()
            self._stop_sub = None

    def close_all(self) -> None:
        for sub in list(self._subs.values()):
            self.remove(sub)

    def _watch_stop(self) -> None:
        if self._stop_sub is None:

            def on_stop(event: Event) -> None:
                self.close_all()

            def is_stop(event: Event) -> bool:
                # The device stops, or the dialect was turned off: end every subscription
                # (a push one would otherwise keep sending events to its consumer).
                return event.topic == Topic.DEVICE_STOPPING or (
                    event.topic == Topic.CONFIG_CHANGED
                    and not self.device.config.dialects.onvif.enabled
                )

            self._stop_sub = self.device.subscribe(on_stop, accept=is_stop, replay_state=False)


_REGISTRIES: weakref.WeakKeyDictionary[Device, SubscriptionRegistry] = weakref.WeakKeyDictionary()


def registry_of(device: Device) -> SubscriptionRegistry:
    """The subscriptions of ``device`` (created on first use)."""
    registry = _REGISTRIES.get(device)
    if registry is None:
        registry = _REGISTRIES[device] = SubscriptionRegistry(device)
    return registry
