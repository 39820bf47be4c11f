"""Configuration of the camera dialects (which vendor APIs the device answers, and how).

Pure models; each dialect package under :mod:`camio.dialects` reads its own section.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from camio.core.ports import Model


class VapixConfig(Model):
    """The Axis VAPIX dialect: /axis-cgi/..., its event streams, and the legacy .txt files."""

    enabled: bool = Field(True, description="Answer VAPIX requests (Axis clients, Home Assistant)")
    rtsp_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        554,
        description="TCP port of the RTSP metadata event stream (Axis clients use 554); "
        "0 turns it off. Where the process may not bind 554, camio says so and uses 8554.",
    )
    allow_basic: bool = Field(
        True, description="Accept HTTP Basic besides Digest (newer axis clients fall back to it)"
    )
    legacy_files: bool = Field(
        True, description="Serve /input.txt, /relayon.txt and /relayoff.txt (camera servers)"
    )


class OnvifConfig(Model):
    """The ONVIF dialect: SOAP services under /onvif/, WS-Security, WS-Discovery."""

    enabled: bool = Field(True, description="Answer ONVIF requests (VMS, Home Assistant)")
    discovery: bool = Field(
        True, description="Answer WS-Discovery probes (UDP 3702) and announce Hello/Bye"
    )
    discovery_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        3702, description="UDP port of WS-Discovery (clients probe 3702; other values for tests)"
    )
    discovery_interfaces: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list,
        max_length=16,
        description="IPv4 addresses of the interfaces to join 239.255.255.250 on; empty = the "
        "address the HTTP listener is bound to (all interfaces when that is 0.0.0.0)",
    )
    location: Annotated[str, Field(max_length=64, pattern=r"^[^\s]*$")] = Field(
        "", description="The onvif://www.onvif.org/location/... scope (no spaces); empty = none"
    )
    http_auth: bool = Field(
        True,
        description="Accept HTTP Digest/Basic on the SOAP endpoints besides WS-Security "
        "UsernameToken (some clients use it)",
    )
    created_window_s: Annotated[int, Field(ge=5, le=86_400)] = Field(
        300,
        description="How far a UsernameToken's Created may be from the device clock (seconds)",
    )
    nonce_cache: Annotated[int, Field(ge=16, le=1_000_000)] = Field(
        10_000, description="UsernameToken nonces remembered against replay (the oldest go)"
    )
    max_subscriptions: Annotated[int, Field(ge=1, le=1000)] = Field(
        16, description="Event subscriptions (pull points and push) alive at once"
    )
    max_pull_timeout_s: Annotated[int, Field(ge=1, le=600)] = Field(
        80, description="Longest PullMessages wait (clients time out at 90 s)"
    )


class IsapiConfig(Model):
    """The Hikvision ISAPI dialect (pyhik, Home Assistant's hikvision integration, NVRs)."""

    enabled: bool = Field(False, description="Answer /ISAPI/... requests (off by default)")
    allow_basic: bool = Field(
        True, description="Accept HTTP Basic besides Digest (Hikvision clients may use either)"
    )
    alert_repeat_ms: Annotated[int, Field(ge=100, le=4000)] = Field(
        1000,
        description="alertStream: how often an active input's IO alert is sent again while it "
        "stays active (devices: about 1 s; pyhik resets a sensor not re-sent within 5 s)",
    )
    heartbeat_s: Annotated[int, Field(ge=1, le=30)] = Field(
        10,
        description="alertStream: seconds of silence before a 'videoloss inactive' keep-alive "
        "(pyhik reconnects after 60 s without data)",
    )


class DahuaConfig(Model):
    """The Dahua / Amcrest CGI dialect (the amcrest library, Home Assistant, NVRs)."""

    enabled: bool = Field(False, description="Answer /cgi-bin/... requests (off by default)")
    allow_basic: bool = Field(True, description="Accept HTTP Basic besides Digest")


class FoscamConfig(Model):
    """The Foscam CGIProxy dialect (libpyfoscam, Home Assistant's foscam integration)."""

    enabled: bool = Field(False, description="Answer /cgi-bin/CGIProxy.fcgi (off by default)")
    allow_plain_http: bool = Field(
        False,
        description="Foscam clients send the password in the URL query: refused over plain "
        "HTTP unless this is turned on knowingly (HTTPS always works)",
    )
    io_snap_interval: Annotated[int, Field(ge=0, le=3600)] = Field(
        2,
        description="getIOAlarmConfig snapInterval, kept for the clients that write it back "
        "(the snapshot linkage is not implemented)",
    )
    io_trigger_interval: Annotated[int, Field(ge=0, le=3600)] = Field(
        0,
        description="getIOAlarmConfig triggerInterval in seconds: the wait between actions of "
        "the IO linkage rule (foscam-io-linkage)",
    )


class DialectsConfig(Model):
    """Every dialect's section; a dialect that is off answers nothing (404)."""

    vapix: VapixConfig = Field(default_factory=VapixConfig)
    onvif: OnvifConfig = Field(default_factory=OnvifConfig)
    isapi: IsapiConfig = Field(default_factory=IsapiConfig)
    dahua: DahuaConfig = Field(default_factory=DahuaConfig)
    foscam: FoscamConfig = Field(default_factory=FoscamConfig)
