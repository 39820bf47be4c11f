"""Dahua channel numbers: 0-based, counted separately per direction.

A Dahua device numbers its alarm inputs ``0..n-1`` and its alarm outputs ``0..m-1``, the same
in every interface: ``Alarm[i]`` / ``AlarmOut[i]`` in configManager, bit ``i`` of
``alarm.cgi`` getInState / getOutState, ``index=i`` of the eventManager stream and
``channels[k]=i`` of getEventIndexes (the web UI shows ``i+1``). camio's ports keep their own
ids; channel ``i`` of a direction is the ``i``-th port of that direction in terminal order
(:meth:`Device.port_ids`), recomputed from the current configuration at every request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from camio.engine.device import Device


def input_ids(device: Device) -> list[str]:
    """camio ids of the alarm inputs, channel 0 first."""
    return [pid for pid in device.port_ids() if pid in device.inputs]


def output_ids(device: Device) -> list[str]:
    """camio ids of the alarm outputs, channel 0 first."""
    return [pid for pid in device.port_ids() if pid in device.outputs]


def channel_of(device: Device, port_id: str) -> int | None:
    """The 0-based channel of camio port ``port_id`` in its direction (None: not a port)."""
    for ids in (input_ids(device), output_ids(device)):
        if port_id in ids:
            return ids.index(port_id)
    return None


def bitmask(flags: list[bool]) -> int:
    """``getInState`` / ``getOutState``: bit ``i`` set when channel ``i`` is active."""
    return sum(1 << i for i, flag in enumerate(flags) if flag)
