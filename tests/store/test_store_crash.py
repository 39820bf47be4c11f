"""Kill -9 a process in the middle of writing: the database must open, intact and complete.

The child appends and flushes events and saves output state as fast as it can, printing the last
event id after each committed flush. The parent reads those lines from the pipe (no sleeping),
kills the child with SIGKILL at an arbitrary moment, and checks that everything reported as
committed is there. A second child continues from the recovered ``last_id`` and is killed too,
which also proves that ids continue after a crash.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import camio
from camio.store.db import open_database
from camio.store.eventlog import EventLog
from camio.store.state import OutputStateStore

CHILD = r"""
import sys
from pathlib import Path

from camio.core.events import Cause, Event, EventKind
from camio.store.db import open_database
from camio.store.eventlog import EventLog
from camio.store.state import OutputStateStore, PersistedOutput

conn = open_database(Path(sys.argv[1]))
# Far-past event times: only the count bound may prune (it never reaches 50 000 here).
log = EventLog(conn, max_events=50_000, max_age_s=100 * 365 * 86_400, prune_every=5_000)
outputs = OutputStateStore(conn)
event_id = log.last_id()
print("ready", event_id, flush=True)
while True:
    for _ in range(7):
        event_id += 1
        log.append(
            Event(
                "io/output", "output/1", {"n": event_id, "pad": "é" * 150},
                EventKind.CHANGED, 1_767_225_600_000_000_000 + event_id, event_id,
                Cause("rule", rule="r1", event_id=event_id - 1), event_id,
            )
        )
    log.flush()
    outputs.save(
        "1",
        PersistedOutput(
            active=event_id % 2 == 0, latched=False, deadline_wall_ns=event_id,
            cause=Cause("timer"), updated_wall_ns=event_id,
        ),
    )
    print(event_id, flush=True)
"""

# Enough events that the WAL passes its auto-checkpoint size (1000 pages) and the kill can land
# in a checkpoint as well as in a commit.
EVENTS_BEFORE_KILL = 15_000


def run_and_kill(db_path: Path) -> tuple[int, int]:
    """Run the child until it reported EVENTS_BEFORE_KILL events; return (first id, last id)."""
    env = dict(os.environ)
    src = str(Path(camio.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    try:
        first_line = proc.stdout.readline().split()
        assert first_line[:1] == ["ready"], proc.stderr.read() if proc.stderr else ""
        start = int(first_line[1])
        last = start
        for line in proc.stdout:
            last = int(line)
            if last - start >= EVENTS_BEFORE_KILL:
                break
        else:
            raise AssertionError(f"child ended early: {proc.stderr.read() if proc.stderr else ''}")
        proc.send_signal(signal.SIGKILL)
        # Lines already in the pipe were printed after a committed flush: they count too.
        for line in proc.stdout:
            last = int(line)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return start, last


def check_database(db_path: Path, last_reported: int) -> int:
    conn = open_database(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        log = EventLog(conn, max_events=50_000)
        stored = conn.execute(
            "SELECT COUNT(*) FROM events WHERE id <= ?", (last_reported,)
        ).fetchone()[0]
        assert stored == last_reported, "an event reported as flushed is missing"
        ids = [row[0] for row in conn.execute("SELECT id FROM events ORDER BY id")]
        assert ids == list(range(1, len(ids) + 1))  # no holes, no torn batch
        assert len(ids) % 7 == 0  # batches are all or nothing
        last = log.query(limit=1, newest_first=True)[0]
        assert last.data == {"n": last.id, "pad": "é" * 150}
        state = OutputStateStore(conn).load_all()["1"]
        assert state.updated_wall_ns >= last_reported
        return log.last_id()
    finally:
        conn.close()


def test_sigkill_while_writing_loses_nothing_committed(db_path: Path) -> None:
    start, last = run_and_kill(db_path)
    assert start == 0
    recovered = check_database(db_path, last)
    assert recovered >= last

    start, last = run_and_kill(db_path)
    assert start == recovered  # ids continue after the crash
    check_database(db_path, last)


def test_wal_files_are_next_to_the_database(db_path: Path) -> None:
    conn = open_database(db_path)
    EventLog(conn)
    conn.execute("INSERT INTO kv (key, value) VALUES ('a', '1')")
    assert Path(str(db_path) + "-wal").exists()
    conn.close()
    assert sqlite3.connect(db_path).execute("SELECT value FROM kv").fetchone() == ("1",)
