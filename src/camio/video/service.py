"""The device's video as a service: supervises the worker process, keeps the source state and
the overlay text, takes snapshots and runs recordings into the media store, and turns all of it
into device events (``video/source``, ``storage/full``, ``storage/failure``, ``media/*``).

Found by actions and the API under :data:`VIDEO` in the device's service registry. The worker
is restarted with backoff when it dies; a recording it was writing is reported failed (its
rule's fallback runs) and its partial file removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camio.core.clock import NS_PER_S, Timer
from camio.core.events import Cause, Event, Topic
from camio.core.media import StorageConfig, VideoConfig
from camio.engine.services import ServiceKey
from camio.video.link import VideoError, WorkerLink
from camio.video.storage import MediaItem, MediaStore, StorageError, VolumeState

if TYPE_CHECKING:
    from camio.engine.device import Device

_LOGGER = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 60
RESTART_MAX_S = 30
SNAPSHOT_BYTES = 512 * 1024  # room asked of the volume before a snapshot
ASSUMED_BITRATE = 8_000_000  # room asked for a recording whose source bitrate is unknown

RecordingDone = Callable[["RecordingResult"], None]


@dataclass(frozen=True, slots=True)
class Snapshot:
    data: bytes
    item: MediaItem | None  # where it was saved, if it was
    source_time: float
    frame: int | None


@dataclass(frozen=True, slots=True)
class RecordingResult:
    record_id: str
    ok: bool
    item: MediaItem | None = None
    error: str | None = None
    duration_s: float = 0.0


@dataclass(slots=True)
class _Recording:
    record_id: str
    volume: str
    path: Path
    label: str
    on_done: RecordingDone | None
    cause: Cause | None


class VideoService:
    """The video source, recordings, snapshots and media storage of one device."""

    def __init__(
        self,
        device: Device,
        data_dir: Path,
        *,
        enabled: bool = True,
        python: str = sys.executable,
    ) -> None:
        self._device = device
        self._data_dir = data_dir
        self._python = python
        self._allowed = enabled  # False: --no-video (storage still works)
        self.config: VideoConfig = device.config.video
        self._storage_config: StorageConfig = device.config.storage
        self.media = MediaStore(self._storage_config, data_dir / "media", device.clock.wall_ns)
        self.state = "off"
        self.error: str | None = None
        self.source_info: dict[str, Any] = {}
        self.overlay: str | None = None
        self.worker_restarts = 0
        self._link: WorkerLink | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._recordings: dict[str, _Recording] = {}
        self._published: dict[tuple[str, str], bool] = {}
        self._sweep_timer: Timer | None = None
        self._closing = False
        self._ready = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        device = self._device
        device.register_state("video_lost", lambda _: self.state == "lost")
        device.register_state("storage_full", lambda v: self._volume_is(v, "full"))
        device.register_state("storage_failure", lambda v: self._volume_is(v, "failure"))
        device.add_state_source(self._state_events)
        device.subscribe(self._on_device_event, replay_state=False)
        removed = self.media.remove_partials()
        if removed:
            _LOGGER.info("removed %d half-written media files left by a crash", removed)
        self._publish_storage()
        self._schedule_sweep()
        self._start_worker()

    @property
    def enabled(self) -> bool:
        return self._allowed and self.config.enabled

    def _start_worker(self) -> None:
        if not self.enabled or self._supervisor is not None or self._closing:
            return
        self._set_state("connecting", None)
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def close(self) -> None:
        """Finish running recordings (their files complete) and stop the worker."""
        self._closing = True
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
        await self._stop_worker()

    async def _stop_worker(self) -> None:
        supervisor, self._supervisor = self._supervisor, None
        link = self._link
        if link is not None:
            await link.close()
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        self._link = None
        self._ready.clear()

    async def _supervise(self) -> None:
        delay = 1.0
        loop = asyncio.get_running_loop()
        while not self._closing:
            link = WorkerLink(self._on_worker_event)
            started = loop.time()
            try:
                await link.start(self._python)
                self._link = link
                await link.request("open", **self._open_fields())
                if self.overlay is not None:
                    await link.request("overlay", text=self.overlay)
                self._ready.set()
            except (OSError, VideoError) as exc:
                _LOGGER.error("video worker failed to start: %s", exc)
                link.kill()
            code = await link.wait()
            self._ready.clear()
            self._link = None
            if self._closing:
                return
            self.worker_restarts += 1
            self._fail_recordings(f"the video worker stopped (exit code {code})")
            self._set_state("lost", f"the video worker stopped (exit code {code}); restarting")
            if loop.time() - started > 60:
                delay = 1.0
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_S)
            self._set_state("connecting", self.error)

    def _open_fields(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "source": cfg.source,
            "options": dict(cfg.options),
            "pre_buffer_s": cfg.pre_buffer_s,
            "test_pattern": cfg.test_pattern.model_dump(),
            "snapshot_quality": cfg.snapshot_quality,
            "max_record_s": cfg.max_record_s,
        }

    async def _link_ready(self) -> WorkerLink:
        if not self.enabled:
            why = "turned off (--no-video)" if not self._allowed else "set to 'none'"
            raise VideoError(f"this device has no video source (video.source is {why})")
        if not self._ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), 5)
        link = self._link
        if link is None or not self._ready.is_set():
            raise VideoError("the video worker is not running")
        return link

    # -- configuration -----------------------------------------------------------------------

    def _on_device_event(self, event: Event) -> None:
        if event.topic != Topic.CONFIG_CHANGED:
            return
        cfg = self._device.config
        if cfg.storage != self._storage_config:
            self._storage_config = cfg.storage
            self.media.configure(cfg.storage)
            self._publish_storage()
        if cfg.video != self.config:
            self.config = cfg.video
            self._device.spawn(self._apply_video())

    async def _apply_video(self) -> None:
        if not self.enabled:
            await self._stop_worker()
            self._set_state("off", None)
        elif self._supervisor is None:
            self._start_worker()
        elif self._link is not None:
            # "connecting" first: the worker's answer to "open" and its first source event
            # (lost, or connected) can arrive together, and the event must win.
            self._set_state("connecting", None)
            with contextlib.suppress(VideoError):
                await self._link.request("open", **self._open_fields())

    # -- worker events -----------------------------------------------------------------------

    def _on_worker_event(self, message: dict[str, Any]) -> None:
        kind = message.get("event")
        if kind == "source":
            state = str(message.get("state"))
            keys = ("codec", "width", "height", "fps", "bitrate_bps")
            info: dict[str, Any] = {k: message[k] for k in keys if k in message}
            if state == "connected":
                self.source_info = info
            self._set_state(state, message.get("error"))
        elif kind == "recorded":
            self._recorded(message)

    def _set_state(self, state: str, error: str | None) -> None:
        was_lost = self.state == "lost"
        changed = state != self.state or error != self.error
        self.state, self.error = state, error
        if changed and (state in ("connected", "lost", "off") or was_lost):
            self._device.publish(
                Topic.VIDEO_SOURCE, "video", self._source_data(), cause=Cause("hardware")
            )

    def _source_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"state": self.state, "active": self.state == "lost"}
        if self.error:
            data["error"] = self.error
        if self.state == "connected":
            data.update(self.source_info)
        return data

    def _state_events(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        yield Topic.VIDEO_SOURCE, "video", self._source_data()
        for name, vol in self.media.states.items():
            yield Topic.STORAGE_FULL, name, self._volume_data(vol, "full")
            yield Topic.STORAGE_FAILURE, name, self._volume_data(vol, "failure")

    # -- storage -----------------------------------------------------------------------------

    def _volume_is(self, volume: str, state: str) -> bool:
        vol = self.media.states.get(volume)
        return vol is not None and vol.state == state

    @staticmethod
    def _volume_data(vol: VolumeState, state: str) -> dict[str, Any]:
        data: dict[str, Any] = {"active": vol.state == state, "path": vol.path}
        if vol.state == state and vol.error:
            data["error"] = vol.error
        return data

    def _publish_storage(self) -> None:
        """Publish the storage states that changed (and stop recordings on a full volume)."""
        for name, vol in self.media.states.items():
            for state, topic in (("full", Topic.STORAGE_FULL), ("failure", Topic.STORAGE_FAILURE)):
                active = vol.state == state
                if self._published.get((name, state), False) != active:
                    self._published[(name, state)] = active
                    self._device.publish(topic, name, self._volume_data(vol, state))
            if vol.state != "ok":
                for rec in list(self._recordings.values()):
                    if rec.volume == name:
                        self._device.spawn(self._stop_quietly(rec.record_id))

    async def _stop_quietly(self, record_id: str) -> None:
        with contextlib.suppress(VideoError):
            await self.stop_recording(record_id, 0)

    def _schedule_sweep(self) -> None:
        if self._closing:
            return
        self._sweep_timer = self._device.clock.call_later(SWEEP_INTERVAL_S * NS_PER_S, self._sweep)

    def _sweep(self) -> None:
        self._sweep_timer = None
        try:
            self.media.sweep()
            self._publish_storage()
        except Exception:
            _LOGGER.exception("storage retention failed")
        self._schedule_sweep()

    def sweep_now(self) -> list[dict[str, Any]]:
        """Run retention and health checks now (the API's "check storage")."""
        self.media.sweep()
        self._publish_storage()
        return self.storage_status()

    def storage_status(self) -> list[dict[str, Any]]:
        return [vol.to_dict() for vol in self.media.states.values()]

    def _allocate(self, volume: str, kind: str, label: str, ext: str, size: int) -> Path:
        try:
            return self.media.allocate(volume, kind, label, ext, size)
        except StorageError as exc:
            raise VideoError(str(exc)) from None
        finally:
            self._publish_storage()

    # -- operations --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "source": self.config.redacted_source(),
            "state": self.state,
            "error": self.error,
            **({"stream": self.source_info} if self.state == "connected" else {}),
            "pre_buffer_s": self.config.pre_buffer_s,
            "overlay": self.overlay,
            "recordings": sorted(self._recordings),
            "worker_pid": self._link.pid if self._link is not None else None,
            "worker_restarts": self.worker_restarts,
        }

    async def worker_status(self) -> dict[str, Any]:
        """The worker's own view: ring length, bitrate, stream parameters."""
        reply = await (await self._link_ready()).request("status")
        return {k: v for k, v in reply.items() if k not in ("re", "id", "ok")}

    async def snapshot(
        self,
        *,
        volume: str | None,
        label: str = "",
        overlay: str | None = None,
        cause: Cause | None = None,
    ) -> Snapshot:
        """A JPEG of the newest frame, saved on ``volume`` (or only returned, with None)."""
        link = await self._link_ready()
        if volume is None:
            tmp = self._data_dir / "tmp"
            tmp.mkdir(exist_ok=True, mode=0o700)
            path = tmp / f"snapshot-{uuid.uuid4().hex}.jpg"
        else:
            path = self._allocate(volume, "snapshots", label, ".jpg", SNAPSHOT_BYTES)
        fields: dict[str, Any] = {"path": str(path)}
        if overlay:
            fields["overlay"] = overlay
        reply = await link.request("snapshot", **fields)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise VideoError(f"reading the snapshot failed: {exc.strerror}") from None
        item: MediaItem | None = None
        if volume is None:
            with contextlib.suppress(OSError):
                os.unlink(path)
        else:
            item = self._item(volume, path)
            self._device.publish(
                Topic.MEDIA_SNAPSHOT,
                item.id,
                {"volume": volume, "size": item.size, "name": item.name},
                stateful=False,
                cause=cause,
            )
        frame = reply.get("frame")
        return Snapshot(
            data, item, float(reply.get("source_time") or 0.0), int(frame) if frame else None
        )

    def _item(self, volume: str, path: Path) -> MediaItem:
        rel = path.relative_to(self.media.root(volume)).as_posix()
        return self.media.resolve(f"{volume}/{rel}")

    async def record(
        self,
        *,
        volume: str,
        label: str,
        pre_s: int,
        post_s: int | None,
        on_done: RecordingDone | None = None,
        cause: Cause | None = None,
    ) -> str:
        """Start a recording (``post_s`` None: until :meth:`stop_recording`); returns its id."""
        link = await self._link_ready()
        bitrate = int(self.source_info.get("bitrate_bps") or ASSUMED_BITRATE)
        seconds = pre_s + (post_s if post_s is not None else 60)
        path = self._allocate(volume, "recordings", label, ".mp4", bitrate // 8 * seconds)
        record_id = f"r{uuid.uuid4().hex[:12]}"
        self._recordings[record_id] = _Recording(record_id, volume, path, label, on_done, cause)
        try:
            await link.request(
                "record",
                request_id=record_id,
                path=str(path),
                pre_s=pre_s,
                post_s=post_s,
                max_s=self.config.max_record_s,
            )
        except VideoError:
            self._recordings.pop(record_id, None)
            raise
        return record_id

    def recording(self, record_id: str) -> bool:
        """Whether the recording is still being written."""
        return record_id in self._recordings

    async def extend(self, record_id: str, post_s: int) -> bool:
        """Move the end of a running recording to now + ``post_s``; False if it has ended."""
        if record_id not in self._recordings or self._link is None:
            return False
        try:
            await self._link.request("extend", record_id=record_id, post_s=post_s)
        except VideoError:
            return False
        return True

    async def stop_recording(self, record_id: str, post_s: int) -> None:
        if record_id not in self._recordings or self._link is None:
            return
        await self._link.request("stop", record_id=record_id, post_s=post_s)

    def _recorded(self, message: dict[str, Any]) -> None:
        rec = self._recordings.pop(str(message.get("record_id")), None)
        if rec is None:
            return
        if message.get("ok"):
            try:
                item = self._item(rec.volume, rec.path)
            except Exception as exc:  # the file vanished (retention, an admin)
                result = RecordingResult(rec.record_id, False, error=str(exc))
            else:
                duration = float(message.get("duration_s") or 0.0)
                result = RecordingResult(rec.record_id, True, item, duration_s=duration)
                self._device.publish(
                    Topic.MEDIA_RECORDED,
                    item.id,
                    {
                        "volume": rec.volume,
                        "size": item.size,
                        "name": item.name,
                        "duration_s": round(duration, 3),
                        "frames": message.get("frames"),
                    },
                    stateful=False,
                    cause=rec.cause,
                )
        else:
            error = str(message.get("error") or "recording failed")
            result = RecordingResult(rec.record_id, False, error=error)
        self._publish_storage()
        if rec.on_done is not None:
            rec.on_done(result)

    def _fail_recordings(self, reason: str) -> None:
        recordings, self._recordings = self._recordings, {}
        for rec in recordings.values():
            with contextlib.suppress(OSError):
                rec.path.with_name(rec.path.name + ".part").unlink()
            if rec.on_done is not None:
                rec.on_done(RecordingResult(rec.record_id, False, error=reason))

    def set_overlay(self, text: str | None) -> None:
        """The text snapshots and recordings carry from now on (None clears it)."""
        if text == self.overlay:
            return
        self.overlay = text
        link = self._link
        if link is not None and self._ready.is_set():
            self._device.spawn(self._send_overlay(link, text))

    async def _send_overlay(self, link: WorkerLink, text: str | None) -> None:
        try:
            await link.request("overlay", text=text)
        except VideoError as exc:
            _LOGGER.warning("setting the overlay text failed: %s", exc)


VIDEO: ServiceKey[VideoService] = ServiceKey("video")

__all__ = ["VIDEO", "RecordingResult", "Snapshot", "VideoError", "VideoService"]
