"""Fixtures for the dialect tests: a real CamioApp on a loopback socket with three accounts.

The administrator comes from the environment (the automated-install path); the operator and
the viewer are added to the same database afterwards, as ``camio user add`` does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from vapix_helpers import ADMIN, OPERATOR, VIEWER, Server, start_server

from camio.app import open_users
from camio.store.users import Role


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    """A running daemon with an admin, an operator and a viewer."""
    monkeypatch.setenv("CAMIO_ADMIN_USER", ADMIN[0])
    monkeypatch.setenv("CAMIO_ADMIN_PASSWORD", ADMIN[1])
    data_dir = tmp_path / "data"
    srv = await start_server(data_dir)
    conn, users = open_users(data_dir)
    try:
        users.add(*OPERATOR, Role.OPERATOR)
        users.add(*VIEWER, Role.VIEWER)
    finally:
        conn.close()
    try:
        yield srv
    finally:
        await srv.close()
        await srv.app.stop()


@pytest.fixture
def admin(server: Server) -> httpx.AsyncClient:
    """The administrator over HTTP Digest (realm AXIS_<serial>), as Axis clients speak."""
    return server.digest(*ADMIN)


@pytest.fixture
def operator(server: Server) -> httpx.AsyncClient:
    return server.digest(*OPERATOR)


@pytest.fixture
def viewer(server: Server) -> httpx.AsyncClient:
    return server.digest(*VIEWER)
