"""Fixtures for the API tests: a real CamioApp on a loopback socket and real HTTP clients.

Every test gets its own data directory and its own daemon (in-process, port 0). The
administrator comes from ``CAMIO_ADMIN_USER``/``CAMIO_ADMIN_PASSWORD`` (the automated-install
path); the operator and the viewer are added to the same database afterwards with
:class:`~camio.store.users.UserStore`, as ``camio user add`` does while the daemon runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from apihelpers import ADMIN, OPERATOR, VIEWER, Api, Server, start_server

from camio.app import open_users
from camio.store.users import Role


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    """A running daemon with an admin (from the environment), an operator and a viewer."""
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
async def admin(server: Server) -> Api:
    """The administrator, over HTTP Digest (what camera clients use)."""
    return server.digest(*ADMIN)


@pytest.fixture
async def operator(server: Server) -> Api:
    return server.basic(*OPERATOR)


@pytest.fixture
async def viewer(server: Server) -> Api:
    return server.digest(*VIEWER)
