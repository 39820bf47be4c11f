"""The pure parts: topic filters, payload matches, command parsing, backoff, configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import camio.actions  # noqa: F401  (registers the action kinds)
from camio.core.clock import ManualClock
from camio.core.conditions import MqttCondition
from camio.core.config import DeviceConfig
from camio.core.mqtt import MqttConfig, payload_matches, topic_matches, valid_filter
from camio.core.rules import RuleConfig
from camio.engine.device import Device
from camio.hardware.sim import SimDriver
from camio.mqtt import MqttService
from camio.mqtt.service import _Gate, backoff_delay
from camio.mqtt.topics import BadCommand, Layout, parse_command


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("a/b", "a/b", True),
        ("a/+", "a/b", True),
        ("a/+", "a/b/c", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("#", "a/b", True),
        ("+/+", "a/b", True),
        ("+", "$SYS", False),
        ("#", "$SYS/broker", False),
        ("$SYS/#", "$SYS/broker", True),
        ("a/+/c", "a//c", True),
        ("a/b", "a/b/", False),
    ],
)
def test_topic_matches(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected


@pytest.mark.parametrize("bad", ["", "a/#/b", "a/b+", "a#", "x" * 1025])
def test_invalid_filters(bad: str) -> None:
    with pytest.raises(ValueError):
        valid_filter(bad)


def test_payload_matches() -> None:
    assert payload_matches("exact", "ON", "ON")
    assert not payload_matches("exact", "ON", "on")
    assert payload_matches("regex", "open|OPEN", "OPEN")
    assert not payload_matches("regex", "open", "opened")  # the whole payload
    assert payload_matches("any", "", "whatever")


def test_commands_parse() -> None:
    assert parse_command(b"ON").action == "on"
    assert parse_command(b" off ").action == "off"
    pulse = parse_command(b"PULSE 250")
    assert (pulse.action, pulse.duration_ms) == ("pulse", 250)
    doc = parse_command(b'{"state": "ON", "time": "2026-01-01T00:00:00Z"}')
    assert doc.action == "on" and doc.sent_wall_ns == 1_767_225_600 * 10**9
    assert parse_command(b'{"state":"PULSE","ms":40,"ts":1767225600000}').duration_ms == 40
    assert parse_command(b"", pulse_default=True).action == "pulse"
    for bad in (b"MAYBE", b"PULSE x", b"PULSE 0", b"{not json", b"[1]"):
        with pytest.raises(BadCommand):
            parse_command(bad)


def test_command_topics() -> None:
    layout = Layout("camio", "dev1")
    assert layout.command_target("camio/dev1/output/out1/set") == ("output", "out1")
    assert layout.command_target("camio/dev1/vinput/3/set") == ("vinput", "3")
    assert layout.command_target("camio/dev1/trigger/manual/set") == ("manual", "")
    assert layout.command_target("camio/dev1/rule/r1/trigger") == ("rule", "r1")
    assert layout.command_target("camio/dev2/output/out1/set") is None
    assert layout.command_target("camio/dev1/output/out1") is None


def test_backoff_doubles_to_a_minute_with_jitter() -> None:
    low = [backoff_delay(n, lambda: 0.0) for n in range(9)]
    high = [backoff_delay(n, lambda: 1.0) for n in range(9)]
    mid = [backoff_delay(n, lambda: 0.5) for n in range(9)]
    assert mid == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert low[0] == pytest.approx(0.8) and high[0] == pytest.approx(1.2)
    assert max(high) == 60  # never beyond the cap
    assert backoff_delay(10_000) <= 60


def test_rate_gate_under_the_manual_clock() -> None:
    clock = ManualClock()
    gate = _Gate(3, clock.monotonic_ns)
    assert [gate.allow("f") for _ in range(5)] == [True, True, True, False, False]
    assert gate.allow("g")  # per key
    clock.advance(1000)
    assert gate.allow("f")


def test_config_defaults_and_validation() -> None:
    cfg = DeviceConfig.model_validate({"device": {"serial": "AB-12_x"}})
    assert cfg.mqtt.enabled is False  # `make run` needs no broker
    assert cfg.mqtt.node(cfg.device.serial) == "ab-12_x"
    assert cfg.mqtt.topic_prefix == "camio"
    assert cfg.mqtt.commands.outputs and cfg.mqtt.commands.virtual_inputs
    assert not cfg.mqtt.commands.manual_trigger and not cfg.mqtt.commands.rules
    secret = MqttConfig(password="hunter2")
    assert "hunter2" not in repr(secret)
    with pytest.raises(ValidationError, match="device class"):
        MqttConfig.model_validate({"discovery": {"device_classes": {"in1": "doorbell"}}})
    with pytest.raises(ValidationError, match="cert_file and key_file"):
        MqttConfig.model_validate({"tls": {"enabled": True, "cert_file": "/x.pem"}})
    with pytest.raises(ValidationError):
        MqttConfig.model_validate({"event_topics": ["io/#/x"]})


def test_condition_model() -> None:
    rule = RuleConfig.model_validate(
        {
            "id": "r",
            "name": "r",
            "conditions": [
                {
                    "kind": "mqtt",
                    "topic": "home/+/door",
                    "payload": "open|OPEN",
                    "match": "regex",
                    "mode": "stateful",
                }
            ],
            "action_mode": "while_active",
            "action": {"kind": "set_output", "port": "out1"},
        }
    )
    cond = rule.conditions[0]
    assert isinstance(cond, MqttCondition) and cond.stateful
    with pytest.raises(ValidationError, match="regular expression"):
        MqttCondition(topic="a", payload="(", match="regex")
    with pytest.raises(ValidationError):
        MqttCondition(topic="a/#/b")
    # A stateless condition cannot drive a while-active rule (it is momentary).
    with pytest.raises(ValidationError):
        RuleConfig.model_validate(
            {
                "id": "r",
                "name": "r",
                "conditions": [{"kind": "mqtt", "topic": "a"}],
                "action_mode": "while_active",
                "action": {"kind": "set_output", "port": "out1"},
            }
        )


async def test_disabled_service_imports_no_client() -> None:
    """MQTT off: nothing connects and aiomqtt is not needed (the idle RSS budget)."""
    device = Device(DeviceConfig(), driver=SimDriver(), clock=ManualClock())
    device.start()
    service = MqttService(device)
    service.start()
    assert service.state == "disabled" and service.status()["enabled"] is False
    events = [e for e in device.state_events() if e.topic == "mqtt/connection"]
    assert events and events[0].data["state"] == "disabled"
    await service.close()
    device.stop()
