"""Hikvision port ids: 1-based and separate per direction.

A Hikvision device numbers its alarm inputs ``1..n`` and its alarm outputs ``1..m``
(``/ISAPI/System/IO/inputs/1``, ``/outputs/1``, the ``IO-1`` event trigger, the alert's
``inputIOPortID``). camio's ports keep their own ids (``door``, ``siren``); the Hikvision id
is the port's position among the ports of its direction, in terminal order
(:meth:`Device.port_ids`), recomputed from the current configuration at every request so the
REST resources, the triggers and the alertStream always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from camio.engine.errors import NotFound

if TYPE_CHECKING:
    from camio.engine.device import Device

Direction = Literal["input", "output"]


@dataclass(frozen=True, slots=True)
class HikPort:
    hik_id: int  # 1-based within its direction
    port_id: str  # camio's id
    direction: Direction


class HikNumbering:
    """Maps Hikvision port ids onto the device's ports, from its current configuration."""

    def __init__(self, device: Device) -> None:
        self._device = device

    def ports(self, direction: Direction) -> list[HikPort]:
        device = self._device
        table = device.inputs if direction == "input" else device.outputs
        ids = [pid for pid in device.port_ids() if pid in table]
        return [HikPort(n, pid, direction) for n, pid in enumerate(ids, start=1)]

    def inputs(self) -> list[HikPort]:
        return self.ports("input")

    def outputs(self) -> list[HikPort]:
        return self.ports("output")

    def find(self, direction: Direction, hik_id: str) -> HikPort:
        """The port with this 1-based id (decimal text); NotFound otherwise."""
        text = hik_id.strip()
        ports = self.ports(direction)
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= len(ports):
            raise NotFound(f"no {direction} {hik_id[:16]!r}")
        return ports[int(text) - 1]

    def of(self, port_id: str) -> HikPort | None:
        """The Hikvision view of camio port ``port_id``; None when it is not a port."""
        directions: tuple[Direction, ...] = ("input", "output")
        for direction in directions:
            for port in self.ports(direction):
                if port.port_id == port_id:
                    return port
        return None
