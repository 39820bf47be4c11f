"""The video worker: ``python -m camio.video.worker``, driven over stdin/stdout.

One JSON command per stdin line, exactly one JSON reply per command on stdout, unsolicited
``event`` lines in between, logs on stderr (protocol: docs/video.md). The daemon never
imports PyAV; this process owns the source, the ring, the recordings and the snapshots, so a
crash in FFmpeg costs a worker restart, not the alarm I/O.

Threads: the source runner thread pushes packets (ring, live recordings); commands run in the
main thread; each finished recording is closed in a short-lived thread (the ``+faststart``
rewrite of a long file takes a while). ``_lock`` guards the shared state; ``_out`` keeps
lines whole on stdout.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import threading
from typing import Any, TextIO

from camio.video.recorder import RecordError, Recording, Result
from camio.video.ring import Entry, PacketRing
from camio.video.snapshot import Decoder, encode_jpeg, write_atomically
from camio.video.source import SourceRunner, SourceSpec, StreamInfo, redact
from camio.video.testpattern import PatternSpec

log = logging.getLogger("camio.video.worker")

PROTOCOL_VERSION = 1
DEFAULT_MAX_RECORD_S = 600.0


class CommandError(Exception):
    """A command cannot be carried out; the message goes back as ``error``."""


def _number(cmd: dict[str, Any], name: str, default: float | None, low: float = 0.0) -> float:
    value = cmd.get(name, default)
    if value is None:
        if default is None:
            raise CommandError(f"missing field {name!r}")
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CommandError(f"{name!r} must be a number")
    if value < low:
        raise CommandError(f"{name!r} must be at least {low:g}")
    return float(value)


def _optional_number(cmd: dict[str, Any], name: str) -> float | None:
    if cmd.get(name) is None:
        return None
    return _number(cmd, name, None)


def _text(cmd: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = cmd.get(name)
    if value is None:
        if required:
            raise CommandError(f"missing field {name!r}")
        return None
    if not isinstance(value, str):
        raise CommandError(f"{name!r} must be a string")
    return value


def _path(cmd: dict[str, Any]) -> str:
    path = _text(cmd, "path")
    assert path is not None
    if not os.path.isabs(path):
        raise CommandError(f"'path' must be absolute, got {path!r}")
    return path


def _os_error(error: OSError) -> str:
    if error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return str(error)


class Worker:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._out_lock = threading.Lock()
        self._lock = threading.Lock()
        self._generation = 0
        self._runner: SourceRunner | None = None
        self._spec: SourceSpec | None = None
        self._state = "connecting"
        self._info: StreamInfo | None = None
        self._error: str | None = None
        self._ring = PacketRing(10.0)
        self._recordings: dict[str, Recording] = {}
        self._finishers: list[threading.Thread] = []
        self._overlay: str | None = None
        self._quality = 5
        self._max_record_s = DEFAULT_MAX_RECORD_S
        self._decoder: Decoder | None = None
        self._announce = False  # a source opened; "connected" is sent at its first keyframe

    # -- output ---------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"))
        with self._out_lock:
            self._out.write(line + "\n")
            self._out.flush()

    # -- source callbacks (runner thread) ---------------------------------------------------

    def on_connected(self, generation: int, info: StreamInfo) -> None:
        """The source opened; it counts as connected at its first keyframe (see on_packet),
        so "connected" always means a snapshot or a recording can be made."""
        with self._lock:
            if generation != self._generation:
                return
            self._info = info
            self._error = None
            self._ring.clear()
            self._decoder = None
            self._announce = True

    def _announce_connected(self, info: StreamInfo) -> None:
        log.info(
            "source connected: %s %dx%d %.3g fps", info.codec, info.width, info.height, info.fps
        )
        self.send(
            {
                "event": "source",
                "state": "connected",
                "codec": info.codec,
                "width": info.width,
                "height": info.height,
                "fps": info.fps,
            }
        )

    def on_packet(self, generation: int, entry: Entry) -> None:
        announce: StreamInfo | None = None
        with self._lock:
            if generation != self._generation:
                return
            self._ring.push(entry)
            if self._announce and entry.key and self._ring.newest is not None:
                self._announce = False
                self._state = "connected"
                announce = self._info
            for record_id, recording in list(self._recordings.items()):
                if not recording.write(entry):
                    self._end(record_id)
        if announce is not None:
            self._announce_connected(announce)

    def on_lost(self, generation: int, error: str) -> None:
        with self._lock:
            if generation != self._generation:
                return
            was = self._state
            self._state = "lost"
            self._error = error
            self._ring.clear()
            self._decoder = None
            for record_id in list(self._recordings):
                self._end(record_id)
        if was != "lost":
            log.warning("source lost: %s", error)
            self.send({"event": "source", "state": "lost", "error": error})

    # -- recordings -----------------------------------------------------------------------

    def _end(self, record_id: str) -> None:
        """Take a recording out of the live set and finish its file in the background.

        Called with ``_lock`` held.
        """
        recording = self._recordings.pop(record_id)
        recording.done = True
        thread = threading.Thread(
            target=self._finish, args=(recording,), name=f"finish-{record_id}", daemon=True
        )
        self._finishers = [t for t in self._finishers if t.is_alive()]
        self._finishers.append(thread)
        thread.start()

    def _finish(self, recording: Recording) -> None:
        result: Result = recording.finish()
        event: dict[str, Any] = {
            "event": "recorded",
            "record_id": recording.record_id,
            "ok": result.ok,
            "path": result.path,
            "start_time": round(result.start_time, 3),
            "end_time": round(result.end_time, 3),
        }
        if result.ok:
            event.update(
                duration_s=round(result.duration_s, 3), frames=result.frames, bytes=result.bytes
            )
        else:
            event["error"] = result.error
            log.warning("recording %s failed: %s", recording.record_id, result.error)
        self.send(event)

    def _end_all(self) -> None:
        with self._lock:
            for record_id in list(self._recordings):
                self._end(record_id)
            finishers = list(self._finishers)
        for thread in finishers:
            thread.join()

    # -- commands (main thread) -----------------------------------------------------------

    def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op = cmd.get("op")
        handler = getattr(self, f"op_{op}", None) if isinstance(op, str) else None
        if handler is None:
            raise CommandError(f"unknown op {op!r}")
        result: dict[str, Any] = handler(cmd)
        return result

    def _now(self) -> float:
        newest = self._ring.newest
        if newest is None:
            raise CommandError(f"no video: the source is {self._state}")
        return newest.time

    def op_open(self, cmd: dict[str, Any]) -> dict[str, Any]:
        source = _text(cmd, "source")
        assert source is not None
        options = cmd.get("options") or {}
        if not isinstance(options, dict):
            raise CommandError("'options' must be an object")
        pre_buffer = _number(cmd, "pre_buffer_s", 10.0)
        if pre_buffer > 60:
            raise CommandError("'pre_buffer_s' must be at most 60")
        pattern = cmd.get("test_pattern") or {}
        if not isinstance(pattern, dict):
            raise CommandError("'test_pattern' must be an object")
        try:
            spec = PatternSpec(
                width=int(pattern.get("width", 640)) // 2 * 2,
                height=int(pattern.get("height", 360)) // 2 * 2,
                fps=int(pattern.get("fps", 10)),
                gop_s=float(pattern.get("gop_s", 2.0)),
            )
        except (TypeError, ValueError) as error:
            raise CommandError(f"bad 'test_pattern': {error}") from error
        if spec.width < 64 or spec.height < 64 or not 1 <= spec.fps <= 60 or spec.gop_s <= 0:
            raise CommandError("'test_pattern' needs width/height >= 64, fps 1-60, gop_s > 0")
        quality = int(_number(cmd, "snapshot_quality", 5, 2))
        if quality > 31:
            raise CommandError("'snapshot_quality' must be 2-31")
        max_record = _number(cmd, "max_record_s", DEFAULT_MAX_RECORD_S, 1)
        self._end_all()
        with self._lock:
            if self._runner is not None:
                self._runner.stop()
            self._generation += 1
            self._spec = SourceSpec(source, {str(k): str(v) for k, v in options.items()}, spec)
            self._state = "connecting"
            self._info = None
            self._error = None
            self._ring = PacketRing(pre_buffer)
            self._decoder = None
            self._quality = quality
            self._max_record_s = max_record
            self._runner = SourceRunner(self._spec, self, self._generation)
            self._runner.start()
        return {}

    def op_status(self, cmd: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            info = self._info
            ring = self._ring
            span = ring.span_s
            newest = ring.newest
            return {
                "state": self._state,
                "source": redact(self._spec.source) if self._spec else None,
                "codec": info.codec if info else None,
                "width": info.width if info else None,
                "height": info.height if info else None,
                "fps": info.fps if info else None,
                "ring_s": round(span, 3),
                "ring_packets": len(ring),
                "ring_bytes": ring.bytes,
                "bitrate_bps": round(ring.bytes * 8 / span) if span > 0 else 0,
                "time": round(newest.time, 3) if newest else None,
                "frame": newest.index if newest else None,
                "recordings": sorted(self._recordings),
                "overlay": self._overlay,
                "error": self._error,
            }

    def op_overlay(self, cmd: dict[str, Any]) -> dict[str, Any]:
        text = _text(cmd, "text", required=False)
        with self._lock:
            self._overlay = text
            newest = self._ring.newest
            if newest is not None:
                for recording in self._recordings.values():
                    recording.set_overlay(text, newest.time)
        return {"overlay": text}

    def op_snapshot(self, cmd: dict[str, Any]) -> dict[str, Any]:
        path = _path(cmd)
        extra = _text(cmd, "overlay", required=False)
        with self._lock:
            gop = self._ring.last_gop()
            info = self._info
            if info is None or not gop:
                raise CommandError(f"no video: the source is {self._state}")
            if self._decoder is None:
                self._decoder = Decoder(info.codec)
            decoder = self._decoder
            lines = [line for line in (self._overlay, extra) if line]
            quality = self._quality
        try:
            frame, entry = decoder.latest(gop)
        except LookupError as error:
            raise CommandError(str(error)) from error
        data = encode_jpeg(frame, quality, lines)
        try:
            write_atomically(path, data)
        except OSError as error:
            raise CommandError(_os_error(error)) from error
        return {
            "path": path,
            "width": frame.width,
            "height": frame.height,
            "bytes": len(data),
            "source_time": round(entry.time, 3),
            "frame": entry.index,
        }

    def op_record(self, cmd: dict[str, Any]) -> dict[str, Any]:
        record_id = _text(cmd, "id")
        assert record_id is not None
        path = _path(cmd)
        pre_s = _number(cmd, "pre_s", 0.0)
        post_s = _optional_number(cmd, "post_s")
        with self._lock:
            max_s = _number(cmd, "max_s", self._max_record_s, 0.1)
            if record_id in self._recordings:
                raise CommandError(f"recording {record_id!r} is already running")
            now = self._now()
            info = self._info
            assert info is not None
            entries = self._ring.from_time(now - pre_s)
            try:
                recording = Recording(
                    record_id,
                    path,
                    info,
                    entries,
                    trigger_time=now,
                    end_time=None if post_s is None else now + post_s,
                    max_s=max_s,
                    overlay=self._overlay,
                )
            except RecordError as error:
                raise CommandError(str(error)) from error
            self._recordings[record_id] = recording
            return {
                "record_id": record_id,
                "start_time": round(recording.start_time, 3),
                "trigger_time": round(now, 3),
            }

    def _recording(self, cmd: dict[str, Any]) -> Recording:
        record_id = _text(cmd, "record_id")
        assert record_id is not None
        recording = self._recordings.get(record_id)
        if recording is None:
            raise CommandError(f"recording {record_id!r} is not running (ended or unknown)")
        return recording

    def op_extend(self, cmd: dict[str, Any]) -> dict[str, Any]:
        post_s = _number(cmd, "post_s", None)
        with self._lock:
            recording = self._recording(cmd)
            end = self._now() + post_s
            if recording.end_time is None:  # open-ended: it runs until stop (or max_s)
                return {"end_time": None}
            recording.end_time = max(recording.end_time, end)
            return {"end_time": round(min(recording.end_time, recording.max_end), 3)}

    def op_stop(self, cmd: dict[str, Any]) -> dict[str, Any]:
        post_s = _number(cmd, "post_s", 0.0)
        with self._lock:
            recording = self._recording(cmd)
            end = self._now() + post_s
            recording.end_time = end
            if post_s <= 0:
                self._end(recording.record_id)
            return {"end_time": round(end, 3)}

    def op_close(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self._end_all()
        with self._lock:
            if self._runner is not None:
                self._runner.stop()
        return {}

    # -- main loop ------------------------------------------------------------------------

    def serve(self, stdin: TextIO) -> None:
        for raw in stdin:
            line = raw.strip()
            if not line:
                continue
            op: Any = None
            cid: Any = None
            try:
                cmd = json.loads(line)
                if not isinstance(cmd, dict):
                    raise CommandError("a command must be a JSON object")
                op, cid = cmd.get("op"), cmd.get("id")
                if not isinstance(cid, str):
                    raise CommandError("missing field 'id' (a string)")
                reply = {"re": op, "id": cid, "ok": True, **self.handle(cmd)}
            except json.JSONDecodeError as error:
                reply = {"re": None, "id": None, "ok": False, "error": f"malformed JSON: {error}"}
            except CommandError as error:
                reply = {"re": op, "id": cid, "ok": False, "error": str(error)}
            except Exception as error:  # a bug must not kill the worker: report it
                log.exception("command %r failed", op)
                reply = {"re": op, "id": cid, "ok": False, "error": f"internal error: {error}"}
            self.send(reply)
            if op == "close" and reply["ok"]:
                return
        # EOF on stdin: the daemon is gone; finish the files like ``close``.
        self.op_close({})


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("CAMIO_VIDEO_LOG", "INFO"),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    worker = Worker(sys.stdout)
    worker.serve(sys.stdin)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: a source thread may sit in FFmpeg; the files are complete.
    os._exit(0)


if __name__ == "__main__":
    main()
