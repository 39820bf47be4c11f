"""Players: what turns a clip into sound on the device's audio output.

The output plays one clip at a time: starting a clip stops the one playing. Every player keeps
a record of what it played (clip, start and stop wall time, repeat count, why it stopped), which
for :class:`SimPlayer` — the default, and the simulator's output — is the whole point: tests and
the API see what a real speaker would have played. :class:`AlsaPlayer` plays through ``aplay``
(alsa-utils) where it is installed and the daemon was asked to use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from camio.audio.library import Clip
from camio.core.clock import Clock, Timer

_LOGGER = logging.getLogger(__name__)

HISTORY = 100
"""Playbacks remembered by a player (the newest last)."""


@dataclass(slots=True)
class PlayRecord:
    """One playback: ``repeat`` None means "until stopped" (a while-active rule)."""

    clip: str
    duration_s: float
    repeat: int | None
    source: str
    start_wall_ns: int
    stop_wall_ns: int | None = None
    outcome: str = "playing"  # playing / finished / stopped / failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "clip": self.clip,
            "duration_s": round(self.duration_s, 3),
            "repeat": self.repeat,
            "source": self.source,
            "start_wall_ns": self.start_wall_ns,
            "stop_wall_ns": self.stop_wall_ns,
            "outcome": self.outcome,
        }


class Playback(Protocol):
    """A clip playing; the rule runner's ActionRun protocol (running / cancel)."""

    @property
    def running(self) -> bool: ...

    def cancel(self) -> None: ...


class Player(Protocol):
    name: str

    def play(self, clip: Clip, repeat: int | None, *, source: str) -> Playback:
        """Start ``clip`` ``repeat`` times (None: until cancelled), stopping what plays."""
        ...

    def history(self) -> list[PlayRecord]: ...

    def close(self) -> None:
        """Stop what plays (the daemon stops)."""
        ...


class _Recorder:
    """What every player shares: the record of playbacks and the one-at-a-time rule."""

    name = "none"

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._history: deque[PlayRecord] = deque(maxlen=HISTORY)
        self._current: _Playback | None = None

    def history(self) -> list[PlayRecord]:
        return list(self._history)

    def _begin(self, clip: Clip, repeat: int | None, source: str) -> PlayRecord:
        if self._current is not None:
            self._current.cancel()
        record = PlayRecord(clip.name, clip.duration_s, repeat, source, self.clock.wall_ns())
        self._history.append(record)
        return record

    def close(self) -> None:
        if self._current is not None:
            self._current.cancel()


class _Playback:
    def __init__(self, owner: _Recorder, record: PlayRecord) -> None:
        self._owner = owner
        self.record = record

    @property
    def running(self) -> bool:
        return self.record.outcome == "playing"

    def _end(self, outcome: str) -> None:
        if self.record.outcome != "playing":
            return
        self.record.outcome = outcome
        self.record.stop_wall_ns = self._owner.clock.wall_ns()
        if self._owner._current is self:
            self._owner._current = None

    def cancel(self) -> None:
        self._end("stopped")


class _SimPlayback(_Playback):
    def __init__(self, owner: _Recorder, record: PlayRecord, timer_ns: int | None) -> None:
        super().__init__(owner, record)
        self._timer: Timer | None = None
        if timer_ns is not None:
            self._timer = owner.clock.call_later(timer_ns, lambda: self._end("finished"))

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().cancel()


class SimPlayer(_Recorder):
    """Plays nothing, on the device's clock: a clip of 2 s repeated 3 times "plays" for 6 s."""

    name = "sim"

    def play(self, clip: Clip, repeat: int | None, *, source: str) -> Playback:
        record = self._begin(clip, repeat, source)
        length = None if repeat is None else clip.duration_ns * repeat
        playback = _SimPlayback(self, record, length)
        self._current = playback
        return playback


class _AlsaPlayback(_Playback):
    def __init__(self, owner: AlsaPlayer, record: PlayRecord, clip: Clip) -> None:
        super().__init__(owner, record)
        self._proc: asyncio.subprocess.Process | None = None
        #: The loop running ``aplay`` once per repetition (done when the playback ends).
        self.task = asyncio.get_running_loop().create_task(self._run(owner, clip))

    async def _run(self, owner: AlsaPlayer, clip: Clip) -> None:
        args = [owner.aplay, "-q"] + (["-D", owner.device] if owner.device else [])
        played = 0
        try:
            while self.running and (self.record.repeat is None or played < self.record.repeat):
                self._proc = await asyncio.create_subprocess_exec(
                    *args,
                    str(clip.path),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
                _, err = await self._proc.communicate()
                if self._proc.returncode != 0 and self.running:
                    _LOGGER.warning("aplay %s: %s", clip.name, err.decode(errors="replace"))
                    self._end("failed")
                    return
                played += 1
            self._end("finished")
        except OSError as exc:
            _LOGGER.warning("aplay %s: %s", clip.name, exc)
            self._end("failed")

    def cancel(self) -> None:
        super().cancel()
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        self.task.cancel()


class AlsaPlayer(_Recorder):
    """Plays through ALSA with ``aplay`` (one process per repetition; killed to stop)."""

    name = "alsa"

    def __init__(self, clock: Clock, aplay: str, device: str | None = None) -> None:
        super().__init__(clock)
        self.aplay = aplay
        self.device = device

    @staticmethod
    def find() -> str | None:
        """The ``aplay`` program, if alsa-utils is installed."""
        return shutil.which("aplay")

    def play(self, clip: Clip, repeat: int | None, *, source: str) -> Playback:
        record = self._begin(clip, repeat, source)
        playback = _AlsaPlayback(self, record, clip)
        self._current = playback
        return playback
