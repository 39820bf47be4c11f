"""camio events as ONVIF event messages: topics, the topic set, and topic filters.

Mapping (tokens are camio port ids, as the DeviceIO service numbers them):

* ``io/input`` -> ``tns1:Device/Trigger/DigitalInput``, source ``InputToken``, data
  ``LogicalState`` ``true`` (active: the circuit differs from its normal/idle state) / ``false``;
* ``io/output`` -> ``tns1:Device/Trigger/Relay``, source ``RelayToken``, data ``LogicalState``
  ``active`` / ``inactive``;
* ``storage/failure`` -> ``tns1:Device/HardwareFailure/StorageFailure`` (ONVIF Core), source
  ``Token`` (the volume name), data ``Failed`` ``true`` / ``false``.

Virtual inputs, the manual trigger, the video source and "storage full" have no topic in the
ONVIF topic namespace, so they are not sent here (VAPIX and MQTT carry them). Every message is
a property: its current state is ``Initialized`` (new subscription, SetSynchronizationPoint),
a change ``Changed``. UtcTime is the camio event's wall time.

Topic filters (``wsnt:TopicExpression``): the ONVIF ``ConcreteSet`` dialect (alternatives
joined with ``|``, a trailing ``//.`` for a whole subtree, ``*`` for any one level) and the WSN
``Concrete``/``Simple`` dialects; prefixes are resolved with the namespace declarations in scope
of the expression element, so ``ns0:Device/Trigger/Relay`` with ``ns0`` bound to the ONVIF
topic namespace matches. A child level without a prefix belongs to its parent's namespace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from camio.core.events import Event, EventKind, Topic

TNS1: Final = "http://www.onvif.org/ver10/topics"

TOPIC_DIGITAL_INPUT: Final = "tns1:Device/Trigger/DigitalInput"
TOPIC_RELAY: Final = "tns1:Device/Trigger/Relay"
TOPIC_STORAGE_FAILURE: Final = "tns1:Device/HardwareFailure/StorageFailure"

DIALECT_CONCRETE_SET: Final = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
DIALECT_CONCRETE: Final = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete"
DIALECT_SIMPLE: Final = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple"
#: The topic expression dialects accepted (and announced by GetEventProperties).
TOPIC_DIALECTS: Final = (DIALECT_CONCRETE_SET, DIALECT_CONCRETE)
_ACCEPTED_DIALECTS: Final = frozenset((*TOPIC_DIALECTS, DIALECT_SIMPLE))

INITIALIZED: Final = "Initialized"
CHANGED: Final = "Changed"


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """One topic this dialect sends: its camio topic, source and data item names and types."""

    topic: str
    camio_topic: str
    source_name: str
    source_type: str
    data_name: str
    data_type: str


TOPICS: Final = (
    TopicInfo(
        TOPIC_DIGITAL_INPUT,
        Topic.INPUT,
        "InputToken",
        "tt:ReferenceToken",
        "LogicalState",
        "xs:boolean",
    ),
    TopicInfo(
        TOPIC_RELAY,
        Topic.OUTPUT,
        "RelayToken",
        "tt:ReferenceToken",
        "LogicalState",
        "tt:RelayLogicalState",
    ),
    TopicInfo(
        TOPIC_STORAGE_FAILURE,
        Topic.STORAGE_FAILURE,
        "Token",
        "tt:ReferenceToken",
        "Failed",
        "xs:boolean",
    ),
)
_BY_CAMIO: Final = {t.camio_topic: t for t in TOPICS}

#: camio topics that have an ONVIF counterpart (a bus filter for subscribers).
MAPPED_TOPICS: Final = frozenset(_BY_CAMIO)


def accepts(event: Event) -> bool:
    """A bus filter: only the events that map onto ONVIF topics."""
    return event.topic in MAPPED_TOPICS


@dataclass(frozen=True, slots=True)
class OnvifMessage:
    """One ``tt:Message`` of a notification: topic, one source item, one data item."""

    topic: str
    source: tuple[str, str]
    data: tuple[str, str]
    operation: str  # INITIALIZED | CHANGED
    wall_ns: int

    @property
    def key(self) -> tuple[str, tuple[str, str]]:
        """What identifies the property this message is the state of."""
        return self.topic, self.source


def _bool(value: object) -> str:
    return "true" if value else "false"


def map_event(event: Event) -> OnvifMessage | None:
    """The ONVIF message of one camio event (None for topics ONVIF has no name for)."""
    info = _BY_CAMIO.get(event.topic)
    if info is None:
        return None
    active = bool(event.data.get("active"))
    if info.camio_topic == Topic.OUTPUT:
        value = "active" if active else "inactive"
    else:
        value = _bool(active)
    op = INITIALIZED if event.kind is EventKind.INITIALIZED else CHANGED
    return OnvifMessage(
        info.topic, (info.source_name, event.source), (info.data_name, value), op, event.wall_ns
    )


class MessageMapper:
    """Maps one subscriber's events to messages, without repeating a state it already has.

    An input's event also fires when it is armed or disarmed; ONVIF reports only LogicalState,
    so such a repeat is dropped. A repeated ``Initialized`` (a replay) becomes nothing or a
    ``Changed`` unless ``force`` (SetSynchronizationPoint re-sends every state on purpose).
    """

    def __init__(self) -> None:
        self._last: dict[tuple[str, tuple[str, str]], tuple[str, str]] = {}

    def map(self, event: Event, *, force: bool = False) -> OnvifMessage | None:
        msg = map_event(event)
        if msg is None:
            return None
        key = msg.key
        previous = self._last.get(key)
        if not force and previous is not None:
            if previous == msg.data:
                return None
            if msg.operation == INITIALIZED:
                msg = OnvifMessage(msg.topic, msg.source, msg.data, CHANGED, msg.wall_ns)
        self._last[key] = msg.data
        return msg


# -- topic filters ---------------------------------------------------------------------------


class TopicExpressionError(ValueError):
    """An expression that cannot be parsed (``InvalidTopicExpressionFault``)."""


class TopicDialectError(ValueError):
    """An unknown expression dialect (``TopicExpressionDialectUnknownFault``)."""


Segment = tuple[str, str]  # (namespace, local name); local "*" matches any one level
_NCNAME: Final = re.compile(r"^[A-Za-z_][\w.\-]*$")


@dataclass(frozen=True, slots=True)
class _Pattern:
    segments: tuple[Segment, ...]
    subtree: bool

    def matches(self, topic: tuple[Segment, ...]) -> bool:
        if len(topic) < len(self.segments):
            return False
        if len(topic) > len(self.segments) and not self.subtree:
            return False
        return all(
            p_local == "*" or (p_ns == t_ns and p_local == t_local)
            for (p_ns, p_local), (t_ns, t_local) in zip(self.segments, topic, strict=False)
        )


def _segments(path: str, nsmap: Mapping[str | None, str]) -> tuple[Segment, ...]:
    out: list[Segment] = []
    parent_ns: str | None = None
    for part in path.split("/"):
        part = part.strip()
        if not part:
            raise TopicExpressionError(f"empty level in topic {path!r}")
        prefix, sep, local = part.rpartition(":")
        if sep:
            ns = nsmap.get(prefix)
            if ns is None:
                raise TopicExpressionError(f"undeclared prefix {prefix!r} in topic {path!r}")
        elif parent_ns is not None:
            ns = parent_ns
        else:
            # A root without a prefix: the default namespace if one is in scope, else ONVIF's.
            ns = nsmap.get(None) or TNS1
        if local != "*" and not _NCNAME.match(local):
            raise TopicExpressionError(f"invalid level {local!r} in topic {path!r}")
        out.append((ns, local))
        parent_ns = ns
    return tuple(out)


_OWN_NSMAP: Final[dict[str | None, str]] = {"tns1": TNS1}


def topic_segments(topic: str) -> tuple[Segment, ...]:
    """One of this module's topics (``tns1:...``) as namespace-qualified levels."""
    return _segments(topic, _OWN_NSMAP)


class TopicFilter:
    """A parsed ``wsnt:TopicExpression``: which topics a subscription receives."""

    def __init__(self, patterns: Iterable[_Pattern]) -> None:
        self._patterns = tuple(patterns)
        self._cache: dict[str, bool] = {}

    @classmethod
    def parse(
        cls, expression: str, dialect: str | None, nsmap: Mapping[str | None, str]
    ) -> TopicFilter:
        """Parse ``expression`` in ``dialect`` with the prefixes of ``nsmap``."""
        dialect = (dialect or DIALECT_CONCRETE_SET).strip()
        if dialect not in _ACCEPTED_DIALECTS:
            raise TopicDialectError(f"unknown topic expression dialect {dialect!r}")
        text = expression.strip()
        if not text:
            raise TopicExpressionError("empty topic expression")
        alternatives = text.split("|") if dialect == DIALECT_CONCRETE_SET else [text]
        patterns: list[_Pattern] = []
        for alt in alternatives:
            alt = alt.strip()
            subtree = False
            for suffix in ("//.", "//*"):
                if alt.endswith(suffix):
                    alt, subtree = alt[: -len(suffix)], True
                    break
            alt = alt.rstrip("/")
            if dialect == DIALECT_SIMPLE:
                # Simple: a root topic; devices commonly treat it as its whole subtree.
                if "/" in alt:
                    raise TopicExpressionError("the Simple dialect names a root topic only")
                subtree = True
            patterns.append(_Pattern(_segments(alt, nsmap), subtree))
        return cls(patterns)

    @classmethod
    def union(cls, filters: Iterable[TopicFilter]) -> TopicFilter:
        """A filter passing what any of ``filters`` passes (several TopicExpressions)."""
        return cls(p for f in filters for p in f._patterns)

    def matches(self, topic: str) -> bool:
        """Whether ``topic`` (one of :data:`TOPICS`) passes the filter."""
        hit = self._cache.get(topic)
        if hit is None:
            segs = topic_segments(topic)
            hit = self._cache[topic] = any(p.matches(segs) for p in self._patterns)
        return hit
