"""The daemon's :class:`~camio.engine.persistence.Persistence`: SQLite event log and output
state in one database file."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from camio.core.events import Event
from camio.core.outputs import OutputSnapshot
from camio.engine.persistence import EventQuery
from camio.store.eventlog import EventLog
from camio.store.state import KeyValueStore, OutputStateStore, PersistedOutput

_RESERVED_KEY = "eventlog/reserved_id"


class StorePersistence:
    """Adapts the store classes to the protocol the device uses."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        max_events: int,
        max_age_s: float,
        wall_clock: Callable[[], int],
    ) -> None:
        self._conn = conn
        self.log = EventLog(conn, max_events=max_events, max_age_s=max_age_s, wall_clock=wall_clock)
        self.outputs = OutputStateStore(conn)
        self.kv = KeyValueStore(conn)
        self._wall_clock = wall_clock

    def last_event_id(self) -> int:
        reserved = self.kv.get(_RESERVED_KEY, 0)
        return max(self.log.last_id(), reserved if isinstance(reserved, int) else 0)

    def reserve_event_ids(self, upto: int) -> None:
        self.kv.set(_RESERVED_KEY, upto)

    def append_event(self, event: Event) -> None:
        self.log.append(event)

    def flush_events(self, *, wait: bool = True) -> None:
        self.log.flush()

    def query_events(self, query: EventQuery) -> list[Event]:
        return self.log.query(
            after=query.after,
            before=query.before,
            since_ns=query.since_ns,
            until_ns=query.until_ns,
            topic=query.topic,
            source=query.source,
            limit=query.limit,
            newest_first=query.newest_first,
        )

    def load_outputs(self) -> dict[str, OutputSnapshot]:
        return {
            port_id: OutputSnapshot(
                active=rec.active,
                latched=rec.latched,
                deadline_wall_ns=rec.deadline_wall_ns,
                cause=rec.cause,
            )
            for port_id, rec in self.outputs.load_all().items()
        }

    def save_output(self, port_id: str, snapshot: OutputSnapshot) -> None:
        self.outputs.save(
            port_id,
            PersistedOutput(
                active=snapshot.active,
                latched=snapshot.latched,
                deadline_wall_ns=snapshot.deadline_wall_ns,
                cause=snapshot.cause,
                updated_wall_ns=self._wall_clock(),
            ),
        )

    def close(self) -> None:
        self.log.flush()
