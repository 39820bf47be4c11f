"""MQTT: retained states, durable event publication, commands, Home Assistant discovery and
the messages of ``mqtt`` rule conditions (see docs/mqtt.md).

The composition root builds a :class:`~camio.mqtt.service.MqttService` and registers it on the
device under :data:`MQTT`; the status API finds it there. aiomqtt is imported only when the
client connects (``mqtt.enabled``), so a device without MQTT does not pay for it.
"""

from camio.engine.services import ServiceKey
from camio.mqtt.service import MqttService

MQTT: ServiceKey[MqttService] = ServiceKey("mqtt")

__all__ = ["MQTT", "MqttService"]
