"""One Axis numbering for every VAPIX interface.

Axis numbers the I/O ports of a device as one 0-based list (``IOPort.I0``, ``I1``, ...), inputs
and outputs together, each with its direction; getPorts, param.cgi, the ``port`` source of IO
events and the ``RelayToken`` of relay events all use that id, and only port.cgi counts from 1.
Home Assistant looks a port's name up by the event's id, so a mismatch between any two of them
is a crash on the client. camio's ports keep their own ids (``door``, ``siren``); the Axis id
is the port's position in terminal order (:meth:`Device.port_ids`), recomputed from the current
configuration, so every interface agrees at every moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from camio.engine.errors import NotFound

if TYPE_CHECKING:
    from camio.engine.device import Device


@dataclass(frozen=True, slots=True)
class AxisPort:
    axis_id: int  # 0-based
    port_id: str  # camio's id
    direction: str  # "input" | "output"

    @property
    def cgi_number(self) -> int:
        """The 1-based number of port.cgi, input.cgi and output.cgi."""
        return self.axis_id + 1


class AxisNumbering:
    """Maps Axis port ids onto the device's ports, from its current configuration."""

    def __init__(self, device: Device) -> None:
        self._device = device

    def ports(self) -> list[AxisPort]:
        device = self._device
        out: list[AxisPort] = []
        for index, port_id in enumerate(device.port_ids()):
            direction = "input" if port_id in device.inputs else "output"
            out.append(AxisPort(index, port_id, direction))
        return out

    def by_axis_id(self, axis_id: int | str) -> AxisPort:
        """The port with this 0-based id (an int or its decimal text); NotFound otherwise."""
        text = str(axis_id).strip()
        if not text.isdigit():
            raise NotFound(f"no port {axis_id!r}")
        index = int(text)
        ports = self.ports()
        if index >= len(ports):
            raise NotFound(f"no port {index}")
        return ports[index]

    def by_cgi_number(self, number: int | str) -> AxisPort:
        """The port with this 1-based port.cgi number; NotFound otherwise."""
        text = str(number).strip()
        if not text.isdigit() or int(text) < 1:
            raise NotFound(f"no port {number!r}")
        return self.by_axis_id(int(text) - 1)

    def of(self, port_id: str) -> AxisPort:
        """The Axis view of camio port ``port_id``; NotFound when it is not a port."""
        for port in self.ports():
            if port.port_id == port_id:
                return port
        raise NotFound(f"no port {port_id!r}")
