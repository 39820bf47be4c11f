"""OutputStateStore and KeyValueStore: what restore-on-power-up reads back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from camio.core.events import Cause
from camio.store.db import open_database
from camio.store.state import KeyValueStore, OutputStateStore, PersistedOutput

T0 = 1_767_225_600_000_000_000


def test_persisted_output_round_trip_across_reopen(db_path: Path) -> None:
    timed = PersistedOutput(
        active=True,
        latched=False,
        deadline_wall_ns=T0 + 10_000_000_000,
        cause=Cause("rule", rule="door-open", event_id=42),
        updated_wall_ns=T0,
    )
    latched = PersistedOutput(
        active=True,
        latched=True,
        deadline_wall_ns=None,
        cause=Cause("manual", user="admin", client="web"),
        updated_wall_ns=T0 + 1,
    )
    idle = PersistedOutput(
        active=False, latched=False, deadline_wall_ns=None, cause=None, updated_wall_ns=T0 + 2
    )
    conn = open_database(db_path)
    store = OutputStateStore(conn)
    store.save("1", timed)
    store.save("2", latched)
    store.save("relay/3", idle)
    conn.close()

    conn = open_database(db_path)
    assert OutputStateStore(conn).load_all() == {"1": timed, "2": latched, "relay/3": idle}
    conn.close()


def test_save_overwrites_and_delete_forgets(conn: sqlite3.Connection) -> None:
    store = OutputStateStore(conn)
    first = PersistedOutput(True, False, T0 + 5, Cause("timer"), T0)
    second = PersistedOutput(False, False, None, Cause("timer", detail="alarm time over"), T0 + 5)
    store.save("1", first)
    store.save("1", second)
    assert store.load_all() == {"1": second}
    assert not conn.in_transaction  # committed on return
    assert store.delete("1") is True
    assert store.delete("1") is False
    assert store.load_all() == {}


def test_key_value_store(conn: sqlite3.Connection) -> None:
    kv = KeyValueStore(conn)
    assert kv.get("virtual_input/1") is None
    assert kv.get("virtual_input/1", False) is False
    kv.set("virtual_input/1", True)
    kv.set("virtual_input/2", {"active": False, "since": "2026-01-01T00:00:00Z"})
    kv.set("manual_trigger", ["ä", 1, None])
    kv.set("virtual_input/1", False)
    kv.set("50%_off", 1)
    assert kv.get("virtual_input/1") is False
    assert kv.get("manual_trigger") == ["ä", 1, None]
    assert kv.items("virtual_input/") == {
        "virtual_input/1": False,
        "virtual_input/2": {"active": False, "since": "2026-01-01T00:00:00Z"},
    }
    assert kv.items("50%") == {"50%_off": 1}  # prefix is literal, no LIKE wildcards
    assert len(kv.items()) == 4
    assert kv.delete("manual_trigger") is True
    assert kv.delete("manual_trigger") is False
    assert kv.get("manual_trigger") is None
