"""Shared fixtures: ``camio run`` daemons started as subprocesses, always reaped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemonproc import Daemon, Starter, start_daemon


@pytest.fixture
async def daemons() -> AsyncIterator[Starter]:
    """``await daemons(data_dir, ...)`` starts ``camio run``; every one is killed at the end
    if the test left it running."""
    started: list[Daemon] = []

    async def start(data: Path, **kwargs: Any) -> Daemon:
        daemon = await start_daemon(data, **kwargs)
        started.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for daemon in started:
            await daemon.kill()
