"""Who the device says it is to Hikvision clients: name, model, serial, firmware, ids.

Everything comes from the ``device:`` section of the configuration. Where that section still
holds camio's own defaults (model ``camio-sim``, camio's version as firmware), Hikvision-like
values are shown instead: a camera model with alarm I/O (the ``S`` suffix) and a 5.x firmware.
``deviceID`` is a UUID derived from the serial: stable across restarts and longer than ten
characters, because pyhik replaces a shorter one with a random UUID at every start (Home
Assistant's entity ids would change). The MAC address is derived from the serial too, as a
locally administered address (no vendor's OUI). The Digest realm is ``IP Camera(<last five
characters of the serial>)``, as current Hikvision firmware presents it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from camio import __version__
from camio.core.config import DeviceIdentity

DEFAULT_MODEL = "DS-2CD2646G2-IZS"
DEFAULT_FIRMWARE = "V5.7.3"
FIRMWARE_RELEASED = "build 220112"
DEVICE_TYPE = "IPCamera"
_ID_NAMESPACE = uuid.UUID("6c1c1f38-5a3e-4e43-9a43-2f1d6b0b1a5e")


@dataclass(frozen=True, slots=True)
class HikIdentity:
    name: str
    device_id: str
    model: str
    serial: str
    serial_number: str
    mac: str
    firmware: str
    firmware_released: str
    device_type: str

    @property
    def realm(self) -> str:
        return f"IP Camera({self.serial[-5:]})"

    def device_info(self) -> list[tuple[str, str]]:
        """The children of ``DeviceInfo``, in a Hikvision device's order."""
        return [
            ("deviceName", self.name),
            ("deviceID", self.device_id),
            ("deviceDescription", "camio alarm I/O (Hikvision ISAPI dialect)"),
            ("deviceLocation", "camio"),
            ("systemContact", "camio"),
            ("model", self.model),
            ("serialNumber", self.serial_number),
            ("macAddress", self.mac),
            ("firmwareVersion", self.firmware),
            ("firmwareReleasedDate", self.firmware_released),
            ("encoderVersion", "V7.3"),
            ("encoderReleasedDate", "build 220112"),
            ("bootVersion", "V1.3.4"),
            ("bootReleasedDate", "100316"),
            ("hardwareVersion", "0x0"),
            ("deviceType", self.device_type),
            ("telecontrolID", "88"),
            ("supportBeep", "false"),
            ("supportVideoLoss", "false"),
        ]


def _mac(serial: str) -> str:
    digest = hashlib.sha256(f"camio-isapi-mac:{serial}".encode()).digest()
    octets = [(digest[0] & 0xFC) | 0x02, *digest[1:6]]  # locally administered, unicast
    return ":".join(f"{b:02x}" for b in octets)


def hik_identity(device: DeviceIdentity) -> HikIdentity:
    """The Hikvision view of the configured identity (see the module docstring)."""
    defaults = DeviceIdentity.model_fields
    model = device.model if device.model != defaults["model"].default else DEFAULT_MODEL
    firmware = device.firmware if device.firmware != __version__ else DEFAULT_FIRMWARE
    serial = device.serial.upper()
    return HikIdentity(
        name=device.name,
        device_id=str(uuid.uuid5(_ID_NAMESPACE, serial)),
        model=model,
        serial=serial,
        serial_number=f"{model}{serial}",
        mac=_mac(serial),
        firmware=firmware,
        firmware_released=FIRMWARE_RELEASED,
        device_type=DEVICE_TYPE,
    )
