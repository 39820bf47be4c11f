"""WAV files for the audio tests, made with the standard ``wave`` module."""

from __future__ import annotations

import io
import wave


def wav_bytes(
    seconds: float = 1.0, *, rate: int = 8000, channels: int = 1, width: int = 2
) -> bytes:
    """A silent PCM WAV of ``seconds``."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(b"\x00" * int(seconds * rate) * channels * width)
    return buf.getvalue()
