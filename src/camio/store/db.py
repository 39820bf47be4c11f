"""The one SQLite database of a device (``camio.db`` in the data directory).

Events, output state, key/values and, added by their own modules, users and the delivery outbox
live in one file so that a single WAL journal orders all their writes and one backup copies
everything.

Durability: the database runs in WAL mode with ``synchronous=NORMAL``. A committed transaction
survives the *process* dying at any instant (``kill -9``, an OOM kill, a crash in a C extension):
the commit is in the WAL file, and SQLite recovers it on the next open. What camio does **not**
promise is surviving a *power loss or kernel panic* right after a commit: with ``NORMAL`` the WAL
is only fsync-ed at checkpoints, so the last transactions before the power cut may be lost (the
database is never corrupted, it just rolls back to an earlier consistent state). ``FULL`` would
close that gap at the price of one fsync per commit, which the flash storage of a small board
cannot sustain on the event hot path.

Schema: each store module declares its steps as a :data:`Schema` (a list of
``(step name, SQL script)``), registers it with :func:`register_schema` at import time and also
applies it with :func:`migrate` when its class is constructed, so a store works whatever the
import order. Applied step names are recorded in the ``schema_migrations`` table, which lets
independent modules evolve their tables without agreeing on one global version number
(``PRAGMA user_version`` is deliberately not used). Step names are global: prefix them with the
module (``"eventlog.0001_create"``). Never edit a released step; append a new one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DB_FILENAME",
    "Schema",
    "applied_steps",
    "migrate",
    "open_database",
    "register_schema",
    "registered_schemas",
    "transaction",
]

DB_FILENAME = "camio.db"
"""Name of the database file inside the data directory."""

BUSY_TIMEOUT_MS = 5_000
"""How long a writer waits for another connection's write lock before ``database is locked``.

Writes are short (one batch of events, one upsert), so a wait this long means something is
stuck; failing then is better than hanging the engine forever."""

Schema = Sequence[tuple[str, str]]
"""Ordered migration steps of one module: ``(globally unique step name, SQL script)``."""

_REGISTRY: list[Schema] = []

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name TEXT PRIMARY KEY,
    applied_wall_ns INTEGER NOT NULL
)
"""


def register_schema(schema: Schema) -> None:
    """Have every later :func:`open_database` apply ``schema`` (idempotent per schema object)."""
    if not any(existing is schema for existing in _REGISTRY):
        _REGISTRY.append(schema)


def registered_schemas() -> list[Schema]:
    """The schemas registered so far, in registration order."""
    return list(_REGISTRY)


def open_database(path: Path, schemas: Iterable[Schema] = ()) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path`` and bring its schema up to date.

    Applies every registered schema plus ``schemas``. The connection is in autocommit mode
    (``isolation_level=None``): nothing is implicitly held open, and multi-statement writes use
    :func:`transaction`.

    ``check_same_thread=False`` only allows handing the connection to another thread (for
    instance a worker doing an export); it does not make concurrent use safe, because two
    threads would interleave their transactions. Use one connection from one thread at a time;
    code that needs to read concurrently opens its own connection (WAL lets readers proceed while
    the writer writes).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        timeout=BUSY_TIMEOUT_MS / 1000,
    )
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"{path}: cannot enable WAL (journal_mode={mode})")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        for schema in [*_REGISTRY, *schemas]:
            migrate(conn, schema)
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolling back if the block raises.

    ``IMMEDIATE`` takes the write lock up front, so a read-then-write block cannot fail halfway
    with ``SQLITE_BUSY`` when another connection wrote in between; it waits (busy timeout)
    instead. Transactions do not nest: opening one inside another raises.
    """
    if conn.in_transaction:
        raise sqlite3.ProgrammingError("a transaction is already open on this connection")
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def applied_steps(conn: sqlite3.Connection) -> set[str]:
    """Names of the migration steps already applied to this database."""
    conn.execute(_MIGRATIONS_TABLE)
    return {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}


def migrate(conn: sqlite3.Connection, schema: Schema) -> list[str]:
    """Apply the steps of ``schema`` that this database has not seen yet; return their names.

    Each step runs in its own ``BEGIN IMMEDIATE`` transaction together with the row that records
    it, and the check for "already applied" is repeated under that lock, so two processes
    opening the same file at once (the daemon and a ``camio`` command) apply each step exactly
    once, and a crash mid-step leaves the step unapplied rather than half applied (SQLite DDL is
    transactional).
    """
    names = [name for name, _ in schema]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate migration step names in {names}")
    done = applied_steps(conn)
    applied: list[str] = []
    for name, script in schema:
        if name in done:
            continue
        with transaction(conn):
            if conn.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)).fetchone():
                continue
            for statement in split_sql(script):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_wall_ns) VALUES (?, ?)",
                (name, time.time_ns()),
            )
        applied.append(name)
    return applied


def split_sql(script: str) -> list[str]:
    """Split an SQL script into complete statements.

    ``Connection.executescript`` would be simpler, but it commits any open transaction first,
    which would break the one-transaction-per-step guarantee of :func:`migrate`. Splitting at
    each ``;`` that ends a complete statement (as judged by SQLite itself) keeps semicolons
    inside string literals and ``CREATE TRIGGER … BEGIN … END`` bodies intact.
    """
    statements: list[str] = []
    pending = ""
    pieces = script.split(";")
    for index, piece in enumerate(pieces):
        # The last piece gets a newline before its ';': it ends a trailing "-- comment" and
        # terminates a final statement written without a semicolon.
        pending += piece + ("\n;" if index == len(pieces) - 1 else ";")
        if sqlite3.complete_statement(pending):
            statement = pending.strip()
            if statement.strip(";").strip():
                statements.append(statement)
            pending = ""
    if pending.rstrip(";").strip():
        raise ValueError(f"incomplete SQL statement: {pending.rstrip(';').strip()[:80]!r}")
    return statements
