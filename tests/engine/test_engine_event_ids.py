"""Event ids are never reused, even when the process dies before the log was flushed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import camio.actions  # noqa: F401
from camio.core.clock import ManualClock
from camio.core.config import DeviceConfig
from camio.core.events import Cause
from camio.engine.bus import ID_BLOCK
from camio.engine.device import Device
from camio.engine.persistence import EventQuery
from camio.hardware.sim import SimDriver
from camio.store.db import open_database
from camio.store.persistence import StorePersistence


def _device(conn: sqlite3.Connection, clock: ManualClock) -> Device:
    persistence = StorePersistence(
        conn, max_events=10_000, max_age_s=86_400, wall_clock=clock.wall_ns
    )
    return Device(DeviceConfig(), driver=SimDriver(), clock=clock, persistence=persistence)


def test_ids_seen_by_subscribers_are_not_reused_after_a_crash(tmp_path: Path) -> None:
    clock = ManualClock()
    conn = open_database(tmp_path / "camio.db")
    device = _device(conn, clock)
    seen: list[int] = []
    device.subscribe(lambda e: seen.append(e.id), replay_state=False)
    device.start()
    for n in range(5):
        device.set_virtual_input(1, n % 2 == 0, Cause("api"))
    # A crash: the buffered events were dispatched but never flushed to the log.
    conn.close()

    conn2 = open_database(tmp_path / "camio.db")
    restarted = _device(conn2, ManualClock())
    restarted.start()
    assert restarted.bus.last_id > max(seen)
    assert restarted.bus.last_id >= ID_BLOCK
    conn2.close()


def test_a_clean_stop_continues_ids_without_a_gap(tmp_path: Path) -> None:
    clock = ManualClock()
    conn = open_database(tmp_path / "camio.db")
    device = _device(conn, clock)
    device.start()
    device.set_virtual_input(2, True, Cause("api"))
    device.stop()
    last = device.bus.last_id

    restarted = _device(conn, ManualClock())
    restarted.start()
    events = restarted.events(EventQuery(after=last))
    assert [e.id for e in events] == [last + 1]
    conn.close()
