"""Where recordings and snapshots live: the local volume (the SD card) and a network share.

The file system is the index: ``<root>/<kind>/<YYYY-MM-DD>/<time>_<label>.<ext>``, with the UTC
time first so names sort in time order, and a media id is that path relative to the volume,
prefixed by the volume's name. Whatever removes files behind camio's back (an admin, a NAS
cleanup job) simply stops being listed; nothing has to be kept in step.

Retention runs before every new file and periodically: media older than ``max_age_days`` goes,
then the oldest media until the volume has ``min_free_mb`` free (plus the size of the file about
to be written) and camio uses at most ``max_used_mb``. When nothing is left to delete the volume
is **full** and new files are refused, so the disk never fills to the last byte. A volume that
is missing, read-only or (for the share) not mounted is in **failure**.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from camio.core.media import StorageConfig
from camio.engine.errors import InvalidRequest, NotFound

VolumeName = Literal["local", "share"]
VOLUMES: tuple[VolumeName, ...] = ("local", "share")
KINDS = ("recordings", "snapshots")
CONTENT_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg"}
MB = 1024 * 1024

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAME = re.compile(r"^\d{8}T\d{6}\.\d{3}Z(?:_[A-Za-z0-9_-]{1,100})?\.(?:mp4|jpg)$")
_LABEL = re.compile(r"[^A-Za-z0-9_-]+")


class StorageError(Exception):
    """No file can be written to the volume now; ``state`` says why (full or failure)."""

    def __init__(self, message: str, state: Literal["full", "failure"]) -> None:
        super().__init__(message)
        self.state = state


@dataclass(frozen=True, slots=True)
class MediaItem:
    """One recording or snapshot on a volume."""

    id: str  # "<volume>/<kind>/<day>/<name>": also its download path
    volume: str
    kind: str
    name: str
    size: int
    time: str  # ISO 8601 UTC of the moment it shows (from the name)

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[os.path.splitext(self.name)[1]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "volume": self.volume,
            "kind": self.kind.rstrip("s"),
            "name": self.name,
            "size": self.size,
            "time": self.time,
            "content_type": self.content_type,
        }


@dataclass(slots=True)
class VolumeState:
    """What a volume looks like now: ``ok``, ``full`` or ``failure``, and its numbers."""

    name: str
    path: str
    state: Literal["ok", "full", "failure"] = "ok"
    error: str | None = None
    total_bytes: int = 0
    free_bytes: int = 0
    used_bytes: int = 0  # by camio's media
    files: int = 0
    deleted: int = field(default=0)  # by retention since the daemon started

    def to_dict(self) -> dict[str, Any]:
        return {
            "volume": self.name,
            "path": self.path,
            "state": self.state,
            "error": self.error,
            "total_bytes": self.total_bytes,
            "free_bytes": self.free_bytes,
            "used_bytes": self.used_bytes,
            "files": self.files,
            "deleted_by_retention": self.deleted,
        }


def media_time(wall_ns: int) -> str:
    """``20261122T031500.123Z``: the sortable time at the start of a media name."""
    stamp = dt.datetime.fromtimestamp(wall_ns / 1e9, dt.UTC)
    return stamp.strftime("%Y%m%dT%H%M%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _iso_of(name: str) -> str:
    t = name[:19]
    return f"{t[0:4]}-{t[4:6]}-{t[6:8]}T{t[9:11]}:{t[11:13]}:{t[13:15]}.{t[16:19]}Z"


def clean_label(label: str) -> str:
    """A rule id or other text made safe for a file name (letters, digits, ``_``, ``-``)."""
    return _LABEL.sub("-", label).strip("-")[:100]


class MediaStore:
    """The volumes, their retention, and the media on them."""

    def __init__(
        self, config: StorageConfig, default_local: Path, wall_ns: Callable[[], int]
    ) -> None:
        self._default_local = default_local
        self._wall_ns = wall_ns
        self.states: dict[str, VolumeState] = {}
        self.config = config
        self.configure(config)

    def configure(self, config: StorageConfig) -> None:
        """Apply a new storage configuration (the volumes' states are re-checked)."""
        self.config = config
        roots = self.roots()
        old = self.states
        self.states = {
            name: VolumeState(name, str(root), deleted=old[name].deleted if name in old else 0)
            for name, root in roots.items()
        }
        self.sweep()

    def roots(self) -> dict[str, Path]:
        roots: dict[str, Path] = {
            "local": Path(self.config.local_path) if self.config.local_path else self._default_local
        }
        if self.config.share_path:
            roots["share"] = Path(self.config.share_path)
        return roots

    def root(self, volume: str) -> Path:
        roots = self.roots()
        if volume not in roots:
            raise NotFound(f"no storage volume {volume!r} (configure storage.share_path)")
        return roots[volume]

    # -- health ------------------------------------------------------------------------------

    def check(self, volume: str) -> VolumeState:
        """Refresh a volume's state: reachable and writable, then its space."""
        state = self.states[volume]
        root = self.root(volume)
        try:
            if volume == "local":
                root.mkdir(parents=True, exist_ok=True)
            elif not root.is_dir():
                raise OSError(f"{root} does not exist (is the share mounted?)")
            elif self.config.share_must_be_mounted and not os.path.ismount(root):
                raise OSError(f"{root} is not a mount point (is the share mounted?)")
            if not os.access(root, os.W_OK | os.X_OK):
                raise OSError(f"{root} is not writable")
            usage = shutil.disk_usage(root)
        except OSError as exc:
            state.state, state.error = "failure", _message(exc)
            return state
        state.total_bytes, state.free_bytes = usage.total, usage.free
        state.used_bytes, state.files = self._usage(root)
        if state.state == "failure":
            state.state, state.error = "ok", None
        if state.state == "full" and self._room(state, 0):
            state.state, state.error = "ok", None
        return state

    def _usage(self, root: Path) -> tuple[int, int]:
        used = files = 0
        for path in self._files(root):
            with contextlib.suppress(OSError):
                used += path.stat().st_size
                files += 1
        return used, files

    def _room(self, state: VolumeState, need: int) -> bool:
        cfg = self.config
        if state.free_bytes - need < cfg.min_free_mb * MB:
            return False
        return cfg.max_used_mb is None or state.used_bytes + need <= cfg.max_used_mb * MB

    # -- writing -----------------------------------------------------------------------------

    def allocate(self, volume: str, kind: str, label: str, ext: str, expected_bytes: int) -> Path:
        """A new file name for media about to be written, after retention made room for
        ``expected_bytes``; :class:`StorageError` when the volume is full or failed."""
        if kind not in KINDS:
            raise ValueError(f"unknown media kind {kind!r}")
        state = self.states.get(volume)
        if state is None:
            raise StorageError(f"no storage volume {volume!r}", "failure")
        self.check(volume)
        if state.state == "failure":
            raise StorageError(f"storage {volume}: {state.error}", "failure")
        self.enforce(volume, expected_bytes)
        if state.state == "full":
            raise StorageError(f"storage {volume}: {state.error}", "full")
        wall = self._wall_ns()
        day = dt.datetime.fromtimestamp(wall / 1e9, dt.UTC).strftime("%Y-%m-%d")
        folder = self.root(volume) / kind / day
        label = clean_label(label)
        stem = media_time(wall) + (f"_{label}" if label else "")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            state.state, state.error = "failure", _message(exc)
            raise StorageError(f"storage {volume}: {state.error}", "failure") from None
        path = folder / f"{stem}{ext}"
        n = 1
        while path.exists() or path.with_name(path.name + ".part").exists():
            n += 1
            path = folder / f"{stem}-{n}{ext}"
        return path

    def enforce(self, volume: str, need: int = 0) -> int:
        """Retention on one volume: by age, then oldest first until there is room for
        ``need`` more bytes. Returns how many files went; sets ``full`` when not enough could."""
        state = self.states[volume]
        if state.state == "failure":
            return 0
        root = self.root(volume)
        cfg = self.config
        deleted = 0
        cutoff = None
        if cfg.max_age_days:
            cutoff = media_time(self._wall_ns() - cfg.max_age_days * 86_400 * 10**9)
        # When even deleting every file would not leave min_free_mb (the disk is full of
        # something else), only expired media goes: wiping the evidence would not help.
        reachable = state.free_bytes + state.used_bytes - need >= cfg.min_free_mb * MB
        for path in self._files(root, oldest_first=True):
            old = cutoff is not None and path.name < cutoff
            if not old and (not reachable or self._room(state, need)):
                break
            try:
                size = path.stat().st_size
                path.unlink()
            except OSError:
                continue
            deleted += 1
            state.used_bytes -= size
            state.free_bytes += size
            state.files -= 1
            _remove_empty(path.parent)
        state.deleted += deleted
        if deleted:
            with contextlib.suppress(OSError):
                state.free_bytes = shutil.disk_usage(root).free
        if self._room(state, need):
            if state.state == "full":
                state.state, state.error = "ok", None
        else:
            free_mb = state.free_bytes // MB
            state.state = "full"
            state.error = (
                f"full: {free_mb} MB free, {state.used_bytes // MB} MB of media; keeping "
                f"{cfg.min_free_mb} MB free"
                + (f", at most {cfg.max_used_mb} MB of media" if cfg.max_used_mb else "")
            )
        return deleted

    def sweep(self) -> dict[str, VolumeState]:
        """Periodic check and retention of every volume."""
        for volume in self.states:
            self.check(volume)
            self.enforce(volume)
        return self.states

    # -- reading -----------------------------------------------------------------------------

    def _files(self, root: Path, *, oldest_first: bool = False) -> Iterator[Path]:
        """Media files on a volume, newest first (or oldest first), by name across kinds."""
        paths: list[Path] = []
        for kind in KINDS:
            folder = root / kind
            try:
                days = [d for d in os.listdir(folder) if _DAY.match(d)]
            except OSError:
                continue
            for day in days:
                try:
                    names = os.listdir(folder / day)
                except OSError:
                    continue
                paths += [folder / day / n for n in names if _NAME.match(n)]
        paths.sort(key=lambda p: (p.parent.name, p.name), reverse=not oldest_first)
        return iter(paths)

    def items(
        self,
        *,
        kind: str | None = None,
        volume: str | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> list[MediaItem]:
        """Media newest first; ``before`` (an item's time, ``20261122T031500.123Z``) pages."""
        if kind is not None and kind not in KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(k[:-1] for k in KINDS)}")
        volumes = [volume] if volume is not None else list(self.states)
        out: list[MediaItem] = []
        for name in volumes:
            if name not in self.states:
                raise NotFound(f"no storage volume {name!r}")
            root = self.root(name)
            for path in self._files(root):
                if kind is not None and path.parent.parent.name != kind:
                    continue
                if before is not None and path.name >= before:
                    continue
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                rel = path.relative_to(root).as_posix()
                out.append(
                    MediaItem(
                        id=f"{name}/{rel}",
                        volume=name,
                        kind=path.parent.parent.name,
                        name=path.name,
                        size=size,
                        time=_iso_of(path.name),
                    )
                )
                if len(out) >= limit and volume is not None:
                    break
        out.sort(key=lambda item: item.name, reverse=True)
        return out[:limit]

    def resolve(self, item_id: str) -> MediaItem:
        """The item with this id; NotFound for anything else (never a path outside media)."""
        parts = item_id.split("/")
        if (
            len(parts) != 4
            or parts[0] not in self.states
            or parts[1] not in KINDS
            or not _DAY.match(parts[2])
            or not _NAME.match(parts[3])
        ):
            raise NotFound(f"no media {item_id!r}")
        path = self.root(parts[0]).joinpath(*parts[1:])
        try:
            size = path.stat().st_size
        except OSError:
            raise NotFound(f"no media {item_id!r}") from None
        return MediaItem(item_id, parts[0], parts[1], parts[3], size, _iso_of(parts[3]))

    def path(self, item: MediaItem) -> Path:
        return self.root(item.volume) / item.kind / item.id.split("/")[2] / item.name

    def delete(self, item_id: str) -> None:
        item = self.resolve(item_id)
        path = self.path(item)
        try:
            path.unlink()
        except FileNotFoundError:
            raise NotFound(f"no media {item_id!r}") from None
        state = self.states[item.volume]
        state.used_bytes = max(0, state.used_bytes - item.size)
        state.files = max(0, state.files - 1)
        _remove_empty(path.parent)

    def remove_partials(self) -> int:
        """Delete what a crash left half-written (``*.part``, temporary snapshots)."""
        removed = 0
        for name in self.states:
            root = self.root(name)
            for kind in KINDS:
                for path in root.glob(f"{kind}/*/*"):
                    if path.name.endswith((".part", ".tmp")) or path.name.startswith("."):
                        with contextlib.suppress(OSError):
                            path.unlink()
                            removed += 1
        return removed


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()  # only succeeds when empty


def _message(exc: OSError) -> str:
    if exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return exc.strerror or str(exc)
