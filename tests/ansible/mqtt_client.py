"""A tiny blocking paho client for the broker tests (TLS or plain, records messages)."""

from __future__ import annotations

import queue
import ssl
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode


class Client:
    def __init__(self, host: str, port: int, username: str, password: str,
                 ca_file: str | None = None, client_id: str | None = None) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connected = threading.Event()
        self.done = threading.Event()
        self.reason: object = None
        self.granted: queue.Queue[list[int]] = queue.Queue()
        self.dropped = threading.Event()   # the broker closed an accepted connection
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or username,
                             protocol=mqtt.MQTTv311)
        self.c.username_pw_set(username, password)
        if ca_file:
            self.c.tls_set(ca_certs=ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda *a: self.connected.is_set() and self.dropped.set()
        self.c.on_message = lambda c, u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.granted.put([r.value for r in rcs])
        self.c.connect_async(host, port, keepalive=15)
        self.c.loop_start()

    def _on_connect(self, c: mqtt.Client, u: object, flags: object, rc: ReasonCode,
                    p: object) -> None:
        self.reason = rc
        if not rc.is_failure:
            self.connected.set()
        self.done.set()

    def wait_connected(self, timeout: float = 15) -> bool:
        self.done.wait(timeout)
        return self.connected.is_set()

    def subscribe(self, topic: str) -> list[int]:
        self.c.subscribe(topic, qos=1)
        return self.granted.get(timeout=15)

    def publish(self, topic: str, payload: bytes) -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(15)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()
