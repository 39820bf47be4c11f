"""A gpio-sim chip created through configfs (used by the guest suite and the benchmark)."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

CONFIGFS = Path("/sys/kernel/config/gpio-sim")
_counter = itertools.count()


class SimChip:
    """One gpio-sim chip: named lines, a label, hands on the wires."""

    def __init__(self, names: dict[int, str], num_lines: int = 8, label: str = "") -> None:
        self.name = f"camio{os.getpid()}x{next(_counter)}"
        self.root = CONFIGFS / self.name
        self.label = label or f"camio-sim-{self.name}"
        self.num_lines = num_lines
        self.names = names
        self.root.mkdir()
        bank = self.root / "bank0"
        bank.mkdir()
        (bank / "num_lines").write_text(str(num_lines))
        (bank / "label").write_text(self.label)
        for offset, name in names.items():
            (bank / f"line{offset}").mkdir()
            (bank / f"line{offset}" / "name").write_text(name)
        self.set_live(True)

    def set_live(self, live: bool) -> None:
        (self.root / "live").write_text("1" if live else "0")
        if live:
            self.dev_name = (self.root / "dev_name").read_text().strip()
            self.chip_name = (self.root / "bank0" / "chip_name").read_text().strip()
            deadline = time.monotonic() + 10
            while not Path(self.path).exists():
                assert time.monotonic() < deadline, f"{self.path} did not appear"
                time.sleep(0.01)

    @property
    def path(self) -> str:
        return f"/dev/{self.chip_name}"

    def _attr(self, offset: int, attr: str) -> Path:
        return Path(
            f"/sys/devices/platform/{self.dev_name}/{self.chip_name}/sim_gpio{offset}/{attr}"
        )

    def pull(self, offset: int, level: int) -> None:
        """The wire outside: pulled high (1) or low (0)."""
        self._attr(offset, "pull").write_text("pull-up" if level else "pull-down")

    def value(self, offset: int) -> int:
        """The level the line is at (an output's driven level)."""
        return int(self._attr(offset, "value").read_text())

    def remove(self) -> None:
        if (self.root / "live").read_text().strip() == "1":
            self.set_live(False)
        bank = self.root / "bank0"
        for offset in self.names:
            (bank / f"line{offset}").rmdir()
        bank.rmdir()
        self.root.rmdir()
