"""Recordings: the ring's packets from a keyframe, then live packets, remuxed into MP4.

No re-encoding: packets are copied into a new MP4 (``movflags=+faststart``) with their
timestamps rebased to the first kept packet. The file is written as ``<path>.part`` and
renamed when complete; on any failure the partial file is removed, so a reader only ever sees
whole recordings. The overlay text goes in as a timed-text track (``mov_text``, shown by
players as subtitles): one cue per overlay value, starting when it was set.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from camio.video.ring import Entry
from camio.video.source import StreamInfo

TEXT_TIME_BASE = Fraction(1, 1000)
# An ASS header is what FFmpeg's mov_text encoder builds its sample description from.
_ASS_HEADER = (
    "[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
    "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
    "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
    "Style: Default,Sans,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0"
    "\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, "
    "Text\n"
)
EPSILON = 1e-6


class RecordError(Exception):
    """A recording cannot start (the message says why)."""


@dataclass(slots=True)
class Result:
    ok: bool
    path: str
    start_time: float
    end_time: float
    duration_s: float
    frames: int
    bytes: int
    error: str | None = None


def _os_message(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        name = error.filename if isinstance(error.filename, str) else None
        return f"{error.strerror}: {name}" if name else error.strerror
    return str(error) or type(error).__name__


class Recording:
    """One MP4 being written. Not thread-safe: the worker calls it under its lock."""

    def __init__(
        self,
        record_id: str,
        path: str,
        info: StreamInfo,
        entries: list[Entry],
        trigger_time: float,
        end_time: float | None,
        max_s: float,
        overlay: str | None,
    ) -> None:
        if not entries or not entries[0].key:
            raise RecordError("no keyframe in the pre-alarm buffer yet: the source has no video")
        self.record_id = record_id
        self.path = path
        self.part = f"{path}.part"
        self.info = info
        self.trigger_time = trigger_time
        self.end_time = end_time
        self.start_time = entries[0].time
        self.max_end = self.start_time + max_s
        self.done = False
        self.error: str | None = None
        self.frames = 0
        self._first_dts = entries[0].dts
        self._first_pts = entries[0].pts
        self._last: Entry | None = None
        self._cue: tuple[int, str] | None = None
        self._container: Any = None
        try:
            self._open()
        except (av.FFmpegError, OSError, ValueError) as error:
            self._discard()
            if isinstance(error, ValueError) and "does not support" in str(error):
                raise RecordError(
                    f"the source's codec {info.codec!r} cannot go into an MP4 without "
                    "re-encoding; record needs H.264, HEVC, MPEG-4 or MJPEG"
                ) from error
            raise RecordError(_os_message(error)) from error
        try:
            for entry in entries:
                self._mux(entry)
            self.set_overlay(overlay, entries[0].time)
        except (av.FFmpegError, OSError) as error:
            self._discard()
            raise RecordError(_os_message(error)) from error

    def _open(self) -> None:
        # Fail on a missing directory or a read-only one with the OS's own words, early.
        with open(self.part, "wb"):
            pass
        container = av.open(self.part, "w", format="mp4", options={"movflags": "+faststart"})
        self._container = container
        video = container.add_mux_stream(
            self.info.codec,
            rate=Fraction(self.info.fps).limit_denominator(1001),
            width=self.info.width,
            height=self.info.height,
        )
        video.time_base = self.info.time_base
        text = container.add_stream("mov_text")
        text.codec_context.subtitle_header = _ASS_HEADER.encode()
        text.time_base = TEXT_TIME_BASE
        container.start_encoding()
        self._video = video
        self._text = text

    def _mux(self, entry: Entry) -> None:
        packet = av.Packet(bytes(entry.packet))
        packet.pts = entry.pts - self._first_dts
        packet.dts = entry.dts - self._first_dts
        packet.duration = entry.duration
        packet.time_base = self.info.time_base
        packet.is_keyframe = entry.key
        packet.stream = self._video
        self._container.mux(packet)
        self.frames += 1
        self._last = entry

    def _text_ms(self, time: float) -> int:
        return max(0, round((time - self.start_time) * 1000))

    def set_overlay(self, text: str | None, now: float) -> None:
        """Start a new cue at ``now`` (an empty one when ``text`` is None)."""
        if self.done or (self._cue is None and not text):
            return
        at = self._text_ms(now)
        if self._cue is not None and at <= self._cue[0]:
            at = self._cue[0] + 1
        data = (text or "").encode()[:65535]
        packet = av.Packet(len(data).to_bytes(2, "big") + data)
        packet.pts = at
        packet.dts = at
        packet.duration = 1
        packet.time_base = TEXT_TIME_BASE
        packet.stream = self._text
        self._container.mux(packet)
        self._cue = (at, text or "")

    def write(self, entry: Entry) -> bool:
        """Add a live packet; False once the recording has reached its end (packet unused)."""
        if self.done:
            return False
        limit = self.max_end if self.end_time is None else min(self.end_time, self.max_end)
        if entry.time > limit + EPSILON or (entry.time >= self.max_end - EPSILON):
            return False
        try:
            self._mux(entry)
        except (av.FFmpegError, OSError) as error:
            self.error = _os_message(error)
            return False
        return True

    def finish(self) -> Result:
        """Close the file (this moves the index to the front: it may take a moment) and rename.

        Called once, from any thread, after the last :meth:`write`.
        """
        self.done = True
        last = self._last
        end = last.time + float(last.duration * self.info.time_base) if last else self.start_time
        if self.error is None:
            try:
                if self._cue is not None and self._cue[1]:
                    self.set_overlay_end(end)
                self._container.close()
                self._container = None
                os.replace(self.part, self.path)
            except (av.FFmpegError, OSError) as error:
                self.error = _os_message(error)
        if self.error is not None:
            self._discard()
            return Result(False, self.path, self.start_time, end, 0.0, 0, 0, self.error)
        size = os.path.getsize(self.path)
        return Result(
            True, self.path, self.start_time, end, end - self.start_time, self.frames, size
        )

    def set_overlay_end(self, end: float) -> None:
        """Close the last cue at the end of the video with an empty cue."""
        at = max(self._text_ms(end), (self._cue[0] + 1) if self._cue else 0)
        packet = av.Packet(b"\x00\x00")
        packet.pts = at
        packet.dts = at
        packet.duration = 1
        packet.time_base = TEXT_TIME_BASE
        packet.stream = self._text
        self._container.mux(packet)

    def _discard(self) -> None:
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None
        with contextlib.suppress(OSError):
            os.unlink(self.part)
