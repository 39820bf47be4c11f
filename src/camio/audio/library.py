"""The clip library: uploaded WAV files in ``<data>/clips/``.

A clip is checked with the standard library's :mod:`wave` before it is stored: anything that is
not an uncompressed PCM WAV is refused, and so is a file larger than :data:`MAX_CLIP_BYTES` or
longer than :data:`MAX_CLIP_SECONDS`, so a playback request can never hand the audio output
something it cannot play. Files are written through a temporary file and a rename.
"""

from __future__ import annotations

import io
import re
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from camio.engine.errors import InvalidRequest, NotFound
from camio.store.atomic import atomic_write_bytes

MAX_CLIP_BYTES = 10 * 1024 * 1024
MAX_CLIP_SECONDS = 300
MAX_CLIPS = 100
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_SUFFIX = ".wav"


class ClipError(InvalidRequest):
    """The upload is not a clip the device can play (HTTP 422); the message says why."""


class ClipTooLarge(ClipError):
    """Larger than :data:`MAX_CLIP_BYTES` (HTTP 413)."""


@dataclass(frozen=True, slots=True)
class Clip:
    name: str
    path: Path
    size: int
    channels: int
    sample_rate: int
    sample_width: int  # bytes per sample
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    @property
    def duration_ns(self) -> int:
        return self.frames * 1_000_000_000 // self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "channels": self.channels,
            "sample_rate": self.sample_rate,
            "sample_bits": self.sample_width * 8,
            "duration_s": round(self.duration_s, 3),
        }


def check_name(name: str) -> str:
    """A clip name is a file name without path: letters, digits, ``_ . -``, up to 63."""
    if not NAME_PATTERN.match(name) or ".." in name:
        raise ClipError(
            f"clip name {name!r}: use 1-63 letters, digits, '_', '.' or '-' (no path), "
            "starting with a letter or digit"
        )
    return name[: -len(_SUFFIX)] if name.lower().endswith(_SUFFIX) else name


def inspect(data: bytes) -> tuple[int, int, int, int]:
    """``(channels, sample_rate, sample_width, frames)`` of a WAV, or :class:`ClipError`."""
    if len(data) > MAX_CLIP_BYTES:
        raise ClipTooLarge(f"the clip is {len(data)} bytes; at most {MAX_CLIP_BYTES} are allowed")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ClipError("not a WAV file (no RIFF/WAVE header); upload an uncompressed PCM .wav")
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels = wav.getnchannels()
            rate = wav.getframerate()
            width = wav.getsampwidth()
            declared = wav.getnframes()
            frames = len(wav.readframes(declared)) // max(1, channels * width)
    except (wave.Error, EOFError, ValueError, OverflowError) as exc:
        raise ClipError(f"not a playable WAV file: {exc}; upload uncompressed PCM") from exc
    if not 1 <= channels <= 8 or not 1 <= width <= 4 or not 4000 <= rate <= 192_000:
        raise ClipError(
            f"unsupported WAV format ({channels} channels, {width * 8} bit, {rate} Hz); "
            "use 1-8 channels, 8-32 bit, 4-192 kHz"
        )
    if frames == 0:
        raise ClipError("the WAV file holds no audio")
    if frames > MAX_CLIP_SECONDS * rate:
        raise ClipError(
            f"the clip lasts {frames / rate:.1f} s; at most {MAX_CLIP_SECONDS} s are allowed"
        )
    return channels, rate, width, frames


class ClipLibrary:
    """The WAV clips stored in ``directory`` (created on first upload)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        return self.directory / f"{check_name(name)}{_SUFFIX}"

    def _load(self, path: Path) -> Clip | None:
        try:
            data = path.read_bytes()
            channels, rate, width, frames = inspect(data)
        except (OSError, ClipError):
            return None  # removed meanwhile, or not ours: not listed, not playable
        return Clip(path.stem, path, len(data), channels, rate, width, frames)

    def list(self) -> list[Clip]:
        if not self.directory.is_dir():
            return []
        clips = (self._load(p) for p in sorted(self.directory.glob(f"*{_SUFFIX}")))
        return [c for c in clips if c is not None and NAME_PATTERN.match(c.name)]

    def get(self, name: str) -> Clip:
        path = self._path(name)
        clip = self._load(path) if path.is_file() else None
        if clip is None:
            raise NotFound(f"no audio clip named {check_name(name)!r}")
        return clip

    def add(self, name: str, data: bytes) -> Clip:
        """Validate and store ``data`` as clip ``name`` (replacing one of that name)."""
        path = self._path(name)
        channels, rate, width, frames = inspect(data)
        if not path.exists() and len(self.list()) >= MAX_CLIPS:
            raise ClipError(f"the library holds {MAX_CLIPS} clips; delete one first")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_bytes(path, data, mode=0o600)
        return Clip(path.stem, path, len(data), channels, rate, width, frames)

    def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise NotFound(f"no audio clip named {check_name(name)!r}") from None
