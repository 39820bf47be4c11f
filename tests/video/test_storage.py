"""The media store on real directories: names, listing, retention by age and space, full and
failure states, and ids that never reach outside the volume."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from camio.core.clock import NS_PER_S
from camio.core.media import StorageConfig
from camio.engine.errors import InvalidRequest, NotFound
from camio.video.storage import MB, MediaStore, StorageError, media_time

T0 = 1_795_000_000 * NS_PER_S  # 2026-11-18T...Z


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def make_store(tmp_path: Path, **config: object) -> tuple[MediaStore, Clock]:
    clock = Clock()
    store = MediaStore(StorageConfig.model_validate(config), tmp_path / "media", clock)
    return store, clock


def plant(root: Path, kind: str, wall_ns: int, size: int = 1000, label: str = "r1") -> Path:
    """A media file as the store would have named it at ``wall_ns``."""
    name = f"{media_time(wall_ns)}_{label}.{'mp4' if kind == 'recordings' else 'jpg'}"
    import datetime as dt

    day = dt.datetime.fromtimestamp(wall_ns / 1e9, dt.UTC).strftime("%Y-%m-%d")
    path = root / kind / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


def test_allocate_names_sort_in_time_and_list_newest_first(tmp_path: Path) -> None:
    store, clock = make_store(tmp_path)
    paths = []
    for n in range(3):
        clock.now = T0 + n * NS_PER_S
        path = store.allocate("local", "snapshots", "rule 1/../x", ".jpg", 1000)
        path.write_bytes(b"jpeg")
        paths.append(path)
    assert paths[0].name.endswith("_rule-1-..-x.jpg") is False  # no dots or slashes
    assert "/" not in paths[0].name and ".." not in paths[0].name.removesuffix(".jpg")
    assert [p.name for p in paths] == sorted(p.name for p in paths)
    items = store.items()
    assert [i.name for i in items] == [p.name for p in reversed(paths)]
    assert items[0].id == f"local/snapshots/{paths[2].parent.name}/{paths[2].name}"
    assert items[0].content_type == "image/jpeg" and items[0].size == 4
    assert items[0].time.startswith("2026-") and items[0].time.endswith("Z")
    # the same instant twice: a second, distinct name
    again = store.allocate("local", "snapshots", "rule 1/../x", ".jpg", 1000)
    assert again != paths[2] and not again.exists()


def test_listing_filters_and_pages(tmp_path: Path) -> None:
    store, _ = make_store(tmp_path)
    root = tmp_path / "media"
    for n in range(5):
        plant(root, "snapshots", T0 + n * NS_PER_S)
        plant(root, "recordings", T0 + n * NS_PER_S + NS_PER_S // 2)
    assert len(store.items()) == 10
    recs = store.items(kind="recordings")
    assert len(recs) == 5 and all(i.name.endswith(".mp4") for i in recs)
    first = store.items(limit=4)
    rest = store.items(limit=100, before=first[-1].name)
    assert [i.id for i in first + rest] == [i.id for i in store.items()]
    with pytest.raises(InvalidRequest):
        store.items(kind="movies")
    with pytest.raises(NotFound):
        store.items(volume="share")
    # files that are not media (a README, a partial recording) are never listed
    (root / "snapshots" / "notes.txt").write_text("x")
    day = recs[0].id.split("/")[2]
    (root / "recordings" / day / (recs[0].name + ".part")).write_bytes(b"x")
    assert len(store.items()) == 10


def test_retention_by_age(tmp_path: Path) -> None:
    store, clock = make_store(tmp_path, max_age_days=2)
    root = tmp_path / "media"
    old = plant(root, "recordings", T0 - 3 * 86_400 * NS_PER_S)
    young = plant(root, "snapshots", T0 - 86_400 * NS_PER_S)
    store.sweep()
    assert not old.exists() and not old.parent.exists()  # the empty day folder goes too
    assert young.exists()
    assert store.states["local"].deleted == 1
    clock.now += 2 * 86_400 * NS_PER_S
    store.sweep()
    assert not young.exists()


def test_retention_by_space_deletes_oldest_first(tmp_path: Path) -> None:
    store, _ = make_store(tmp_path, max_used_mb=3, max_age_days=0)
    root = tmp_path / "media"
    files = [plant(root, "recordings", T0 + n * NS_PER_S, size=MB) for n in range(3)]
    store.allocate("local", "snapshots", "r", ".jpg", MB)
    assert not files[0].exists() and files[1].exists() and files[2].exists()
    assert store.states["local"].state == "ok"


def test_full_when_nothing_is_left_to_delete_and_back_when_room(tmp_path: Path) -> None:
    free_mb = shutil.disk_usage(tmp_path).free // MB
    store, _ = make_store(tmp_path, min_free_mb=free_mb + 1024)
    kept = plant(tmp_path / "media", "snapshots", T0)
    with pytest.raises(StorageError) as raised:
        store.allocate("local", "snapshots", "r", ".jpg", 1000)
    assert raised.value.state == "full"
    assert "keeping" in str(raised.value) and "MB free" in str(raised.value)
    state = store.states["local"]
    # deleting it would not have made room (the disk is full of something else): kept
    assert state.state == "full" and kept.exists()
    assert list((tmp_path / "media" / "snapshots").glob("*/*.jpg")) == [kept]
    store.configure(StorageConfig(min_free_mb=1))
    assert store.states["local"].state == "ok"
    store.allocate("local", "snapshots", "r", ".jpg", 1000)


def test_failures_name_the_problem(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    store, _ = make_store(tmp_path, local_path=str(blocker))
    assert store.states["local"].state == "failure"
    with pytest.raises(StorageError) as raised:
        store.allocate("local", "recordings", "r", ".mp4", 1000)
    assert raised.value.state == "failure" and "a-file" in str(raised.value)

    missing = tmp_path / "nas"
    store, _ = make_store(tmp_path, share_path=str(missing))
    assert store.states["share"].state == "failure"
    assert "is the share mounted" in (store.states["share"].error or "")
    missing.mkdir()
    store.sweep()
    assert store.states["share"].state == "failure"  # a plain directory: not mounted
    assert "not a mount point" in (store.states["share"].error or "")
    store.configure(StorageConfig(share_path=str(missing), share_must_be_mounted=False))
    assert store.states["share"].state == "ok"
    path = store.allocate("share", "snapshots", "r", ".jpg", 1000)
    assert path.is_relative_to(missing)
    assert store.states["local"].state == "ok"


@pytest.mark.parametrize(
    "item_id",
    [
        "local/snapshots/../../etc/passwd",
        "local/../media/snapshots/2026-11-18/x.jpg",
        "local/snapshots/2026-11-18/..",
        "local/snapshots/2026-11-18/20261118T000000.000Z_r1.jpg/..",
        "share/snapshots/2026-11-18/20261118T000000.000Z_r1.jpg",
        "local/config/2026-11-18/20261118T000000.000Z_r1.jpg",
        "local/snapshots/2026-11-18/20261118T000000.000Z_r1.jpg.part",
        "",
    ],
)
def test_resolve_never_leaves_the_volume(tmp_path: Path, item_id: str) -> None:
    store, _ = make_store(tmp_path)
    with pytest.raises(NotFound):
        store.resolve(item_id)


def test_resolve_and_delete(tmp_path: Path) -> None:
    store, _ = make_store(tmp_path)
    path = plant(tmp_path / "media", "snapshots", T0)
    (item,) = store.items()
    assert store.resolve(item.id) == item
    assert store.path(item) == path
    store.delete(item.id)
    assert not path.exists()
    with pytest.raises(NotFound):
        store.delete(item.id)


def test_partials_of_a_crash_are_removed(tmp_path: Path) -> None:
    store, _ = make_store(tmp_path)
    kept = plant(tmp_path / "media", "recordings", T0)
    part = kept.with_name(kept.name.replace(".mp4", "-2.mp4.part"))
    part.write_bytes(b"half")
    hidden = kept.with_name(".snap.tmp")
    hidden.write_bytes(b"half")
    assert store.remove_partials() == 2
    assert kept.exists() and not part.exists() and not hidden.exists()
    assert os.listdir(kept.parent) == [kept.name]
