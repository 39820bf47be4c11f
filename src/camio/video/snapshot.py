"""Snapshots: the newest picture of the ring as a JPEG, with the overlay burnt in.

The ring holds encoded packets only, so a snapshot decodes from the newest keyframe to the
newest packet. The decoder is kept between snapshots: while the GOP is the same, only the
packets that arrived since the last snapshot are decoded, which keeps a burst of snapshots
cheap even at 1080p. The JPEG comes from FFmpeg's own mjpeg encoder (no Pillow) and is written
to a temporary name and renamed, so a reader never sees half an image.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from fractions import Fraction

import av

from camio.video.font import GLYPH_H, draw_lines, fit
from camio.video.ring import Entry

FF_QP2LAMBDA = 118


@dataclass(frozen=True, slots=True)
class Snapshot:
    path: str
    width: int
    height: int
    bytes: int
    source_time: float
    frame: int


class Decoder:
    """Decodes the newest picture, keeping its state within one GOP."""

    def __init__(self, codec: str) -> None:
        self.codec = codec
        self._context: av.VideoCodecContext | None = None
        self._key_index = -1  # index of the keyframe the decoder started from
        self._next_index = -1  # index of the next packet it expects
        self._frame: av.VideoFrame | None = None
        self._frame_entry: Entry | None = None

    def _fresh(self) -> av.VideoCodecContext:
        context = av.CodecContext.create(self.codec, "r")
        assert isinstance(context, av.VideoCodecContext)
        # Slice threads only: frame threads would hold pictures back by one frame per thread.
        context.thread_type = "SLICE"
        return context

    def latest(self, gop: list[Entry]) -> tuple[av.VideoFrame, Entry]:
        """Decode ``gop`` (newest keyframe → newest packet); return the newest picture."""
        if not gop:
            raise LookupError("no picture yet: the source has not delivered a keyframe")
        key = gop[0]
        if self._context is None or key.index != self._key_index:
            self._context = self._fresh()
            self._key_index = key.index
            self._next_index = key.index
            self._frame = None
            self._frame_entry = None
        context = self._context
        by_pts = {e.pts: e for e in gop}
        pending = [e for e in gop if e.index >= self._next_index]
        for entry in pending:
            for frame in context.decode(entry.packet):
                self._keep(frame, by_pts)
            self._next_index = entry.index + 1
        newest = gop[-1]
        if self._frame_entry is None or self._frame_entry.pts < max(e.pts for e in gop):
            # The decoder holds pictures back (B-frames or delay): drain it; it must restart
            # from the keyframe next time.
            for frame in context.decode(None):
                self._keep(frame, by_pts)
            self._context = None
        if self._frame is None or self._frame_entry is None:
            raise LookupError(f"the decoder returned no picture for packet {newest.index}")
        return self._frame, self._frame_entry

    def _keep(self, frame: av.VideoFrame, by_pts: dict[int, Entry]) -> None:
        entry = by_pts.get(frame.pts) if frame.pts is not None else None
        if entry is None:
            return
        if self._frame_entry is None or entry.pts >= self._frame_entry.pts:
            self._frame = frame
            self._frame_entry = entry


def encode_jpeg(frame: av.VideoFrame, quality: int, lines: list[str]) -> bytes:
    """JPEG bytes of ``frame`` (mjpeg, full range 4:2:0, qscale ``quality``) with text lines."""
    picture = frame.reformat(format="yuvj420p")  # a copy: the decoder's frame stays intact
    scale = max(1, picture.height // (GLYPH_H * 25))
    shown = [fit(line, picture.width, scale) for line in lines if line]
    draw_lines(picture, shown, scale, bottom=True)
    encoder = av.CodecContext.create("mjpeg", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width = picture.width
    encoder.height = picture.height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    q = min(31, max(2, int(quality)))
    encoder.options = {"flags": "+qscale", "global_quality": str(q * FF_QP2LAMBDA)}
    picture.pts = 0
    data = b"".join(bytes(p) for p in encoder.encode(picture))
    data += b"".join(bytes(p) for p in encoder.encode(None))
    return data


def write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, fsync-free, then rename it."""
    tmp = f"{path}.part"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
