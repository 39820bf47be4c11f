"""``AlarmOut[i].Mode``: 0 automatic, 1 forced on, 2 forced off, onto camio's manual control.

* ``1`` (force on) is a manual Start without end (:meth:`Device.set_output`, continuous);
* ``2`` (force off) is a manual Stop: holds, latch and timers are cleared;
* ``0`` (automatic) hands the output back to the rules: it ends a force on (the output goes
  idle, as the relay of a Dahua camera does when no alarm drives it) and otherwise changes
  nothing, so an activation by a rule keeps running.

The mode a client set is remembered per output (in memory, per running app) and reported by
getConfig: ``1`` only while the forced activation still stands (a Stop from any other
interface turns it back into ``0``), ``2`` until another mode is set. camio does not block the
rules while ``2`` stands (the device has no output inhibit): a rule may still drive the output,
and getOutState shows it.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from camio.core.events import Cause
from camio.engine.device import Device

AUTO, FORCE_ON, FORCE_OFF = 0, 1, 2
MODES: Final = web.AppKey("dahua_output_modes", dict[str, int])


def modes_of(app: web.Application) -> dict[str, int]:
    return app[MODES]


def current_mode(device: Device, modes: dict[str, int], port_id: str) -> int:
    mode = modes.get(port_id, AUTO)
    if mode == FORCE_ON and not device.output(port_id).latched:
        return AUTO
    return mode


def apply_mode(
    device: Device, modes: dict[str, int], port_id: str, mode: int, cause: Cause
) -> None:
    """Drive output ``port_id`` as Mode ``mode`` says (already validated)."""
    before = current_mode(device, modes, port_id)
    if mode == FORCE_ON:
        device.set_output(port_id, True, cause)
        modes[port_id] = FORCE_ON
    elif mode == FORCE_OFF:
        device.set_output(port_id, False, cause)
        modes[port_id] = FORCE_OFF
    else:
        if before == FORCE_ON:
            device.set_output(port_id, False, cause)
        modes.pop(port_id, None)
