"""The play_audio action under a ManualClock with the SimPlayer: once, repeat, while active."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from audio_helpers import wav_bytes
from pydantic import ValidationError

import camio.actions  # noqa: F401  (registers the action kinds)
from camio.audio import AUDIO, AudioService, ClipLibrary, SimPlayer
from camio.core.clock import NS_PER_S, ManualClock
from camio.core.config import DeviceConfig
from camio.core.events import Event
from camio.core.ports import Circuit
from camio.engine.device import Device
from camio.hardware.sim import SimDriver

INPUT = {"id": "in1", "name": "Door", "debounce_on_ms": 0, "debounce_off_ms": 0}


def _device(
    tmp_path: Path, action: dict[str, Any], *, mode: str = "once", audio: bool = True
) -> tuple[Device, ManualClock, list[Event]]:
    config = DeviceConfig.model_validate(
        {
            "inputs": [INPUT],
            "rules": [
                {
                    "id": "door",
                    "name": "Door",
                    "conditions": [{"kind": "input", "port": "in1"}],
                    "action": action,
                    "action_mode": mode,
                }
            ],
        }
    )
    clock = ManualClock()
    device = Device(config, driver=SimDriver(), clock=clock)
    if audio:
        library = ClipLibrary(tmp_path / "clips")
        library.add("bell", wav_bytes(2.0))
        library.add("siren", wav_bytes(0.5))
        device.services.set(AUDIO, AudioService(library, SimPlayer(clock)))
    events: list[Event] = []
    device.bus.subscribe(events.append)
    device.start()
    return device, clock, events


def _played(device: Device) -> list[dict[str, Any]]:
    audio = device.services.need(AUDIO)
    return [r.to_dict() for r in audio.played()]


def test_once_plays_the_clip_once(tmp_path: Path) -> None:
    device, clock, _ = _device(tmp_path, {"kind": "play_audio", "clip": "bell"})
    t0 = clock.wall_ns()
    device.sim_set_circuit("in1", Circuit.CLOSED)
    [record] = _played(device)
    assert record["clip"] == "bell" and record["repeat"] == 1 and record["source"] == "rule:door"
    assert record["start_wall_ns"] == t0 and record["outcome"] == "playing"
    clock.advance(1999)
    assert _played(device)[0]["outcome"] == "playing"
    clock.advance(1)
    [record] = _played(device)
    assert record["outcome"] == "finished" and record["stop_wall_ns"] == t0 + 2 * NS_PER_S


def test_repeat_plays_it_that_many_times_in_a_row(tmp_path: Path) -> None:
    device, clock, _ = _device(tmp_path, {"kind": "play_audio", "clip": "bell", "repeat": 3})
    t0 = clock.wall_ns()
    device.sim_set_circuit("in1", Circuit.CLOSED)
    device.sim_set_circuit("in1", Circuit.OPEN)  # a once-rule's clip plays to its end
    clock.advance(5_999)
    assert _played(device)[0]["outcome"] == "playing"
    clock.advance(1)
    [record] = _played(device)
    assert record["repeat"] == 3
    assert (record["outcome"], record["stop_wall_ns"]) == ("finished", t0 + 6 * NS_PER_S)


def test_while_active_loops_until_the_conditions_stop_holding(tmp_path: Path) -> None:
    device, clock, _ = _device(
        tmp_path, {"kind": "play_audio", "clip": "siren"}, mode="while_active"
    )
    t0 = clock.wall_ns()
    device.sim_set_circuit("in1", Circuit.CLOSED)
    clock.advance(60_000)  # 120 times the clip: still playing
    [record] = _played(device)
    assert (record["repeat"], record["outcome"], record["stop_wall_ns"]) == (None, "playing", None)
    device.sim_set_circuit("in1", Circuit.OPEN)
    [record] = _played(device)
    assert record["outcome"] == "stopped"
    assert record["stop_wall_ns"] == t0 + 60 * NS_PER_S
    # Again: a new loop, the old record stays.
    device.sim_set_circuit("in1", Circuit.CLOSED)
    clock.advance(1000)
    device.sim_set_circuit("in1", Circuit.OPEN)
    assert [r["outcome"] for r in _played(device)] == ["stopped", "stopped"]


def test_a_new_clip_stops_the_one_playing(tmp_path: Path) -> None:
    device, clock, _ = _device(tmp_path, {"kind": "play_audio", "clip": "bell", "repeat": 10})
    device.sim_set_circuit("in1", Circuit.CLOSED)
    clock.advance(500)
    device.services.need(AUDIO).play("siren", 1, source="api:admin")
    assert [r["outcome"] for r in _played(device)] == ["stopped", "playing"]
    clock.advance(500)
    assert [r["outcome"] for r in _played(device)] == ["stopped", "finished"]


@pytest.mark.parametrize("audio", [True, False])
def test_a_missing_clip_or_output_fails_the_rule(tmp_path: Path, audio: bool) -> None:
    device, _, events = _device(tmp_path, {"kind": "play_audio", "clip": "nope"}, audio=audio)
    device.sim_set_circuit("in1", Circuit.CLOSED)
    failures = [e for e in events if e.topic == "rule/failed"]
    assert failures, [e.topic for e in events]
    message = str(failures[-1].data)
    assert ("no audio clip named 'nope'" if audio else "no audio output") in message


@pytest.mark.parametrize(
    "action",
    [
        {"kind": "play_audio", "clip": "bell", "repeat": 0},
        {"kind": "play_audio", "clip": "bell", "repeat": 101},
        {"kind": "play_audio", "clip": "../etc/passwd"},
    ],
)
def test_the_action_is_validated(action: dict[str, Any]) -> None:
    rule = {"id": "r", "name": "r", "conditions": [{"kind": "manual_trigger"}], "action": action}
    with pytest.raises(ValidationError, match=r"clip|repeat"):
        DeviceConfig.model_validate({"rules": [rule]})
    DeviceConfig.model_validate(
        {"rules": [{**rule, "action": {**action, "clip": "a", "repeat": 5}}]}
    )
