"""The Linux GPIO driver: real lines through the GPIO character device (libgpiod v2, ``gpiod``).

- One line request per port, so a bad line (missing chip, busy, unmapped) fails its port only:
  the error names the port and the line, is logged, published as a ``hardware/line`` event and
  kept in :attr:`GpioDriver.failures`; the rest of the device works. A failed input reads as at
  rest; writes to a failed output are remembered and applied when the line comes back.
- Inputs: bias, active-low, edge events on both edges read from the request's file descriptor in
  the asyncio loop (no polling, no thread), the kernel debouncer (default 5 ms) under camio's own
  stable-level filter, and the kernel's monotonic edge timestamp carried to the engine as the
  edge time, so latency figures start at the edge.
- Outputs: requested with their idle level as the initial value (no glitch at start, restart or
  reconfiguration), push-pull, open-drain or open-source, driven to the idle (safe) level and
  released on close.
- Lost hardware: a request whose descriptor or ioctl fails (chip removed: ENODEV) marks the port
  failed with an event; every ``health_interval_ms`` healthy lines are checked (an ioctl that
  also resynchronises an input whose edge was lost) and failed lines are requested again;
  recovery publishes an event and restores the line's level.

``gpiod`` is imported only when the driver opens, so the simulator costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import glob
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from camio.core.clock import NS_PER_MS, Clock, Timer
from camio.core.events import Cause
from camio.core.gpio_config import GpioConfig, GpioLineConfig
from camio.core.ports import Circuit, InputConfig, OutputConfig
from camio.hardware.base import Driver, DriverError, InputSink
from camio.hardware.gpio_boards import board as board_profile

if TYPE_CHECKING:
    import gpiod

    from camio.core.config import HardwareConfig

_LOGGER = logging.getLogger(__name__)

LINE_TOPIC = "hardware/line"
DEFAULT_KERNEL_DEBOUNCE_MS = 5
EVENT_BUFFER = 64


class LineRequest(Protocol):
    """What the driver uses of ``gpiod.LineRequest`` (a fake implements the same)."""

    def fileno(self) -> int: ...

    def read_edge_events(self, max_events: int | None = None) -> list[gpiod.EdgeEvent]: ...

    def get_value(self, line: int | str) -> gpiod.line.Value: ...

    def set_value(self, line: int | str, value: gpiod.line.Value) -> None: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class LineInfo:
    offset: int
    name: str
    used: bool
    consumer: str
    direction: str
    active_low: bool


class GpioSystem(Protocol):
    """The kernel side: chips, line lookup, line requests. :class:`KernelGpio` is the real one."""

    def chip_paths(self) -> list[str]: ...

    def chip_label(self, path: str) -> str: ...

    def line_offset(self, path: str, name: str) -> int | None: ...

    def line_info(self, path: str, offset: int) -> LineInfo: ...

    def request(
        self, path: str, consumer: str, offset: int, settings: gpiod.LineSettings
    ) -> LineRequest: ...


class KernelGpio:
    """The real GPIO character devices through ``gpiod``."""

    def chip_paths(self) -> list[str]:
        import gpiod

        paths = sorted(glob.glob("/dev/gpiochip*"), key=lambda p: (len(p), p))
        return [p for p in paths if gpiod.is_gpiochip_device(p)]

    def chip_label(self, path: str) -> str:
        import gpiod

        with gpiod.Chip(path) as chip:
            return chip.get_info().label

    def num_lines(self, path: str) -> int:
        import gpiod

        with gpiod.Chip(path) as chip:
            return chip.get_info().num_lines

    def line_offset(self, path: str, name: str) -> int | None:
        import gpiod

        with gpiod.Chip(path) as chip:
            try:
                return chip.line_offset_from_id(name)
            except (OSError, ValueError):
                return None

    def line_info(self, path: str, offset: int) -> LineInfo:
        import gpiod

        with gpiod.Chip(path) as chip:
            info = chip.get_line_info(offset)
        return LineInfo(
            offset=info.offset,
            name=info.name or "",
            used=info.used,
            consumer=info.consumer or "",
            direction=str(info.direction.name).lower(),
            active_low=info.active_low,
        )

    def request(
        self, path: str, consumer: str, offset: int, settings: gpiod.LineSettings
    ) -> LineRequest:
        import gpiod

        return gpiod.request_lines(
            path, consumer=consumer, config={offset: settings}, event_buffer_size=EVENT_BUFFER
        )


class EventPublisher(Protocol):
    def publish(
        self, topic: str, source: str, data: dict[str, Any], *, cause: Cause | None = None
    ) -> object: ...


@dataclass
class _Port:
    port_id: str
    output: bool
    config: InputConfig | OutputConfig
    line: GpioLineConfig | None
    path: str | None = None
    offset: int | None = None
    label: str = ""
    request: LineRequest | None = None
    error: str | None = None
    permanent: bool = False  # a configuration error: not retried
    active: bool = False  # input: last reported; output: last written (logical, True = closed)
    last_seqno: int = 0
    kernel_debounce: bool = False

    @property
    def describe_line(self) -> str:
        if self.line is None:
            return "(no line mapped)"
        if self.path is not None and self.offset is not None:
            where = f"{os.path.basename(self.path)}:{self.offset}"
            return where if self.line.line == where else f"{self.line.line} ({where})"
        return self.line.line


def _circuit(active: bool) -> Circuit:
    return Circuit.CLOSED if active else Circuit.OPEN


class GpioDriver:
    """Terminal block on kernel GPIO lines."""

    name = "gpio"

    def __init__(
        self,
        config: GpioConfig,
        *,
        system: GpioSystem | None = None,
        events: Callable[[], EventPublisher | None] | None = None,
    ) -> None:
        self.config = config
        self.board = board_profile(config.board)
        self.system: GpioSystem = system or KernelGpio()
        self._events = events
        self._ports: dict[str, _Port] = {}
        self._sink: InputSink | None = None
        self._clock: Clock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._health: Timer | None = None
        self._labels: dict[str, str] | None = None

    # -- Driver ------------------------------------------------------------------------------

    def open(
        self,
        inputs: Sequence[InputConfig],
        outputs: Sequence[OutputConfig],
        sink: InputSink,
        clock: Clock,
    ) -> None:
        try:
            import gpiod  # noqa: F401  (fail here, clearly, when the package is missing)
        except ImportError as exc:
            raise DriverError(
                "the gpio driver needs the 'gpiod' package (pip install gpiod)"
            ) from exc
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError as exc:
            raise DriverError("the gpio driver needs a running asyncio loop") from exc
        self._sink = sink
        self._clock = clock
        self.reconfigure(inputs, outputs)
        self._schedule_health()

    def reconfigure(self, inputs: Sequence[InputConfig], outputs: Sequence[OutputConfig]) -> None:
        wanted: dict[str, tuple[bool, InputConfig | OutputConfig]] = {}
        for inp in inputs:
            wanted[inp.id] = (False, inp)
        for out in outputs:
            wanted[out.id] = (True, out)
        for port_id in list(self._ports):
            port = self._ports[port_id]
            if port_id not in wanted or wanted[port_id][0] != port.output:
                self._release(self._ports.pop(port_id), safe=True)
        self._labels = None  # chips may have come or gone
        for port_id, (is_output, cfg) in wanted.items():
            existing = self._ports.get(port_id)
            if existing is not None:
                existing.config = cfg  # same line: nothing to touch (no glitch)
                continue
            port = _Port(port_id, is_output, cfg, self.config.lines.get(port_id))
            if is_output:
                assert isinstance(cfg, OutputConfig)
                port.active = cfg.idle_state == Circuit.CLOSED
            self._ports[port_id] = port
            self._claim(port)

    def read_input(self, port_id: str) -> Circuit:
        port = self._ports.get(port_id)
        if port is None or port.output:
            raise DriverError(f"no input {port_id!r}")
        if port.request is None or port.offset is None:
            assert isinstance(port.config, InputConfig)
            return Circuit(port.config.normal_state)  # a failed input reads as at rest
        try:
            port.active = self._is_active(port.request.get_value(port.offset))
        except OSError as exc:
            self._lost(port, exc)
            assert isinstance(port.config, InputConfig)
            return Circuit(port.config.normal_state)
        return _circuit(port.active)

    def write_output(self, port_id: str, circuit: Circuit) -> None:
        port = self._ports.get(port_id)
        if port is None or not port.output:
            raise DriverError(f"no output {port_id!r}")
        port.active = circuit == Circuit.CLOSED
        if port.request is None or port.offset is None:
            return  # failed: applied when the line comes back
        try:
            port.request.set_value(port.offset, self._value(port.active))
        except OSError as exc:
            self._lost(port, exc)

    def close(self) -> None:
        if self._health is not None:
            self._health.cancel()
            self._health = None
        for port in self._ports.values():
            self._release(port, safe=True)
        self._ports.clear()

    # -- status --------------------------------------------------------------------------------

    @property
    def failures(self) -> dict[str, str]:
        """Port id → why its line is not working."""
        return {p.port_id: p.error for p in self._ports.values() if p.error is not None}

    def status(self) -> dict[str, dict[str, Any]]:
        """Every port's line, state and error (for the CLI and the API)."""
        return {
            p.port_id: {
                "direction": "output" if p.output else "input",
                "line": p.describe_line,
                "chip": p.path,
                "offset": p.offset,
                "ok": p.error is None,
                "error": p.error,
                "active": p.active,
                "kernel_debounce": p.kernel_debounce,
            }
            for p in self._ports.values()
        }

    # -- claiming lines ------------------------------------------------------------------------

    def _claim(self, port: _Port) -> None:
        try:
            self._resolve(port)
            self._request(port)
        except DriverError as exc:
            self._fail(port, str(exc))

    def _line_settings(self, port: _Port) -> tuple[GpioLineConfig, dict[str, Any]]:
        assert port.line is not None
        defaults: dict[str, Any] = {}
        _chip, _offset, name = port.line.parsed()
        if name is not None:
            resolved = self.board.resolve(name)
            if resolved is not None:
                defaults = resolved.defaults
        return port.line, defaults

    def _chip_path(self, spec: str) -> str | None:
        if spec.startswith("/dev/") or (spec.startswith("gpiochip") and spec[8:].isdigit()):
            path = spec if spec.startswith("/dev/") else f"/dev/{spec}"
            return path if path in self.system.chip_paths() else None
        if self._labels is None:
            self._labels = {}
            for path in self.system.chip_paths():
                try:
                    self._labels[path] = self.system.chip_label(path)
                except OSError:
                    continue
        for path, label in self._labels.items():
            if label == spec:
                return path
        return None

    def _first_chip(self, specs: Iterable[str]) -> str:
        tried = list(specs)
        for spec in tried:
            path = self._chip_path(spec)
            if path is not None:
                return path
        raise DriverError(f"no GPIO chip {' or '.join(repr(s) for s in tried)}")

    def _resolve(self, port: _Port) -> None:
        if port.line is None:
            port.permanent = True
            raise DriverError(
                f"port {port.port_id!r}: no GPIO line mapped (hardware.gpio.lines.{port.port_id})"
            )
        chip, offset, name = port.line.parsed()
        default_chips = (self.config.chip,) if self.config.chip else self.board.default_chips
        try:
            if offset is not None:
                path = self._first_chip((chip,) if chip else default_chips)
            else:
                assert name is not None
                resolved = self.board.resolve(name)
                if resolved is not None:
                    path = self._first_chip((chip,) if chip else resolved.chips)
                    offset = resolved.offset
                else:
                    paths = [self._first_chip((chip,))] if chip else self.system.chip_paths()
                    for candidate in paths:
                        found = self.system.line_offset(candidate, name)
                        if found is not None:
                            path, offset = candidate, found
                            break
                    else:
                        where = f"on {chip}" if chip else f"on any of {len(paths)} chip(s)"
                        raise DriverError(f"no line named {name!r} {where}")
        except DriverError as exc:
            raise DriverError(f"port {port.port_id!r}, line {port.line.line!r}: {exc}") from None
        for other in self._ports.values():
            if other is not port and other.path == path and other.offset == offset:
                port.permanent = True
                raise DriverError(
                    f"port {port.port_id!r}, line {port.line.line!r}: "
                    f"{os.path.basename(path)}:{offset} is already used by port {other.port_id!r}"
                )
        port.path, port.offset = path, offset

    def _settings(self, port: _Port, *, debounce: bool = True) -> gpiod.LineSettings:
        import gpiod
        from gpiod.line import Bias, Clock, Direction, Drive, Edge

        line, defaults = self._line_settings(port)
        active_low = line.active_low if line.active_low is not None else defaults.get("active_low")
        bias = {
            None: Bias.AS_IS,
            "as-is": Bias.AS_IS,
            "pull-up": Bias.PULL_UP,
            "pull-down": Bias.PULL_DOWN,
            "disabled": Bias.DISABLED,
        }[line.bias]
        if port.output:
            drive = {
                None: Drive.PUSH_PULL,
                "push-pull": Drive.PUSH_PULL,
                "open-drain": Drive.OPEN_DRAIN,
                "open-source": Drive.OPEN_SOURCE,
            }[line.drive]
            return gpiod.LineSettings(
                direction=Direction.OUTPUT,
                drive=drive,
                bias=bias,
                active_low=bool(active_low),
                output_value=self._value(port.active),
            )
        period = line.kernel_debounce_ms
        if period is None:
            period = DEFAULT_KERNEL_DEBOUNCE_MS
        return gpiod.LineSettings(
            direction=Direction.INPUT,
            edge_detection=Edge.BOTH,
            bias=bias,
            active_low=bool(active_low),
            debounce_period=timedelta(milliseconds=period if debounce else 0),
            event_clock=Clock.MONOTONIC,
        )

    def _request(self, port: _Port) -> None:
        assert port.path is not None and port.offset is not None and port.line is not None
        consumer = self.config.consumer
        wants_debounce = not port.output and port.line.kernel_debounce_ms != 0
        try:
            try:
                request = self.system.request(
                    port.path, consumer, port.offset, self._settings(port)
                )
                port.kernel_debounce = wants_debounce
            except OSError as exc:
                if not wants_debounce or exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                # An old kernel without debounce support: camio's filter alone.
                request = self.system.request(
                    port.path, consumer, port.offset, self._settings(port, debounce=False)
                )
                port.kernel_debounce = False
        except OSError as exc:
            raise DriverError(self._request_error(port, exc)) from None
        port.request = request
        port.last_seqno = 0
        if not port.output:
            try:
                port.active = self._is_active(request.get_value(port.offset))
            except OSError as exc:
                self._drop_request(port)
                raise DriverError(self._request_error(port, exc)) from None
            assert self._loop is not None
            self._loop.add_reader(request.fileno(), self._on_readable, port)

    def _request_error(self, port: _Port, exc: OSError) -> str:
        where = f"port {port.port_id!r}, line {port.describe_line}"
        if exc.errno == errno.EBUSY:
            holder = ""
            try:
                assert port.path is not None and port.offset is not None
                info = self.system.line_info(port.path, port.offset)
                holder = f" by consumer {info.consumer!r}" if info.consumer else ""
            except (OSError, ValueError):
                pass
            return f"{where}: the line is busy (held{holder or ' by another program'})"
        if exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            return f"{where}: the chip is gone ({os.strerror(exc.errno)})"
        return f"{where}: {exc.strerror or exc}"

    # -- events --------------------------------------------------------------------------------

    def _on_readable(self, port: _Port) -> None:
        request = port.request
        if request is None or port.offset is None:
            return
        try:
            events = request.read_edge_events()
        except OSError as exc:
            self._lost(port, exc)
            return
        if not events:
            # Woken without an event: a hang-up (chip gone) shows in the level read.
            self._resync(port)
            return
        import gpiod

        rising = gpiod.EdgeEvent.Type.RISING_EDGE
        assert self._clock is not None
        now_sys = time.monotonic_ns()
        now_clock = self._clock.monotonic_ns()
        gap = False
        for event in events:
            if port.last_seqno and event.line_seqno != port.last_seqno + 1:
                gap = True  # the kernel's buffer overflowed: resync from the level below
            port.last_seqno = event.line_seqno
            # The kernel's CLOCK_MONOTONIC stamp, moved onto the engine's clock by its age.
            edge_ns = now_clock - max(0, now_sys - event.timestamp_ns)
            self._report(port, event.event_type == rising, edge_ns)
        if gap:
            self._resync(port)

    def _report(self, port: _Port, active: bool, edge_ns: int) -> None:
        if active == port.active:
            return
        port.active = active
        assert self._sink is not None
        self._sink(port.port_id, _circuit(active), edge_ns)

    def _resync(self, port: _Port) -> None:
        if port.request is None or port.offset is None:
            return
        try:
            active = self._is_active(port.request.get_value(port.offset))
        except OSError as exc:
            self._lost(port, exc)
            return
        assert self._clock is not None
        self._report(port, active, self._clock.monotonic_ns())

    # -- failure and recovery --------------------------------------------------------------------

    def _fail(self, port: _Port, message: str) -> None:
        changed = port.error != message
        port.error = message
        if changed:
            _LOGGER.error("gpio: %s", message)
            self._publish(port)

    def _lost(self, port: _Port, exc: OSError) -> None:
        self._drop_request(port)
        self._fail(port, f"port {port.port_id!r}, line {port.describe_line}: lost ({exc})")

    def _publish(self, port: _Port) -> None:
        bus = self._events() if self._events is not None else None
        if bus is None:
            return
        data = {"ok": port.error is None, "line": port.describe_line, "error": port.error}
        try:
            bus.publish(LINE_TOPIC, port.port_id, data, cause=Cause("hardware"))
        except Exception:
            _LOGGER.exception("publishing a gpio line event failed")

    def _drop_request(self, port: _Port) -> None:
        request, port.request = port.request, None
        if request is None:
            return
        if not port.output and self._loop is not None:
            with contextlib.suppress(OSError, ValueError):
                self._loop.remove_reader(request.fileno())
        with contextlib.suppress(OSError):
            request.release()

    def _release(self, port: _Port, *, safe: bool) -> None:
        if port.output and safe and port.request is not None and port.offset is not None:
            assert isinstance(port.config, OutputConfig)
            try:
                idle = port.config.idle_state == Circuit.CLOSED
                port.request.set_value(port.offset, self._value(idle))
            except OSError:
                pass
        self._drop_request(port)

    def _schedule_health(self) -> None:
        assert self._clock is not None
        self._health = self._clock.call_later(
            self.config.health_interval_ms * NS_PER_MS, self._check_health
        )

    def _check_health(self) -> None:
        self._health = None
        for port in list(self._ports.values()):
            if port.request is not None and port.offset is not None:
                if port.output:
                    try:
                        port.request.get_value(port.offset)
                    except OSError as exc:
                        self._lost(port, exc)
                else:
                    self._resync(port)
            elif not port.permanent:
                self._labels = None
                self._recover(port)
        self._schedule_health()

    def _recover(self, port: _Port) -> None:
        before = port.active
        try:
            self._resolve(port)
            self._request(port)
        except DriverError as exc:
            # Still gone: the port keeps the error it failed with (one event per failure).
            _LOGGER.debug("gpio: retry failed: %s", exc)
            return
        _LOGGER.warning("gpio: port %r, line %s is back", port.port_id, port.describe_line)
        port.error = None
        self._publish(port)
        if not port.output and port.active != before and self._sink is not None:
            assert self._clock is not None
            self._sink(port.port_id, _circuit(port.active), self._clock.monotonic_ns())

    # -- values ----------------------------------------------------------------------------------

    @staticmethod
    def _value(active: bool) -> gpiod.line.Value:
        from gpiod.line import Value

        return Value.ACTIVE if active else Value.INACTIVE

    @staticmethod
    def _is_active(value: gpiod.line.Value) -> bool:
        from gpiod.line import Value

        return bool(value == Value.ACTIVE)


def create_driver(
    hardware: HardwareConfig, events: Callable[[], EventPublisher | None] | None = None
) -> Driver:
    """The driver the configuration asks for; ``events`` gives what publishes its line events
    (the device: :meth:`~camio.engine.device.Device.publish`)."""
    if hardware.driver == "gpio":
        return GpioDriver(hardware.gpio, events=events)
    from camio.hardware.sim import SimDriver

    return SimDriver()
