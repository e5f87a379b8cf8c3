"""Test helpers for the hub: a village registry, fast settings, and bare-MQTT nodes.

The nodes here are plain paho clients publishing protocol payloads (what a
third-party panel would do), so hub tests depend on the wire contract only,
never on node/ code.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import protocol
from hub.runtime import Hub
from hub.settings import HubSettings, load_settings
from protocol import Alarm, Heartbeat, Kind, NodeState, Source, Topics, encode
from tests.support.broker import Mosquitto
from tests.support.wire import Received, Wire

T = Topics()
HAMLET = "bach-thong/vi-huong/na-sang"
COMMUNE = "bach-thong/vi-huong"
OTHER_HAMLET = "bach-thong/vi-huong/na-cha"

REGISTRY = f"""
[[areas]]
path = "bach-thong"
name = "Huyện Bạch Thông"
level = "huyện"

[[areas]]
path = "{COMMUNE}"
name = "Xã Vi Hương"
level = "xã"

[[areas]]
path = "{HAMLET}"
name = "Thôn Nà Sang"
level = "thôn"

[[areas]]
path = "{OTHER_HAMLET}"
name = "Thôn Nà Chá"
level = "thôn"

[[nodes]]
id = "na-sang-01"
area = "{HAMLET}"

[[nodes]]
id = "na-sang-02"
area = "{HAMLET}"

[[nodes]]
id = "na-sang-03"
area = "{HAMLET}"

[[nodes]]
id = "na-sang-04"
area = "{HAMLET}"

[[nodes]]
id = "na-cha-01"
area = "{OTHER_HAMLET}"

[[nodes]]
id = "na-cha-02"
area = "{OTHER_HAMLET}"
enabled = false
"""

# Long enough that nothing fires by accident during a test that does not want it.
QUIET: dict[str, Any] = {
    "heartbeat_s": 30.0, "loss_debounce_s": 60.0, "report_within_s": 120.0,
    "escalate_after_s": 600.0, "failed_to_sound_s": 600.0, "time_beacon_s": 0.5,
    "reconnect_min_s": 1.0, "reconnect_max_s": 2.0,
}


def write_registry(tmp_path: Path, text: str = REGISTRY) -> Path:
    path = tmp_path / "registry.toml"
    path.write_text(text, encoding="utf-8")
    return path


def hub_settings(broker: Mosquitto, tmp_path: Path, **overrides: Any) -> HubSettings:
    values: dict[str, Any] = {
        "hub_id": "hub-test", "broker_url": broker.url,
        "db_url": f"sqlite:///{tmp_path / 'hub.db'}", "data_dir": str(tmp_path / "data"),
        "registry_file": str(write_registry(tmp_path)), **QUIET, **overrides,
    }
    return load_settings(None, env={}, **values)


@contextmanager
def running_hub(settings: HubSettings, **kwargs: Any) -> Iterator[Hub]:
    hub = Hub(settings, **kwargs).start()
    assert hub.link is not None and hub.link.wait_connected(10), "hub did not connect"
    try:
        yield hub
    finally:
        hub.stop()


def alarm(kind: str = "fire", alarm_id: str | None = None, attempt: int = 1) -> Alarm:
    return Alarm(alarm_id=alarm_id or str(uuid.uuid4()), kind=Kind(kind),
                 ts_ms=time.time_ns() // 1_000_000, source=Source.BUTTON, button=2,
                 attempt=attempt)


def birth(area: str = HAMLET, boot_id: int = 1) -> NodeState:
    return NodeState(online=True, boot_id=boot_id, ts_ms=time.time_ns() // 1_000_000,
                     version="test", area=area, outputs=("gong",),
                     buttons=((1, Kind.THEFT), (2, Kind.FIRE)))


def heartbeat(boot_id: int = 1, seq: int = 1) -> Heartbeat:
    return Heartbeat(boot_id=boot_id, seq=seq, ts_ms=time.time_ns() // 1_000_000,
                     uptime_s=seq, outbox=0)


def watch_all(wire: Wire) -> Wire:
    wire.subscribe(f"{T.prefix}/#", 1)
    return wire


def send_alarm(wire: Wire, node_id: str, a: Alarm) -> None:
    wire.publish(T.alarm(node_id), encode(a), qos=1)


def is_ack(node_id: str, alarm_id: str, status: str = "received") -> Callable[[Received], bool]:
    def pred(m: Received) -> bool:
        if m.topic != T.ack(node_id):
            return False
        body = m.json()
        return bool(body.get("alarm_id") == alarm_id and body.get("status") == status)
    return pred


def is_area_cmd(area: str, action: str = "sound") -> Callable[[Received], bool]:
    return lambda m: m.topic == T.area_cmd(area) and m.json().get("action") == action


def cmds(wire: Wire, action: str = "sound") -> list[Received]:
    return [m for m in wire.messages if "/areas/" in m.topic and m.json().get("action") == action]


def now_ms() -> int:
    """Wall-clock milliseconds, as the wire's ts_ms fields carry them."""
    return time.time_ns() // 1_000_000


def wait_until(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
               step: float = 0.05) -> Any:
    """Poll `cond` (cheap, e.g. a store query) until it is truthy; event-free waits only."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


class BareNode:
    """One node's own MQTT connection with its Last Will, so it can die like a real one."""

    def __init__(self, broker: Mosquitto, node_id: str, area: str = HAMLET,
                 boot_id: int = 1) -> None:
        self.node_id, self.area, self.boot_id = node_id, area, boot_id
        self._seq = 0
        self._connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=node_id)
        death = NodeState(online=False, boot_id=boot_id)
        self.client.will_set(T.node_state(node_id), encode(death), qos=1, retain=True)
        self.client.on_connect = lambda c, u, f, rc, p: self._connected.set()
        self.client.connect(broker.host, broker.port, keepalive=15)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise RuntimeError(f"{node_id} could not connect")
        self.publish(T.node_state(node_id), birth(area, boot_id), retain=True)

    def publish(self, topic: str, msg: protocol.Message, retain: bool = False) -> None:
        qos = T.parse(topic).qos
        self.client.publish(topic, encode(msg), qos=qos, retain=retain).wait_for_publish(5)

    def beat(self) -> None:
        self._seq += 1
        self.publish(T.heartbeat(self.node_id), heartbeat(self.boot_id, self._seq))

    def kill(self) -> None:
        """Drop the TCP connection without DISCONNECT: the broker sends the Will."""
        sock = self.client.socket()
        self.client.loop_stop()
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Beater:
    """Keeps a set of BareNodes heartbeating every `interval` s on a thread."""

    def __init__(self, nodes: list[BareNode], interval: float) -> None:
        self.nodes = list(nodes)
        self.interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def drop(self, node: BareNode) -> None:
        with self._lock:
            self.nodes = [n for n in self.nodes if n is not node]

    def add(self, node: BareNode) -> None:
        with self._lock:
            self.nodes.append(node)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                nodes = list(self.nodes)
            for n in nodes:
                with suppress(RuntimeError, ValueError, OSError):
                    n.beat()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
