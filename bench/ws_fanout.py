"""WebSocket event-stream fan-out, and what one client that stops reading costs the others.

The daemon is a real ``camio run`` subprocess (pinned to one core on a machine with two). The
clients run in another process (``python -m bench.ws_fanout``, pinned to the other core): 500
WebSocket connections to ``/api/v1/events/stream?topic=io/output&initial=0`` with HTTP Basic
on the handshake. They are minimal asyncio protocols (handshake, unmasked server frames, pong,
close) rather than aiohttp clients, so that a message is timestamped when its bytes reach the
client process and the figure is the daemon's, not the clients' parsing of 500 messages.

Fan-out: ``out1`` is switched through ``PUT /api/v1/ports/out1/state`` 20 times, 200 ms apart.
The delay of one delivery is the receive time at the client (``time.time_ns()``) minus the
event's ``time`` (the daemon's wall clock when it stamped the change, same machine); every
client must receive every change.

Slow consumer: with the 500 still connected, one more client subscribes to
``topic=io/virtual_input`` and never reads (its socket is no longer read after the handshake),
next to four "witness" clients on the same topic that read everything. Virtual inputs are then
toggled through the API as fast as 8 connections go, until the daemon has dropped the slow
client (its socket is gone from the daemon's descriptors) or 150,000 events. The burst is on a
topic the 500 do not subscribe to, so that it costs the daemon what a burst costs, not 500
copies of it; meanwhile ``out1`` still changes every 100 ms and the 500 are timed during the
burst (under the burst's API load, which shares the daemon's core and the clients' core), and
again with 20 spaced changes after it. RSS is read before the slow client connects and after
the burst; then a second slow client goes through the same, to tell a high-water mark (memory
the daemon reuses) from growth per slow client. Finally the slow client reads again, to see
how its stream ended.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import gc
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.daemon import OtherLoad, basic_auth, camio_daemon, client_preexec, raise_nofile
from bench.footprint import _proc_cpu_s

CLIENTS = 500
CHANGES = 20
SPACING_S = 0.2
WITNESSES = 4
BURST_WORKERS = 8
BURST_MAX_EVENTS = 150_000
BURST_PROBE_S = 0.1
OUTPUT_STREAM = "/api/v1/events/stream?topic=io/output&initial=0"
BURST_STREAM = "/api/v1/events/stream?topic=io/virtual_input&initial=0"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def event_time_ns(iso: str) -> int:
    stamp = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return (stamp - _EPOCH) // dt.timedelta(microseconds=1) * 1000


# -- a minimal WebSocket client -----------------------------------------------------------------


@dataclass
class WsClient(asyncio.Protocol):
    """RFC 6455 client side: handshake, frames from the server (never masked), masked replies.

    ``messages`` holds (receive time in ns, payload) of every text frame; ``stall`` stops
    reading the socket right after the handshake (a consumer that stops reading).
    """

    host: str
    path: str
    stall: bool = False
    keep: bool = True
    messages: list[tuple[int, bytes]] = field(default_factory=list)
    count: int = 0
    close_code: int | None = None
    lost: BaseException | None = None
    closed: bool = False
    _buffer: bytearray = field(default_factory=bytearray)
    _upgraded: bool = False
    transport: asyncio.Transport | None = None
    ready: asyncio.Future[None] | None = None
    done: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        loop = asyncio.get_running_loop()
        self.ready, self.done = loop.create_future(), loop.create_future()
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: {basic_auth()}\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        buf = self._buffer
        buf += data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            del buf[: end + 4]
            assert self.ready is not None
            if b" 101 " not in status:
                self.ready.set_exception(RuntimeError(f"handshake refused: {status!r}"))
                return
            self._upgraded = True
            self.ready.set_result(None)
            if self.stall:
                assert self.transport is not None
                self.transport.pause_reading()
                return
        while len(buf) >= 2:
            opcode, size = buf[0] & 0x0F, buf[1] & 0x7F
            head = 2
            if size == 126:
                if len(buf) < 4:
                    return
                size, head = struct.unpack_from("!H", buf, 2)[0], 4
            elif size == 127:
                if len(buf) < 10:
                    return
                size, head = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < head + size:
                return
            payload = bytes(buf[head : head + size])
            del buf[: head + size]
            if opcode == 0x1:
                self.count += 1
                if self.keep:
                    self.messages.append((now, payload))
            elif opcode == 0x9:
                self._send(0xA, payload)  # pong, so the daemon's heartbeat is answered
            elif opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if payload else 1005
                self._send(0x8, payload[:2])
                assert self.transport is not None
                self.transport.close()

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert self.transport is not None
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed, self.lost = True, exc
        for fut in (self.ready, self.done):
            if fut is not None and not fut.done():
                fut.set_result(None)

    def local_port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])


async def connect(port: int, path: str, **kwargs: Any) -> WsClient:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: WsClient(f"127.0.0.1:{port}", path, **kwargs), "127.0.0.1", port
    )
    assert client.ready is not None
    await asyncio.wait_for(client.ready, 10)
    if client.closed:
        raise RuntimeError("the daemon closed the stream during the handshake")
    return client


# -- what the daemon holds -----------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def daemon_holds(pid: int, daemon_port: int, peer_port: int) -> bool:
    """Whether the daemon still has a descriptor for its end of the connection to ``peer_port``."""
    inodes = set()
    with open("/proc/net/tcp") as handle:
        for line in handle.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (
                int(local.split(":")[1], 16) == daemon_port
                and int(remote.split(":")[1], 16) == peer_port
            ):
                inodes.add(fields[9])
    if not inodes:
        return False
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(target[8:-1])
    return bool(inodes & held)


# -- the client process ---------------------------------------------------------------------------


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[max(0, int(len(sorted_values) * q) - 1)]


def delays_ms(clients: list[WsClient], start: int = 0) -> tuple[list[float], set[int], bool]:
    """Delivery delays of every message after index ``start`` at every client; the event ids;
    whether every client got exactly the same events."""
    times: dict[bytes, tuple[int, int]] = {}
    delays: list[float] = []
    per_client: list[list[int]] = []
    for client in clients:
        ids = []
        for recv_ns, payload in client.messages[start:]:
            if payload not in times:
                event = json.loads(payload)
                times[payload] = (event["id"], event_time_ns(event["time"]))
            event_id, stamp = times[payload]
            ids.append(event_id)
            delays.append((recv_ns - stamp) / 1e6)
        per_client.append(ids)
    ids_all = {i for ids in per_client for i in ids}
    same = all(ids == sorted(ids_all) for ids in per_client)
    return sorted(delays), ids_all, same


class Runner:
    def __init__(self, port: int, pid: int) -> None:
        import aiohttp

        self.port, self.pid = port, pid
        self.base = f"http://127.0.0.1:{port}"
        self.session = aiohttp.ClientSession(
            headers={"Authorization": basic_auth()},
            connector=aiohttp.TCPConnector(limit=BURST_WORKERS + 2),
        )
        self.active = False

    async def put(self, path: str, body: dict[str, Any]) -> None:
        async with self.session.put(self.base + path, json=body) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"PUT {path}: {resp.status}")

    async def toggle_output(self) -> None:
        self.active = not self.active
        await self.put("/api/v1/ports/out1/state", {"active": self.active})

    async def wait_counts(self, clients: list[WsClient], count: int, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if all(c.count >= count for c in clients):
                return True
            await asyncio.sleep(0.005)
        return False

    async def spaced_changes(self, clients: list[WsClient], changes: int) -> dict[str, Any]:
        start = min(c.count for c in clients)
        cpu_before = _proc_cpu_s(self.pid)
        for n in range(changes):
            await self.toggle_output()
            if not await self.wait_counts(clients, start + n + 1, 10):
                break
            await asyncio.sleep(SPACING_S)
        cpu_ms = (_proc_cpu_s(self.pid) - cpu_before) * 1000 / changes
        delays, ids, same = delays_ms(clients, start)
        return {
            "cpu_ms": cpu_ms,
            "p50": statistics.median(delays),
            "p99": _percentile(delays, 0.99),
            "max": delays[-1],
            "all_delivered": same and len(ids) == changes,
        }

    async def run(self, clients_n: int, changes: int) -> dict[str, Any]:
        port = self.port
        # 500 connections, 50 handshakes at a time (the daemon's listen backlog is finite).
        gate = asyncio.Semaphore(50)

        async def one() -> WsClient:
            async with gate:
                return await connect(port, OUTPUT_STREAM)

        async with self.session.get(self.base + "/api/v1/ports/out1") as resp:
            self.active = bool((await resp.json())["active"])
        began = time.perf_counter()
        clients = list(await asyncio.gather(*(one() for _ in range(clients_n))))
        connect_s = time.perf_counter() - began
        # Warm-up: one change that every client receives (and so is subscribed).
        await self.toggle_output()
        if not await self.wait_counts(clients, 1, 10):
            raise RuntimeError("not every client received the warm-up change")
        await asyncio.sleep(SPACING_S)
        fanout = await self.spaced_changes(clients, changes)
        results: dict[str, Any] = {
            "ws_clients": clients_n,
            "ws_changes": changes,
            "ws_connect_s": round(connect_s, 2),
            "ws_fanout_p50_ms": round(fanout["p50"], 2),
            "ws_fanout_p99_ms": round(fanout["p99"], 2),
            "ws_fanout_max_ms": round(fanout["max"], 2),
            "ws_all_delivered": fanout["all_delivered"],
            "ws_fanout_daemon_cpu_ms_per_change": round(fanout["cpu_ms"], 1),
        }
        first = await self.slow_consumer(clients, changes)
        # A second slow client, cut the same way: does the daemon grow again, or was the first
        # round's growth a high-water mark (allocator arenas, SQLite cache) that it reuses?
        second = await self.slow_consumer(clients, changes)
        results.update(first)
        results["ws_slow_client_disconnected"] = (
            first["ws_slow_client_disconnected"] and second["ws_slow_client_disconnected"]
        )
        results["ws_rss_after_second_mb"] = second["ws_rss_after_mb"]
        results["ws_rss_growth_second_mb"] = round(
            second["ws_rss_after_mb"] - first["ws_rss_after_mb"], 1
        )
        for client in clients:
            assert client.transport is not None
            client.transport.close()
        await self.session.close()
        return results

    async def slow_consumer(self, clients: list[WsClient], changes: int) -> dict[str, Any]:
        gc.collect()
        await asyncio.sleep(1.0)
        rss_before = rss_mb(self.pid)
        slow = await connect(self.port, BURST_STREAM, stall=True, keep=False)
        witnesses = [await connect(self.port, BURST_STREAM) for _ in range(WITNESSES)]
        slow_port = slow.local_port()
        if not daemon_holds(self.pid, self.port, slow_port):
            raise RuntimeError("cannot see the slow client's connection in the daemon")
        before = [c.count for c in clients]
        published = 0
        stop = asyncio.Event()
        dropped_after: int | None = None
        peak = rss_before

        async def worker(number: int) -> None:
            nonlocal published
            active = False
            while not stop.is_set() and published < BURST_MAX_EVENTS:
                active = not active
                await self.put(f"/api/v1/virtual-inputs/{number}", {"active": active})
                published += 1

        async def watch() -> None:
            nonlocal dropped_after, peak
            while not stop.is_set():
                peak = max(peak, rss_mb(self.pid))
                if not daemon_holds(self.pid, self.port, slow_port):
                    dropped_after = published
                    stop.set()
                    return
                if published >= BURST_MAX_EVENTS:
                    return
                await asyncio.sleep(0.05)

        async def probe() -> None:
            while not stop.is_set() and published < BURST_MAX_EVENTS:
                await self.toggle_output()
                await asyncio.sleep(BURST_PROBE_S)

        began = time.perf_counter()
        tasks = [asyncio.ensure_future(worker(n + 1)) for n in range(BURST_WORKERS)]
        watcher = asyncio.ensure_future(watch())
        prober = asyncio.ensure_future(probe())
        await asyncio.gather(*tasks)
        burst_s = time.perf_counter() - began
        stop.set()
        await asyncio.gather(watcher, prober)
        # Everything published must reach the clients that read.
        delivered = await self.wait_counts(witnesses, published, 30)
        witness_ids = [[json.loads(p)["id"] for _, p in w.messages] for w in witnesses]
        in_order = all(ids == sorted(ids) and len(set(ids)) == len(ids) for ids in witness_ids)
        during = [c.count - b for c, b in zip(clients, before, strict=True)]
        probes = min(during)
        await self.wait_counts(clients, max(during), 10)
        delays, _, same = delays_ms(clients, min(before))
        # The daemon may take a moment after the burst (without the fix: forever).
        deadline = time.monotonic() + 10
        while dropped_after is None and time.monotonic() < deadline:
            if not daemon_holds(self.pid, self.port, slow_port):
                dropped_after = published
            await asyncio.sleep(0.05)
        gc.collect()
        await asyncio.sleep(1.0)
        rss_after = rss_mb(self.pid)
        after = await self.spaced_changes(clients, changes)
        # The slow client reads again: how did its stream end?
        assert slow.transport is not None
        slow.transport.resume_reading()
        assert slow.done is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(slow.done, 15)
        if slow.close_code is not None:
            ending = f"close {slow.close_code}"
        elif slow.closed:
            ending = f"connection lost ({type(slow.lost).__name__ if slow.lost else 'EOF'})"
        else:
            ending = "still open"
        for client in [slow, *witnesses]:
            if client.transport is not None:
                client.transport.close()
        return {
            "ws_slow_client_disconnected": dropped_after is not None,
            "ws_slow_burst_events": published,
            "ws_slow_dropped_after_events": dropped_after,
            "ws_slow_burst_events_per_s": round(published / burst_s),
            "ws_slow_client_received": slow.count,
            "ws_slow_client_ending": ending,
            "ws_burst_witnesses_all_delivered": delivered and in_order,
            "ws_burst_witnesses_cut": sum(w.closed for w in witnesses),
            "ws_fanout_during_burst_p99_ms": round(_percentile(delays, 0.99), 2),
            "ws_fanout_during_burst_max_ms": round(delays[-1], 2),
            "ws_fanout_during_burst_changes": probes,
            "ws_fanout_during_burst_all_delivered": same,
            "ws_fanout_after_slow_p99_ms": round(after["p99"], 2),
            "ws_fanout_after_slow_all_delivered": after["all_delivered"],
            "ws_rss_before_mb": round(rss_before, 1),
            "ws_rss_peak_mb": round(peak, 1),
            "ws_rss_after_mb": round(rss_after, 1),
            "ws_rss_growth_mb": round(rss_after - rss_before, 1),
        }


async def _client_main(port: int, pid: int, clients: int, changes: int) -> dict[str, Any]:
    runner = Runner(port, pid)
    return await runner.run(clients, changes)


def ws_fanout(clients: int = CLIENTS, changes: int = CHANGES) -> dict[str, Any]:
    """Fan-out delay to ``clients`` WebSocket clients, then the slow-consumer run."""
    with camio_daemon(nofile=clients * 2 + 256) as daemon:
        others = OtherLoad(daemon.proc.pid)
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.ws_fanout",
                str(daemon.port),
                str(daemon.proc.pid),
                str(clients),
                str(changes),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            preexec_fn=client_preexec(nofile=clients * 2 + 256),
        )
        if out.returncode != 0:
            raise RuntimeError(f"WebSocket client process failed:\n{out.stderr[-3000:]}")
        other_load = others.percent()
    result: dict[str, Any] = json.loads(out.stdout)
    result["ws_other_cpu_percent"] = round(other_load)
    return result


if __name__ == "__main__":
    raise_nofile(int(sys.argv[3]) * 2 + 256)
    socket.setdefaulttimeout(10)
    args = [int(a) for a in sys.argv[1:5]]
    print(json.dumps(asyncio.run(_client_main(*args))))
