"""Fixtures for the persistence tests: real SQLite files in a temporary directory."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from camio.store.db import DB_FILENAME, open_database


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / DB_FILENAME


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    connection = open_database(db_path)
    yield connection
    connection.close()
