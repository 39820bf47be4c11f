"""Fixtures for the engine tests (the helpers live in ``engine_helpers``)."""

from __future__ import annotations

import pytest
from engine_helpers import MakeRig, build_rig


@pytest.fixture
def make_rig() -> MakeRig:
    return build_rig
