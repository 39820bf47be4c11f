"""Configuration of the video source and of the storage for recordings and snapshots.

Pure models: the video worker (:mod:`camio.video`) and the media store read them; nothing here
touches FFmpeg or the disk.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator

from camio.core.ports import Model


class TestPatternConfig(Model):
    """The built-in source: FFmpeg's test picture with the frame number and time on it."""

    width: Annotated[int, Field(ge=160, le=3840, multiple_of=2)] = 640
    height: Annotated[int, Field(ge=90, le=2160, multiple_of=2)] = 360
    fps: Annotated[int, Field(ge=1, le=60)] = 10
    gop_s: Annotated[int, Field(ge=1, le=10, description="Seconds between keyframes")] = 2


class VideoConfig(Model):
    """Where the device's video comes from, and the pre-alarm buffer kept of it."""

    source: Annotated[str, Field(min_length=1, max_length=1024)] = Field(
        "test",
        description="'test' (built-in test pattern), 'none' (no video), or any URL or path "
        "FFmpeg opens: rtsp://user:pass@camera/stream, http://.../mjpeg, /dev/video0, a file",
    )
    options: dict[str, Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict,
        description="FFmpeg input options, e.g. {rtsp_transport: tcp}",
        max_length=32,
    )
    pre_buffer_s: Annotated[int, Field(ge=0, le=60)] = Field(
        10, description="Seconds of video kept before an alarm (plus up to one GOP)"
    )
    test_pattern: TestPatternConfig = Field(default_factory=TestPatternConfig)
    snapshot_quality: Annotated[int, Field(ge=2, le=31)] = Field(
        4, description="JPEG quantiser: 2 = best and biggest, 31 = worst and smallest"
    )
    max_record_s: Annotated[int, Field(ge=10, le=86_400)] = Field(
        3600, description="No recording is longer than this, however often it is extended"
    )

    @field_validator("source")
    @classmethod
    def _no_newline(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n\0"):
            raise ValueError("the source must be one line")
        return value.strip()

    @property
    def enabled(self) -> bool:
        return self.source != "none"

    def redacted_source(self) -> str:
        """The source with any password in its URL replaced (for status and logs)."""
        return redact_url(self.source)


#: Query parameters that carry a secret in cameras' URLs (Foscam ``usr=..&pwd=..``, tokens).
_SECRET_PARAM = re.compile(
    r"((?:^|[?&;])(?:pwd|passwd|password|pass|psw|token|access_token|auth|secret|key|api_?key)=)"
    r"[^&;#\s'\"]*",
    re.IGNORECASE,
)


#: User info up to the *last* '@' of the authority: FFmpeg, like urlsplit, allows '@' in it.
_USERINFO = re.compile(r"(://[^/:@\s]*):[^/\s]*@")


def redact_query(text: str) -> str:
    """Hide the value of every secret-looking query parameter in ``text``."""
    return _SECRET_PARAM.sub(r"\1***", text)


def redact_text(text: str) -> str:
    """Hide the passwords of the URLs anywhere in ``text`` (an error message quoting one)."""
    return redact_query(_USERINFO.sub(r"\1:***@", text))


def redact_url(url: str) -> str:
    """``url`` with the password of its user info and secret query parameters hidden."""
    url = redact_query(url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class StorageConfig(Model):
    """The SD card (a local directory) and a network share, and how long media is kept."""

    local_path: Annotated[str, Field(max_length=1024)] | None = Field(
        None, description="Directory for media; default: <data dir>/media"
    )
    share_path: Annotated[str, Field(max_length=1024)] | None = Field(
        None, description="A mounted network share (NFS/SMB) for media; none by default"
    )
    share_must_be_mounted: bool = Field(
        True,
        description="Refuse to write to the share path unless it is a mount point, so an "
        "unmounted share never fills the local disk",
    )
    max_age_days: Annotated[int, Field(ge=0, le=3650)] = Field(
        30, description="Delete media older than this (0: keep until space is needed)"
    )
    min_free_mb: Annotated[int, Field(ge=1, le=10_000_000)] = Field(
        256, description="Keep this much free on each volume: the oldest media goes first"
    )
    max_used_mb: Annotated[int, Field(ge=1, le=100_000_000)] | None = Field(
        None, description="At most this much media per volume (default: no cap)"
    )
