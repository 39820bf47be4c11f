"""The one internal event model that every dialect maps its own topics onto."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Topic(StrEnum):
    """Internal topics. Dialects map each one-to-one onto their own names."""

    INPUT = "io/input"
    OUTPUT = "io/output"
    VIRTUAL_INPUT = "io/virtual_input"
    MANUAL_TRIGGER = "trigger/manual"
    SCHEDULE = "schedule"
    RECURRENCE = "schedule/recurrence"
    DEVICE_STARTED = "device/started"
    DEVICE_STOPPING = "device/stopping"
    RULE_FIRED = "rule/fired"
    RULE_FAILED = "rule/failed"
    CONFIG_CHANGED = "config/changed"
    OUTBOX_DELIVERED = "outbox/delivered"
    OUTBOX_FAILED = "outbox/failed"
    RECIPIENT_STATE = "recipient/state"
    VIDEO_SOURCE = "video/source"  # stateful: the video source is connected or lost
    STORAGE_FULL = "storage/full"  # stateful, per volume
    STORAGE_FAILURE = "storage/failure"  # stateful, per volume
    MEDIA_RECORDED = "media/recorded"  # a recording's file is complete
    MEDIA_SNAPSHOT = "media/snapshot"  # a snapshot was saved


class EventKind(StrEnum):
    """How an event relates to the state of its source (ONVIF's PropertyOperation)."""

    INITIALIZED = "initialized"  # current state, sent to a new subscriber
    CHANGED = "changed"  # a stateful source changed
    PULSE = "pulse"  # a stateless happening


@dataclass(frozen=True, slots=True)
class Cause:
    """Why something changed: every output change carries one, queryable and published.

    ``kind`` is one of ``rule``, ``schedule``, ``manual``, ``api``, ``boot``, ``interlock``,
    ``timer``, ``sequence``, ``hardware``, ``sim``, ``shutdown``, ``config``.
    """

    kind: str
    rule: str | None = None
    user: str | None = None
    client: str | None = None
    event_id: int | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of a cause: only the fields that are set, ``kind`` always."""
        out: dict[str, Any] = {"kind": self.kind}
        for name in ("rule", "user", "client", "event_id", "detail"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cause:
        """Inverse of :meth:`to_dict`, tolerant of unknown keys from newer versions."""
        return cls(
            kind=str(data.get("kind", "unknown")),
            rule=data.get("rule"),
            user=data.get("user"),
            client=data.get("client"),
            event_id=data.get("event_id"),
            detail=data.get("detail"),
        )


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened on the device.

    ``id`` is assigned by the event bus (monotonically increasing, persisted across restarts);
    ``wall_ns`` is UTC nanoseconds since the epoch and ``mono_ns`` the monotonic clock, both read
    from the injected clock when the event happened.
    """

    topic: str
    source: str
    data: dict[str, Any]
    kind: EventKind
    wall_ns: int
    mono_ns: int
    cause: Cause | None = None
    id: int = 0
    stateful: bool = field(default=True)

    def with_id(self, event_id: int) -> Event:
        """A copy carrying the id the bus assigned."""
        return Event(
            self.topic,
            self.source,
            self.data,
            self.kind,
            self.wall_ns,
            self.mono_ns,
            self.cause,
            event_id,
            self.stateful,
        )

    @property
    def time_iso(self) -> str:
        """Wall time as ISO 8601 UTC with microseconds and a ``Z``."""
        return iso_utc(self.wall_ns)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape scripts rely on: id, topic, source, data, time, mono_ns, cause."""
        return {
            "id": self.id,
            "topic": self.topic,
            "source": self.source,
            "kind": self.kind.value,
            "stateful": self.stateful,
            "data": self.data,
            "time": self.time_iso,
            "mono_ns": self.mono_ns,
            "cause": self.cause.to_dict() if self.cause else None,
        }


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def iso_utc(wall_ns: int) -> str:
    """Format epoch nanoseconds as ``2026-11-21T23:51:27.123456Z``.

    Truncated to the microsecond in integer arithmetic (a float would round, up to half a
    microsecond after the real time, so ``since=<an event's time>`` could miss that event).
    """
    stamp = _EPOCH + dt.timedelta(microseconds=wall_ns // 1000)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
