"""The GPIO pin map: which kernel GPIO line each port drives or reads, and how.

A line is named by ``line``: a line name the kernel knows (``GPIO17`` on a Raspberry Pi, ``DI1``
on a board whose device tree names its lines), ``chip:offset`` (``gpiochip0:17``), or a bare
offset on the map's default ``chip``. A board profile adds its own names (``RELAY3`` on an
8-relay HAT, ``PIN11`` for a header pin) and per-line defaults (the HAT's relays are
active-low, so the installer configures that once). Chips are named by device
(``gpiochip0``, ``/dev/gpiochip0``) or by label (``pinctrl-bcm2711``): a label survives the
chip renumbering some kernel updates bring.

Logic: a line's *active* value (after ``active_low``) is a *closed* circuit. An input wired as a
contact to ground with a pull-up is ``bias: pull-up, active_low: true``; a relay board that
energises its relay on a low level is ``active_low: true``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from camio.core.ports import PORT_ID_PATTERN, Model

Bias = Literal["as-is", "pull-up", "pull-down", "disabled"]
Drive = Literal["push-pull", "open-drain", "open-source"]
BoardName = Literal["generic", "raspberry-pi", "relay-hat-8"]

_CHIP_OFFSET = re.compile(r"^(?P<chip>[^:\s]+):(?P<offset>\d{1,4})$")


class GpioLineConfig(Model):
    """One port's line and its electrical settings (``None``: the board profile's default)."""

    line: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="Line name (GPIO17, DI1, RELAY3), chip:offset (gpiochip0:17) or an offset"
    )
    chip: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="Chip for a bare offset or to look a name up on one chip only"
    )
    bias: Bias | None = Field(None, description="Input bias; default as-is")
    active_low: bool | None = Field(None, description="The low level is active (closed)")
    drive: Drive | None = Field(None, description="Output drive; default push-pull")
    kernel_debounce_ms: Annotated[int, Field(ge=0, le=1000)] | None = Field(
        None,
        description="Kernel debounce period of an input (0 = off; default 5 ms). camio's own "
        "stable-level filter (debounce_on_ms/debounce_off_ms) runs on top.",
    )

    def parsed(self) -> tuple[str | None, int | None, str | None]:
        """``(chip, offset, name)``: either an offset (with its chip) or a name."""
        match = _CHIP_OFFSET.match(self.line)
        if match:
            return match["chip"], int(match["offset"]), None
        if self.line.isdigit():
            return self.chip, int(self.line), None
        return self.chip, None, self.line


class GpioConfig(Model):
    """The pin map of the ``gpio`` driver."""

    board: BoardName = Field(
        "generic", description="Board profile: line names and defaults for common hardware"
    )
    chip: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="Default chip for bare offsets (default: the board's, or gpiochip0)"
    )
    consumer: Annotated[str, Field(min_length=1, max_length=31)] = Field(
        "camio", description="Consumer name shown by gpioinfo / camio gpio list"
    )
    lines: dict[str, GpioLineConfig] = Field(
        default_factory=dict, description="Port id → line; a port without a line is marked failed"
    )
    health_interval_ms: Annotated[int, Field(ge=100, le=60_000)] = Field(
        2000, description="How often lines are checked and failed lines retried"
    )

    @field_validator("lines", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        # ``in1: GPIO17`` is short for ``in1: {line: GPIO17}``.
        if isinstance(value, dict):
            return {
                k: {"line": str(v)} if isinstance(v, str | int) else v for k, v in value.items()
            }
        return value

    @model_validator(mode="after")
    def _unique_lines(self) -> GpioConfig:
        seen: dict[tuple[str | None, str], str] = {}
        for port_id, line in self.lines.items():
            if not PORT_ID_PATTERN.match(port_id):
                raise ValueError(f"lines: {port_id!r} is not a port id")
            chip, offset, name = line.parsed()
            key = (chip or self.chip, str(offset)) if offset is not None else (None, str(name))
            if key in seen:
                raise ValueError(
                    f"lines.{port_id}: line {line.line!r} is already used by port {seen[key]!r}"
                )
            seen[key] = port_id
        return self
