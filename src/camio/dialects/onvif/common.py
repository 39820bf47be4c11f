"""What the ONVIF service modules share: service addresses, times and durations, tokens, the
caller's cause, and the mapping of device errors onto SOAP faults.

Tokens: an ONVIF ``token`` of a digital input or relay output is the camio port id itself
(``in1``, ``out1`` ...): stable across restarts and configuration changes, and the same name the
native API, MQTT and the event topics use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from camio.core.config import DeviceConfig
from camio.core.dialects import OnvifConfig
from camio.core.events import Cause
from camio.dialects.onvif.mount import DIALECT as DIALECT  # RouteSpec dialect, re-exported
from camio.dialects.onvif.soap import SoapFault, SoapRequest
from camio.engine.errors import Conflict, DeviceError, InvalidRequest, NotFound

#: Service paths (the device service path is fixed by clients; the others are announced).
DEVICE_PATH: Final = "/onvif/device_service"
DEVICEIO_PATH: Final = "/onvif/deviceio_service"
MEDIA_PATH: Final = "/onvif/media_service"
EVENTS_PATH: Final = "/onvif/event_service"
SUBSCRIPTION_PATH: Final = "/onvif/subscription"

#: Service namespaces as clients key them (exact strings: deviceIO with a capital IO).
NS_DEVICE: Final = "http://www.onvif.org/ver10/device/wsdl"
NS_DEVICEIO: Final = "http://www.onvif.org/ver10/deviceIO/wsdl"
NS_MEDIA: Final = "http://www.onvif.org/ver10/media/wsdl"
NS_EVENTS: Final = "http://www.onvif.org/ver10/events/wsdl"

_HOST_RE: Final = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(:[0-9]{1,5})?$")


def onvif_config(request: SoapRequest | web.Request) -> OnvifConfig:
    http = request.http if isinstance(request, SoapRequest) else request
    from camio.api.context import DEVICE

    return http.app[DEVICE].config.dialects.onvif


def base_url(http: web.Request) -> str:
    """``scheme://host:port`` as the client reached the device (the Host header, when it is a
    plausible host; else the local socket address), so XAddrs work through NAT and on
    loopback alike."""
    host = http.headers.get("Host", "")
    if not _HOST_RE.match(host):
        sock = http.transport.get_extra_info("sockname") if http.transport else None
        if isinstance(sock, tuple) and len(sock) >= 2:
            addr = str(sock[0])
            host = f"[{addr}]:{sock[1]}" if ":" in addr else f"{addr}:{sock[1]}"
        else:
            host = "127.0.0.1"
    return f"{http.scheme}://{host}"


def xaddr(http: web.Request, path: str) -> str:
    return base_url(http) + path


def utc_now(request: SoapRequest) -> datetime:
    return datetime.fromtimestamp(request.device.clock.wall_ns() / 1e9, tz=UTC)


def iso_utc(moment: datetime) -> str:
    """``2026-11-21T22:15:49Z`` (UTC, seconds, Z) as clients expect."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_DURATION_RE: Final = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> float:
    """An xs:duration without years/months (``PT1M``, ``PT2.5S``, ``P1DT2H``) in seconds;
    :class:`SoapFault` (InvalidArgVal) otherwise."""
    value = text.strip()
    match = _DURATION_RE.match(value)
    if match is None or value in ("P", "PT") or value.endswith("T"):
        raise SoapFault(f"not a duration: {value[:40]!r}")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


def format_duration(seconds: float) -> str:
    """Seconds as ``PT2S`` / ``PT0.5S``."""
    if seconds == int(seconds):
        return f"PT{int(seconds)}S"
    return f"PT{seconds:.3f}".rstrip("0").rstrip(".") + "S"


def cause(request: SoapRequest) -> Cause:
    return Cause("api", user=request.user.name, client=request.http.remote, detail="onvif")


@contextmanager
def device_errors(token_subcode: str = "ter:InvalidArgVal") -> Iterator[None]:
    """Turn the Device facade's errors into SOAP faults (never a 500)."""
    try:
        yield
    except NotFound as exc:
        raise SoapFault(str(exc), subcodes=("ter:InvalidArgVal", token_subcode)) from None
    except (InvalidRequest, Conflict) as exc:
        raise SoapFault(str(exc), subcodes=("ter:InvalidArgVal", "ter:SettingsInvalid")) from None
    except DeviceError as exc:
        raise SoapFault(str(exc), code="Receiver", subcodes=("ter:Action",), status=500) from None


def identity(config: DeviceConfig) -> dict[str, str]:
    """GetDeviceInformation's fields from the device identity."""
    ident = config.device
    return {
        "Manufacturer": ident.brand,
        "Model": ident.model,
        "FirmwareVersion": ident.firmware,
        "SerialNumber": ident.serial,
        "HardwareId": f"{ident.model}-{config.hardware.driver}",
    }
