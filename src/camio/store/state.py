"""Output state and small key/values that must survive a crash.

"Power-on state: restore" means an output that was running a 10 s alarm time when the device
died comes back for the *remaining* time, and a latched (continuous) output comes back on. For
that the engine saves every output change here right after driving the hardware, with the end of
a timed activation as a wall-clock deadline: monotonic time restarts at every boot, so only
wall time can say how much of the timer is left. (A wall clock stepped while the device was off
shortens or lengthens the remainder; an expired deadline simply means "stay off".)

Each :meth:`OutputStateStore.save` is one small autocommitted upsert: durable against a
``kill -9`` as soon as it returns, without an fsync of its own (see :mod:`camio.store.db`).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from camio.core.events import Cause
from camio.store.db import Schema, migrate, register_schema

__all__ = ["SCHEMA", "KeyValueStore", "OutputStateStore", "PersistedOutput"]

SCHEMA: Schema = [
    (
        "state.0001_create",
        """
        CREATE TABLE IF NOT EXISTS output_state (
            port_id TEXT PRIMARY KEY,
            active INTEGER NOT NULL,
            latched INTEGER NOT NULL,
            deadline_wall_ns INTEGER,
            cause TEXT,
            updated_wall_ns INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS kv (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    ),
]
register_schema(SCHEMA)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class PersistedOutput:
    """What an output was doing, as needed to restore it after a restart.

    - ``active``: the output was in its active state.
    - ``latched``: active continuously until stopped (alarm time 0, manual start).
    - ``deadline_wall_ns``: when a timed activation ends (UTC ns), ``None`` when not timed.
    - ``cause``: why it got into this state, so the restored change can say what it resumes.
    - ``updated_wall_ns``: when this record was written.
    """

    active: bool
    latched: bool
    deadline_wall_ns: int | None
    cause: Cause | None
    updated_wall_ns: int


class OutputStateStore:
    """The last known state of every output (table ``output_state``), keyed by port id."""

    _UPSERT = (
        "INSERT INTO output_state"
        " (port_id, active, latched, deadline_wall_ns, cause, updated_wall_ns)"
        " VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (port_id) DO UPDATE SET"
        " active = excluded.active, latched = excluded.latched,"
        " deadline_wall_ns = excluded.deadline_wall_ns, cause = excluded.cause,"
        " updated_wall_ns = excluded.updated_wall_ns"
    )

    def __init__(self, conn: sqlite3.Connection) -> None:
        migrate(conn, SCHEMA)
        self._conn = conn

    def save(self, port_id: str, rec: PersistedOutput) -> None:
        """Record ``rec`` for ``port_id`` (one upsert, committed on return).

        The SQL text is a constant, so the sqlite3 statement cache reuses the prepared statement
        on every call.
        """
        self._conn.execute(
            self._UPSERT,
            (
                port_id,
                1 if rec.active else 0,
                1 if rec.latched else 0,
                rec.deadline_wall_ns,
                _dumps(rec.cause.to_dict()) if rec.cause is not None else None,
                rec.updated_wall_ns,
            ),
        )

    def load_all(self) -> dict[str, PersistedOutput]:
        """Every saved output, by port id (ports that no longer exist are the caller's call)."""
        rows = self._conn.execute(
            "SELECT port_id, active, latched, deadline_wall_ns, cause, updated_wall_ns"
            " FROM output_state ORDER BY port_id"
        )
        return {
            port_id: PersistedOutput(
                active=bool(active),
                latched=bool(latched),
                deadline_wall_ns=deadline,
                cause=Cause.from_dict(json.loads(cause)) if cause is not None else None,
                updated_wall_ns=updated,
            )
            for port_id, active, latched, deadline, cause, updated in rows
        }

    def delete(self, port_id: str) -> bool:
        """Forget ``port_id`` (a port removed from the configuration); ``True`` if it existed."""
        cursor = self._conn.execute("DELETE FROM output_state WHERE port_id = ?", (port_id,))
        return cursor.rowcount > 0


class KeyValueStore:
    """Small JSON values by key (table ``kv``): virtual input states, the manual trigger, ….

    Keys are namespaced by convention with a ``/`` (``"virtual_input/3"``), so
    :meth:`items` can list one namespace. Values are anything ``json.dumps`` accepts; they come
    back as JSON types (tuples come back as lists). Every write is committed on return.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        migrate(conn, SCHEMA)
        self._conn = conn

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``, replacing any previous value."""
        self._conn.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, _dumps(value)),
        )

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it existed."""
        return self._conn.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount > 0

    def items(self, prefix: str = "") -> dict[str, Any]:
        """All keys starting with ``prefix`` (all keys by default) and their values."""
        # substr instead of LIKE/GLOB: the prefix is matched literally, whatever it contains.
        rows = self._conn.execute(
            "SELECT key, value FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key",
            (len(prefix), prefix),
        )
        return {key: json.loads(value) for key, value in rows}
