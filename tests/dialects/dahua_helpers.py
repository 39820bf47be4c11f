"""Helpers for the Dahua dialect tests: turning the dialect on, amcrest clients, waiting."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

from amcrest import AmcrestCamera
from amcrest.http import Http
from vapix_helpers import Server

#: amcrest retries 4 times by default; tests want a refusal at once.
RETRIES = 0


def enable(server: Server, *, allow_basic: bool = True) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["dialects"]["dahua"].update(enabled=True, allow_basic=allow_basic)

    server.device.edit_config(edit)


def camera(server: Server, user: str, password: str) -> Http:
    """The ``ApiWrapper`` Home Assistant builds: ``AmcrestCamera(...).camera``."""
    cam: Http = AmcrestCamera(
        server.host, server.port, user, password, retries_connection=RETRIES
    ).camera
    return cam


def subscribers(server: Server) -> int:
    return server.device.bus.subscriber_count


async def wait_for(predicate: Callable[[], bool], limit_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def basic_headers(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}
