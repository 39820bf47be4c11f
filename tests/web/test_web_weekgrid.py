"""The schedule editor's weekly grid (static/lib/weekgrid.js) against the device's own schedule
engine: the entries the browser writes for a painted grid must be active exactly during the
painted half-hours, and must paint the same grid when the editor opens them again.

The JavaScript runs in node (skipped when node is missing); the engine is CompiledSchedule.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import subprocess
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from camio.core.schedules import CompiledSchedule, ScheduleConfig
from camio.web.routes import STATIC_DIR

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

SLOTS = 48
WEEK = 7 * SLOTS

_SCRIPT = """
import { cellsToEntries, entryRuns, paintRuns, WEEK } from %s;
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map((cells) => {
    const entries = cellsToEntries(cells);
    const back = new Array(WEEK).fill(false);
    for (const entry of entries) paintRuns(back, entryRuns(entry));
    return { entries, back };
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def _convert(grids: list[list[bool]]) -> list[dict[str, Any]]:
    assert NODE is not None
    module = json.dumps((STATIC_DIR / "lib" / "weekgrid.js").as_uri())
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", _SCRIPT % module],
        input=json.dumps(grids),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    converted: list[dict[str, Any]] = json.loads(result.stdout)
    return converted


def _grids() -> list[list[bool]]:
    rng = random.Random(20261122)
    grids: list[list[bool]] = [
        [True] * WEEK,
        [False] * WEEK,
        [d < 5 and 16 <= s < 36 for d in range(7) for s in range(SLOTS)],  # office hours
        [s >= 44 or s < 12 for d in range(7) for s in range(SLOTS)],  # nights, across midnight
        [i == WEEK - 1 or i == 0 for i in range(WEEK)],  # Sunday 23:30 to Monday 00:30
        [i != 100 for i in range(WEEK)],  # everything but one half-hour
    ]
    for density in (0.1, 0.5, 0.9):
        for _ in range(3):
            grids.append([rng.random() < density for _ in range(WEEK)])
    for _ in range(6):  # a few long blocks, like a person paints them
        cells = [False] * WEEK
        for _ in range(rng.randint(1, 5)):
            start = rng.randrange(WEEK)
            for k in range(rng.randint(1, 60)):
                cells[(start + k) % WEEK] = True
        grids.append(cells)
    return grids


def _slots_to_check(cells: list[bool], rng: random.Random) -> list[int]:
    """Every half-hour where the state changes (and the one before it), plus a sample."""
    edges = {i for i in range(WEEK) if cells[i] != cells[i - 1]}
    edges |= {(i - 1) % WEEK for i in edges}
    return sorted(edges | set(rng.sample(range(WEEK), 24)))


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_grid_entries_are_active_exactly_on_the_painted_half_hours(zone: str) -> None:
    grids = _grids()
    converted = _convert(grids)
    tz = ZoneInfo(zone)
    # A week without a daylight-saving change: Monday 2026-06-01.
    monday = dt.datetime(2026, 6, 1, tzinfo=tz)
    rng = random.Random(7)
    for cells, result in zip(grids, converted, strict=True):
        assert result["back"] == cells, "the editor does not paint back what it saved"
        entries = result["entries"]
        if not any(cells):
            assert entries == []
            continue
        assert len(entries) <= 64 or sum(cells) > 64
        if len(entries) > 64:
            continue  # the editor refuses to save such a grid (the model allows 64 entries)
        compiled = CompiledSchedule(
            ScheduleConfig(id="g", name="grid", kind="interval", timezone=zone, entries=entries)
        )
        for index in _slots_to_check(cells, rng):
            for offset_s in (1, 1799):  # just after the start and just before the end
                moment = monday + dt.timedelta(seconds=index * 1800 + offset_s)
                wall_ns = int(moment.timestamp()) * 1_000_000_000
                assert compiled.is_active(wall_ns) == cells[index], (zone, index, entries)


def test_ranges_with_the_same_times_share_one_entry() -> None:
    office = [d < 5 and 16 <= s < 36 for d in range(7) for s in range(SLOTS)]
    (result,) = _convert([office])
    assert result["entries"] == [
        {
            "start": "2024-01-01T08:00:00",
            "duration_s": 36000,
            "rrule": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
        }
    ]
