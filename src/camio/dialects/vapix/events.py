"""camio events as Axis events: topics, sources and data, and their two wire formats.

Axis clients (the ``axis`` library, Home Assistant, VMSs) receive the same messages over the
RTSP metadata stream (an ONVIF ``MetadataStream`` XML document per RTP packet) and over the
WebSocket stream (a JSON ``events:notify`` per message). Both are rendered here from one
:class:`AxisMessage`, so the transports only move bytes.

Mapping (ids from :class:`~camio.dialects.vapix.numbering.AxisNumbering`, 0-based):

* input ``io/input`` -> ``tns1:Device/tnsaxis:IO/Port``, source ``port``, data ``state``
  ``"1"`` (active) / ``"0"``; a supervised input also -> ``tns1:Device/tnsaxis:IO/SupervisedPort``
  with data ``state`` and ``tampered`` (cut or short);
* output ``io/output`` -> ``tns1:Device/Trigger/Relay``, source ``RelayToken``, data
  ``LogicalState`` ``active`` / ``inactive``, and ``tns1:Device/tnsaxis:IO/OutputPort``, source
  ``port``, data ``state`` ``high`` (active) / ``low``, as real devices send both;
* virtual input N (1-32) -> ``tns1:Device/tnsaxis:IO/VirtualInput``, source ``port`` N, data
  ``active`` ``"1"`` / ``"0"``;
* the manual trigger -> ``tns1:Device/tnsaxis:IO/VirtualPort``, source ``port``
  :data:`MANUAL_TRIGGER_PORT`, data ``state`` ``"1"`` / ``"0"``.

The current state of a source is ``Initialized``, a change ``Changed``. A :class:`AxisEventMapper`
belongs to one subscriber and drops a ``Changed`` that repeats the state that subscriber last
got (an input's event also fires when it is armed or disarmed, which Axis does not report).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from xml.sax.saxutils import escape, quoteattr

from camio.core.events import Event, EventKind, Topic, iso_utc
from camio.dialects.vapix.numbering import AxisNumbering
from camio.engine.errors import NotFound

if TYPE_CHECKING:
    from camio.engine.device import Device

TOPIC_PORT: Final = "tns1:Device/tnsaxis:IO/Port"
TOPIC_SUPERVISED_PORT: Final = "tns1:Device/tnsaxis:IO/SupervisedPort"
TOPIC_RELAY: Final = "tns1:Device/Trigger/Relay"
TOPIC_OUTPUT_PORT: Final = "tns1:Device/tnsaxis:IO/OutputPort"
TOPIC_VIRTUAL_INPUT: Final = "tns1:Device/tnsaxis:IO/VirtualInput"
TOPIC_VIRTUAL_PORT: Final = "tns1:Device/tnsaxis:IO/VirtualPort"

#: Every topic this dialect sends (for ``topicFilter`` matching and the documentation).
TOPICS: Final = (
    TOPIC_PORT,
    TOPIC_SUPERVISED_PORT,
    TOPIC_RELAY,
    TOPIC_OUTPUT_PORT,
    TOPIC_VIRTUAL_INPUT,
    TOPIC_VIRTUAL_PORT,
)

#: The ``port`` of the manual trigger's VirtualPort events (``virtualinput.cgi`` port 1).
MANUAL_TRIGGER_PORT: Final = "1"

INITIALIZED: Final = "Initialized"
CHANGED: Final = "Changed"

#: camio topics that have an Axis counterpart (a bus filter for subscribers).
MAPPED_TOPICS: Final = frozenset(
    {Topic.INPUT, Topic.OUTPUT, Topic.VIRTUAL_INPUT, Topic.MANUAL_TRIGGER}
)


@dataclass(frozen=True, slots=True)
class AxisMessage:
    """One Axis event message: topic, source and data items (name, value), operation, time."""

    topic: str
    source: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]
    operation: str  # INITIALIZED | CHANGED
    wall_ns: int

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """What identifies the property this message is the state of."""
        return self.topic, self.source


def _flag(value: object) -> str:
    return "1" if value else "0"


def map_event(event: Event, numbering: AxisNumbering, device: Device) -> list[AxisMessage]:
    """The Axis messages for one camio event (none for topics Axis has no name for)."""
    op = INITIALIZED if event.kind is EventKind.INITIALIZED else CHANGED
    wall = event.wall_ns
    data = event.data
    topic = event.topic
    if topic == Topic.INPUT:
        try:
            port = str(numbering.of(event.source).axis_id)
        except NotFound:
            return []
        state = _flag(data.get("active"))
        out = [AxisMessage(TOPIC_PORT, (("port", port),), (("state", state),), op, wall)]
        inp = device.inputs.get(event.source)
        if inp is not None and inp.config.supervised:
            out.append(
                AxisMessage(
                    TOPIC_SUPERVISED_PORT,
                    (("port", port),),
                    (("state", state), ("tampered", _flag(data.get("tamper")))),
                    op,
                    wall,
                )
            )
        return out
    if topic == Topic.OUTPUT:
        try:
            port = str(numbering.of(event.source).axis_id)
        except NotFound:
            return []
        active = bool(data.get("active"))
        return [
            AxisMessage(
                TOPIC_RELAY,
                (("RelayToken", port),),
                (("LogicalState", "active" if active else "inactive"),),
                op,
                wall,
            ),
            AxisMessage(
                TOPIC_OUTPUT_PORT,
                (("port", port),),
                (("state", "high" if active else "low"),),
                op,
                wall,
            ),
        ]
    if topic == Topic.VIRTUAL_INPUT:
        return [
            AxisMessage(
                TOPIC_VIRTUAL_INPUT,
                (("port", event.source),),
                (("active", _flag(data.get("active"))),),
                op,
                wall,
            )
        ]
    if topic == Topic.MANUAL_TRIGGER:
        return [
            AxisMessage(
                TOPIC_VIRTUAL_PORT,
                (("port", MANUAL_TRIGGER_PORT),),
                (("state", _flag(data.get("active"))),),
                op,
                wall,
            )
        ]
    return []


class AxisEventMapper:
    """Maps one subscriber's camio events to Axis messages, without repeated states."""

    def __init__(self, device: Device) -> None:
        self._device = device
        self._numbering = AxisNumbering(device)
        self._last: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[tuple[str, str], ...]] = {}

    def map(self, event: Event) -> list[AxisMessage]:
        if event.topic not in MAPPED_TOPICS:
            return []
        out: list[AxisMessage] = []
        for msg in map_event(event, self._numbering, self._device):
            key = msg.key
            if msg.operation == CHANGED and self._last.get(key) == msg.data:
                continue
            if msg.operation == INITIALIZED and key in self._last:
                # Already sent: a repeated snapshot becomes a change, or nothing.
                if self._last[key] == msg.data:
                    continue
                msg = AxisMessage(msg.topic, msg.source, msg.data, CHANGED, msg.wall_ns)
            self._last[key] = msg.data
            out.append(msg)
        return out


def accepts(event: Event) -> bool:
    """A bus filter: only the events that map onto Axis topics."""
    return event.topic in MAPPED_TOPICS


# -- topic filters (events:configure) ---------------------------------------------------------


def _normalize_topic(expr: str) -> str:
    """MQTT and some clients write ``onvif:``/``axis:`` for ``tns1:``/``tnsaxis:``."""
    expr = expr.strip()
    if expr.startswith("onvif:"):
        expr = "tns1:" + expr[len("onvif:") :]
    elif expr.startswith("axis:"):
        expr = "tnsaxis:" + expr[len("axis:") :]
    return expr.replace("/axis:", "/tnsaxis:").replace("/onvif:", "/tns1:")


@dataclass(frozen=True, slots=True)
class TopicFilter:
    """A union of ONVIF topic expressions (``|``-separated; ``//.`` = everything, ``X//.`` =
    X and below, else the topic exactly or a topic below it)."""

    everything: bool
    prefixes: tuple[str, ...]

    @classmethod
    def parse(cls, expressions: Iterable[str]) -> TopicFilter:
        prefixes: list[str] = []
        everything = False
        for text in expressions:
            for part in text.split("|"):
                expr = _normalize_topic(part)
                if expr.endswith("//."):
                    expr = expr[: -len("//.")]
                expr = expr.rstrip("/")
                if not expr:
                    everything = True
                else:
                    prefixes.append(expr)
        return cls(everything, tuple(prefixes))

    @classmethod
    def all(cls) -> TopicFilter:
        return cls(True, ())

    def matches(self, topic: str) -> bool:
        if self.everything:
            return True
        return any(topic == p or topic.startswith(p + "/") for p in self.prefixes)


# -- renderers ---------------------------------------------------------------------------------

_XML_HEAD: Final = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema">\n'
    "<tt:Event><wsnt:NotificationMessage"
    ' xmlns:tns1="http://www.onvif.org/ver10/topics"'
    ' xmlns:tnsaxis="http://www.axis.com/2009/event/topics"'
    ' xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"'
    ' xmlns:wsa5="http://www.w3.org/2005/08/addressing">'
    '<wsnt:Topic Dialect="http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple">'
)


def producer_uuid(serial: str) -> str:
    """A stable UUID for the device (the ProducerReference address), derived from its serial."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:camio:axis:{serial}"))


def _items(items: tuple[tuple[str, str], ...]) -> str:
    return "".join(
        f"<tt:SimpleItem Name={quoteattr(name)} Value={quoteattr(value)}/>" for name, value in items
    )


def render_xml(msg: AxisMessage, producer: str) -> bytes:
    """One complete ONVIF MetadataStream document (what one RTP packet carries)."""
    text = (
        f"{_XML_HEAD}{escape(msg.topic)}</wsnt:Topic>"
        f"<wsnt:ProducerReference><wsa5:Address>uri://{escape(producer)}/ProducerReference"
        "</wsa5:Address></wsnt:ProducerReference>"
        f"<wsnt:Message><tt:Message UtcTime={quoteattr(iso_utc(msg.wall_ns))}"
        f" PropertyOperation={quoteattr(msg.operation)}>"
        f"<tt:Source>{_items(msg.source)}</tt:Source><tt:Key></tt:Key>"
        f"<tt:Data>{_items(msg.data)}</tt:Data></tt:Message></wsnt:Message>"
        "</wsnt:NotificationMessage></tt:Event></tt:MetadataStream>"
    )
    return text.encode("utf-8")


def render_json(msg: AxisMessage) -> str:
    """One ``events:notify`` WebSocket message (no operation: the first per source counts as
    Initialized on the client)."""
    return json.dumps(
        {
            "apiVersion": "1.0",
            "method": "events:notify",
            "params": {
                "notification": {
                    "timestamp": msg.wall_ns // 1_000_000,
                    "topic": msg.topic,
                    "message": {
                        "source": dict(msg.source),
                        "key": {},
                        "data": dict(msg.data),
                    },
                }
            },
        },
        separators=(",", ":"),
    )
