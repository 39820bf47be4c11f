"""Several simulated devices in one process share nothing but the clock they are given."""

from __future__ import annotations

import camio.actions  # noqa: F401
from camio.core.clock import ManualClock
from camio.core.config import DeviceConfig
from camio.core.events import Cause, Event
from camio.core.ports import Circuit
from camio.engine.device import Device
from camio.hardware.sim import SimDriver


def _config() -> DeviceConfig:
    return DeviceConfig.model_validate(
        {
            "inputs": [{"id": "in1", "name": "Door", "debounce_on_ms": 20}],
            "outputs": [{"id": "out1", "name": "Siren", "alarm_time_ms": 500}],
            "rules": [
                {
                    "id": "door",
                    "name": "door",
                    "conditions": [{"kind": "input", "port": "in1"}],
                    "action": {"kind": "set_output", "port": "out1"},
                }
            ],
        }
    )


def test_devices_in_one_process_are_independent() -> None:
    clock = ManualClock()
    devices = [Device(_config(), driver=SimDriver(), clock=clock) for _ in range(50)]
    seen: list[list[Event]] = [[] for _ in devices]
    for device, events in zip(devices, seen, strict=True):
        device.subscribe(events.append, replay_state=False)
        device.start()

    devices[7].sim_set_circuit("in1", Circuit.CLOSED)
    devices[9].set_virtual_input(3, True, Cause("api", user="farm"))
    clock.advance(20)

    active = [d.port_status("out1")["active"] for d in devices]
    assert active == [n == 7 for n in range(50)]
    assert [d.virtual_inputs[2].active for d in devices] == [n == 9 for n in range(50)]
    # Each device numbers its own events from 1.
    assert all(events[0].id == 1 for events in seen)
    clock.advance(500)
    assert not any(d.port_status("out1")["active"] for d in devices)
    for device in devices:
        device.stop()
