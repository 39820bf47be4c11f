"""Board profiles: names an installer knows, mapped to kernel GPIO lines, plus line defaults.

- ``raspberry-pi``: the 40-pin header by BCM number (``GPIO17``, also ``BCM17``) or by physical
  pin (``PIN11``). The chip is found by label (``pinctrl-rp1`` on a Pi 5,
  ``pinctrl-bcm2711`` on a Pi 4, ``pinctrl-bcm2835`` before): the Pi 5's chip moved from
  gpiochip4 to gpiochip0 in a kernel update, and a label survives that.
- ``relay-hat-8``: a generic 8-relay HAT on a Raspberry Pi, ``RELAY1``..``RELAY8`` on BCM 5, 6,
  13, 16, 19, 20, 21, 26 (the common Waveshare-style layout; check your board's sheet), relays
  energised by a low level, so active-low by default. Its header pins are usable as above.
- ``generic``: no names beyond the kernel's own; the default chip is ``gpiochip0``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

RPI_CHIP_LABELS = ("pinctrl-rp1", "pinctrl-bcm2712", "pinctrl-bcm2711", "pinctrl-bcm2835")

# Physical header pin → BCM number (40-pin header, every Pi since the B+).
RPI_HEADER = {
    3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24, 19: 10,
    21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5, 31: 6, 32: 12, 33: 13, 35: 19,
    36: 16, 37: 26, 38: 20, 40: 21,
}  # fmt: skip
RELAY_HAT_8 = (5, 6, 13, 16, 19, 20, 21, 26)

_BCM = re.compile(r"^(?:GPIO|BCM)(\d{1,2})$", re.IGNORECASE)
_PIN = re.compile(r"^PIN(\d{1,2})$", re.IGNORECASE)
_RELAY = re.compile(r"^RELAY([1-8])$", re.IGNORECASE)


@dataclass(frozen=True)
class BoardLine:
    """A board name resolved: a chip (device or label candidates) and an offset."""

    chips: tuple[str, ...]
    offset: int
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    default_chips: tuple[str, ...] = ("gpiochip0",)

    def resolve(self, name: str) -> BoardLine | None:
        """A board-specific line name, or None (then the kernel's line names are searched)."""
        if self.name not in ("raspberry-pi", "relay-hat-8"):
            return None
        match = _BCM.match(name)
        if match and int(match[1]) <= 27:
            return BoardLine(RPI_CHIP_LABELS, int(match[1]))
        match = _PIN.match(name)
        if match and int(match[1]) in RPI_HEADER:
            return BoardLine(RPI_CHIP_LABELS, RPI_HEADER[int(match[1])])
        match = _RELAY.match(name)
        if match and self.name == "relay-hat-8":
            return BoardLine(RPI_CHIP_LABELS, RELAY_HAT_8[int(match[1]) - 1], {"active_low": True})
        return None


BOARDS = {
    "generic": Board("generic", "Any board with a GPIO character device"),
    "raspberry-pi": Board(
        "raspberry-pi", "Raspberry Pi 40-pin header (BCM numbers, PINnn)", RPI_CHIP_LABELS
    ),
    "relay-hat-8": Board(
        "relay-hat-8", "8-relay HAT on a Raspberry Pi (RELAY1..8, active-low)", RPI_CHIP_LABELS
    ),
}


def board(name: str) -> Board:
    return BOARDS[name]
