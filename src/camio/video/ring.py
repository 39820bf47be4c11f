"""The pre-alarm ring: the newest encoded packets, trimmed by whole GOPs.

A recording must start on a keyframe at or before ``trigger - pre_s``, so the ring may only
drop a whole GOP from the front, and only while the part that starts at the next keyframe
still covers ``pre_buffer_s``. It always keeps at least the newest GOP: snapshots decode from
its keyframe. Packets are kept encoded (a few MB for a minute of 1080p), never decoded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import av


@dataclass(frozen=True, slots=True)
class Entry:
    """One packet of the source on the worker's timeline.

    ``pts`` and ``dts`` are in the source's time base, counted from the start of the current
    connection and continuous across the loops of a file; ``time`` is ``pts`` in timeline
    seconds; ``index`` counts packets since ``open``.
    """

    packet: av.Packet[Any]
    pts: int
    dts: int
    duration: int
    time: float
    key: bool
    index: int
    size: int


class PacketRing:
    """Packets from the oldest kept keyframe to the newest packet."""

    def __init__(self, pre_buffer_s: float) -> None:
        self.pre_buffer_s = pre_buffer_s
        self._entries: deque[Entry] = deque()
        self._keys: deque[Entry] = deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._keys.clear()
        self.bytes = 0

    def push(self, entry: Entry) -> None:
        """Append a packet; packets before the first keyframe are useless and dropped."""
        if not self._entries and not entry.key:
            return
        self._entries.append(entry)
        self.bytes += entry.size
        if entry.key:
            self._keys.append(entry)
        while len(self._keys) >= 2 and entry.time - self._keys[1].time >= self.pre_buffer_s:
            self._keys.popleft()
            first = self._keys[0]
            while self._entries[0] is not first:
                self.bytes -= self._entries.popleft().size

    @property
    def newest(self) -> Entry | None:
        return self._entries[-1] if self._entries else None

    @property
    def span_s(self) -> float:
        """Seconds from the oldest kept packet to the newest."""
        if not self._entries:
            return 0.0
        return self._entries[-1].time - self._entries[0].time

    def from_time(self, start: float) -> list[Entry]:
        """Packets from the newest keyframe at or before ``start`` (else the oldest) on."""
        if not self._keys:
            return []
        chosen = self._keys[0]
        for key in self._keys:
            if key.time <= start + 1e-6:
                chosen = key
            else:
                break
        entries = list(self._entries)
        at = next(i for i, e in enumerate(entries) if e is chosen)
        return entries[at:]

    def last_gop(self) -> list[Entry]:
        """Packets from the newest keyframe on: what a decoder needs for the newest picture."""
        if not self._keys:
            return []
        first = self._keys[-1]
        out: list[Entry] = []
        for entry in reversed(self._entries):
            out.append(entry)
            if entry is first:
                break
        out.reverse()
        return out
