"""hub.mqtt.puback: paho's client with the MQTT 3.1.1 PUBACK read without two objects.

It overrides a private paho method, so: it is used only with the paho it was read
against; on a real Mosquitto every QoS 1 publish still completes, once, in the
in-flight window, with what paho's own decode would have said; and whatever the fast
path does not know (MQTT 5, a PUBACK of another length, paho logging) is paho's.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt import _packet
from paho.mqtt.client import MQTTMessageInfo
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from pytest_mock import MockerFixture

from hub.mqtt import puback
from hub.mqtt.puback import Client, FastPubackClient
from tests.support.broker import Mosquitto

V311, V5 = MQTTProtocolVersion.MQTTv311, MQTTProtocolVersion.MQTTv5


def test_it_is_used_only_with_the_paho_it_was_read_against() -> None:
    # Fails when paho moves: read its _handle_pubackcomp and _do_on_publish again,
    # then add the version to PINNED.
    assert paho.mqtt.__version__ in puback.PINNED
    assert Client is FastPubackClient


def published(m: Mosquitto, cls: type[mqtt.Client], protocol: MQTTProtocolVersion,
              count: int) -> list[tuple[int, Any, Any]]:
    """Publish `count` QoS 1 messages through a 20-message in-flight window; what
    on_publish was told, in order, once every message is published."""
    c = cls(CallbackAPIVersion.VERSION2, client_id=f"puback-{cls.__name__}-{protocol}",
            protocol=protocol)
    seen: list[tuple[int, Any, Any]] = []
    lock = threading.Lock()

    def on_publish(cl: Any, u: Any, mid: int, rc: Any, props: Any) -> None:
        with lock:
            seen.append((mid, rc, props))

    c.on_publish = on_publish
    c.max_inflight_messages_set(20)
    c.connect("127.0.0.1", m.port)
    c.loop_start()
    try:
        infos: list[MQTTMessageInfo] = [c.publish(f"t/{i % 7}", b"x" * (i % 50), qos=1)
                                        for i in range(count)]
        for info in infos:
            info.wait_for_publish(10)
        assert all(info.is_published() for info in infos)
        assert sorted(mid for mid, _, _ in seen) == sorted(info.mid for info in infos)
    finally:
        c.disconnect()
        c.loop_stop()
    return seen


def test_on_real_mosquitto_every_qos1_publish_completes_once_as_paho_says_it(
        broker: Mosquitto, mocker: MockerFixture) -> None:
    decode = mocker.spy(_packet, "decode_puback")
    fast = published(broker, Client, V311, 300)
    assert decode.call_count == 0   # the fast path read all 300 PUBACKs itself
    plain = published(broker, mqtt.Client, V311, 300)
    assert decode.call_count == 300
    # 300 completions each (the window of 20 drained 15 times over), and on_publish
    # told exactly what paho's own decode tells it: success, no properties.
    assert len(fast) == len(plain) == 300
    for (_, rc, props), (_, rc0, props0) in zip(fast, plain, strict=True):
        assert (rc.value, rc.getName(), rc.packetType) == (rc0.value, rc0.getName(),
                                                          rc0.packetType)
        assert not rc.is_failure
        assert props.json() == props0.json() == {}
        assert props.packetType == props0.packetType == PacketTypes.PUBACK


def test_mqtt5_takes_pahos_own_path(broker: Mosquitto, mocker: MockerFixture) -> None:
    decode = mocker.spy(_packet, "decode_puback")
    assert len(published(broker, Client, V5, 40)) == 40
    assert decode.call_count == 40


def test_a_puback_of_another_length_is_pahos_to_refuse() -> None:
    # MQTT 3.1.1's PUBACK is exactly two bytes; a third is a malformed packet, which
    # paho's decode raises (and paho then drops the connection), never a packet id.
    c = Client(CallbackAPIVersion.VERSION2, client_id="puback-bad", protocol=V311)
    for packet in (b"\x00\x05\x00", b"\x05"):
        c._in_packet["packet"] = bytearray(packet)
        with pytest.raises(MalformedPacket):
            c._handle_pubackcomp("PUBACK")


def test_a_client_that_logs_gets_pahos_log_lines(broker: Mosquitto,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    # Either way paho logs: its logging module logger, or an on_log callback.
    c = Client(CallbackAPIVersion.VERSION2, client_id="puback-logs", protocol=V311)
    c.enable_logger(logging.getLogger("test.puback"))
    lines: list[str] = []
    d = Client(CallbackAPIVersion.VERSION2, client_id="puback-on-log", protocol=V311)
    d.on_log = lambda cl, u, level, buf: lines.append(buf)
    for cl in (c, d):
        cl.connect("127.0.0.1", broker.port)
        cl.loop_start()
    try:
        with caplog.at_level(logging.DEBUG, logger="test.puback"):
            c.publish("t/log", b"x", qos=1).wait_for_publish(10)
        d.publish("t/log", b"x", qos=1).wait_for_publish(10)
    finally:
        for cl in (c, d):
            cl.disconnect()
            cl.loop_stop()
    assert any("Received PUBACK (Mid: 1)" in r.getMessage() for r in caplog.records)
    assert "Received PUBACK (Mid: 1)" in lines
