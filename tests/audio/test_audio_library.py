"""The clip library: WAV validation with the standard ``wave`` module, names, limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from audio_helpers import wav_bytes

from camio.audio.library import (
    MAX_CLIP_BYTES,
    MAX_CLIPS,
    ClipError,
    ClipLibrary,
    ClipTooLarge,
    check_name,
)
from camio.engine.errors import NotFound


def test_a_wav_is_stored_listed_and_deleted(tmp_path: Path) -> None:
    library = ClipLibrary(tmp_path / "clips")
    assert library.list() == []
    clip = library.add("door-bell", wav_bytes(1.5, rate=16000, channels=2))
    assert (tmp_path / "clips" / "door-bell.wav").is_file()
    assert clip.to_dict() == {
        "name": "door-bell",
        "size": clip.size,
        "channels": 2,
        "sample_rate": 16000,
        "sample_bits": 16,
        "duration_s": 1.5,
    }
    assert [c.name for c in library.list()] == ["door-bell"]
    assert library.get("door-bell.wav").duration_ns == 1_500_000_000
    library.delete("door-bell")
    assert library.list() == []
    with pytest.raises(NotFound):
        library.delete("door-bell")
    with pytest.raises(NotFound):
        library.get("door-bell")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a WAV"),
        (b"ID3\x03" + bytes(100), "not a WAV"),
        (b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(20), "not a playable WAV"),
        (wav_bytes(1.0)[:30], "not a playable WAV"),
        (wav_bytes(0.0), "no audio"),
        (wav_bytes(301, rate=4000, width=1), "at most 300 s"),
        (wav_bytes(0.1, rate=1000), "unsupported WAV format"),
    ],
)
def test_anything_but_a_playable_pcm_wav_is_refused(
    tmp_path: Path, data: bytes, message: str
) -> None:
    library = ClipLibrary(tmp_path / "clips")
    with pytest.raises(ClipError, match=message):
        library.add("x", data)
    assert library.list() == []


def test_size_and_count_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    library = ClipLibrary(tmp_path / "clips")
    with pytest.raises(ClipTooLarge):
        library.add("big", b"RIFF" + bytes(MAX_CLIP_BYTES))
    monkeypatch.setattr("camio.audio.library.MAX_CLIPS", 2)
    library.add("a", wav_bytes(0.1))
    library.add("b", wav_bytes(0.1))
    library.add("a", wav_bytes(0.2))  # replacing one is not one more
    with pytest.raises(ClipError, match="holds 2 clips"):
        library.add("c", wav_bytes(0.1))
    assert MAX_CLIPS >= 2


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 64, "a..b", "é"])
def test_names_cannot_leave_the_directory(name: str) -> None:
    with pytest.raises(ClipError):
        check_name(name)


def test_a_file_that_stopped_being_a_wav_is_not_listed(tmp_path: Path) -> None:
    library = ClipLibrary(tmp_path / "clips")
    library.add("ok", wav_bytes(0.1))
    (tmp_path / "clips" / "bad.wav").write_bytes(b"not audio")
    assert [c.name for c in library.list()] == ["ok"]
    with pytest.raises(NotFound):
        library.get("bad")
