"""Outbox benchmark: 1,000 queued e-mail deliveries drained to a local SMTP sink.

The real path: a Device with the SQLite event log and the SQLite outbox in a temporary data
directory, the real clock, the e-mail sender (aiosmtplib, one SMTP session per delivery, as in
the daemon) and an aiosmtpd server on 127.0.0.1 running in its own thread. Every delivery is
persisted by :meth:`Device.enqueue`, then the outbox sends them one at a time (one attempt per
recipient at a time); the figure runs from the first enqueue to the last message received by
the sink. The sink checks that each idempotency key (``X-Camio-Delivery``) arrived exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

import camio.recipients  # noqa: F401  (registers recipient kinds)
from camio.core.clock import SystemClock
from camio.core.config import DeviceConfig
from camio.core.events import Event, Topic
from camio.engine.device import Device
from camio.hardware.sim import SimDriver
from camio.recipients.base import Delivery
from camio.store.db import open_database
from camio.store.outbox import OutboxStore
from camio.store.persistence import StorePersistence

_KEY = re.compile(rb"^X-Camio-Delivery: *(\S+)", re.MULTILINE | re.IGNORECASE)


class _Sink:
    """Counts the messages and their delivery keys (aiosmtpd's thread writes, ours reads)."""

    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()
        self.messages = 0
        self.lock = threading.Lock()
        self.all_in = threading.Event()
        self.expected = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        match = _KEY.search(data)
        with self.lock:
            self.messages += 1
            self.keys[match.group(1).decode() if match else ""] += 1
            if self.messages >= self.expected:
                self.all_in.set()
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def outbox_drain(deliveries: int = 1000) -> dict[str, Any]:
    sink = _Sink()
    sink.expected = deliveries
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with tempfile.TemporaryDirectory(prefix="camio-bench-outbox-") as tmp:
            return await _drain(sink, port, Path(tmp), deliveries)
    finally:
        controller.stop()


async def _drain(sink: _Sink, port: int, data_dir: Path, deliveries: int) -> dict[str, Any]:
    config = DeviceConfig.model_validate(
        {
            "recipients": [
                {
                    "kind": "email",
                    "id": "mail",
                    "name": "Mail",
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "from_address": "camera@example.com",
                    "to": ["guard@example.com"],
                    "timeout": 10,
                }
            ]
        }
    )
    clock = SystemClock()
    conn = open_database(data_dir / "camio.db")
    persistence = StorePersistence(
        conn, max_events=1_000_000, max_age_s=86_400, wall_clock=clock.wall_ns
    )
    device = Device(
        config,
        driver=SimDriver(),
        clock=clock,
        persistence=persistence,
        outbox_store=OutboxStore(conn),
    )
    done = asyncio.Event()
    finished = Counter[str]()

    def on_event(event: Event) -> None:
        if event.topic in (Topic.OUTBOX_DELIVERED, Topic.OUTBOX_FAILED):
            finished[event.topic] += 1
            if sum(finished.values()) >= deliveries:
                done.set()

    device.bus.subscribe(on_event)
    device.start()
    store = device.outbox.store
    try:
        start = time.perf_counter()
        for n in range(deliveries):
            device.enqueue(
                Delivery(
                    key=f"bench-{n}-mail",
                    recipient_id="mail",
                    subject=f"Alarm {n}: door opened",
                    body=f"Input in1 went active (event {n}).",
                    event={"id": n, "topic": "io/input", "source": "in1"},
                )
            )
        enqueued = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 300)
        drained = time.perf_counter()
        # The sink may see the last message a moment before the outbox commits it (or after).
        await asyncio.to_thread(sink.all_in.wait, 10)
        delivered = store.count("delivered")
    finally:
        device.stop()
        device.flush()
        conn.close()
    with sink.lock:
        keys = dict(sink.keys)
        received = sink.messages
    expected_keys = {f"bench-{n}-mail" for n in range(deliveries)}
    once = set(keys) == expected_keys and all(v == 1 for v in keys.values())
    drain_s = drained - start
    return {
        "outbox_deliveries": deliveries,
        "outbox_enqueue_s": round(enqueued - start, 4),
        "outbox_drain_s": round(drain_s, 3),
        "outbox_deliveries_per_s": round(delivered / drain_s, 1),
        "outbox_received": received,
        "outbox_all_delivered": bool(delivered == deliveries and received == deliveries and once),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(asyncio.run(outbox_drain()), indent=2))
