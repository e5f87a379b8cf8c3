"""A bare paho client for broker tests: records messages, connection outcomes, drops.

What a third party with only an MQTT library would do; used against both the
embedded amqtt broker and the production Mosquitto config.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass
class Msg:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Client:
    """A bare paho client that records messages and connection outcomes."""

    def __init__(self, port: int, username: str | None, password: str | None = None, *,
                 client_id: str | None = None, clean_session: bool = True,
                 will: tuple[str, bytes, int, bool] | None = None, keepalive: int = 15) -> None:
        self.port = port
        self.messages: queue.Queue[Msg] = queue.Queue()
        self.connack: queue.Queue[tuple[bool, bool]] = queue.Queue()
        self.disconnected = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or username or "",
                             clean_session=clean_session)
        if username is not None:
            self.c.username_pw_set(username, password)
        if will:
            self.c.will_set(will[0], will[1], will[2], will[3])
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_disconnect = lambda *a: self.disconnected.set()
        self.keepalive = keepalive

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack.put((not rc.is_failure, bool(flags.session_present)))

    def _on_message(self, c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        self.messages.put(Msg(m.topic, bytes(m.payload), m.qos, bool(m.retain)))

    def connect(self) -> tuple[bool, bool]:
        """(accepted, session_present); a refused connection stops the loop."""
        self.c.connect("127.0.0.1", self.port, self.keepalive)
        self.c.loop_start()
        accepted, present = self.connack.get(timeout=10)
        if not accepted:
            self.c.loop_stop()
        return accepted, present

    def subscribe(self, topic: str, qos: int = 1) -> None:
        done = threading.Event()
        self.c.on_subscribe = lambda *a: done.set()
        self.c.subscribe(topic, qos)
        assert done.wait(10), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published(), f"publish to {topic} not acknowledged"

    def take(self, count: int, timeout: float = 10.0) -> list[Msg]:
        out: list[Msg] = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"got {len(out)} of {count}: {[m.topic for m in out]}")
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                continue
        return out

    def quiet(self, seconds: float = 0.5) -> list[Msg]:
        """Whatever arrives within `seconds` (for 'receives nothing' checks)."""
        time.sleep(seconds)
        out = []
        while not self.messages.empty():
            out.append(self.messages.get_nowait())
        return out

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()

    def drop(self) -> None:
        """Die like a crashed process: close the socket without DISCONNECT."""
        self.c.loop_stop()
        sock = self.c.socket()
        assert sock is not None
        sock.close()

    def count_until_quiet(self, expected: int, quiet_s: float = 2.0,
                          timeout: float = 60.0) -> int:
        """Count arrivals until `expected` arrived or none came for `quiet_s`."""
        n = 0
        deadline = time.monotonic() + timeout
        while n < expected and time.monotonic() < deadline:
            try:
                self.messages.get(timeout=quiet_s)
            except queue.Empty:
                break
            n += 1
        return n
