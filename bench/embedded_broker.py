"""Throughput of the demo's embedded broker (amqtt), beside Mosquitto for scale.

Prints figures, asserts nothing. Run: python -m bench.embedded_broker
Scenario: 30 node clients log in; they send 1,000 QoS 1 alarms in all to one
hub subscribed to `nodes/+/alarm`; then the hub sends 100 QoS 1 commands to
an area topic all 30 subscribe to (3,000 deliveries).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol import Topics
from tiengmo.broker import EmbeddedBroker

T = Topics()
AREA = "bach-thong/vi-huong/na-sang"


class Counter:
    def __init__(self) -> None:
        self.n = 0
        self.cv = threading.Condition()

    def hit(self, *_: Any) -> None:
        with self.cv:
            self.n += 1
            self.cv.notify_all()

    def wait(self, n: int, timeout: float) -> bool:
        with self.cv:
            return self.cv.wait_for(lambda: self.n >= n, timeout)


def client(port: int, user: str, on_message: Any = None) -> mqtt.Client:
    ready = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user)
    c.username_pw_set(user, "pw-" + user)
    c.on_connect = lambda *a: ready.set()
    if on_message:
        c.on_message = on_message
    c.connect("127.0.0.1", port, 15)
    c.loop_start()
    if not ready.wait(15):
        raise RuntimeError(f"{user} could not connect")
    return c


def run(port: int, nodes: int, alarms: int, fanout: int) -> None:
    users = [f"node-{i:02d}" for i in range(nodes)]
    got = Counter()
    hub = client(port, "hub-1", got.hit)
    hub.subscribe(T.node_wildcard("alarm"), 1)
    t0 = time.perf_counter()
    cs = [client(port, u) for u in users]
    t_conn = time.perf_counter() - t0
    fan = Counter()
    for c in cs:
        c.on_message = fan.hit
        c.subscribe(T.area_cmd(AREA), 1)
    time.sleep(0.5)

    t0 = time.perf_counter()
    infos = []
    for i in range(alarms):
        c = cs[i % nodes]
        infos.append(c.publish(T.alarm(users[i % nodes]), b'{"v":1}', qos=1))
    for info in infos:
        info.wait_for_publish(60)
    t_acked = time.perf_counter() - t0
    ok = got.wait(alarms, 120)
    t_recv = time.perf_counter() - t0
    print(f"  connect {nodes} clients:        {t_conn * 1000:8.0f} ms")
    print(f"  {alarms} QoS 1 alarms, all PUBACKed: {t_acked * 1000:8.0f} ms")
    print(f"  ... all received by the hub:    {t_recv * 1000:8.0f} ms  "
          f"({alarms / t_recv:,.0f} msg/s){'' if ok else f'  ONLY {got.n}'}")

    t0 = time.perf_counter()
    for _ in range(fanout):
        hub.publish(T.area_cmd(AREA), b'{"v":1}', qos=1)
    ok = fan.wait(fanout * nodes, 120)
    t_fan = time.perf_counter() - t0
    print(f"  {fanout} area commands -> {fanout * nodes} deliveries: {t_fan * 1000:8.0f} ms  "
          f"({fanout * nodes / t_fan:,.0f} deliveries/s){'' if ok else f'  ONLY {fan.n}'}")
    for c in [*cs, hub]:
        c.disconnect()
        c.loop_stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nodes", type=int, default=30)
    ap.add_argument("--alarms", type=int, default=1000)
    ap.add_argument("--fanout", type=int, default=100)
    args = ap.parse_args()
    users = {u: "pw-" + u for u in [f"node-{i:02d}" for i in range(args.nodes)] + ["hub-1"]}

    print("amqtt (tiengmo.broker.EmbeddedBroker):")
    with EmbeddedBroker(users=users) as b:
        run(b.port, args.nodes, args.alarms, args.fanout)

    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if Path(exe).exists():
        from tests.support.broker import Mosquitto

        print("mosquitto (anonymous, for scale):")
        with tempfile.TemporaryDirectory() as d:
            m = Mosquitto(Path(d)).start()
            try:
                run(m.port, args.nodes, args.alarms, args.fanout)
            finally:
                m.stop()


if __name__ == "__main__":
    main()
