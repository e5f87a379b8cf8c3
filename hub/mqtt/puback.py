"""paho 2.2's client, reading an MQTT 3.1.1 PUBACK without building two objects for it.

paho-mqtt 2.2.0 decodes every PUBACK through `_packet.decode_puback`, which builds a
`ReasonCode` and a `Properties` (a table of every MQTT 5 property name, per instance)
even on MQTT 3.1.1, whose PUBACK is two bytes: the packet id, nothing else. The hub
gets one PUBACK per `received` ack it publishes, and that decode was 10.3 µs of paho's
thread, holding the GIL, per alarm: 28% of the thread's time during `bench.hub_ingest`
(py-spy), in a process whose ingest is bound by the GIL.

`Client` reads the packet id itself for a 3.1.1 PUBACK of exactly two bytes when paho
has nothing to log, and hands paho's own `_do_on_publish` (which marks the message
published, calls `on_publish`, and sends what waited for the in-flight window) one
shared success code and one shared empty `Properties`, which `on_publish` receives
as MQTT 3.1.1 has nothing else to say. Everything else (MQTT 5, PUBCOMP, a PUBACK of
another length, paho logging) takes paho's own path unchanged.

This overrides a private method, so it is used only with the paho it was read against
(`PINNED`; any other version gets paho's plain `Client`), and tests/hub/test_puback.py
checks it against paho's decoding and on a real Mosquitto, and fails once paho moves.
"""

from __future__ import annotations

from typing import Literal

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

# The paho releases whose `Client._handle_pubackcomp` and `_do_on_publish` were read.
PINNED = frozenset({"2.2.0"})
# What paho's own decode gives a 3.1.1 PUBACK: success, no properties. Shared: nothing
# may change them (paho does not; nor does anything in this project's on_publish).
SUCCESS = ReasonCode(PacketTypes.PUBACK)
NO_PROPERTIES = Properties(PacketTypes.PUBACK)  # type: ignore[no-untyped-call]


class FastPubackClient(mqtt.Client):
    """paho's Client, with the MQTT 3.1.1 PUBACK read in a few operations (module doc)."""

    def _handle_pubackcomp(self, cmd: Literal["PUBACK", "PUBCOMP"]) -> MQTTErrorCode:
        packet = self._in_packet["packet"]
        if (cmd != "PUBACK" or self._protocol == MQTTProtocolVersion.MQTTv5
                or len(packet) != 2 or self.on_log is not None or self._logger is not None):
            return super()._handle_pubackcomp(cmd)
        mid = (packet[0] << 8) | packet[1]
        with self._out_message_mutex:
            if mid in self._out_messages:   # as paho: only the first PUBACK of a mid counts
                return self._do_on_publish(mid, SUCCESS, NO_PROPERTIES)
        return MQTTErrorCode.MQTT_ERR_SUCCESS


# paho's own Client where this one was not read against the installed paho.
Client: type[mqtt.Client] = (FastPubackClient if paho.mqtt.__version__ in PINNED
                             else mqtt.Client)
