"""Fixtures of the guest suite: simulated GPIO chips created through gpio-sim's configfs.

This suite runs as root on a kernel with gpio-sim (the VM of ``tests/hardware``, or a real
board: ``sudo modprobe gpio-sim``, then ``CAMIO_GPIO_GUEST=1 pytest tests/hardware/guest``).
Inputs are driven through each simulated line's ``pull`` attribute, outputs read through its
``value`` attribute.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiosim_chip import CONFIGFS, SimChip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not CONFIGFS.is_dir():
        skip = pytest.mark.skip(reason="no gpio-sim configfs (run as root with gpio-sim loaded)")
        for item in items:
            item.add_marker(skip)


@pytest.fixture
def sim_chip() -> Iterator[SimChip]:
    """A chip with DI1..DI4 on offsets 0..3 and RELAY1..RELAY4 on offsets 4..7."""
    names = {i: f"DI{i + 1}" for i in range(4)} | {i + 4: f"RELAY{i + 1}" for i in range(4)}
    chip = SimChip(names)
    try:
        yield chip
    finally:
        chip.remove()
