"""Foscam's weekly alarm schedule (``schedule0`` .. ``schedule6``) and camio's schedules.

Foscam: one 48-bit number per weekday (0 = Monday), bit ``n`` = the half hour from ``n * 30``
minutes after midnight (bit 0 = 00:00-00:30), local time; ``2**48 - 1`` = all day.

camio: an input is armed by an *interval* schedule (RFC 5545 rules). Reading, the input's
arming schedule (whatever made it) is sampled at the middle of every half hour of the current
week, which is exact for weekly schedules. Writing, each run of set bits becomes one entry with
a weekly RRULE; runs shared by several days are one entry with several BYDAY values.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from camio.core.clock import NS_PER_S
from camio.core.schedules import CompiledSchedule, ScheduleConfig

SLOTS = 48
ALL_DAY = (1 << SLOTS) - 1
DAYS = 7
SLOT_S = 1800
#: The most entries a camio schedule may hold (ScheduleConfig.entries max_length).
MAX_ENTRIES = 64
#: DTSTART of the generated entries: a Monday, long past.
_ANCHOR = dt.datetime(2024, 1, 1)
_BYDAY = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

#: Seven bitmaps, Monday first.
Week = tuple[int, ...]

ALWAYS: Week = (ALL_DAY,) * DAYS


class ScheduleUnmappable(ValueError):
    """The bitmaps cannot be stored as a camio schedule (the message says why)."""


def sample(schedule: ScheduleConfig, now_wall_ns: int) -> Week:
    """The bitmaps of ``schedule`` over the current week (in the schedule's time zone)."""
    compiled = CompiledSchedule(schedule)
    zone = ZoneInfo(schedule.timezone)
    now = dt.datetime.fromtimestamp(now_wall_ns / NS_PER_S, tz=zone)
    monday = dt.datetime.combine(now.date() - dt.timedelta(days=now.weekday()), dt.time())
    days: list[int] = []
    for day in range(DAYS):
        bits = 0
        for slot in range(SLOTS):
            local = monday + dt.timedelta(days=day, seconds=slot * SLOT_S + SLOT_S // 2)
            instant = local.replace(tzinfo=zone)
            wall_ns = int(instant.timestamp()) * NS_PER_S
            if compiled.is_active(wall_ns):
                bits |= 1 << slot
        days.append(bits)
    return tuple(days)


def _runs(bits: int) -> list[tuple[int, int]]:
    """``[(first slot, end slot), ...]`` of the runs of set bits."""
    runs: list[tuple[int, int]] = []
    slot = 0
    while slot < SLOTS:
        if bits >> slot & 1:
            start = slot
            while slot < SLOTS and bits >> slot & 1:
                slot += 1
            runs.append((start, slot))
        else:
            slot += 1
    return runs


def to_schedule(week: Week, *, schedule_id: str, name: str, timezone: str) -> dict[str, object]:
    """The camio interval schedule (JSON shape) that is active exactly when ``week`` says.

    Raises :class:`ScheduleUnmappable` when no slot is set (an interval schedule needs at least
    one entry: turn the IO alarm off with ``isEnable=0`` instead) or when more than
    :data:`MAX_ENTRIES` distinct time ranges would be needed.
    """
    by_range: dict[tuple[int, int], list[int]] = {}
    for day, bits in enumerate(week):
        for run in _runs(bits):
            by_range.setdefault(run, []).append(day)
    if not by_range:
        raise ScheduleUnmappable(
            "a schedule without any half hour cannot be stored; use isEnable=0 to turn the "
            "IO alarm off"
        )
    if len(by_range) > MAX_ENTRIES:
        raise ScheduleUnmappable(
            f"the schedule needs {len(by_range)} distinct time ranges; camio stores at most "
            f"{MAX_ENTRIES}"
        )
    entries = []
    for (start, end), days in sorted(by_range.items()):
        begin = _ANCHOR + dt.timedelta(seconds=start * SLOT_S)
        entries.append(
            {
                "start": begin.isoformat(),
                "duration_s": (end - start) * SLOT_S,
                "rrule": "FREQ=WEEKLY;BYDAY=" + ",".join(_BYDAY[d] for d in days),
            }
        )
    return {
        "id": schedule_id,
        "name": name,
        "kind": "interval",
        "timezone": timezone,
        "entries": entries,
    }
