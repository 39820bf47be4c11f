"""The topic layout of one device on the broker, and command payload parsing (pure).

``<prefix>/<node>/...``::

    availability                 online / offline (retained; offline is the last will)
    input/<id>                   ON / OFF (retained)      input/<id>/state   JSON (retained)
    output/<id>                  ON / OFF (retained)      output/<id>/state  JSON (retained)
    vinput/<n>                   ON / OFF (retained)      vinput/<n>/state   JSON (retained)
    trigger/manual               ON / OFF (retained)      trigger/manual/state JSON (retained)
    event/<internal topic>       each logged event as JSON (id, topic, source, data, cause...)
    output/<id>/set              command: ON, OFF, PULSE <ms>
    vinput/<n>/set               command: ON, OFF, PULSE <ms>
    trigger/manual/set           command: ON, OFF, PULSE
    rule/<id>/trigger            command: test-fire the rule (any payload)
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal

from camio.core.events import Topic

ON = "ON"
OFF = "OFF"
ONLINE = "online"
OFFLINE = "offline"

#: Internal topic -> (topic segment, whether the source is the id in the topic).
STATE_TOPICS: dict[str, str] = {
    Topic.INPUT: "input",
    Topic.OUTPUT: "output",
    Topic.VIRTUAL_INPUT: "vinput",
    Topic.MANUAL_TRIGGER: "trigger",
}


@dataclass(frozen=True, slots=True)
class Layout:
    prefix: str
    node: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.node}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    def state(self, internal_topic: str, source: str) -> str | None:
        """The ON/OFF topic of a stateful source (None for other topics)."""
        segment = STATE_TOPICS.get(internal_topic)
        if segment is None:
            return None
        if segment == "trigger":
            return f"{self.base}/trigger/manual"
        return f"{self.base}/{segment}/{source}"

    def event(self, internal_topic: str) -> str:
        return f"{self.base}/event/{internal_topic}"

    def command_filters(self) -> list[str]:
        base = self.base
        return [
            f"{base}/output/+/set",
            f"{base}/vinput/+/set",
            f"{base}/trigger/manual/set",
            f"{base}/rule/+/trigger",
        ]

    def command_target(self, topic: str) -> tuple[str, str] | None:
        """``(kind, id)`` of a command topic: ``output``, ``vinput``, ``manual``, ``rule``."""
        head = self.base + "/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if len(parts) != 3:
            return None
        kind, ident, verb = parts
        if kind in ("output", "vinput") and verb == "set":
            return kind, ident
        if kind == "trigger" and ident == "manual" and verb == "set":
            return "manual", ""
        if kind == "rule" and verb == "trigger":
            return "rule", ident
        return None


@dataclass(frozen=True, slots=True)
class Command:
    action: Literal["on", "off", "pulse"]
    duration_ms: int | None = None
    #: When the sender says it published the command (epoch ns), if it did.
    sent_wall_ns: int | None = None


class BadCommand(ValueError):
    """A payload that is no command."""


def parse_time(value: Any) -> int | None:
    """Epoch seconds, milliseconds or an ISO 8601 string as epoch nanoseconds."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        return int(seconds * 1_000_000_000)
    if isinstance(value, str):
        try:
            stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.UTC)
        return int(stamp.timestamp() * 1_000_000) * 1000
    return None


def parse_command(payload: bytes, *, pulse_default: bool = False) -> Command:
    """``ON``, ``OFF``, ``PULSE <ms>`` (case-insensitive; also ``1``/``0``, ``true``/``false``),
    or JSON ``{"state": "ON"|"OFF"|"PULSE", "ms": 500, "time": ...}``."""
    text = payload.decode("utf-8", errors="replace").strip()
    if len(text) > 1024:
        raise BadCommand("payload too long")
    sent: int | None = None
    ms: Any = None
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise BadCommand(f"invalid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise BadCommand("JSON command must be an object")
        sent = parse_time(doc.get("time", doc.get("ts")))
        ms = doc.get("ms", doc.get("duration_ms"))
        text = str(doc.get("state", "PULSE" if pulse_default else "")).strip()
    word, _, rest = text.partition(" ")
    word = word.upper()
    if rest.strip():
        ms = rest.strip()
    if word in ("ON", "1", "TRUE"):
        action: Literal["on", "off", "pulse"] = "on"
    elif word in ("OFF", "0", "FALSE"):
        action = "off"
    elif word in ("PULSE", "PRESS") or (pulse_default and word == ""):
        action = "pulse"
    else:
        raise BadCommand(f"unknown command {text[:40]!r} (ON, OFF or PULSE <ms>)")
    duration: int | None = None
    if ms is not None:
        try:
            duration = int(ms)
        except (TypeError, ValueError):
            raise BadCommand(f"invalid duration {str(ms)[:20]!r}") from None
        if not 1 <= duration <= 86_400_000:
            raise BadCommand("a duration is 1 to 86400000 ms")
    return Command(action, duration, sent)


def state_payload(active: bool) -> str:
    return ON if active else OFF
