"""Fixtures: a real mosquitto broker per test, a device connected to it, a subscriber."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mqtt_helpers import MOSQUITTO, Broker, free_port

if not os.path.exists(MOSQUITTO):
    pytest.skip(
        "mosquitto is not installed (bash .ci/system-deps installs it)", allow_module_level=True
    )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    folder = tmp_path / "broker"
    folder.mkdir()
    server = Broker(folder, free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
async def cleanup() -> AsyncIterator[list[object]]:
    """Services and subscribers to close at the end (whatever the test did)."""
    items: list[object] = []
    yield items
    for item in reversed(items):
        close = getattr(item, "close", None) or getattr(item, "stop", None)
        if close is not None:
            result = close()
            if hasattr(result, "__await__"):
                await result
