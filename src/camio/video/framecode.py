"""The frame code: a frame number written as a row of black and white blocks.

Tests have to prove which moment a snapshot or a recording holds after the picture went
through H.264 and JPEG. Big flat blocks survive both (only their edges ring), so each bit is a
block about 1/26 of the picture wide, sampled in its middle half. 20 bits carry the number
(modulo 2**20) and 4 bits a check nibble, so a damaged or absent code reads as None rather
than as a wrong number. The strip has neutral chroma so the picture's colours don't leak in.
"""

from __future__ import annotations

import av

from camio.video.font import fill_box

DATA_BITS = 20
CHECK_BITS = 4
BITS = DATA_BITS + CHECK_BITS
WHITE = 235
BLACK = 16
MODULO = 1 << DATA_BITS


def _check(value: int) -> int:
    nibbles = [(value >> shift) & 0xF for shift in range(0, DATA_BITS, 4)]
    return (sum(nibbles) & 0xF) ^ 0xA  # the xor makes all-black and all-white invalid


def block_size(width: int) -> int:
    """Side of one block: the code spans BITS blocks plus a one-block margin each side."""
    return max(4, width // (BITS + 2))


def strip_height(width: int) -> int:
    """Height of the strip the code occupies at the top of the picture."""
    return block_size(width)


def _bits(number: int) -> list[int]:
    value = number % MODULO
    word = (value << CHECK_BITS) | _check(value)
    return [(word >> (BITS - 1 - i)) & 1 for i in range(BITS)]


def draw_frame_code(frame: av.VideoFrame, number: int) -> None:
    """Write ``number`` at the top of a planar 4:2:0 frame (a dark strip with light blocks)."""
    size = block_size(frame.width)
    fill_box(frame, 0, 0, frame.width, size, BLACK)
    for i, bit in enumerate(_bits(number)):
        if bit:
            fill_box(frame, (i + 1) * size, 0, size, size, WHITE)


def read_frame_code(frame: av.VideoFrame) -> int | None:
    """The number drawn by :func:`draw_frame_code`, or None when the check does not match."""
    if frame.format.name not in ("yuv420p", "yuvj420p", "gray", "yuv422p", "yuvj422p"):
        frame = frame.reformat(format="yuv420p")
    plane = frame.planes[0]
    data = bytes(plane)
    stride = plane.line_size
    size = block_size(frame.width)
    quarter = max(1, size // 4)
    word = 0
    for i in range(BITS):
        x0 = (i + 1) * size + quarter
        total = count = 0
        for y in range(quarter, size - quarter):
            row = data[y * stride + x0 : y * stride + x0 + size - 2 * quarter]
            total += sum(row)
            count += len(row)
        if count == 0:
            return None
        word = (word << 1) | (1 if total / count > (WHITE + BLACK) / 2 else 0)
    value = word >> CHECK_BITS
    if word & 0xF != _check(value):
        return None
    return value
