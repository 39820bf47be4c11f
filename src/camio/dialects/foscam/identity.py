"""Who the device says it is to Foscam clients: ``getDevInfo`` and ``getProductAllInfo``.

Everything comes from the ``device:`` section of the configuration (name, model, serial,
firmware, time zone) and the device clock. camio has no MAC address of its own in the
configuration: a stable, locally administered one is derived from the serial.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

from camio.dialects.foscam.common import Fields
from camio.engine.device import Device

HARDWARE_VERSION = "1.0.0"


def mac_of(serial: str) -> str:
    """A locally administered unicast MAC, stable for a serial (no ``:``, as Foscam shows it)."""
    digest = bytearray(hashlib.sha256(serial.encode("utf-8")).digest()[:6])
    digest[0] = (digest[0] & 0xFC) | 0x02
    return digest.hex().upper()


def dev_info(device: Device) -> Fields:
    """The fields of ``getDevInfo`` (libpyfoscam ``get_dev_info``, Home Assistant's devName)."""
    ident = device.config.device
    zone = ZoneInfo(ident.timezone)
    now = dt.datetime.fromtimestamp(device.clock.wall_ns() / 1e9, tz=zone)
    offset = now.utcoffset() or dt.timedelta(0)
    return [
        ("productName", ident.model),
        ("serialNo", ident.serial.upper()),
        ("devName", ident.name),
        ("mac", mac_of(ident.serial)),
        ("year", now.year),
        ("mon", now.month),
        ("day", now.day),
        ("hour", now.hour),
        ("min", now.minute),
        ("sec", now.second),
        # Foscam gives "the seconds between GMT and local time", west positive (GMT+1 = -3600).
        ("timeZone", -int(offset.total_seconds())),
        ("firmwareVer", ident.firmware),
        ("hardwareVer", HARDWARE_VERSION),
    ]


def product_all_info(device: Device, *, has_io: bool) -> Fields:
    """The fields of ``getProductAllInfo``: what Home Assistant checks at connect."""
    ident = device.config.device
    onvif = device.config.dialects.onvif.enabled
    flags = {
        "language": 0,
        "sensorType": 0,
        "wifiType": 0,
        "sdFlag": 0,
        "outdoorFlag": 0,
        "ptFlag": 0,
        "zoomFlag": 0,
        "rs485Flag": 0,
        "ioAlarmFlag": int(has_io),
        "onvifFlag": int(onvif),
        "p2pFlag": 0,
        "wpsFlag": 0,
        "audioFlag": 0,
        "talkFlag": 0,
    }
    return [("model", 0), ("modelName", ident.model), *flags.items(), ("appVer", ident.firmware)]
