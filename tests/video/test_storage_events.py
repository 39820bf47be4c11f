"""Storage states as device events and rule conditions, on a manual clock: a full or failed
volume drives a rule, retention runs on the device's clock, config edits re-check at once."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import camio.actions  # noqa: F401  (registers the action kinds)
from camio.core.clock import ManualClock
from camio.core.config import DeviceConfig
from camio.core.events import Cause, Event, EventKind, Topic
from camio.engine.device import Device
from camio.hardware.sim import SimDriver
from camio.video import VIDEO, VideoService
from camio.video.storage import MB

USER = Cause("api", user="tester")


def build(
    tmp_path: Path, storage: dict[str, Any], rules: list[dict[str, Any]]
) -> tuple[Device, VideoService, ManualClock, list[Event]]:
    config = DeviceConfig.model_validate(
        {"storage": storage, "rules": rules, "outputs": [{"id": "out1", "name": "Warning"}]}
    )
    clock = ManualClock()
    device = Device(config, driver=SimDriver(), clock=clock)
    events: list[Event] = []
    device.bus.subscribe(events.append)
    video = VideoService(device, tmp_path / "data", enabled=False)
    device.services.set(VIDEO, video)
    device.start()
    video.start()
    return device, video, clock, events


def changes(events: list[Event], topic: str) -> list[tuple[str, bool]]:
    return [
        (e.source, bool(e.data["active"]))
        for e in events
        if e.topic == topic and e.kind is not EventKind.INITIALIZED
    ]


WARN_WHEN_FULL = {
    "id": "full",
    "name": "storage full warning",
    "conditions": [{"kind": "storage", "volume": "local", "state": "full"}],
    "action_mode": "while_active",
    "action": {"kind": "set_output", "port": "out1"},
}


async def test_a_full_volume_is_an_event_and_drives_a_rule(tmp_path: Path) -> None:
    huge = shutil.disk_usage(tmp_path).free // MB + 4096
    device, video, _, events = build(tmp_path, {"min_free_mb": huge}, [WARN_WHEN_FULL])
    assert video.media.states["local"].state == "full"
    assert changes(events, Topic.STORAGE_FULL) == [("local", True)]
    assert device.port_status("out1")["active"] is True

    def edit(data: dict[str, Any]) -> None:
        data["storage"]["min_free_mb"] = 1

    device.edit_config(edit)
    assert changes(events, Topic.STORAGE_FULL) == [("local", True), ("local", False)]
    assert device.port_status("out1")["active"] is False
    # a new subscriber learns the current state first
    seen: list[Event] = []
    device.subscribe(seen.append)
    initial = {(e.topic, e.source): e.data["active"] for e in seen if e.topic.startswith("storage")}
    assert initial == {("storage/full", "local"): False, ("storage/failure", "local"): False}
    video_state = [e for e in seen if e.topic == Topic.VIDEO_SOURCE]
    assert video_state[0].data == {"state": "off", "active": False}


async def test_a_missing_share_is_a_failure_until_it_appears(tmp_path: Path) -> None:
    share = tmp_path / "nas"
    rule = {
        "id": "nas",
        "name": "NAS down",
        "conditions": [{"kind": "storage", "volume": "share", "state": "failure"}],
        "action_mode": "while_active",
        "action": {"kind": "set_output", "port": "out1"},
    }
    storage = {"share_path": str(share), "share_must_be_mounted": False}
    device, video, clock, events = build(tmp_path, storage, [rule])
    assert changes(events, Topic.STORAGE_FAILURE) == [("share", True)]
    assert device.port_status("out1")["active"] is True
    assert "does not exist" in video.storage_status()[1]["error"]
    share.mkdir()
    clock.advance(59_000)
    assert device.port_status("out1")["active"] is True  # the periodic check is once a minute
    clock.advance(1_000)
    assert changes(events, Topic.STORAGE_FAILURE) == [("share", True), ("share", False)]
    assert device.port_status("out1")["active"] is False


async def test_periodic_retention_runs_on_the_device_clock(tmp_path: Path) -> None:
    device, video, clock, events = build(tmp_path, {"max_used_mb": 2, "max_age_days": 0}, [])
    media = tmp_path / "data" / "media" / "recordings" / "2026-01-01"
    media.mkdir(parents=True)
    names = [f"20260101T00000{n}.000Z_r.mp4" for n in range(4)]
    for name in names:
        (media / name).write_bytes(b"x" * MB)
    clock.advance(60_000)
    assert sorted(p.name for p in media.iterdir()) == names[2:]
    assert video.media.states["local"].deleted == 2
    assert changes(events, Topic.STORAGE_FULL) == []  # room was made: never full
    del device
