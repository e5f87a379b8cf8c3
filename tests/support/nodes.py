"""Test helpers for the node agent: a simulated node on a real broker, and a bare "hub".

The hub here is nothing but the `wire` client publishing protocol payloads
(what a third party with only MQTT would do), so agent tests depend on the
wire contract alone, never on hub/ code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import protocol
from firmware_sim.village import node_config
from firmware_sim.virtual import VirtualNode
from protocol import Ack, AckStatus, Command, HubState, HubTime, Pattern, Topics
from tests.support.broker import Mosquitto
from tests.support.wire import Received, Wire

# Short but not tight: the real logic on short timers (2-core machine, shared).
FAST_TIMERS: dict[str, Any] = {
    "heartbeat_s": 1.0, "resend_first_s": 0.4, "resend_max_s": 1.0, "clock_hold_s": 1.5,
    "hub_time_stale_s": 5.0, "test_duration_s": 0.5, "stop_timeout_s": 3.0,
}
FAST_BUTTONS = [
    {"pin": 17, "number": 1, "kind": "theft", "hold_s": 0.1},
    {"pin": 27, "number": 2, "kind": "fire", "hold_s": 0.1},
]
T = Topics()


def make_node(broker: Mosquitto, data_dir: Path, node_id: str = "n1", area: str = "a/b",
              *, timers: dict[str, Any] | None = None, wall: Callable[[], float] = time.time,
              hardware: dict[str, Any] | None = None) -> VirtualNode:
    cfg = node_config(node_id, area, broker_url=broker.url, data_dir=data_dir,
                      timers={**FAST_TIMERS, **(timers or {})}, buttons=FAST_BUTTONS,
                      mqtt={"reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
                      hardware=hardware)
    return VirtualNode(cfg, wall=wall)


def node_config_toml(broker: Mosquitto, data_dir: Path, node_id: str = "n1",
                     extra: str = "") -> str:
    """A node.toml for running the agent as a real process (`--mock-pins`)."""
    return f"""
[node]
id = "{node_id}"
area = "a/b"
data_dir = "{data_dir}"

[mqtt]
url = "{broker.url}"
reconnect_min_s = 0.2
reconnect_max_s = 1

[[buttons]]
pin = 17
number = 1
kind = "fire"
hold_s = 0.1

[[outputs]]
name = "gong"
type = "gong"
pin = 23

[timers]
heartbeat_s = 1
resend_first_s = 0.4
resend_max_s = 1
{extra}
"""


class BareHub:
    """Acks, beacons and commands published through a bare MQTT client."""

    def __init__(self, wire: Wire, hub_id: str = "hub-1") -> None:
        self.wire = wire
        self.hub_id = hub_id
        wire.subscribe(f"{T.prefix}/#")

    def online(self, up: bool = True) -> None:
        msg = HubState(online=up, hub_id=self.hub_id, ts_ms=self.now() if up else None)
        self.wire.publish(T.hub_state(self.hub_id), protocol.encode(msg), qos=1, retain=True)

    def beacon(self, ts_ms: int | None = None) -> None:
        msg = HubTime(hub_id=self.hub_id, ts_ms=self.now() if ts_ms is None else ts_ms)
        self.wire.publish(T.hub_time(), protocol.encode(msg), qos=0)

    @staticmethod
    def now() -> int:
        return int(time.time() * 1000)

    def ack(self, node_id: str, alarm_id: str, status: AckStatus = AckStatus.RECEIVED,
            incident_id: str | None = None, reason: str | None = None,
            ts_ms: int | None = None) -> None:
        if status is not AckStatus.REJECTED and incident_id is None:
            incident_id = protocol.new_id()
        msg = Ack(alarm_id=alarm_id, status=status, ts_ms=self.now() if ts_ms is None else ts_ms,
                  incident_id=incident_id, reason=reason)
        self.wire.publish(T.ack(node_id), protocol.encode(msg), qos=1)

    def command(self, action: str, *, node_id: str | None = None, area: str | None = None,
                cmd_id: str | None = None, now_ms: int | None = None, ttl_s: float = 60,
                **fields: Any) -> str:
        now = self.now() if now_ms is None else now_ms
        cmd_id = cmd_id or protocol.new_id()
        cmd = Command(cmd_id=cmd_id, action=protocol.Action(action), ts_ms=now,
                      expires_ts_ms=now + int(ttl_s * 1000), **fields)
        topic = T.node_cmd(node_id) if node_id else T.area_cmd(area or "a")
        self.wire.publish(topic, protocol.encode(cmd), qos=1)
        return cmd_id

    def sound(self, *, steps: tuple[tuple[int, int], ...] = ((100, 100),), duration_s: int = 5,
              priority: int = 5, incident_id: str | None = None, name: str = "fire",
              **kw: Any) -> str:
        return self.command("sound", pattern=Pattern(name, steps), duration_s=duration_s,
                            priority=priority, incident_id=incident_id, **kw)

    # -- what the node said ----------------------------------------------------

    def alarms(self, node_id: str) -> list[dict[str, Any]]:
        return [m.json() for m in self.wire.on_topic(f"/nodes/{node_id}/alarm")]

    def wait_alarm(self, node_id: str, pred: Callable[[dict[str, Any]], bool] = lambda a: True,
                   count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
        msgs = self.wire.wait_for(
            lambda m: m.topic == T.alarm(node_id) and pred(m.json()), timeout, count)
        return [m.json() for m in msgs]

    def wait_result(self, node_id: str, cmd_id: str, status: str | None = None,
                    timeout: float = 10, count: int = 1) -> list[dict[str, Any]]:
        def pred(m: Received) -> bool:
            if m.topic != T.result(node_id):
                return False
            j = m.json()
            return bool(j["cmd_id"] == cmd_id and (status is None or j["status"] == status))
        return [m.json() for m in self.wire.wait_for(pred, timeout, count)]

    def results(self, node_id: str, cmd_id: str) -> list[dict[str, Any]]:
        return [m.json() for m in self.wire.on_topic(f"/nodes/{node_id}/result")
                if m.json()["cmd_id"] == cmd_id]

    def states(self, node_id: str) -> list[Received]:
        return self.wire.on_topic(f"/nodes/{node_id}/state")


def wait_until(pred: Callable[[], bool], timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
