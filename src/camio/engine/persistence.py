"""What the device needs to remember, as a protocol, and an in-memory implementation.

The daemon uses the SQLite-backed :class:`camio.store.persistence.StorePersistence`; tests, the
benchmarks and the farm's throwaway devices can use :class:`MemoryPersistence`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from camio.core.events import Event
from camio.core.outputs import OutputSnapshot


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters for the event log; every field optional."""

    after: int | None = None
    before: int | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    topic: str | None = None
    source: str | None = None
    limit: int = 100
    newest_first: bool = False


class Persistence(Protocol):
    """Event log and output state, durable in the daemon."""

    def last_event_id(self) -> int:
        """The highest id ever handed out (logged or reserved), so ids are never reused."""

    def reserve_event_ids(self, upto: int) -> None:
        """Durably record that ids up to ``upto`` may be in use."""

    def append_event(self, event: Event) -> None:
        """Cheap: buffer the event; :meth:`flush_events` writes the buffer."""

    def flush_events(self, *, wait: bool = True) -> None:
        """Write buffered events; with ``wait=False`` it may hand them to a writer thread."""

    def query_events(self, query: EventQuery) -> list[Event]: ...

    def load_outputs(self) -> dict[str, OutputSnapshot]: ...

    def save_output(self, port_id: str, snapshot: OutputSnapshot) -> None: ...

    def close(self) -> None: ...


def matches(event: Event, query: EventQuery) -> bool:
    """The filter semantics shared by every implementation (topic ``x*`` is a prefix)."""
    if query.after is not None and event.id <= query.after:
        return False
    if query.before is not None and event.id >= query.before:
        return False
    if query.since_ns is not None and event.wall_ns < query.since_ns:
        return False
    if query.until_ns is not None and event.wall_ns >= query.until_ns:
        return False
    if query.topic is not None:
        if query.topic.endswith("*"):
            if not event.topic.startswith(query.topic[:-1]):
                return False
        elif event.topic != query.topic:
            return False
    return query.source is None or event.source == query.source


class MemoryPersistence:
    """A bounded in-memory event log and output state (lost when the process ends)."""

    def __init__(self, max_events: int = 10_000) -> None:
        self.events: deque[Event] = deque(maxlen=max_events)
        self.outputs: dict[str, OutputSnapshot] = {}

    def last_event_id(self) -> int:
        return self.events[-1].id if self.events else 0

    def reserve_event_ids(self, upto: int) -> None:
        return None

    def append_event(self, event: Event) -> None:
        self.events.append(event)

    def flush_events(self, *, wait: bool = True) -> None:
        return None

    def query_events(self, query: EventQuery) -> list[Event]:
        source = reversed(self.events) if query.newest_first else iter(self.events)
        found: list[Event] = []
        for event in source:
            if matches(event, query):
                found.append(event)
                if len(found) >= query.limit:
                    break
        return found

    def load_outputs(self) -> dict[str, OutputSnapshot]:
        return dict(self.outputs)

    def save_output(self, port_id: str, snapshot: OutputSnapshot) -> None:
        self.outputs[port_id] = snapshot

    def close(self) -> None:
        return None
