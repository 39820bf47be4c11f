"""The ONVIF DeviceIO service (``tmd``, namespace ``http://www.onvif.org/ver10/deviceIO/wsdl``)
at ``/onvif/deviceio_service``: digital inputs and relay outputs.

The DeviceIO WSDL binds GetRelayOutputs and SetRelayOutputState to the *device* service's
elements (``tds:``), so clients send those here; both namespaces are accepted for every
operation, and the reply uses the namespace of the request element.
"""

from __future__ import annotations

from typing import Final

from lxml import etree

from camio.dialects.onvif import relays
from camio.dialects.onvif.common import DEVICEIO_PATH
from camio.dialects.onvif.device_service import deviceio_capabilities
from camio.dialects.onvif.soap import NS, Operation, SoapRequest, el, register_service, text_of
from camio.store.users import Role


def _prefix(request: SoapRequest) -> str:
    return "tds" if str(request.body.tag).startswith(f"{{{NS['tds']}}}") else "tmd"


async def get_service_capabilities(request: SoapRequest) -> etree._Element:
    return el("tmd:GetServiceCapabilitiesResponse", deviceio_capabilities(request))


async def get_digital_inputs(request: SoapRequest) -> etree._Element:
    return el("tmd:GetDigitalInputsResponse", *relays.digital_inputs(request.device))


async def get_relay_outputs(request: SoapRequest) -> etree._Element:
    prefix = _prefix(request)
    return el(
        f"{prefix}:GetRelayOutputsResponse",
        *relays.relay_outputs(request.device, f"{prefix}:RelayOutputs"),
    )


async def get_relay_output_options(request: SoapRequest) -> etree._Element:
    token = text_of(request.body, "RelayOutputToken")
    return el(
        "tmd:GetRelayOutputOptionsResponse", *relays.relay_options(request.device, token or None)
    )


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in parent if isinstance(c.tag, str) and c.tag.endswith("}" + name)), None)


async def set_relay_output_settings(request: SoapRequest) -> etree._Element:
    relay = _child(request.body, "RelayOutput")
    if relay is not None:  # tmd: RelayOutput@token / tt:Properties
        relays.apply_settings(request, relay.get("token"), _child(relay, "Properties"))
    else:  # tds shape: RelayOutputToken + Properties
        relays.apply_settings(
            request, text_of(request.body, "RelayOutputToken"), _child(request.body, "Properties")
        )
    return el(f"{_prefix(request)}:SetRelayOutputSettingsResponse")


async def set_relay_output_state(request: SoapRequest) -> etree._Element:
    relays.set_state(
        request,
        text_of(request.body, "RelayOutputToken"),
        text_of(request.body, "LogicalState"),
    )
    return el(f"{_prefix(request)}:SetRelayOutputStateResponse")


async def get_video_sources(request: SoapRequest) -> etree._Element:
    from camio.dialects.onvif.device_service import has_video

    tokens = [el("tmd:Token", "vs_1")] if has_video(request) else []
    return el("tmd:GetVideoSourcesResponse", *tokens)


OPERATIONS: Final = {
    "GetServiceCapabilities": Operation(get_service_capabilities, Role.VIEWER, public=True),
    "GetDigitalInputs": Operation(get_digital_inputs, Role.VIEWER),
    "GetRelayOutputs": Operation(get_relay_outputs, Role.VIEWER),
    "GetRelayOutputOptions": Operation(get_relay_output_options, Role.VIEWER),
    "SetRelayOutputSettings": Operation(set_relay_output_settings, Role.ADMIN),
    "SetRelayOutputState": Operation(set_relay_output_state, Role.OPERATOR),
    "GetVideoSources": Operation(get_video_sources, Role.VIEWER),
}

register_service(DEVICEIO_PATH, OPERATIONS)
