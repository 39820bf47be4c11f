"""The source: open it, read it in one thread, pace it, reconnect it.

Demuxing blocks (on a network read or on pacing), so it runs in a :class:`SourceRunner`
thread that hands every packet to a :class:`SourceSink` as a ring :class:`Entry` on the
worker's timeline. A file or lavfi source is paced at real time and loops forever with
continuous timestamps, so it behaves like a camera; a network source is read as it comes.
Each loop reopens the file: a file that disappears shows as a lost source, like a camera.
Failures reconnect with backoff 1, 2, 4 ... 30 s until :meth:`SourceRunner.stop`.

Every packet is normalised to Annex B with the parameter sets in-band on keyframes (H.264 and
HEVC), which is what a recording's MP4 muxer and a snapshot's decoder need from any keyframe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol
from urllib.parse import urlparse

import av
from av.bitstream import BitStreamFilterContext

from camio.core.media import redact_text
from camio.video.ring import Entry
from camio.video.testpattern import PatternSpec, TestPattern

log = logging.getLogger("camio.video.source")

LIVE_SCHEMES = {"rtsp", "rtsps", "rtmp", "rtmps", "rtp", "udp", "srt", "tcp", "http", "https"}
BACKOFF_MAX_S = 30.0
OPEN_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 10.0
_TO_ANNEXB = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}


@dataclass(frozen=True, slots=True)
class SourceSpec:
    source: str
    options: dict[str, str] = field(default_factory=dict)
    pattern: PatternSpec = field(default_factory=PatternSpec)

    @property
    def live(self) -> bool:
        return self.source != "test" and urlparse(self.source).scheme.lower() in LIVE_SCHEMES


@dataclass(frozen=True, slots=True)
class StreamInfo:
    codec: str
    width: int
    height: int
    fps: float
    time_base: Fraction


class SourceSink(Protocol):
    """Receives the runner's news; ``generation`` tells a stale runner's calls apart."""

    def on_connected(self, generation: int, info: StreamInfo) -> None: ...
    def on_packet(self, generation: int, entry: Entry) -> None: ...
    def on_lost(self, generation: int, error: str) -> None: ...


def _is_annexb(data: bytes) -> bool:
    return data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01")


def _has_parameter_sets(codec: str, data: bytes) -> bool:
    """True when an Annex B packet carries an SPS (H.264) or VPS/SPS (HEVC) itself."""
    at = data.find(b"\x00\x00\x01")
    while at >= 0 and at + 3 < len(data):
        header = data[at + 3]
        if codec == "h264" and header & 0x1F == 7:
            return True
        if codec == "hevc" and (header >> 1) & 0x3F in (32, 33):
            return True
        at = data.find(b"\x00\x00\x01", at + 3)
    return False


class Connection:
    """One opened source: its stream info and its packets, pts/dts/duration in ticks of
    ``info.time_base`` and continuous across the loops of a file."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self._pattern: TestPattern | None = None
        self._container: Any = None
        self._loop_offset = 0
        self.intra_only = False
        if spec.source == "test":
            pattern = TestPattern(spec.pattern)
            self._pattern = pattern
            self.info = StreamInfo(
                "h264", spec.pattern.width, spec.pattern.height, spec.pattern.fps, pattern.time_base
            )
            return
        container, stream = self._open()
        rate = stream.average_rate or stream.guessed_rate or 25
        self.info = StreamInfo(
            stream.codec_context.name,
            stream.codec_context.width,
            stream.codec_context.height,
            float(rate),
            stream.time_base or Fraction(1, 90_000),
        )
        self._container = container
        # Intra-only codecs (MJPEG, raw) may not flag keyframes, yet every packet is one.
        codec = stream.codec_context.codec
        self.intra_only = bool(codec.intra_only) or codec.name == "wrapped_avframe"

    def _open(self) -> tuple[Any, Any]:
        options = dict(self.spec.options)
        fmt = options.pop("format", None) or options.pop("f", None)
        container = av.open(
            self.spec.source,
            format=fmt,
            options=options,
            timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S),
        )
        if not container.streams.video:
            container.close()
            raise ValueError(f"{self.spec.source}: no video stream")
        return container, container.streams.video[0]

    def packets(self) -> Iterator[tuple[av.Packet[Any], int, int, int]]:
        if self._pattern is not None:
            for packet in self._pattern.packets():
                assert packet.pts is not None
                yield packet, packet.pts, packet.dts or packet.pts, packet.duration or 1
            return
        while True:
            yield from self._one_pass()
            if self.spec.live:
                raise EOFError("the stream ended")
            self._container.close()
            self._container = None
            self._container, _ = self._open()

    def _one_pass(self) -> Iterator[tuple[av.Packet[Any], int, int, int]]:
        container = self._container
        stream = container.streams.video[0]
        codec = self.info.codec
        frame_ticks = max(1, round(1 / (self.info.fps * self.info.time_base)))
        extradata = stream.codec_context.extradata or b""
        bsf: BitStreamFilterContext | None = None
        prefix = b""
        if codec in _TO_ANNEXB and extradata and not _is_annexb(extradata):
            bsf = BitStreamFilterContext(_TO_ANNEXB[codec], in_stream=stream)
        elif codec in _TO_ANNEXB and _is_annexb(extradata):
            prefix = extradata
        first: int | None = None
        end = 0
        last = -1
        raws = container.demux(stream)
        while True:
            asked = time.monotonic()
            raw = next(raws, None)
            if raw is None:
                break
            if time.monotonic() - asked >= READ_TIMEOUT_S:
                # PyAV's read timeout fired, but FFmpeg flushed its parser (H.264 over RTSP) and
                # returned the held-back frame instead of the error: a stall, not a packet.
                raise TimeoutError(f"no data from the source for {READ_TIMEOUT_S:g} s")
            if raw.size == 0:
                continue
            packets = bsf.filter(raw) if bsf is not None else [raw]
            for packet in packets:
                pts = packet.pts if packet.pts is not None else packet.dts
                if pts is None:
                    pts = last + frame_ticks
                dts = packet.dts if packet.dts is not None else pts
                if first is None:
                    first = dts
                duration = packet.duration or frame_ticks
                if prefix and packet.is_keyframe and not _has_parameter_sets(codec, bytes(packet)):
                    fixed = av.Packet(prefix + bytes(packet))
                    fixed.is_keyframe = True
                    packet = fixed
                pts_out = pts - first + self._loop_offset
                dts_out = dts - first + self._loop_offset
                last = pts
                end = max(end, pts_out + duration)
                yield packet, pts_out, dts_out, duration
        self._loop_offset = max(end, self._loop_offset + frame_ticks)

    def close(self) -> None:
        if self._pattern is not None:
            self._pattern.close()
        if self._container is not None:
            self._container.close()


def redact(text: str) -> str:
    """Hide the password of any URL in ``text`` (FFmpeg's errors quote the whole URL, and they
    end up in events, logs and the API), in its user info or its query (``pwd=``)."""
    return redact_text(text)


def _message(error: BaseException) -> str:
    return redact(str(error) or type(error).__name__)


class SourceRunner(threading.Thread):
    """Reads one source spec until stopped, reconnecting with backoff."""

    def __init__(self, spec: SourceSpec, sink: SourceSink, generation: int) -> None:
        super().__init__(name=f"video-source-{generation}", daemon=True)
        self.spec = spec
        self.sink = sink
        self.generation = generation
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        backoff = 1.0
        t0: float | None = None
        last_time = -1.0
        index = 0
        while not self._stop_event.is_set():
            try:
                connection = Connection(self.spec)
            except Exception as error:  # any failure to open is "lost", reported and retried
                self.sink.on_lost(self.generation, _message(error))
                self._stop_event.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            info = connection.info
            now = time.monotonic()
            if t0 is None:
                t0 = now
            start = max(now - t0, last_time + 1 / max(info.fps, 1.0)) if last_time >= 0 else 0.0
            self.sink.on_connected(self.generation, info)
            error_text = "the stream ended"
            try:
                for packet, pts, dts, duration in connection.packets():
                    if self._stop_event.is_set():
                        break
                    when = start + float(pts * info.time_base)
                    if not self.spec.live:
                        delay = t0 + when - time.monotonic()
                        if delay > 0 and self._stop_event.wait(delay):
                            break
                    packet.pts = pts
                    packet.dts = dts
                    packet.time_base = info.time_base
                    entry = Entry(
                        packet=packet,
                        pts=pts,
                        dts=dts,
                        duration=duration,
                        time=when,
                        key=bool(packet.is_keyframe) or connection.intra_only,
                        index=index,
                        size=packet.size,
                    )
                    index += 1
                    last_time = max(last_time, when)
                    backoff = 1.0
                    self.sink.on_packet(self.generation, entry)
            except Exception as error:  # a read error is "lost" too
                error_text = _message(error)
            finally:
                connection.close()
            if self._stop_event.is_set():
                return
            self.sink.on_lost(self.generation, error_text)
            self._stop_event.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)
