"""Network share recipient: files written into a mounted directory (NFS, SMB/CIFS, a disk).

camio does not mount anything: the administrator mounts the share and gives its path. Each
notification writes ``<dir>/<key>-message.txt`` and each attachment ``<dir>/<key>-<name>``,
through a temporary file renamed into place, so a reader never sees half a file and a retry
with the same key rewrites the same names (idempotent). A share that is missing or too full is
a retryable error: it may be remounted or cleaned up before the delivery expires.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from camio.core.recipients import RecipientSpec
from camio.recipients.base import Delivery, DeliveryError, Sender, register_recipient
from camio.recipients.templates import check, context_for, render

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MB = 1024 * 1024


def safe_name(text: str) -> str:
    """A file or directory name without separators or leading dots."""
    return _UNSAFE.sub("_", text).lstrip(".")[:120] or "_"


class ShareRecipient(RecipientSpec):
    kind: Literal["share"] = "share"
    path: Annotated[str, Field(min_length=1, max_length=1024)] = Field(
        description="Absolute path of the mounted share"
    )
    directory: Annotated[str, Field(max_length=512)] = Field(
        "", description="Sub-directory template, e.g. {device.name}/{event.source}"
    )
    min_free_mb: Annotated[int, Field(ge=0, le=1_000_000)] = 64

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not os.path.isabs(value):
            raise ValueError("must be an absolute path")
        return value

    @field_validator("directory")
    @classmethod
    def _template(cls, value: str) -> str:
        return check(value)


def _target_dir(spec: ShareRecipient, delivery: Delivery) -> Path:
    base = Path(spec.path)
    rendered = render(spec.directory, context_for(delivery))
    parts = [safe_name(p) for p in rendered.split("/") if p.strip()]
    return base.joinpath(*parts)


def _check_share(spec: ShareRecipient, need: int) -> None:
    base = Path(spec.path)
    if not base.is_dir():
        raise DeliveryError(f"share {spec.path} is not a directory (is it mounted?)")
    stats = os.statvfs(base)
    free = stats.f_bavail * stats.f_frsize
    if free - need < spec.min_free_mb * MB:
        raise DeliveryError(
            f"share {spec.path} has {free // MB} MB free, needs {spec.min_free_mb} MB to spare"
        )


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_delivery(spec: ShareRecipient, delivery: Delivery) -> None:
    files = [(f"{delivery.key}-message.txt", f"{delivery.subject}\n\n{delivery.body}\n".encode())]
    files += [(f"{delivery.key}-{a.name}", a.data) for a in delivery.attachments]
    _check_share(spec, sum(len(data) for _, data in files))
    target = _target_dir(spec, delivery)
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, data in files:
            _write_atomic(target / safe_name(name), data)
    except PermissionError as exc:
        raise DeliveryError(f"cannot write to {target}: permission denied", permanent=True) from exc
    except OSError as exc:
        raise DeliveryError(f"cannot write to {target}: {exc.strerror or exc}") from exc


def _probe(spec: ShareRecipient) -> str:
    _check_share(spec, 0)
    probe = Path(spec.path) / f".camio-test-{uuid.uuid4().hex[:8]}"
    try:
        probe.write_bytes(b"camio")
        probe.unlink()
    except OSError as exc:
        raise DeliveryError(f"cannot write to {spec.path}: {exc.strerror or exc}") from exc
    free = os.statvfs(spec.path)
    return f"{spec.path} is writable, {free.f_bavail * free.f_frsize // MB} MB free"


class ShareSender(Sender[ShareRecipient]):
    async def send(self, spec: ShareRecipient, delivery: Delivery) -> None:
        await asyncio.to_thread(_write_delivery, spec, delivery)

    async def test(self, spec: ShareRecipient) -> str:
        return await asyncio.to_thread(_probe, spec)


register_recipient(ShareRecipient, ShareSender())
