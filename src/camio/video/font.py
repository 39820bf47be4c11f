"""A 5x7 bitmap font drawn straight into a frame's planes.

The worker must stamp text (test pattern clock, snapshot overlay) without Pillow, numpy or
FFmpeg's ``drawtext`` filter (not in PyAV's wheel), so the glyphs live here as column bytes
(the classic 5x7 LCD font, bit 0 = top row) and are written into the luma plane row by row.
A dark box goes behind the text so it stays readable on any picture, and the chroma under the
box is set to neutral so the box is grey, not tinted by the picture beneath it.
"""

from __future__ import annotations

import av

GLYPH_W = 5
GLYPH_H = 7
ADVANCE = GLYPH_W + 1  # one column of spacing between characters

_FIRST = 0x20
# Column bytes for ASCII 0x20..0x7E, five per character.
_COLUMNS = bytes.fromhex(
    "0000000000 00005f0000 0007000700 147f147f14 242a7f2a12 2313086462 3649552250 0005030000"
    "001c224100 0041221c00 082a1c2a08 08083e0808 0050300000 0808080808 0060600000 2010080402"
    "3e5149453e 00427f4000 4261514946 2141454b31 1814127f10 2745454539 3c4a494930 0171090503"
    "3649494936 064949291e 0036360000 0056360000 0008142241 1414141414 4122140800 0201510906"
    "324979413e 7e1111117e 7f49494936 3e41414122 7f4141221c 7f49494941 7f09090101 3e41415132"
    "7f0808087f 00417f4100 2040413f01 7f08142241 7f40404040 7f0204027f 7f0408107f 3e4141413e"
    "7f09090906 3e4151215e 7f09192946 4649494931 01017f0101 3f4040403f 1f2040201f 7f2018207f"
    "6314081463 0304780403 6151494543 00007f4141 0204081020 41417f0000 0402010204 4040404040"
    "0001020400 2054545478 7f48444438 3844444420 384444487f 3854545418 087e090102 081454543c"
    "7f08040478 00447d4000 2040443d00 007f102844 00417f4000 7c04180478 7c08040478 3844444438"
    "7c14141408 081414187c 7c08040408 4854545420 043f444020 3c4040207c 1c2040201c 3c4030403c"
    "4428102844 0c5050503c 4464544c44 0008364100 00007f0000 0041360800 08082a1c08"
)

TEXT_Y = 235  # luma of the glyphs (video range white)
BOX_Y = 16  # luma of the box behind them (video range black)
NEUTRAL = 128


def _glyph(char: str) -> bytes:
    code = ord(char)
    if not _FIRST <= code < _FIRST + len(_COLUMNS) // GLYPH_W:
        code = ord("?")
    start = (code - _FIRST) * GLYPH_W
    return _COLUMNS[start : start + GLYPH_W]


def text_size(text: str, scale: int) -> tuple[int, int]:
    """Width and height in pixels of ``text`` drawn at ``scale``, without the box."""
    return max(0, len(text) * ADVANCE - 1) * scale, GLYPH_H * scale


def fit(text: str, width: int, scale: int) -> str:
    """Cut ``text`` so that it and its box fit in ``width`` pixels."""
    room = (width - 2 * scale) // (ADVANCE * scale)
    return text[: max(0, room)]


def _rows(text: str, scale: int, pad: int) -> list[bytes]:
    """The luma rows of the boxed text, each ``scale`` pixels high before vertical scaling."""
    width = text_size(text, scale)[0] + 2 * pad
    glyphs = [_glyph(c) for c in text]
    rows: list[bytes] = []
    for bit in range(GLYPH_H):
        row = bytearray([BOX_Y]) * width
        mask = 1 << bit
        for i, columns in enumerate(glyphs):
            x0 = pad + i * ADVANCE * scale
            for col, value in enumerate(columns):
                if value & mask:
                    x = x0 + col * scale
                    row[x : x + scale] = bytes([TEXT_Y]) * scale
        rows.append(bytes(row))
    return rows


def fill_box(frame: av.VideoFrame, x: int, y: int, w: int, h: int, luma: int | None) -> None:
    """Set a rectangle to ``luma`` (or leave luma alone when None) with neutral chroma.

    The frame must be planar 4:2:0 (yuv420p or yuvj420p); the rectangle is clipped to it.
    """
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(frame.width, x + w), min(frame.height, y + h)
    if x1 <= x0 or y1 <= y0:
        return
    if luma is not None:
        plane = frame.planes[0]
        view = memoryview(plane).cast("B")
        line = bytes([luma]) * (x1 - x0)
        for row in range(y0, y1):
            offset = row * plane.line_size + x0
            view[offset : offset + len(line)] = line
    cx0, cy0, cx1, cy1 = x0 // 2, y0 // 2, (x1 + 1) // 2, (y1 + 1) // 2
    chroma = bytes([NEUTRAL]) * (cx1 - cx0)
    for index in (1, 2):
        plane = frame.planes[index]
        view = memoryview(plane).cast("B")
        for row in range(cy0, min(cy1, plane.height)):
            offset = row * plane.line_size + cx0
            view[offset : offset + len(chroma)] = chroma


def draw_text(frame: av.VideoFrame, x: int, y: int, text: str, scale: int) -> int:
    """Draw ``text`` with a dark box at (x, y), the box's top-left corner; return its height.

    Text that would run off the right edge is cut; the box is clipped to the frame.
    """
    text = fit(text, frame.width - x, scale)
    if not text:
        return 0
    pad = scale
    rows = _rows(text, scale, pad)
    box_w = len(rows[0])
    box_h = GLYPH_H * scale + 2 * pad
    fill_box(frame, x, y, box_w, box_h, BOX_Y)
    plane = frame.planes[0]
    view = memoryview(plane).cast("B")
    width = min(box_w, frame.width - x)
    for bit, row in enumerate(rows):
        for sub in range(scale):
            line = y + pad + bit * scale + sub
            if 0 <= line < frame.height:
                offset = line * plane.line_size + x
                view[offset : offset + width] = row[:width]
    return box_h


def draw_lines(frame: av.VideoFrame, lines: list[str], scale: int, bottom: bool = True) -> None:
    """Draw text lines at the left edge, stacked from the bottom (or the top) of the frame."""
    if not lines:
        return
    line_h = GLYPH_H * scale + 2 * scale
    y = frame.height - line_h * len(lines) if bottom else 0
    for text in lines:
        draw_text(frame, 0, max(0, y), text, scale)
        y += line_h
