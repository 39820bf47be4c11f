"""The durable outbox: every delivery is a row here *before* its first attempt.

A notification that only lived in memory would be lost by a restart or a crash between the
rule firing and the receiver answering; a row committed first is resumed by the next start.
The idempotency ``key`` is unique, so a rule that fires again for the same event (a replay, a
test) cannot queue the same notification twice. Attachments go in their own table, bounded by
:data:`MAX_ATTACHMENT_BYTES` per delivery, and are deleted with their delivery.

States: ``queued`` (never tried), ``retrying`` (tried, will try again), ``delivered``,
``failed`` (permanent error or out of attempts), ``expired`` (too old). Finished rows are
pruned by :meth:`OutboxStore.prune` so the table stays small.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from camio.recipients.base import Attachment, Delivery
from camio.store.db import Schema, migrate, register_schema, transaction

__all__ = ["MAX_ATTACHMENT_BYTES", "SCHEMA", "OutboxRow", "OutboxStore", "RecipientSummary"]

MAX_ATTACHMENT_BYTES = 16 * 1024 * 1024
"""Attachments of one delivery together; more is refused when queued (a clip belongs on a share
or FTP, not in a database row)."""

PENDING = ("queued", "retrying")
FINISHED = ("delivered", "failed", "expired")

SCHEMA: Schema = [
    (
        "outbox.0001_create",
        """
        CREATE TABLE IF NOT EXISTS outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            recipient_id TEXT NOT NULL,
            key TEXT NOT NULL UNIQUE,
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            event TEXT NOT NULL,
            created_wall_ns INTEGER NOT NULL,
            next_attempt_wall_ns INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'queued',
            last_error TEXT,
            delivered_wall_ns INTEGER,
            finished_wall_ns INTEGER
        );
        CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_wall_ns);
        CREATE TABLE IF NOT EXISTS outbox_attachment (
            delivery_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            name TEXT NOT NULL,
            content_type TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (delivery_id, seq)
        );
        """,
    ),
]
register_schema(SCHEMA)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored delivery with its progress."""

    id: int
    delivery: Delivery
    created_wall_ns: int
    next_attempt_wall_ns: int
    attempts: int
    state: str
    last_error: str | None
    delivered_wall_ns: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "recipient": self.delivery.recipient_id,
            "key": self.delivery.key,
            "subject": self.delivery.subject,
            "state": self.state,
            "attempts": self.attempts,
            "created_wall_ns": self.created_wall_ns,
            "next_attempt_wall_ns": self.next_attempt_wall_ns,
            "last_error": self.last_error,
        }


@dataclass(slots=True)
class RecipientSummary:
    """How a recipient is doing: ``ok``, ``retrying`` or ``failing`` (since when, and why)."""

    recipient_id: str
    state: str = "ok"
    since_wall_ns: int | None = None
    last_error: str | None = None
    pending: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipient": self.recipient_id,
            "state": self.state,
            "since_wall_ns": self.since_wall_ns,
            "last_error": self.last_error,
            "pending": self.pending,
        }


class DuplicateDelivery(Exception):
    """A delivery with this idempotency key is already stored."""


class OutboxFull(Exception):
    """Too many deliveries are pending; the new one is refused (and reported)."""


_COLUMNS = (
    "id, recipient_id, key, subject, body, event, created_wall_ns, next_attempt_wall_ns,"
    " attempts, state, last_error, delivered_wall_ns"
)


class OutboxStore:
    """Deliveries and their attachments in ``camio.db``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        migrate(conn, SCHEMA)
        conn.execute("PRAGMA foreign_keys = ON")

    def add(self, delivery: Delivery, now_wall_ns: int, *, max_pending: int) -> int:
        """Persist a new delivery (committed on return); raises on a duplicate key or when full."""
        size = sum(len(a.data) for a in delivery.attachments)
        if size > MAX_ATTACHMENT_BYTES:
            raise ValueError(f"attachments of {size} bytes exceed {MAX_ATTACHMENT_BYTES}")
        with transaction(self._conn) as conn:
            if conn.execute("SELECT 1 FROM outbox WHERE key = ?", (delivery.key,)).fetchone():
                raise DuplicateDelivery(delivery.key)
            (pending,) = conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE state IN ('queued', 'retrying')"
            ).fetchone()
            if pending >= max_pending:
                raise OutboxFull(f"{pending} deliveries are pending (outbox.max_queued)")
            cur = conn.execute(
                "INSERT INTO outbox (recipient_id, key, subject, body, event, created_wall_ns,"
                " next_attempt_wall_ns) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    delivery.recipient_id,
                    delivery.key,
                    delivery.subject,
                    delivery.body,
                    json.dumps(delivery.event, separators=(",", ":"), default=str),
                    now_wall_ns,
                    now_wall_ns,
                ),
            )
            row_id = cur.lastrowid
            assert row_id is not None
            conn.executemany(
                "INSERT INTO outbox_attachment (delivery_id, seq, name, content_type, data)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (row_id, seq, a.name, a.content_type, a.data)
                    for seq, a in enumerate(delivery.attachments)
                ],
            )
        return row_id

    def _row(self, values: tuple[Any, ...], *, attachments: bool = True) -> OutboxRow:
        """A row as a delivery; listings skip the attachments (they may be megabytes)."""
        row_id = int(values[0])
        files = (
            tuple(
                Attachment(name, ctype, bytes(data))
                for name, ctype, data in self._conn.execute(
                    "SELECT name, content_type, data FROM outbox_attachment"
                    " WHERE delivery_id = ? ORDER BY seq",
                    (row_id,),
                )
            )
            if attachments
            else ()
        )
        delivery = Delivery(
            key=values[2],
            recipient_id=values[1],
            subject=values[3],
            body=values[4],
            event=json.loads(values[5]),
            attachments=files,
        )
        return OutboxRow(row_id, delivery, values[6], values[7], values[8], values[9], values[10],
                         values[11])  # fmt: skip

    def get(self, row_id: int) -> OutboxRow | None:
        values = self._conn.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (row_id,)
        ).fetchone()
        return None if values is None else self._row(values)

    def pending(self, limit: int = 1000) -> list[OutboxRow]:
        """Queued and retrying deliveries, the next due first."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE state IN ('queued', 'retrying')"
            " ORDER BY next_attempt_wall_ns, id LIMIT ?",
            (limit,),
        ).fetchall()
        return [self._row(v) for v in rows]

    def due_list(self, limit: int = 1000) -> list[tuple[int, str, int]]:
        """``(id, recipient id, next attempt)`` of pending deliveries, the next due first: what
        the runner needs to schedule, without loading bodies and attachments."""
        rows = self._conn.execute(
            "SELECT id, recipient_id, next_attempt_wall_ns FROM outbox"
            " WHERE state IN ('queued', 'retrying') ORDER BY next_attempt_wall_ns, id LIMIT ?",
            (limit,),
        ).fetchall()
        return [(int(a), str(b), int(c)) for a, b, c in rows]

    def pending_counts(self) -> dict[str, int]:
        rows = self._conn.execute(
            "SELECT recipient_id, COUNT(*) FROM outbox"
            " WHERE state IN ('queued', 'retrying') GROUP BY recipient_id"
        ).fetchall()
        return {str(rid): int(n) for rid, n in rows}

    def listing(self, states: tuple[str, ...], limit: int = 200) -> list[OutboxRow]:
        marks = ",".join("?" * len(states))
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE state IN ({marks}) ORDER BY id DESC LIMIT ?",
            (*states, limit),
        ).fetchall()
        return [self._row(v, attachments=False) for v in rows]

    def next_due(self) -> int | None:
        (due,) = self._conn.execute(
            "SELECT MIN(next_attempt_wall_ns) FROM outbox WHERE state IN ('queued', 'retrying')"
        ).fetchone()
        return None if due is None else int(due)

    def complete(self, row_id: int, now_wall_ns: int) -> None:
        with transaction(self._conn) as conn:
            conn.execute(
                "UPDATE outbox SET state = 'delivered', attempts = attempts + 1,"
                " delivered_wall_ns = ?, finished_wall_ns = ?, last_error = NULL WHERE id = ?",
                (now_wall_ns, now_wall_ns, row_id),
            )
            conn.execute("DELETE FROM outbox_attachment WHERE delivery_id = ?", (row_id,))

    def reschedule(self, row_id: int, error: str, next_wall_ns: int) -> None:
        self._conn.execute(
            "UPDATE outbox SET state = 'retrying', attempts = attempts + 1, last_error = ?,"
            " next_attempt_wall_ns = ? WHERE id = ?",
            (error, next_wall_ns, row_id),
        )

    def finish(self, row_id: int, state: str, error: str, now_wall_ns: int, *, tried: bool) -> None:
        """Give up on a delivery: ``failed`` (permanent / out of attempts) or ``expired``."""
        if state not in ("failed", "expired"):
            raise ValueError(state)
        with transaction(self._conn) as conn:
            conn.execute(
                "UPDATE outbox SET state = ?, attempts = attempts + ?, last_error = ?,"
                " finished_wall_ns = ? WHERE id = ?",
                (state, 1 if tried else 0, error, now_wall_ns, row_id),
            )
            conn.execute("DELETE FROM outbox_attachment WHERE delivery_id = ?", (row_id,))

    def prune(self, older_than_wall_ns: int) -> int:
        """Delete finished rows that ended before ``older_than_wall_ns``."""
        cur = self._conn.execute(
            "DELETE FROM outbox WHERE state IN ('delivered', 'failed', 'expired')"
            " AND finished_wall_ns < ?",
            (older_than_wall_ns,),
        )
        return cur.rowcount

    def count(self, state: str) -> int:
        query = "SELECT COUNT(*) FROM outbox WHERE state = ?"
        (n,) = self._conn.execute(query, (state,)).fetchone()
        return int(n)
