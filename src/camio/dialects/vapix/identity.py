"""Who the device says it is to Axis clients: brand, product, serial and firmware.

Everything comes from the ``device:`` section of the configuration. Where that section still
holds camio's own defaults (brand ``camio``, model ``camio-sim``, camio's version as firmware),
Axis-like values are shown instead, because Axis clients key on them: the ``AXIS`` brand, an
I/O module's product number (``A9188``, a network I/O relay module; never ``I8116-E``, which
Home Assistant turns into a doorbell) and an AXIS OS-like firmware version. ``ProdVariant``
says ``camio``, so nobody mistakes the emulation for the product.
"""

from __future__ import annotations

from dataclasses import dataclass

from camio import __version__
from camio.core.config import DeviceIdentity

DEFAULT_BRAND = "AXIS"
DEFAULT_PRODUCT = "A9188"
DEFAULT_PRODUCT_TYPE = "Network I/O Relay Module"
DEFAULT_FIRMWARE = "11.8.64"
BUILD_DATE = "Feb 14 2024 13:08"
BUILD_NUMBER = "26"


@dataclass(frozen=True, slots=True)
class AxisIdentity:
    brand: str
    prod_nbr: str
    prod_full_name: str
    prod_short_name: str
    prod_type: str
    prod_variant: str
    serial: str
    firmware: str
    build_date: str
    build_number: str
    hardware_id: str
    architecture: str
    soc: str
    web_url: str

    @property
    def realm(self) -> str:
        """The HTTP Digest realm of an Axis device: ``AXIS_<SERIAL>``."""
        return f"AXIS_{self.serial.upper()}"

    def basic_device_info(self) -> dict[str, str]:
        """The 14 properties of basic-device-info ``getAllProperties`` (all required)."""
        return {
            "Architecture": self.architecture,
            "Brand": self.brand,
            "BuildDate": self.build_date,
            "HardwareID": self.hardware_id,
            "ProdFullName": self.prod_full_name,
            "ProdNbr": self.prod_nbr,
            "ProdShortName": self.prod_short_name,
            "ProdType": self.prod_type,
            "ProdVariant": self.prod_variant,
            "SerialNumber": self.serial,
            "Soc": self.soc,
            "SocSerialNumber": self.serial,
            "Version": self.firmware,
            "WebURL": self.web_url,
        }


def axis_identity(device: DeviceIdentity) -> AxisIdentity:
    """The Axis view of the configured identity (see the module docstring for defaults)."""
    defaults = DeviceIdentity.model_fields
    brand = device.brand if device.brand != defaults["brand"].default else DEFAULT_BRAND
    model = device.model if device.model != defaults["model"].default else DEFAULT_PRODUCT
    firmware = device.firmware if device.firmware != __version__ else DEFAULT_FIRMWARE
    short = f"{brand} {model}"
    product_type = DEFAULT_PRODUCT_TYPE
    return AxisIdentity(
        brand=brand,
        prod_nbr=model,
        prod_full_name=f"{short} {product_type}",
        prod_short_name=short,
        prod_type=product_type,
        prod_variant="camio",
        serial=device.serial.upper(),
        firmware=firmware,
        build_date=BUILD_DATE,
        build_number=BUILD_NUMBER,
        hardware_id="CA10",
        architecture="aarch64",
        soc="camio",
        web_url="https://github.com/camio",
    )
