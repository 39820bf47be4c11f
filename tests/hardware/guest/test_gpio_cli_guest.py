"""``camio gpio list`` and ``camio gpio probe`` against a gpio-sim chip."""

from __future__ import annotations

import threading
import time

import gpiod
import pytest
from gpiod.line import Direction
from gpiosim_chip import SimChip

from camio.cli import main


def test_gpio_list_shows_chips_lines_and_consumers(
    sim_chip: SimChip, capsys: pytest.CaptureFixture[str]
) -> None:
    held = gpiod.request_lines(
        sim_chip.path, consumer="door-daemon", config={2: gpiod.LineSettings(Direction.INPUT)}
    )
    try:
        assert main(["gpio", "list", "--chip", sim_chip.label]) == 0
    finally:
        held.release()
    out = capsys.readouterr().out
    assert f"{sim_chip.chip_name} [{sim_chip.label}] 8 lines" in out
    assert "DI3" in out and "used by 'door-daemon'" in out and "RELAY4" in out


def test_gpio_probe_toggles_the_output(
    sim_chip: SimChip, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(sim_chip.value(4))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        args = ["gpio", "probe", "--output", "RELAY1", "--count", "2", "--period-ms", "600"]
        assert main(args) == 0
    finally:
        stop.set()
        watcher.join()
    collapsed = [v for i, v in enumerate(seen) if i == 0 or seen[i - 1] != v]
    assert collapsed[:4] == [0, 1, 0, 1] or collapsed[:5] == [0, 1, 0, 1, 0]
    assert "output closed" in capsys.readouterr().out


def test_gpio_probe_watches_the_input(
    sim_chip: SimChip, capsys: pytest.CaptureFixture[str]
) -> None:
    sim_chip.pull(0, 1)

    def press() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # once the probe holds the line
            with gpiod.Chip(sim_chip.path) as chip:
                if chip.get_line_info(0).used:
                    break
            time.sleep(0.01)
        time.sleep(0.1)
        sim_chip.pull(0, 0)  # a contact to ground
        time.sleep(0.2)
        sim_chip.pull(0, 1)

    presser = threading.Thread(target=press)
    presser.start()
    try:
        args = ["gpio", "probe", "--input", "DI1", "--bias", "pull-up", "--input-active-low"]
        assert main([*args, "--duration-ms", "3000"]) == 0
    finally:
        presser.join()
    out = capsys.readouterr().out
    assert "input closed" in out and "2 input edge(s)" in out


def test_gpio_probe_names_a_missing_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gpio", "probe", "--output", "NO_SUCH_LINE"]) == 1
    assert "no line named 'NO_SUCH_LINE'" in capsys.readouterr().out
