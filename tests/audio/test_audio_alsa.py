"""AlsaPlayer with a stand-in ``aplay`` (a shell script): one process per repetition, killed
to stop, the outcome recorded like the simulator's."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from audio_helpers import wav_bytes

from camio.audio import AlsaPlayer, AudioService, ClipLibrary, Playback, SimPlayer
from camio.audio.player import _AlsaPlayback
from camio.core.clock import SystemClock


def _fake_aplay(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "aplay"
    script.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "calls"}\n{body}\n')
    os.chmod(script, 0o755)
    return script


async def _until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 (a file the fake aplay writes)
            await asyncio.sleep(0.01)


async def _ended(playback: Playback) -> None:
    assert isinstance(playback, _AlsaPlayback)
    async with asyncio.timeout(5):
        await playback.task


async def test_repeat_runs_aplay_that_many_times(tmp_path: Path) -> None:
    library = ClipLibrary(tmp_path / "clips")
    clip = library.add("bell", wav_bytes(0.1))
    player = AlsaPlayer(SystemClock(), str(_fake_aplay(tmp_path, "exit 0")), "hw:1")
    playback = player.play(clip, 3, source="test")
    await _ended(playback)
    [record] = player.history()
    assert record.outcome == "finished" and record.repeat == 3
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == [f"-q -D hw:1 {clip.path}"] * 3


async def test_stop_kills_the_loop_and_a_failure_is_recorded(tmp_path: Path) -> None:
    library = ClipLibrary(tmp_path / "clips")
    clip = library.add("siren", wav_bytes(0.1))
    player = AlsaPlayer(SystemClock(), str(_fake_aplay(tmp_path, "exec sleep 30")))
    playback = player.play(clip, None, source="test")
    await _until(lambda: (tmp_path / "calls").exists())
    playback.cancel()
    assert player.history()[0].outcome == "stopped"
    failing = AlsaPlayer(SystemClock(), str(_fake_aplay(tmp_path, "echo no device >&2; exit 1")))
    playback = failing.play(clip, 1, source="test")
    await _ended(playback)
    assert failing.history()[0].outcome == "failed"


async def test_alsa_falls_back_to_the_simulator_without_aplay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AlsaPlayer, "find", staticmethod(lambda: None))
    service = AudioService.create(tmp_path, SystemClock(), "alsa")
    assert isinstance(service.player, SimPlayer)
    monkeypatch.setattr(AlsaPlayer, "find", staticmethod(lambda: "/usr/bin/aplay"))
    service = AudioService.create(tmp_path, SystemClock(), "alsa:hw:0,0")
    assert isinstance(service.player, AlsaPlayer) and service.player.device == "hw:0,0"
