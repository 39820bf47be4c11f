"""Crash-safe replacement of small files (configuration, keys, certificates).

A plain ``open(path, "w")`` truncates first and writes second: a crash in between leaves an empty
or half-written file, and for a configuration document or a private key that means a device that
no longer starts. Writing a sibling temporary file, making it durable, then renaming it over the
target is atomic on POSIX file systems: after a crash at any point the path holds either the old
bytes or the new bytes, never a mix.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "fsync_directory"]


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file.

    Steps, and why each one is there:

    1. the temporary file is created in the *same directory*, because ``rename`` is only atomic
       within one file system;
    2. its permissions are set to ``mode`` before any byte is written (default ``0o600``: config
       documents and keys hold secrets, and the umask must not widen that);
    3. it is ``fsync``-ed, so the data blocks are on disk before the rename can be;
    4. ``os.replace`` swaps it in atomically (overwriting an existing file);
    5. the directory is ``fsync``-ed, so the rename itself survives a power loss.

    If anything fails before the rename, the temporary file is removed and the exception
    propagates; the target is untouched. (A ``kill -9`` between steps 1 and 4 can leave a
    ``.<name>.*.tmp`` file behind; it is never read, only wasted space.)
    """
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_directory(directory)


def fsync_directory(directory: Path) -> None:
    """Make the entries of ``directory`` (creations, renames, deletions) durable.

    A rename lives in the directory, not in the file: without this, a power loss shortly after
    ``os.replace`` may bring back the old name. Some file systems refuse to ``fsync`` a directory
    (``EINVAL``); there is nothing better to do on them, so that case is ignored.
    """
    dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dir_fd)
    except OSError as exc:  # pragma: no cover - depends on the file system
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(dir_fd)
