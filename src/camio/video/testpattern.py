"""The built-in test pattern: ``testsrc2`` with a frame number, the time and a frame code.

It stands in for a camera in tests and demos, so it is encoded like one: libx264 ultrafast
with zerolatency (no B-frames, one packet per frame) and a fixed GOP of ``gop_s`` seconds. The
parameter sets stay in-band (no global header), exactly like an RTSP camera's Annex B stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from av.video.frame import PictureType

from camio.video.font import GLYPH_H, draw_text
from camio.video.framecode import draw_frame_code, strip_height


@dataclass(frozen=True, slots=True)
class PatternSpec:
    width: int = 640
    height: int = 360
    fps: int = 10
    gop_s: float = 2.0


def stamp(frame: av.VideoFrame, number: int, fps: int) -> None:
    """Draw the frame code and ``number  HH:MM:SS.mmm`` (the frame's time) on ``frame``."""
    draw_frame_code(frame, number)
    ms = round(number * 1000 / fps)
    clock = f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"
    scale = max(1, frame.height // (GLYPH_H * 12))
    draw_text(frame, 0, strip_height(frame.width) + scale, f"{number:06d} {clock}", scale)


class TestPattern:
    """Yields encoded H.264 packets of the pattern as fast as asked (the caller paces)."""

    __test__ = False  # not a pytest class

    def __init__(self, spec: PatternSpec) -> None:
        self.spec = spec
        self.time_base = Fraction(1, spec.fps)
        graph = f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps},format=yuv420p"
        self._input = av.open(graph, format="lavfi")
        encoder = av.CodecContext.create("libx264", "w")
        assert isinstance(encoder, av.VideoCodecContext)
        encoder.width = spec.width
        encoder.height = spec.height
        encoder.pix_fmt = "yuv420p"
        encoder.time_base = self.time_base
        encoder.framerate = Fraction(spec.fps)
        encoder.gop_size = max(1, round(spec.gop_s * spec.fps))
        encoder.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": "scenecut=0:bframes=0",
        }
        self._encoder = encoder

    def packets(self) -> Iterator[av.Packet[Any]]:
        for number, frame in enumerate(self._input.decode(video=0)):
            stamp(frame, number, self.spec.fps)
            # lavfi marks every frame as I; left so, x264 would make every frame an IDR.
            frame.pict_type = PictureType.NONE
            frame.pts = number
            frame.time_base = self.time_base
            for packet in self._encoder.encode(frame):
                if not packet.duration:
                    packet.duration = 1
                yield packet

    def close(self) -> None:
        self._input.close()
