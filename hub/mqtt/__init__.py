"""The hub's MQTT client: every connection the hub opens (hub.mqtt.client).

`client` holds MqttClient, the only hub code that imports paho; `types` holds what
its users handle (options, messages, events, errors), free of paho.
"""

from .client import MqttClient, Published
from .types import (
    BrokerUrl,
    Inbound,
    Lost,
    MqttError,
    MqttEvent,
    MqttOptions,
    MqttRefused,
    Outgoing,
    Ready,
    Refused,
    parse_broker_url,
)

__all__ = ["BrokerUrl", "Inbound", "Lost", "MqttClient", "MqttError", "MqttEvent",
           "MqttOptions", "MqttRefused", "Outgoing", "Published", "Ready", "Refused",
           "parse_broker_url"]
