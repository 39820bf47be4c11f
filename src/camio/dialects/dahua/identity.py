"""Who the device says it is to Dahua / Amcrest clients, from the ``device:`` configuration.

Where the section still holds camio's defaults, Dahua-like values are shown instead: vendor
``Dahua`` (brand ``camio`` otherwise) and a Dahua-style firmware string
(``2.800.0000000.25.R``), since clients split ``version=<v>,build:<date>``. The machine name is
the configured name, except that a name containing ``error`` or ``invalid`` is answered as the
serial instead: the amcrest library takes either word in the getMachineName reply for a refused
login.
"""

from __future__ import annotations

from dataclasses import dataclass

from camio import __version__
from camio.core.config import DeviceIdentity

DEFAULT_VENDOR = "Dahua"
DEFAULT_FIRMWARE = "2.800.0000000.25.R"
BUILD_DATE = "2024-02-14"
HARDWARE_VERSION = "1.00"
PROCESSOR = "camio"


@dataclass(frozen=True, slots=True)
class DahuaIdentity:
    machine_name: str
    vendor: str
    device_type: str
    serial: str
    firmware: str
    build_date: str

    @property
    def realm(self) -> str:
        """The HTTP Digest realm of current Dahua firmware: ``Login to <serial>``."""
        return f"Login to {self.serial}"

    @property
    def software_version(self) -> str:
        return f"{self.firmware},build:{self.build_date}"


def dahua_identity(device: DeviceIdentity) -> DahuaIdentity:
    """The Dahua view of the configured identity (see the module docstring for defaults)."""
    defaults = DeviceIdentity.model_fields
    vendor = device.brand if device.brand != defaults["brand"].default else DEFAULT_VENDOR
    firmware = device.firmware if device.firmware != __version__ else DEFAULT_FIRMWARE
    serial = device.serial.upper()
    name = device.name
    if "error" in name.lower() or "invalid" in name.lower():
        name = serial
    return DahuaIdentity(
        machine_name=name,
        vendor=vendor,
        device_type=device.model,
        serial=serial,
        firmware=firmware.replace(",", " "),
        build_date=BUILD_DATE,
    )
