"""The action language of port.cgi, output.cgi and virtualinput.cgi.

``[<port>]:<a>[<wait><a>...]``: ``/`` = active, ``\\`` = inactive, ``<wait>`` in milliseconds.
``3:/300\\`` is a 300 ms pulse on port 3, ``2:/300\\500/300\\`` two pulses, ``3:1000/`` waits
one second, then activates. The port defaults to 1. Pure parsing: the device runs the steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from camio.core.ports import StateSequence, StateStep

MAX_TEXT = 4096


class ActionError(ValueError):
    """The action text is malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class PortAction:
    number: int  # 1-based, as written
    steps: list[tuple[bool | None, int]]  # (active or None = keep the current state, ms)

    def state_steps(self, current: bool) -> list[StateStep]:
        """The steps for :meth:`Device.run_sequence`; a leading wait keeps ``current``."""
        steps = [
            StateStep(active=current if active is None else active, duration_ms=ms)
            for active, ms in self.steps
        ]
        try:
            StateSequence(steps=steps)
        except ValidationError as exc:
            raise ActionError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return steps

    @property
    def immediate(self) -> bool | None:
        """The state of a one-step action without waits (``3:/``), else None."""
        if len(self.steps) == 1 and self.steps[0][1] == 0:
            return self.steps[0][0]
        return None


def parse_action(text: str) -> PortAction:
    """Parse one action (``3:/300\\``); raise :class:`ActionError` if malformed."""
    if len(text) > MAX_TEXT:
        raise ActionError("action too long")
    port_text, colon, body = text.partition(":")
    if not colon:
        port_text, body = "1", text
    port_text = port_text.strip() or "1"
    if not port_text.isdigit() or not 1 <= int(port_text) <= 9999:
        raise ActionError(f"bad port number {port_text!r}")
    steps: list[tuple[bool | None, int]] = []
    i, n = 0, len(body)
    if n == 0:
        raise ActionError("empty action")
    while i < n:
        ch = body[i]
        if ch in "/\\":
            steps.append((ch == "/", 0))
            i += 1
        elif ch.isdigit():
            start = i
            while i < n and body[i].isdigit():
                i += 1
            if i - start > 7:
                raise ActionError("wait too long")
            wait = int(body[start:i])
            if steps:
                active, ms = steps[-1]
                steps[-1] = (active, ms + wait)
            else:
                steps.append((None, wait))
        else:
            raise ActionError(f"unexpected {ch!r} at {i}")
    if all(active is None for active, _ in steps):
        raise ActionError("an action needs '/' or '\\'")
    return PortAction(int(port_text), steps)
