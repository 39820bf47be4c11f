"""The device's ONVIF scopes and MAC address, shared by GetScopes and WS-Discovery.

Pure functions of the configuration, without lxml, so the WS-Discovery responder (which the
daemon runs by default) does not load the SOAP stack.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from camio.core.config import DeviceConfig

__all__ = ["mac_address", "scopes"]


def mac_address(config: DeviceConfig) -> str:
    """A stable, locally administered MAC derived from the serial (HA keys devices on it)."""
    digest = hashlib.sha256(config.device.serial.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


def scopes(config: DeviceConfig, *, video: bool) -> list[str]:
    """The device's fixed scopes (GetScopes and WS-Discovery)."""
    base = "onvif://www.onvif.org/"
    ident = config.device
    items = [f"{base}type/Network_Video_Transmitter"]
    if video:
        items += [f"{base}type/video_encoder", f"{base}Profile/Streaming"]
    items += [
        f"{base}name/{quote(ident.name, safe='')}",
        f"{base}hardware/{quote(ident.model, safe='')}",
        f"{base}mac/{mac_address(config).replace(':', '')}",
    ]
    location = config.dialects.onvif.location
    if location:
        items.append(f"{base}location/{quote(location, safe='/')}")
    return items
