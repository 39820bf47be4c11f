"""The MQTT client: availability, retained states, durable event publication, commands, Home
Assistant discovery and the messages of ``mqtt`` rule conditions.

It reaches the device only through the :class:`~camio.engine.device.Device` facade. aiomqtt is
imported when a connection is made, so a device with MQTT off never loads it.

What it does better than the usual firmware (see the design notes):

- States are retained and republished in full on every (re)connect and whenever Home
  Assistant announces itself, so nothing is "unknown" after a hub or broker restart.
- The event topic loses nothing the device logged: the last event id the broker acknowledged
  (QoS 1 PUBACK) is remembered (also across restarts, in ``state_file``) and the events logged
  while the broker was away are replayed from the event log, in order, before live ones.
- A retained command (the broker's stored copy, flagged ``retain`` on delivery) or one whose
  timestamp predates the device's start never moves an output: it is ignored, logged as such
  and cleared from the broker.
- Connection state is an event and a status, subscriptions are checked (a refused SUBACK is
  an error, not silence), and reconnection goes on forever with a bounded backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import ssl
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camio.core.clock import NS_PER_S
from camio.core.conditions import MQTT_STATE, MqttCondition
from camio.core.config import DeviceConfig
from camio.core.events import Cause, Event, EventKind, Topic, iso_utc
from camio.core.mqtt import MAX_MATCHED_PAYLOAD, MqttConfig, payload_matches, topic_matches
from camio.core.ports import StateStep
from camio.engine.errors import DeviceError
from camio.engine.persistence import EventQuery
from camio.mqtt.discovery import discovery_configs, discovery_filter
from camio.mqtt.topics import (
    OFFLINE,
    ONLINE,
    STATE_TOPICS,
    BadCommand,
    Command,
    Layout,
    parse_command,
    parse_time,
    state_payload,
)

if TYPE_CHECKING:
    import aiomqtt

    from camio.engine.device import Device

_LOGGER = logging.getLogger(__name__)

CONNECTION_TOPIC = "mqtt/connection"
MESSAGE_TOPIC = "mqtt/message"
COMMAND_TOPIC = "mqtt/command"
REPLAY_TOPIC = "mqtt/replay_truncated"

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
#: Messages handed to the client and not yet acknowledged, at most.
IN_FLIGHT = 256
#: Refused or ignored commands logged per second, at most (a flood is counted, not logged).
COMMAND_LOG_PER_S = 20
#: How often (at most) the acknowledged event id is written while connected.
SAVE_EVERY_S = 5


def backoff_delay(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds before reconnection attempt ``attempt`` (0-based): 1 s doubling up to 60 s,
    each with ±20 % jitter so a fleet does not reconnect in step after a broker restart."""
    base: float = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * float(2 ** min(attempt, 16)))
    jitter: float = 0.8 + 0.4 * rng()
    return min(BACKOFF_MAX_S, base * jitter)


def layout_for(config: DeviceConfig) -> Layout:
    return Layout(config.mqtt.topic_prefix, config.mqtt.node(config.device.serial))


def _connection_key(config: DeviceConfig) -> str:
    """What needs a new connection when it changes."""
    mqtt = config.mqtt
    fields = mqtt.model_dump(
        mode="json",
        include={
            "enabled",
            "host",
            "port",
            "protocol",
            "tls",
            "username",
            "password",
            "client_id",
            "node_id",
            "keepalive_s",
            "topic_prefix",
        },
    )
    fields["serial"] = config.device.serial
    return json.dumps(fields, sort_keys=True)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]


@dataclass(slots=True)
class _Out:
    topic: str
    payload: str | bytes
    qos: int
    retain: bool
    mark: list[Any] | None  # [event id, acknowledged] for event messages


class _Gate:
    """At most ``per_s`` passes per key per second (of the injected monotonic clock)."""

    def __init__(self, per_s: int, now: Callable[[], int]) -> None:
        self.per_s = per_s
        self._now = now
        self._windows: dict[str, tuple[int, int]] = {}

    def allow(self, key: str) -> bool:
        second = self._now() // NS_PER_S
        window, count = self._windows.get(key, (second, 0))
        if window != second:
            window, count = second, 0
        if len(self._windows) > 4096:
            self._windows.clear()
        self._windows[key] = (window, count + 1)
        return count < self.per_s


class MqttService:
    """One device's MQTT client; :meth:`start` it after the device, :meth:`close` before."""

    def __init__(
        self,
        device: Device,
        *,
        state_file: Path | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.device = device
        self._state_file = state_file
        self._rng = rng
        clock = device.clock
        self.state = "disabled"
        self.since_wall_ns = clock.wall_ns()
        self.last_error: str | None = None
        self.messages_in = 0
        self.messages_out = 0
        self.messages_dropped = 0
        self.commands_done = 0
        self.commands_refused = 0
        self.commands_ignored = 0
        self.replayed = 0
        self.connects = 0
        self.next_retry_s: float | None = None
        self.subscriptions: dict[str, str] = {}  # filter -> "ok" or the broker's refusal
        self._config: MqttConfig = device.config.mqtt
        self._key = _connection_key(device.config)
        self._layout = layout_for(device.config)
        self._task: asyncio.Task[None] | None = None
        self._client: aiomqtt.Client | None = None
        self._live = False
        self._out: deque[_Out] = deque()
        self._wake = asyncio.Event()
        self._inflight: deque[list[Any]] = deque()
        self._sends: set[asyncio.Task[None]] = set()
        self._saved_mono_ns = clock.monotonic_ns()
        self.acked_id = self._load_watermark()
        self._queued_id = self.acked_id
        self._filters: set[str] = set()
        self._stateful: dict[str, list[MqttCondition]] = {}
        self._last_payload: dict[str, str] = {}
        self._message_gate = _Gate(self._config.message_events_per_s, clock.monotonic_ns)
        self._command_gate = _Gate(COMMAND_LOG_PER_S, clock.monotonic_ns)
        # Any broker client may publish "online" to the discovery status topic; each one
        # re-sends every config and state, so at most one per second is honoured.
        self._status_gate = _Gate(1, clock.monotonic_ns)
        self._discovery: dict[str, str] = {}
        self._state_topics: set[str] = set()
        self._was_connected = False
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Hook into the device and connect when MQTT is enabled."""
        if self._started:
            return
        self._started = True
        device = self.device
        device.register_state(MQTT_STATE, self._condition_state)
        device.add_state_source(self._state_source)
        device.subscribe(self._on_event, replay_state=False)
        self._sync_rules()
        if self._config.enabled:
            self._launch()

    async def close(self) -> None:
        """Say ``offline`` (retained), disconnect cleanly, remember the acknowledged event."""
        await self._stop_connection()
        self._save_watermark()

    def _launch(self, *, fresh: bool = False) -> None:
        """Connect; ``fresh`` (MQTT just turned on): the event topic starts with what happens
        from now on, not with the history logged while MQTT was off."""
        if fresh:
            self.acked_id = self._queued_id = self.device.last_event_id
            self._inflight.clear()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _stop_connection(self) -> None:
        task, client = self._task, self._client
        self._task = None
        if task is None:
            return
        if client is not None and self._live:
            # What is queued (the shutdown's own events) goes first, briefly bounded.
            for _ in range(100):
                if not self._out and not self._sends:
                    break
                await asyncio.sleep(0.01)
            with contextlib.suppress(Exception):
                await client.publish(
                    self._layout.availability, OFFLINE, qos=1, retain=True, timeout=2
                )
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        self._disconnected()
        self._set_state("disabled" if not self._config.enabled else "disconnected")

    # -- connection --------------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while True:
            self._was_connected = False
            self._set_state("connecting")
            try:
                await self._session(self._config)
                error = "the broker closed the connection"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = _describe(exc)
            self._disconnected()
            if self._was_connected:
                attempt = 0
            delay = backoff_delay(attempt, self._rng)
            attempt += 1
            self.next_retry_s = round(delay, 3)
            self._set_state("disconnected", error)
            _LOGGER.warning(
                "mqtt: %s:%s: %s; retrying in %.1f s",
                self._config.host,
                self._config.port,
                error,
                delay,
            )
            self._save_watermark()
            await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        """Wait on the injected clock."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.device.clock.call_later(int(seconds * NS_PER_S), wake)
        try:
            await future
        finally:
            timer.cancel()

    def _tls_context(self, cfg: MqttConfig) -> ssl.SSLContext | None:
        tls = cfg.tls
        if not tls.enabled:
            return None
        context = ssl.create_default_context(cafile=tls.ca_file)
        if tls.cert_file and tls.key_file:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        if not tls.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _session(self, cfg: MqttConfig) -> None:
        import aiomqtt

        layout = self._layout
        v5 = cfg.protocol == "5"
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            username=cfg.username,
            password=cfg.password,
            identifier=cfg.client_id or f"camio-{layout.node}",
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            will=aiomqtt.Will(layout.availability, OFFLINE, qos=1, retain=True),
            # No persistent session: commands queued while the device was away are not
            # delivered later (a stale command never moves an output).
            clean_session=None if v5 else True,
            keepalive=cfg.keepalive_s,
            timeout=10,
            tls_context=self._tls_context(cfg),
            logger=logging.getLogger("camio.mqtt.client"),
        )
        client.pending_calls_threshold = 2 * IN_FLIGHT  # bounded by the writer's slots
        async with client:
            self._client = client
            self._was_connected = True
            self.connects += 1
            self.next_retry_s = None
            await client.publish(layout.availability, ONLINE, qos=1, retain=True)
            disc = cfg.discovery
            filters = [
                *layout.command_filters(),
                f"{disc.prefix}/status",
                discovery_filter(self.device.config, layout),
                *sorted(self._filters),
            ]
            await self._subscribe(client, filters)
            self._set_state("connected")
            self._go_live()
            writer = asyncio.get_running_loop().create_task(self._writer(client))
            try:
                async for message in client.messages:
                    try:
                        self._on_message(message)
                    except Exception:
                        _LOGGER.exception("mqtt: handling a message on %s", message.topic)
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer

    async def _subscribe(self, client: aiomqtt.Client, filters: list[str]) -> None:
        if not filters:
            return
        qos = int(self._config.qos)
        wanted: list[tuple[str, int]] = [(f, qos) for f in filters]
        granted: Any = await client.subscribe(wanted)
        for topic_filter, code in zip(filters, granted, strict=False):
            failed = getattr(code, "is_failure", None)
            refused = bool(failed) if failed is not None else int(str(code)) >= 0x80
            if refused:
                self.subscriptions[topic_filter] = f"refused by the broker ({code})"
                _LOGGER.error("mqtt: the broker refused the subscription %r", topic_filter)
                self.device.publish(
                    "mqtt/subscription",
                    topic_filter,
                    {"filter": topic_filter, "error": str(code)},
                    stateful=False,
                    cause=Cause("mqtt"),
                )
            else:
                self.subscriptions[topic_filter] = "ok"

    def _disconnected(self) -> None:
        self._live = False
        self._client = None
        self._out.clear()
        self._inflight.clear()
        self._queued_id = self.acked_id
        for task in list(self._sends):
            task.cancel()
        self.subscriptions = {}

    def _set_state(self, state: str, error: str | None = None) -> None:
        if error is not None:
            self.last_error = error
        if state == self.state:
            return
        self.state = state
        self.since_wall_ns = self.device.clock.wall_ns()
        if self._started:
            self.device.publish(
                CONNECTION_TOPIC, "mqtt", self._connection_data(), cause=Cause("mqtt")
            )

    def _connection_data(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "active": self.state == "connected",
            "broker": f"{self._config.host}:{self._config.port}",
            "error": self.last_error if self.state != "connected" else None,
        }

    def _state_source(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        yield CONNECTION_TOPIC, "mqtt", self._connection_data()

    # -- publishing --------------------------------------------------------------------------

    def _go_live(self) -> None:
        """In one step (no await): discovery, every state, the missed events, then live."""
        self._reconcile_discovery(force=True)
        self._publish_all_states()
        replay, truncated_after = self._missed_events()
        self._live = True
        for event in replay:
            self._publish_event(event)
        self.replayed += len(replay)
        if truncated_after is not None:
            first = replay[0].id if replay else None
            _LOGGER.warning(
                "mqtt: more than %d events while the broker was away; the oldest were dropped",
                self._config.max_replay,
            )
            self.device.publish(
                REPLAY_TOPIC,
                "mqtt",
                {"after": truncated_after, "first_replayed": first, "max": self._config.max_replay},
                stateful=False,
                cause=Cause("mqtt"),
            )

    def _missed_events(self) -> tuple[list[Event], int | None]:
        limit = self._config.max_replay
        after = self.acked_id
        if limit == 0 or after >= self.device.last_event_id:
            self.acked_id = self._queued_id = max(after, self.device.last_event_id)
            return [], None
        found = self.device.events(EventQuery(after=after, limit=limit + 1, newest_first=True))
        found.reverse()
        truncated: int | None = None
        if len(found) > limit:
            found = found[-limit:]
            truncated = after
            self.acked_id = self._queued_id = found[0].id - 1
        return found, truncated

    def _enqueue(
        self, topic: str, payload: str | bytes, retain: bool, event_id: int | None = None
    ) -> None:
        mark: list[Any] | None = None
        if event_id is not None:
            mark = [event_id, False]
            self._inflight.append(mark)
        self._out.append(_Out(topic, payload, self._config.qos, retain, mark))
        self._wake.set()

    async def _writer(self, client: aiomqtt.Client) -> None:
        slots = asyncio.Semaphore(IN_FLIGHT)
        loop = asyncio.get_running_loop()
        out = self._out
        while True:
            if not out:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = out.popleft()
            await slots.acquire()
            task = loop.create_task(self._send(client, item, slots))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    async def _send(self, client: aiomqtt.Client, item: _Out, slots: asyncio.Semaphore) -> None:
        try:
            await client.publish(item.topic, item.payload, qos=item.qos, retain=item.retain)
        except Exception:
            return  # the connection is gone: the reader reports it; events are replayed
        finally:
            slots.release()
        self.messages_out += 1
        if item.mark is not None:
            item.mark[1] = True
            self._advance()

    def _advance(self) -> None:
        inflight = self._inflight
        while inflight and inflight[0][1]:
            self.acked_id = inflight.popleft()[0]
        # Remembered every few seconds too, so a crash replays little twice.
        now = self.device.clock.monotonic_ns()
        if now - self._saved_mono_ns >= SAVE_EVERY_S * NS_PER_S:
            self._saved_mono_ns = now
            self._save_watermark()

    def _publish_event(self, event: Event) -> None:
        if event.id <= self._queued_id:
            return
        self._queued_id = event.id
        topic = event.topic
        cfg = self._config
        if topic == MESSAGE_TOPIC or not any(topic_matches(f, topic) for f in cfg.event_topics):
            # Not for the broker (incoming messages are not echoed: that would loop).
            self._inflight.append([event.id, True])
            self._advance()
            return
        payload = json.dumps(event.to_dict(), separators=(",", ":"), default=str)
        retain = cfg.event_retain_stateful and event.stateful
        self._enqueue(self._layout.event(topic), payload, retain, event.id)

    def _publish_state(
        self, topic: str, source: str, data: dict[str, Any], cause: Cause | None, wall_ns: int
    ) -> str | None:
        state_topic = self._layout.state(topic, source)
        if state_topic is None:
            return None
        active = bool(data.get("active"))
        doc: dict[str, Any] = {"active": active}
        for key in ("circuit", "tamper", "armed", "remaining_ms"):
            if key in data:
                doc[key] = data[key]
        doc["cause"] = cause.to_dict() if cause is not None else None
        doc["time"] = iso_utc(wall_ns)
        self._enqueue(state_topic, state_payload(active), True)
        self._enqueue(f"{state_topic}/state", json.dumps(doc, default=str), True)
        return state_topic

    def _publish_all_states(self) -> None:
        published: set[str] = set()
        for event in self.device.state_events():
            if event.topic in STATE_TOPICS:
                topic = self._publish_state(
                    event.topic, event.source, event.data, event.cause, event.wall_ns
                )
                if topic is not None:
                    published.add(topic)
        # A port that was deleted leaves no retained state behind.
        for topic in sorted(self._state_topics - published):
            self._enqueue(topic, b"", True)
            self._enqueue(f"{topic}/state", b"", True)
        self._state_topics = published

    def _reconcile_discovery(self, *, force: bool = False) -> None:
        wanted = discovery_configs(self.device.config, self._layout)
        for topic in sorted(set(self._discovery) - set(wanted)):
            self._enqueue(topic, b"", True)
        for topic, payload in wanted.items():
            if force or self._discovery.get(topic) != payload:
                self._enqueue(topic, payload, True)
        self._discovery = wanted

    # -- events from the device --------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.kind is EventKind.INITIALIZED:
            return
        if event.topic == Topic.CONFIG_CHANGED:
            self._on_config()
        if not self._live:
            return
        if event.topic in STATE_TOPICS:
            self._publish_state(event.topic, event.source, event.data, event.cause, event.wall_ns)
        self._publish_event(event)

    def _on_config(self) -> None:
        config = self.device.config
        key = _connection_key(config)
        self._config = config.mqtt
        self._message_gate.per_s = config.mqtt.message_events_per_s
        self._sync_rules()
        if key != self._key:
            self._key = key
            layout = layout_for(config)
            self.device.spawn(self._restart_with(layout))
            return
        if self._live:
            self._reconcile_discovery()
            self._publish_all_states()

    async def _restart_with(self, layout: Layout) -> None:
        """Reconnect with new settings (or turn MQTT on or off)."""
        was_off = self._task is None
        await self._stop_connection()
        self._save_watermark()
        self._layout = layout
        if self._config.enabled:
            self._launch(fresh=was_off)
        else:
            self._set_state("disabled")

    # -- rule conditions ---------------------------------------------------------------------

    def _sync_rules(self) -> None:
        filters: set[str] = set()
        stateful: dict[str, list[MqttCondition]] = {}
        for rule in self.device.config.rules:
            if not rule.enabled:
                continue
            for cond in rule.conditions:
                if isinstance(cond, MqttCondition):
                    filters.add(cond.topic)
                    if cond.mode == "stateful":
                        stateful.setdefault(cond.topic, []).append(cond)
        added, removed = filters - self._filters, self._filters - filters
        self._filters = filters
        self._stateful = stateful
        for topic_filter in removed:
            self._last_payload.pop(topic_filter, None)
        client = self._client
        if client is not None and self._live and (added or removed):
            self.device.spawn(self._resubscribe(client, sorted(added), sorted(removed)))

    async def _resubscribe(
        self, client: aiomqtt.Client, added: list[str], removed: list[str]
    ) -> None:
        own = set(self._layout.command_filters())
        gone = [f for f in removed if f not in own]
        if gone:
            await client.unsubscribe(gone)
            for topic_filter in gone:
                self.subscriptions.pop(topic_filter, None)
        await self._subscribe(client, added)

    def _condition_state(self, ident: str) -> bool:
        topic_filter, match, payload = [*ident.split("\x00", 2), "", ""][:3]
        last = self._last_payload.get(topic_filter)
        if last is None:
            return False
        if not payload:
            return True
        if match == "regex":
            return payload_matches("regex", payload[1:], last)
        return payload_matches("exact", payload[1:], last)

    # -- messages from the broker ------------------------------------------------------------

    def _on_message(self, message: aiomqtt.Message) -> None:
        self.messages_in += 1
        topic = message.topic.value
        payload = message.payload
        data = payload if isinstance(payload, bytes) else str(payload or "").encode()
        target = self._layout.command_target(topic)
        if target is not None:
            self._command(target, topic, data, message)
        disc = self._config.discovery
        if topic == f"{disc.prefix}/status" and data.strip() == b"online":
            # Home Assistant (re)started: it wants every config, and the states again.
            if self._status_gate.allow("online"):
                self._reconcile_discovery(force=True)
                self._publish_all_states()
        elif (
            data
            and topic not in self._discovery
            and topic_matches(discovery_filter(self.device.config, self._layout), topic)
        ):
            self._enqueue(topic, b"", True)  # a removed entity, left over on the broker
        if self._filters:
            self._condition_message(topic, data, bool(message.retain))

    def _condition_message(self, topic: str, data: bytes, retain: bool) -> None:
        text: str | None = None
        for topic_filter in self._filters:
            if not topic_matches(topic_filter, topic):
                continue
            if text is None:
                text = data[:MAX_MATCHED_PAYLOAD].decode("utf-8", errors="replace")
            previous = self._last_payload.get(topic_filter)
            self._last_payload[topic_filter] = text
            changed = any(
                previous is None or c.matches(previous) != c.matches(text)
                for c in self._stateful.get(topic_filter, ())
            )
            if not changed and not self._message_gate.allow(topic_filter):
                self.messages_dropped += 1
                continue
            self.device.publish(
                MESSAGE_TOPIC,
                topic_filter,
                {"topic": topic, "payload": text, "retain": retain},
                stateful=False,
                cause=Cause("mqtt", detail=topic),
            )

    def _command(
        self, target: tuple[str, str], topic: str, data: bytes, message: aiomqtt.Message
    ) -> None:
        if not data:
            return  # an empty retained message clears a command topic: nothing to do
        kind, ident = target
        text = data[:200].decode("utf-8", errors="replace")
        if message.retain:
            # The broker's stored copy, published at some earlier time: never acted on.
            self._enqueue(topic, b"", True)
            self._report(topic, text, "ignored", "retained command (stale): cleared, not run")
            return
        try:
            command = parse_command(data, pulse_default=kind == "rule")
        except BadCommand as exc:
            self._report(topic, text, "refused", str(exc))
            return
        sent = command.sent_wall_ns
        if sent is None:
            sent = self._property_time(message)
        if sent is not None:
            now = self.device.clock.wall_ns()
            started = self.device.stats.started_wall_ns
            if sent < started or now - sent > self._config.commands.max_age_s * NS_PER_S:
                self._report(
                    topic,
                    text,
                    "ignored",
                    "stale command (sent before the device started or too long ago)",
                )
                return
        refusal = self._refusal(kind, ident)
        if refusal is not None:
            self._report(topic, text, "refused", refusal)
            return
        cause = Cause("mqtt", detail=topic)
        try:
            self._execute(kind, ident, command, cause)
        except DeviceError as exc:
            self._report(topic, text, "error", str(exc))
            return
        except ValueError as exc:
            self._report(topic, text, "error", str(exc))
            return
        self.commands_done += 1
        self._log_command(topic, text, "done", None)

    @staticmethod
    def _property_time(message: aiomqtt.Message) -> int | None:
        props = message.properties
        pairs = getattr(props, "UserProperty", None) if props is not None else None
        for name, value in pairs or []:
            if name in ("time", "ts"):
                parsed = value
                with contextlib.suppress(ValueError):
                    parsed = float(value)
                return parse_time(parsed)
        return None

    def _refusal(self, kind: str, ident: str) -> str | None:
        commands = self._config.commands
        allowed, target = {
            "output": (commands.outputs, ident),
            "vinput": (commands.virtual_inputs, f"vinput/{ident}"),
            "manual": (commands.manual_trigger, "manual"),
            "rule": (commands.rules, f"rule/{ident}"),
        }[kind]
        if not allowed:
            return f"mqtt.commands does not allow {kind} commands"
        if target in commands.deny:
            return f"mqtt.commands.deny lists {target!r}"
        return None

    def _execute(self, kind: str, ident: str, command: Command, cause: Cause) -> None:
        device = self.device
        action, ms = command.action, command.duration_ms
        if kind == "output":
            if action == "pulse":
                device.trigger_output(ident, cause, duration_ms=ms)
            else:
                device.set_output(ident, action == "on", cause)
        elif kind == "vinput":
            if not ident.isdigit():
                raise ValueError(f"no virtual input {ident!r}")
            number = int(ident)
            if action == "pulse":
                if ms is None:
                    device.set_virtual_input(number, True, cause)
                    device.set_virtual_input(number, False, cause)
                else:
                    device.set_virtual_input(number, True, cause, duration_ms=ms)
            else:
                device.set_virtual_input(number, action == "on", cause)
        elif kind == "manual":
            if action == "pulse":
                if ms is None:
                    device.pulse_manual_trigger(cause)
                else:
                    steps = [StateStep(active=True, duration_ms=min(ms, 3_600_000))]
                    steps.append(StateStep(active=False, duration_ms=0))
                    device.run_manual_trigger_sequence(steps, cause)
            else:
                device.set_manual_trigger(action == "on", cause)
        else:
            device.test_rule(ident, cause)

    def _report(self, topic: str, payload: str, result: str, reason: str) -> None:
        if result == "ignored":
            self.commands_ignored += 1
        else:
            self.commands_refused += 1
        _LOGGER.warning("mqtt: command on %s %s: %s", topic, result, reason)
        if self._command_gate.allow("command"):
            self._log_command(topic, payload, result, reason)

    def _log_command(self, topic: str, payload: str, result: str, reason: str | None) -> None:
        self.device.publish(
            COMMAND_TOPIC,
            topic,
            {"topic": topic, "payload": payload, "result": result, "reason": reason},
            stateful=False,
            cause=Cause("mqtt", detail=topic),
        )

    # -- status and the acknowledged-event memory --------------------------------------------

    def status(self) -> dict[str, Any]:
        cfg = self._config
        return {
            "enabled": cfg.enabled,
            "state": self.state,
            "broker": f"{cfg.host}:{cfg.port}",
            "protocol": cfg.protocol,
            "tls": cfg.tls.enabled,
            "client_id": cfg.client_id or f"camio-{self._layout.node}",
            "node_id": self._layout.node,
            "topic_prefix": cfg.topic_prefix,
            "username": cfg.username,
            "password": "********" if cfg.password else None,
            "since": iso_utc(self.since_wall_ns),
            "last_error": self.last_error,
            "next_retry_s": self.next_retry_s,
            "connects": self.connects,
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "messages_dropped": self.messages_dropped,
            "commands_done": self.commands_done,
            "commands_refused": self.commands_refused,
            "commands_ignored": self.commands_ignored,
            "acked_event_id": self.acked_id,
            "replayed_events": self.replayed,
            "subscriptions": dict(sorted(self.subscriptions.items())),
            "condition_filters": sorted(self._filters),
            "discovery_entities": len(self._discovery),
        }

    def _load_watermark(self) -> int:
        current = self.device.last_event_id
        path = self._state_file
        if path is None or not path.exists():
            return current
        try:
            doc = json.loads(path.read_text())
            value = int(doc["acked_event_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return current
        return min(value, current)

    def _save_watermark(self) -> None:
        path = self._state_file
        if path is None:
            return
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text(json.dumps({"acked_event_id": self.acked_id}))
            os.replace(tmp, path)
        except OSError as exc:
            _LOGGER.error("mqtt: cannot save %s: %s", path, exc)


__all__ = ["MqttService", "backoff_delay"]
