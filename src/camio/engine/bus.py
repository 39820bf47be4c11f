"""The event bus: ids, ordering, state replay for new subscribers.

Publishing is not re-entrant: an event published while another is being dispatched (a rule
drives an output, whose change is an event) is queued and dispatched after it, so every
subscriber sees every event in id order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from camio.core.clock import Clock
from camio.core.events import Cause, Event, EventKind

_LOGGER = logging.getLogger(__name__)

EventCallback = Callable[[Event], None]

#: Event ids reserved (persisted) at a time; see ``EventBus.reserve_ids``.
ID_BLOCK = 1024
EventFilter = Callable[[Event], bool]


class Subscription:
    """A callback registered on the bus; :meth:`close` removes it."""

    def __init__(self, bus: EventBus, callback: EventCallback, accept: EventFilter | None) -> None:
        self._bus = bus
        self.callback = callback
        self.accept = accept

    def close(self) -> None:
        self._bus._remove(self)


class EventBus:
    """Assigns ids and wall/monotonic times and dispatches events in order."""

    def __init__(
        self,
        clock: Clock,
        *,
        first_id: int = 1,
        state_provider: Callable[[], Iterable[Event]] | None = None,
        reserve_ids: Callable[[int], None] | None = None,
    ) -> None:
        self._clock = clock
        self._next_id = first_id
        # Ids are handed to subscribers before the log is flushed; reserving them in blocks
        # (one small write per block) means a crash can never make a restarted device reuse an
        # id that a client already saw.
        self._reserve_ids = reserve_ids
        self._reserved = first_id - 1
        self._subscribers: list[Subscription] = []
        self._targets: tuple[tuple[EventCallback, EventFilter | None], ...] = ()
        self._queue: deque[Event] = deque()
        self._dispatching = False
        self.state_provider = state_provider
        self.published = 0

    @property
    def last_id(self) -> int:
        return self._next_id - 1

    def make(
        self,
        topic: str,
        source: str,
        data: dict[str, Any],
        *,
        kind: EventKind = EventKind.CHANGED,
        cause: Cause | None = None,
        stateful: bool = True,
        mono_ns: int | None = None,
    ) -> Event:
        """Build an event stamped now (or at ``mono_ns``, e.g. the edge time) without an id."""
        wall, mono = self._stamp(mono_ns)
        return Event(topic, source, data, kind, wall, mono, cause, 0, stateful)

    def _stamp(self, mono_ns: int | None) -> tuple[int, int]:
        """Wall and monotonic time of now, or of the earlier instant ``mono_ns``."""
        now_mono = self._clock.monotonic_ns()
        mono = now_mono if mono_ns is None else mono_ns
        return self._clock.wall_ns() - (now_mono - mono), mono

    def publish(
        self,
        topic: str,
        source: str,
        data: dict[str, Any],
        *,
        kind: EventKind = EventKind.CHANGED,
        cause: Cause | None = None,
        stateful: bool = True,
        mono_ns: int | None = None,
    ) -> Event:
        """Stamp, number and dispatch an event; returns it with its id."""
        wall, mono = self._stamp(mono_ns)
        if self._next_id > self._reserved and self._reserve_ids is not None:
            self._reserved = self._next_id + ID_BLOCK - 1
            self._reserve_ids(self._reserved)
        event = Event(topic, source, data, kind, wall, mono, cause, self._next_id, stateful)
        self._next_id += 1
        self.published += 1
        self._queue.append(event)
        if not self._dispatching:
            self._drain()
        return event

    def _drain(self) -> None:
        self._dispatching = True
        try:
            queue = self._queue
            while queue:
                event = queue.popleft()
                # A snapshot taken at (un)subscribe time: subscribers may come and go while
                # an event is delivered without this loop copying the list per event.
                for callback, accept in self._targets:
                    if accept is not None and not accept(event):
                        continue
                    try:
                        callback(event)
                    except Exception:
                        # One broken subscriber must not stop the device or the others.
                        _LOGGER.exception("event subscriber failed on %s", event.topic)
        finally:
            self._dispatching = False

    def subscribe(
        self,
        callback: EventCallback,
        *,
        accept: EventFilter | None = None,
        replay_state: bool = False,
    ) -> Subscription:
        """Register ``callback``; with ``replay_state`` it first receives every current state.

        The replayed events have kind ``initialized`` and id 0 (they are not log entries).
        """
        sub = Subscription(self, callback, accept)
        if replay_state and self.state_provider is not None:
            for event in self.state_provider():
                if accept is None or accept(event):
                    callback(event)
        self._subscribers.append(sub)
        self._retarget()
        return sub

    def _retarget(self) -> None:
        self._targets = tuple((s.callback, s.accept) for s in self._subscribers)

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
            self._retarget()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)


class QueueSubscription:
    """An asyncio queue fed by the bus, for network streams (WebSocket, long polls).

    Bounded: a consumer that falls more than ``maxsize`` events behind is marked ``overflowed``
    and should be disconnected, rather than letting memory grow without bound. ``on_overflow``
    is called (once, from the publisher) when that happens: a stream whose sender is blocked on
    a client that stopped reading never looks at the queue again, so it must be told.
    """

    def __init__(
        self,
        bus: EventBus,
        *,
        accept: EventFilter | None = None,
        replay_state: bool = True,
        maxsize: int = 10_000,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.overflowed = False
        self._on_overflow = on_overflow
        self._sub = bus.subscribe(self._put, accept=accept, replay_state=replay_state)

    def _put(self, event: Event) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            if self._on_overflow is not None:
                self._on_overflow()

    async def get(self) -> Event:
        return await self.queue.get()

    def close(self) -> None:
        self._sub.close()
