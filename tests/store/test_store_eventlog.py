"""EventLog: buffered appends, faithful round trips, queries, bounds, id continuity."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from camio.core.clock import NS_PER_S
from camio.core.events import Cause, Event, EventKind, Topic
from camio.store.db import open_database
from camio.store.eventlog import EventLog, _encode_cause

T0 = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00:00Z


def make_event(
    event_id: int,
    *,
    topic: str = Topic.INPUT,
    source: str = "input/1",
    wall_ns: int | None = None,
    cause: Cause | None = None,
) -> Event:
    return Event(
        topic=topic,
        source=source,
        data={"active": event_id % 2 == 1, "n": event_id},
        kind=EventKind.CHANGED,
        wall_ns=T0 + event_id * NS_PER_S if wall_ns is None else wall_ns,
        mono_ns=event_id * 1_000,
        cause=cause,
        id=event_id,
    )


def test_round_trip_keeps_every_field(conn: sqlite3.Connection) -> None:
    log = EventLog(conn)
    events = [
        Event(
            topic=Topic.OUTPUT,
            source="output/2",
            data={"state": "active", "label": "Tür offen ✓ 🚪", "nested": {"a": [1, 2.5, None]}},
            kind=EventKind.CHANGED,
            wall_ns=T0 + 123_456_789,
            mono_ns=987_654_321,
            cause=Cause("manual", user="émile", client="web", event_id=7, detail="a\nb"),
            id=1,
            stateful=True,
        ),
        Event(
            topic=Topic.MANUAL_TRIGGER,
            source="trigger",
            data={},
            kind=EventKind.PULSE,
            wall_ns=T0,
            mono_ns=0,
            cause=None,
            id=2,
            stateful=False,
        ),
        Event(Topic.RULE_FIRED, "rule/r1", {"x": 1}, EventKind.INITIALIZED, 1, 2, Cause("boot"), 3),
    ]
    for event in events:
        log.append(event)
    assert log.flush() == 3
    assert log.query() == events
    # And from a fresh connection, so nothing comes from memory.
    other = EventLog(open_database(Path(conn.execute("PRAGMA database_list").fetchone()[2])))
    assert other.query() == events


def test_buffered_events_are_visible_to_queries(conn: sqlite3.Connection) -> None:
    log = EventLog(conn)
    log.append(make_event(1))
    log.append(make_event(2))
    assert log.pending == 2
    assert log.count() == 2
    assert [e.id for e in log.query()] == [1, 2]
    assert log.pending == 0
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 2


def test_flush_writes_one_batch_and_empty_flush_is_free(conn: sqlite3.Connection) -> None:
    log = EventLog(conn)
    assert log.flush() == 0
    for i in range(1, 51):
        log.append(make_event(i))
    assert log.flush() == 50
    assert log.pending == 0
    assert log.count() == 50


def test_ids_continue_after_reopen(db_path: Path) -> None:
    conn = open_database(db_path)
    log = EventLog(conn)
    assert log.last_id() == 0
    for i in range(1, 6):
        log.append(make_event(i))
    assert log.last_id() == 5  # buffered ids count too
    log.flush()
    conn.close()
    conn = open_database(db_path)
    log = EventLog(conn)
    assert log.last_id() == 5
    log.append(make_event(log.last_id() + 1))
    assert [e.id for e in log.query(after=4)] == [5, 6]
    conn.close()


def test_unassigned_id_gets_the_next_one(conn: sqlite3.Connection) -> None:
    log = EventLog(conn)
    log.append(make_event(10))
    log.append(make_event(0))
    assert [e.id for e in log.query()] == [10, 11]


def test_failed_flush_keeps_the_buffer_in_order(conn: sqlite3.Connection) -> None:
    log = EventLog(conn)
    log.append(make_event(1))
    log.flush()
    log.append(make_event(2))
    log.append(make_event(1))  # duplicate id: the batch fails as a whole
    with pytest.raises(sqlite3.IntegrityError):
        log.flush()
    assert log.pending == 2
    assert not conn.in_transaction
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1


def test_query_filters(conn: sqlite3.Connection) -> None:
    log = EventLog(conn)
    log.append(make_event(1, topic=Topic.INPUT, source="input/1"))
    log.append(make_event(2, topic=Topic.OUTPUT, source="output/1"))
    log.append(make_event(3, topic=Topic.INPUT, source="input/2"))
    log.append(make_event(4, topic=Topic.RULE_FIRED, source="rule/r1"))
    log.append(make_event(5, topic="io/input/extra", source="input/1"))
    log.append(make_event(6, topic="weird[1]*?/x", source="x"))
    log.append(make_event(7, topic="weirdo", source="x"))

    def ids(**kwargs: object) -> list[int]:
        return [e.id for e in log.query(**kwargs)]  # type: ignore[arg-type]

    assert ids(topic="io/input") == [1, 3]
    assert ids(topic="io/*") == [1, 2, 3, 5]
    assert ids(topic="io/input*") == [1, 3, 5]
    assert ids(topic="*") == [1, 2, 3, 4, 5, 6, 7]
    assert ids(topic="weird[1]*") == [6]  # GLOB characters in the prefix match literally
    assert ids(topic="nothing*") == []
    assert ids(source="input/1") == [1, 5]
    assert ids(source="input/1", topic="io/input") == [1]
    assert ids(since_ns=T0 + 2 * NS_PER_S, until_ns=T0 + 4 * NS_PER_S) == [2, 3]
    assert ids(after=2, before=6) == [3, 4, 5]
    assert ids(limit=0) == []
    with pytest.raises(ValueError):
        log.query(limit=-1)


def test_paging_forwards_and_backwards(conn: sqlite3.Connection) -> None:
    log = EventLog(conn)
    for i in range(1, 26):
        log.append(make_event(i))
    pages: list[list[int]] = []
    after = 0
    while page := log.query(after=after, limit=10):
        pages.append([e.id for e in page])
        after = page[-1].id
    assert pages == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]

    newest = log.query(limit=3, newest_first=True)
    assert [e.id for e in newest] == [25, 24, 23]
    older = log.query(before=newest[-1].id, limit=3, newest_first=True)
    assert [e.id for e in older] == [22, 21, 20]


def test_prune_by_count_keeps_the_newest(conn: sqlite3.Connection) -> None:
    log = EventLog(conn, max_events=10, prune_every=1_000_000)
    for i in range(1, 26):
        log.append(make_event(i))
    log.flush()
    assert log.count() == 25  # not pruned on every flush
    assert log.prune(T0) == 15
    assert [e.id for e in log.query()] == list(range(16, 26))
    assert log.prune(T0) == 0
    assert log.last_id() == 25


def test_prune_by_age(conn: sqlite3.Connection) -> None:
    log = EventLog(conn, max_age_s=60)
    for i in range(1, 11):
        log.append(make_event(i, wall_ns=T0 + i * 10 * NS_PER_S))  # every 10 s
    log.flush()
    # now = T0 + 100 s: cutoff T0 + 40 s; events at 10..30 s are older.
    assert log.prune(T0 + 100 * NS_PER_S) == 3
    assert [e.id for e in log.query()] == list(range(4, 11))


def test_flush_prunes_now_and_then(conn: sqlite3.Connection) -> None:
    now = [T0]
    log = EventLog(conn, max_events=5, max_age_s=3600, prune_every=10, wall_clock=lambda: now[0])
    for i in range(1, 10):
        log.append(make_event(i))
        log.flush()
    assert log.count() == 9  # 9 written since the last prune: not yet
    log.append(make_event(10))
    log.flush()
    assert [e.id for e in log.query()] == [6, 7, 8, 9, 10]
    now[0] = T0 + 2 * 3600 * NS_PER_S
    for i in range(11, 21):
        log.append(make_event(i, wall_ns=now[0] - 3000 * NS_PER_S if i < 20 else now[0]))
    log.flush()
    assert [e.id for e in log.query()] == [16, 17, 18, 19, 20]


def test_full_buffer_flushes_inline(conn: sqlite3.Connection) -> None:
    log = EventLog(conn, max_pending=4)
    for i in range(1, 4):
        log.append(make_event(i))
    assert log.pending == 3
    log.append(make_event(4))
    assert log.pending == 0
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 4


def test_append_never_raises_when_the_log_cannot_be_written(conn: sqlite3.Connection) -> None:
    log = EventLog(conn, max_pending=4)
    log.append(make_event(1))
    log.flush()
    for event_id in (2, 3, 1, 5):  # the duplicate id 1 makes the inline flush fail
        log.append(make_event(event_id))
    assert log.dropped == 2  # down to max_pending // 2, oldest first
    assert log.pending == 2
    with pytest.raises(sqlite3.IntegrityError):
        log.flush()  # an explicit flush reports the error to the engine
    assert log.pending == 2


def test_append_is_cheap(conn: sqlite3.Connection) -> None:
    log = EventLog(conn, max_pending=1_000_000)
    event = make_event(1)
    n = 100_000
    start = time.perf_counter_ns()
    for _ in range(n):
        log.append(event)
    per_append_ns = (time.perf_counter_ns() - start) / n
    assert per_append_ns < 5_000, f"append took {per_append_ns:.0f} ns"


def test_odd_data_does_not_poison_the_batch(conn: sqlite3.Connection) -> None:
    log = EventLog(conn)
    cyclic: dict[str, object] = {}
    cyclic["self"] = cyclic
    log.append(Event("x", "y", {"path": Path("/tmp/a")}, EventKind.PULSE, 1, 1, id=1))
    log.append(Event("x", "y", cyclic, EventKind.PULSE, 2, 2, id=2))
    log.append(make_event(3))
    assert log.flush() == 3
    first, second, third = log.query()
    assert first.data == {"path": "/tmp/a"}
    assert "unserialisable" in second.data
    assert third == make_event(3)


def test_invalid_bounds_are_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(ValueError):
        EventLog(conn, max_events=0)
    with pytest.raises(ValueError):
        EventLog(conn, max_age_s=0)


@given(
    kind=st.text(min_size=1, max_size=20),
    rule=st.none() | st.text(max_size=20),
    user=st.none() | st.text(max_size=20),
    client=st.none() | st.text(max_size=40),
    event_id=st.none() | st.integers(min_value=0, max_value=2**62),
    detail=st.none() | st.text(max_size=40),
)
def test_the_direct_cause_encoder_matches_json(
    kind: str,
    rule: str | None,
    user: str | None,
    client: str | None,
    event_id: int | None,
    detail: str | None,
) -> None:
    """The hand-written cause encoder (hot path) says exactly what json.dumps would."""
    cause = Cause(kind, rule=rule, user=user, client=client, event_id=event_id, detail=detail)
    assert json.loads(_encode_cause(cause)) == cause.to_dict()
