"""open_database pragmas and the schema_migrations mechanism."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import camio.store.eventlog
import camio.store.state
from camio.store.db import (
    BUSY_TIMEOUT_MS,
    applied_steps,
    migrate,
    open_database,
    registered_schemas,
    split_sql,
    transaction,
)


def test_pragmas(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
    assert conn.isolation_level is None
    assert not conn.in_transaction


def test_registered_store_schemas_are_applied(conn: sqlite3.Connection) -> None:
    # Importing a store module registers its schema; open_database applies every registered one.
    assert camio.store.eventlog.SCHEMA in registered_schemas()
    assert camio.store.state.SCHEMA in registered_schemas()
    steps = applied_steps(conn)
    assert {"eventlog.0001_create", "state.0001_create"} <= steps
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"events", "output_state", "kv", "schema_migrations"} <= tables


def test_migrate_applies_each_step_once(db_path: Path) -> None:
    schema = [
        ("test.0001", "CREATE TABLE t (a INTEGER)"),
        ("test.0002", "ALTER TABLE t ADD COLUMN b TEXT; INSERT INTO t VALUES (1, 'x;y')"),
    ]
    conn = open_database(db_path, [schema])
    assert {"test.0001", "test.0002"} <= applied_steps(conn)
    assert migrate(conn, schema) == []
    conn.close()
    conn = open_database(db_path, [schema])  # ALTER would fail if it ran twice
    assert conn.execute("SELECT a, b FROM t").fetchall() == [(1, "x;y")]
    conn.close()


def test_failed_step_is_rolled_back_and_not_recorded(conn: sqlite3.Connection) -> None:
    schema = [("bad.0001", "CREATE TABLE half (a INTEGER); INSERT INTO missing VALUES (1)")]
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, schema)
    assert "bad.0001" not in applied_steps(conn)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name='half'").fetchone() is None
    assert not conn.in_transaction


def test_duplicate_step_names_are_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        migrate(conn, [("dup", "SELECT 1"), ("dup", "SELECT 2")])


def test_split_sql_keeps_literals_and_triggers_whole() -> None:
    script = """
        CREATE TABLE a (x TEXT);
        INSERT INTO a VALUES ('x;y');
        CREATE TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM a WHERE x = '1;'; END;
        SELECT 1 -- no semicolon, trailing comment"""
    statements = split_sql(script)
    assert len(statements) == 4
    assert statements[1] == "INSERT INTO a VALUES ('x;y');"
    assert statements[2].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        split_sql("INSERT INTO a VALUES ('unterminated)")


def test_transaction_commits_and_rolls_back(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE t (a INTEGER)")
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), transaction(conn):
        conn.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError
    assert conn.execute("SELECT a FROM t").fetchall() == [(1,)]
    with transaction(conn), pytest.raises(sqlite3.ProgrammingError), transaction(conn):
        pass
    assert not conn.in_transaction
