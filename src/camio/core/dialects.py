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


class DialectsConfig(Model):
    """Every dialect's section; a dialect that is off answers nothing (404)."""

    vapix: VapixConfig = Field(default_factory=VapixConfig)
