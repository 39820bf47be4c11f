"""atomic_write_bytes: the target holds the old or the new bytes, never a torn file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from camio.store.atomic import atomic_write_bytes


def test_creates_file_with_private_mode(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    atomic_write_bytes(target, b"secret")
    assert target.read_bytes() == b"secret"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["key.pem"]


def test_replaces_existing_file_and_applies_mode(tmp_path: Path) -> None:
    target = tmp_path / "config.yaml"
    target.write_bytes(b"old")
    atomic_write_bytes(target, b"new", mode=0o644)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_failed_rename_keeps_old_content_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "config.yaml"
    target.write_bytes(b"old content")

    def dying_replace(src: object, dst: object) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", dying_replace)
    with pytest.raises(OSError, match="simulated crash"):
        atomic_write_bytes(target, b"new content that must not appear")
    assert target.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == ["config.yaml"]


def test_failed_fsync_keeps_old_content_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "config.yaml"
    target.write_bytes(b"old content")

    def failing_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == ["config.yaml"]
