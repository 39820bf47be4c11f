"""The ONVIF Media service (``trt``) at ``/onvif/media_service``: the minimum a client needs to
add the device as a camera.

With a video source, one fixed H.264 profile ``profile_1`` (video source ``vs_1``, source
configuration ``vsc_1``, encoder configuration ``vec_1``) whose resolution and frame rate are
those of the running stream (or, before it connects, of the configured test pattern). Without
video, no profile.

GetStreamUri answers the configured ``rtsp://`` source URL with its user name and password
removed (the client logs in to that camera with its own credentials). camio does not re-stream
video: for the built-in test pattern or a non-RTSP source there is no stream URI, and the answer
is a fault (``env:Receiver``/``ter:ActionNotSupported``/``ter:NoStreaming``-style subcode) that
points to GetSnapshotUri. GetSnapshotUri answers the native live-snapshot route
``/api/v1/video/snapshot`` (HTTP Digest or Basic, any account, a fresh JPEG each time).
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from lxml import etree

from camio.core.media import redact_query
from camio.dialects.onvif.common import MEDIA_PATH, base_url
from camio.dialects.onvif.device_service import has_video, media_capabilities
from camio.dialects.onvif.soap import (
    Operation,
    SoapFault,
    SoapRequest,
    el,
    register_service,
    text_of,
)
from camio.store.users import Role
from camio.video import VIDEO

PROFILE: Final = "profile_1"
SOURCE: Final = "vs_1"
SNAPSHOT_PATH: Final = "/api/v1/video/snapshot"


def _stream(request: SoapRequest) -> dict[str, Any]:
    """Width, height, fps of the picture: the running stream's, else the test pattern's."""
    pattern = request.device.config.video.test_pattern
    found: dict[str, Any] = {"width": pattern.width, "height": pattern.height, "fps": pattern.fps}
    video = request.device.services.get(VIDEO)
    if video is not None:
        stream = video.status().get("stream") or {}
        for key in ("width", "height", "fps"):
            value = stream.get(key)
            if isinstance(value, int | float) and value > 0:
                found[key] = int(value)
    return found


def _source_configuration(stream: dict[str, Any]) -> etree._Element:
    return el(
        "tt:VideoSourceConfiguration",
        el("tt:Name", "Video source"),
        el("tt:UseCount", "1"),
        el("tt:SourceToken", SOURCE),
        el("tt:Bounds", x="0", y="0", width=str(stream["width"]), height=str(stream["height"])),
        token="vsc_1",
    )


def _encoder_configuration(stream: dict[str, Any]) -> etree._Element:
    return el(
        "tt:VideoEncoderConfiguration",
        el("tt:Name", "H.264"),
        el("tt:UseCount", "1"),
        el("tt:Encoding", "H264"),
        el(
            "tt:Resolution",
            el("tt:Width", str(stream["width"])),
            el("tt:Height", str(stream["height"])),
        ),
        el("tt:Quality", "5"),
        el(
            "tt:RateControl",
            el("tt:FrameRateLimit", str(stream["fps"])),
            el("tt:EncodingInterval", "1"),
            el("tt:BitrateLimit", "4096"),
        ),
        el(
            "tt:H264",
            el("tt:GovLength", str(max(1, 2 * int(stream["fps"])))),
            el("tt:H264Profile", "Main"),
        ),
        el(
            "tt:Multicast",
            el("tt:Address", el("tt:Type", "IPv4"), el("tt:IPv4Address", "0.0.0.0")),
            el("tt:Port", "0"),
            el("tt:TTL", "0"),
            el("tt:AutoStart", "false"),
        ),
        el("tt:SessionTimeout", "PT60S"),
        token="vec_1",
    )


def _profile(request: SoapRequest, tag: str) -> etree._Element:
    stream = _stream(request)
    return el(
        tag,
        el("tt:Name", "Main stream"),
        _source_configuration(stream),
        _encoder_configuration(stream),
        token=PROFILE,
        fixed="true",
    )


def _need_profile(request: SoapRequest) -> None:
    token = text_of(request.body, "ProfileToken")
    if not has_video(request) or token != PROFILE:
        raise SoapFault("no such media profile", subcodes=("ter:InvalidArgVal", "ter:NoProfile"))


async def get_service_capabilities(request: SoapRequest) -> etree._Element:
    return el("trt:GetServiceCapabilitiesResponse", media_capabilities(request))


async def get_profiles(request: SoapRequest) -> etree._Element:
    profiles = [_profile(request, "trt:Profiles")] if has_video(request) else []
    return el("trt:GetProfilesResponse", *profiles)


async def get_profile(request: SoapRequest) -> etree._Element:
    _need_profile(request)
    return el("trt:GetProfileResponse", _profile(request, "trt:Profile"))


async def get_video_sources(request: SoapRequest) -> etree._Element:
    if not has_video(request):
        return el("trt:GetVideoSourcesResponse")
    stream = _stream(request)
    return el(
        "trt:GetVideoSourcesResponse",
        el(
            "trt:VideoSources",
            el("tt:Framerate", str(float(stream["fps"]))),
            el(
                "tt:Resolution",
                el("tt:Width", str(stream["width"])),
                el("tt:Height", str(stream["height"])),
            ),
            token=SOURCE,
        ),
    )


def _media_uri(uri: str) -> etree._Element:
    return el(
        "trt:MediaUri",
        el("tt:Uri", uri),
        el("tt:InvalidAfterConnect", "false"),
        el("tt:InvalidAfterReboot", "false"),
        el("tt:Timeout", "PT0S"),
    )


def strip_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    query = redact_query(parts.query)  # a password in the query (user=..&password=..) too
    return urlunsplit((parts.scheme, host, parts.path, query, parts.fragment))


async def get_stream_uri(request: SoapRequest) -> etree._Element:
    _need_profile(request)
    source = request.device.config.video.source
    if urlsplit(source).scheme.lower() not in ("rtsp", "rtsps"):
        raise SoapFault(
            "this device does not stream video over RTSP (the source is "
            f"{'the built-in test pattern' if source == 'test' else 'not an RTSP URL'}); "
            "use GetSnapshotUri for pictures",
            code="Receiver",
            subcodes=("ter:ActionNotSupported", "ter:NoStreaming"),
            status=400,
        )
    return el("trt:GetStreamUriResponse", _media_uri(strip_credentials(source)))


async def get_snapshot_uri(request: SoapRequest) -> etree._Element:
    _need_profile(request)
    return el("trt:GetSnapshotUriResponse", _media_uri(base_url(request.http) + SNAPSHOT_PATH))


OPERATIONS: Final = {
    "GetServiceCapabilities": Operation(get_service_capabilities, Role.VIEWER, public=True),
    "GetProfiles": Operation(get_profiles, Role.VIEWER),
    "GetProfile": Operation(get_profile, Role.VIEWER),
    "GetVideoSources": Operation(get_video_sources, Role.VIEWER),
    "GetStreamUri": Operation(get_stream_uri, Role.VIEWER),
    "GetSnapshotUri": Operation(get_snapshot_uri, Role.VIEWER),
}

register_service(MEDIA_PATH, OPERATIONS)
