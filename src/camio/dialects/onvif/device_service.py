"""The ONVIF Device service (``tds``) at ``/onvif/device_service``.

Pre-auth (answered without credentials, per the ONVIF Core spec): GetSystemDateAndTime,
GetServices, GetCapabilities, GetServiceCapabilities, GetWsdlUrl. The rest needs an account:
reading needs ``viewer`` (ONVIF User), driving a relay ``operator``, changing relay settings and
listing users ``admin``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from lxml import etree

from camio.core.config import DeviceConfig
from camio.dialects.onvif import relays
from camio.dialects.onvif.common import (
    DEVICE_PATH,
    DEVICEIO_PATH,
    EVENTS_PATH,
    MEDIA_PATH,
    NS_DEVICE,
    NS_DEVICEIO,
    NS_EVENTS,
    NS_MEDIA,
    base_url,
    identity,
    onvif_config,
    utc_now,
    xaddr,
)
from camio.dialects.onvif.scopes import mac_address, scopes
from camio.dialects.onvif.soap import (
    Operation,
    SoapFault,
    SoapRequest,
    el,
    find_service,
    register_service,
    text_of,
)
from camio.store.users import Role
from camio.video import VIDEO

#: (Major, Minor) announced per service.
VERSIONS: Final = {NS_DEVICE: (2, 60), NS_DEVICEIO: (2, 60), NS_MEDIA: (2, 60), NS_EVENTS: (2, 60)}
_LEVELS: Final = {Role.ADMIN: "Administrator", Role.OPERATOR: "Operator", Role.VIEWER: "User"}


def has_video(request: SoapRequest) -> bool:
    video = request.device.services.get(VIDEO)
    return video is not None and video.enabled


# -- pre-auth ---------------------------------------------------------------------------------


def _posix_tz(zone: str, now: datetime) -> str:
    local = now.astimezone(ZoneInfo(zone))
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    abbr = "".join(c for c in (local.tzname() or "") if c.isalpha())
    if len(abbr) < 3:
        abbr = "LOC"
    sign = "-" if minutes > 0 else ""
    hours, mins = divmod(abs(minutes), 60)
    return f"{abbr}{sign}{hours}" + (f":{mins:02d}" if mins else "")


def _date_time(moment: datetime, tag: str) -> etree._Element:
    return el(
        tag,
        el(
            "tt:Time",
            el("tt:Hour", str(moment.hour)),
            el("tt:Minute", str(moment.minute)),
            el("tt:Second", str(moment.second)),
        ),
        el(
            "tt:Date",
            el("tt:Year", str(moment.year)),
            el("tt:Month", str(moment.month)),
            el("tt:Day", str(moment.day)),
        ),
    )


async def get_system_date_and_time(request: SoapRequest) -> etree._Element:
    now = utc_now(request)
    zone = request.device.config.device.timezone
    local = now.astimezone(ZoneInfo(zone))
    return el(
        "tds:GetSystemDateAndTimeResponse",
        el(
            "tds:SystemDateAndTime",
            el("tt:DateTimeType", "NTP"),
            el("tt:DaylightSavings", "true" if local.dst() else "false"),
            el("tt:TimeZone", el("tt:TZ", _posix_tz(zone, now))),
            _date_time(now, "tt:UTCDateTime"),
            _date_time(local, "tt:LocalDateTime"),
        ),
    )


def _device_capabilities(request: SoapRequest) -> etree._Element:
    return el(
        "tds:Capabilities",
        el(
            "tds:Network",
            IPFilter="false",
            ZeroConfiguration="false",
            IPVersion6="false",
            DynDNS="false",
            NTP="0",
            HostnameFromDHCP="false",
        ),
        el(
            "tds:Security",
            UsernameToken="true",
            HttpDigest="true",
            **{
                "TLS1.0": "false",
                "TLS1.1": "false",
                "TLS1.2": "false",
            },
        ),
        el(
            "tds:System",
            DiscoveryResolve="false",
            DiscoveryBye="true",
            RemoteDiscovery="false",
            SystemBackup="false",
            SystemLogging="false",
            FirmwareUpgrade="false",
        ),
    )


def _io_counts(request: SoapRequest) -> tuple[int, int]:
    device = request.device
    return len(device.inputs), len(device.outputs)


def deviceio_capabilities(request: SoapRequest) -> etree._Element:
    inputs, outputs = _io_counts(request)
    return el(
        "tmd:Capabilities",
        VideoSources="1" if has_video(request) else "0",
        VideoOutputs="0",
        AudioSources="0",
        AudioOutputs="0",
        RelayOutputs=str(outputs),
        DigitalInputs=str(inputs),
        SerialPorts="0",
        DigitalInputOptions="false",
    )


def media_capabilities(request: SoapRequest) -> etree._Element:
    video = has_video(request)
    return el(
        "trt:Capabilities",
        el("trt:ProfileCapabilities", MaximumNumberOfProfiles="1" if video else "0"),
        el("trt:StreamingCapabilities", RTPMulticast="false", RTP_TCP="true", RTP_RTSP_TCP="true"),
        SnapshotUri="true" if video else "false",
        Rotation="false",
    )


def events_capabilities(request: SoapRequest) -> etree._Element:
    limit = onvif_config(request).max_subscriptions
    return el(
        "tev:Capabilities",
        WSSubscriptionPolicySupport="false",
        WSPullPointSupport="true",
        WSPausableSubscriptionManagerInterfaceSupport="false",
        MaxNotificationProducers=str(limit),
        MaxPullPoints=str(limit),
    )


def _services(request: SoapRequest) -> list[tuple[str, str, etree._Element]]:
    """(namespace, path, capabilities) of every service this device answers."""
    found = [
        (NS_DEVICE, DEVICE_PATH, _device_capabilities(request)),
        (NS_DEVICEIO, DEVICEIO_PATH, deviceio_capabilities(request)),
        (NS_MEDIA, MEDIA_PATH, media_capabilities(request)),
    ]
    if find_service(EVENTS_PATH) is not None:
        found.append((NS_EVENTS, EVENTS_PATH, events_capabilities(request)))
    return found


async def get_services(request: SoapRequest) -> etree._Element:
    include = (text_of(request.body, "IncludeCapability") or "false").lower() in ("true", "1")
    items = []
    for namespace, path, caps in _services(request):
        major, minor = VERSIONS[namespace]
        items.append(
            el(
                "tds:Service",
                el("tds:Namespace", namespace),
                el("tds:XAddr", xaddr(request.http, path)),
                el("tds:Capabilities", caps) if include else None,
                el("tds:Version", el("tt:Major", str(major)), el("tt:Minor", str(minor))),
            )
        )
    return el("tds:GetServicesResponse", *items)


_CATEGORIES: Final = ("All", "Analytics", "Device", "Events", "Imaging", "Media", "PTZ")


async def get_capabilities(request: SoapRequest) -> etree._Element:
    wanted = {(c.text or "").strip() for c in request.body if isinstance(c.tag, str)} or {"All"}
    unknown = wanted - set(_CATEGORIES)
    if unknown:
        raise SoapFault("unknown capability category")
    every = "All" in wanted
    events = find_service(EVENTS_PATH) is not None
    supported = {"Device", "Media"} | ({"Events"} if events else set())
    if not every and not wanted & supported:
        raise SoapFault(
            "the device has no such service",
            code="Receiver",
            subcodes=("ter:ActionNotSupported", "ter:NoSuchService"),
        )
    inputs, outputs = _io_counts(request)
    http = request.http
    parts: list[etree._Element | None] = []
    if every or "Device" in wanted:
        parts.append(
            el(
                "tt:Device",
                el("tt:XAddr", xaddr(http, DEVICE_PATH)),
                el(
                    "tt:IO",
                    el("tt:InputConnectors", str(inputs)),
                    el("tt:RelayOutputs", str(outputs)),
                ),
            )
        )
    if events and (every or "Events" in wanted):
        parts.append(
            el(
                "tt:Events",
                el("tt:XAddr", xaddr(http, EVENTS_PATH)),
                el("tt:WSSubscriptionPolicySupport", "false"),
                el("tt:WSPullPointSupport", "true"),
                el("tt:WSPausableSubscriptionManagerInterfaceSupport", "false"),
            )
        )
    if every or "Media" in wanted:
        parts.append(
            el(
                "tt:Media",
                el("tt:XAddr", xaddr(http, MEDIA_PATH)),
                el(
                    "tt:StreamingCapabilities",
                    el("tt:RTPMulticast", "false"),
                    el("tt:RTP_TCP", "true"),
                    el("tt:RTP_RTSP_TCP", "true"),
                ),
            )
        )
    if every or "Device" in wanted:
        parts.append(
            el(
                "tt:Extension",
                el(
                    "tt:DeviceIO",
                    el("tt:XAddr", xaddr(http, DEVICEIO_PATH)),
                    el("tt:VideoSources", "1" if has_video(request) else "0"),
                    el("tt:VideoOutputs", "0"),
                    el("tt:AudioSources", "0"),
                    el("tt:AudioOutputs", "0"),
                    el("tt:RelayOutputs", str(outputs)),
                ),
            )
        )
    return el("tds:GetCapabilitiesResponse", el("tds:Capabilities", *parts))


async def get_service_capabilities(request: SoapRequest) -> etree._Element:
    return el("tds:GetServiceCapabilitiesResponse", _device_capabilities(request))


async def get_wsdl_url(request: SoapRequest) -> etree._Element:
    return el(
        "tds:GetWsdlUrlResponse",
        el("tds:WsdlUrl", "http://www.onvif.org/Documents/Specifications.aspx"),
    )


# -- identity and network ---------------------------------------------------------------------


async def get_device_information(request: SoapRequest) -> etree._Element:
    info = identity(request.device.config)
    return el(
        "tds:GetDeviceInformationResponse",
        *(
            el(f"tds:{name}", info[name])
            for name in ("Manufacturer", "Model", "FirmwareVersion", "SerialNumber", "HardwareId")
        ),
    )


def _local_address(request: SoapRequest) -> str:
    sock = request.http.transport.get_extra_info("sockname") if request.http.transport else None
    if isinstance(sock, tuple) and sock and ":" not in str(sock[0]):
        return str(sock[0])
    return "127.0.0.1"


async def get_network_interfaces(request: SoapRequest) -> etree._Element:
    return el(
        "tds:GetNetworkInterfacesResponse",
        el(
            "tds:NetworkInterfaces",
            el("tt:Enabled", "true"),
            el(
                "tt:Info",
                el("tt:Name", "eth0"),
                el("tt:HwAddress", mac_address(request.device.config)),
                el("tt:MTU", "1500"),
            ),
            el(
                "tt:IPv4",
                el("tt:Enabled", "true"),
                el(
                    "tt:Config",
                    el(
                        "tt:Manual",
                        el("tt:Address", _local_address(request)),
                        el("tt:PrefixLength", "24"),
                    ),
                    el("tt:DHCP", "false"),
                ),
            ),
            token="eth0",
        ),
    )


async def get_scopes(request: SoapRequest) -> etree._Element:
    return el(
        "tds:GetScopesResponse",
        *(
            el("tds:Scopes", el("tt:ScopeDef", "Fixed"), el("tt:ScopeItem", item))
            for item in scopes(request.device.config, video=has_video(request))
        ),
    )


def hostname(config: DeviceConfig) -> str:
    name = "".join(c if c.isascii() and c.isalnum() else "-" for c in config.device.name)
    return name.strip("-")[:63] or "camio"


async def get_hostname(request: SoapRequest) -> etree._Element:
    return el(
        "tds:GetHostnameResponse",
        el(
            "tds:HostnameInformation",
            el("tt:FromDHCP", "false"),
            el("tt:Name", hostname(request.device.config)),
        ),
    )


async def get_discovery_mode(request: SoapRequest) -> etree._Element:
    on = onvif_config(request).discovery
    return el(
        "tds:GetDiscoveryModeResponse",
        el("tds:DiscoveryMode", "Discoverable" if on else "NonDiscoverable"),
    )


async def get_users(request: SoapRequest) -> etree._Element:
    from camio.api.context import USERS

    users = request.http.app[USERS].list()
    return el(
        "tds:GetUsersResponse",
        *(
            el("tds:User", el("tt:Username", u.name), el("tt:UserLevel", _LEVELS[u.role]))
            for u in users
        ),
    )


# -- relays (legacy device-service variants) --------------------------------------------------


async def get_relay_outputs(request: SoapRequest) -> etree._Element:
    return el(
        "tds:GetRelayOutputsResponse", *relays.relay_outputs(request.device, "tds:RelayOutputs")
    )


async def set_relay_output_settings(request: SoapRequest) -> etree._Element:
    props = next(
        (c for c in request.body if isinstance(c.tag, str) and c.tag.endswith("}Properties")), None
    )
    relays.apply_settings(request, text_of(request.body, "RelayOutputToken"), props)
    return el("tds:SetRelayOutputSettingsResponse")


async def set_relay_output_state(request: SoapRequest) -> etree._Element:
    relays.set_state(
        request,
        text_of(request.body, "RelayOutputToken"),
        text_of(request.body, "LogicalState"),
    )
    return el("tds:SetRelayOutputStateResponse")


OPERATIONS: Final = {
    "GetSystemDateAndTime": Operation(get_system_date_and_time, Role.VIEWER, public=True),
    "GetServices": Operation(get_services, Role.VIEWER, public=True),
    "GetCapabilities": Operation(get_capabilities, Role.VIEWER, public=True),
    "GetServiceCapabilities": Operation(get_service_capabilities, Role.VIEWER, public=True),
    "GetWsdlUrl": Operation(get_wsdl_url, Role.VIEWER, public=True),
    "GetDeviceInformation": Operation(get_device_information, Role.VIEWER),
    "GetNetworkInterfaces": Operation(get_network_interfaces, Role.VIEWER),
    "GetScopes": Operation(get_scopes, Role.VIEWER),
    "GetHostname": Operation(get_hostname, Role.VIEWER),
    "GetDiscoveryMode": Operation(get_discovery_mode, Role.VIEWER),
    "GetUsers": Operation(get_users, Role.ADMIN),
    "GetRelayOutputs": Operation(get_relay_outputs, Role.VIEWER),
    "SetRelayOutputState": Operation(set_relay_output_state, Role.OPERATOR),
    "SetRelayOutputSettings": Operation(set_relay_output_settings, Role.ADMIN),
}

register_service(DEVICE_PATH, OPERATIONS)

__all__ = ["OPERATIONS", "base_url", "has_video", "mac_address", "scopes"]
