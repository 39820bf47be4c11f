"""Fixtures for the video worker tests: a worker subprocess that is always reaped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from workerproc import PATTERN, WorkerProcess


@pytest.fixture
def worker() -> Iterator[WorkerProcess]:
    started: list[WorkerProcess] = []
    process = WorkerProcess()
    started.append(process)
    try:
        yield process
    finally:
        for item in started:
            if item.proc.poll() is None:
                item.proc.kill()
                item.proc.wait()


@pytest.fixture
def pattern_worker(worker: WorkerProcess) -> WorkerProcess:
    """A worker on the test pattern (320x180, 10 fps, 1 s GOP, 3 s pre-buffer), connected."""
    worker.ok("open", source="test", pre_buffer_s=3, test_pattern=PATTERN, snapshot_quality=4)
    worker.event(lambda e: e["event"] == "source" and e["state"] == "connected")
    return worker
