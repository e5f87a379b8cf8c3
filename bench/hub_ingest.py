"""Sustained alarm ingest: the hub (stored + acked) beside a bare paho relay (acked only).

Both run on the same Mosquitto in the same run, driven by the same load:
`--alarms` alarms from `--nodes` nodes, at most `--window` unacknowledged at
a time. Prints alarms acked per second for each, the ratio, and loss (every
alarm_id must come back acked `received`; anything missing is reported).

    python -m bench.hub_ingest --alarms 2000 --nodes 50 --window 100
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hub.runtime import Hub
from hub.settings import load_settings
from protocol import Ack, AckStatus, Alarm, Kind, Source, Topics, encode
from tests.support.broker import Mosquitto

T = Topics()
KINDS = list(Kind)


def registry(nodes: int) -> str:
    out = []
    for i in range(nodes):
        out += ["[[nodes]]", f'id = "bench-{i:03d}"', f'area = "bench/xa/thon-{i % 10}"', ""]
    return "\n".join(out)


def client(broker: Mosquitto, name: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:6]}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    ready = threading.Event()
    c.on_connect = lambda *a: ready.set()
    c.connect(broker.host, broker.port, keepalive=30)
    c.loop_start()
    if not ready.wait(10):
        raise RuntimeError(f"{name} could not connect")
    return c


class Relay:
    """What a hub is at the very least: receive an alarm, publish one ack."""

    def __init__(self, broker: Mosquitto) -> None:
        self.c = client(broker, "relay")
        self.c.on_message = self._on_message
        done = threading.Event()
        self.c.on_subscribe = lambda *a: done.set()
        self.c.subscribe(T.node_wildcard("alarm"), 1)
        done.wait(5)

    def _on_message(self, c: Any, u: Any, msg: Any) -> None:
        node_id = msg.topic.split("/")[-2]
        body = json.loads(msg.payload)
        ack = Ack(alarm_id=body["alarm_id"], status=AckStatus.RECEIVED,
                  ts_ms=time.time_ns() // 1_000_000, incident_id=str(uuid.uuid4()))
        c.publish(T.ack(node_id), encode(ack), qos=1)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def drive(broker: Mosquitto, alarms: int, nodes: int, window: int) -> tuple[float, int]:
    """Send `alarms`, `window` in flight; (acked per second, alarms never acked)."""
    c = client(broker, "load")
    pending: set[str] = set()
    cond = threading.Condition()

    def on_message(cl: Any, u: Any, msg: Any) -> None:
        body = json.loads(msg.payload)
        if body.get("status") == "received":
            with cond:
                pending.discard(body["alarm_id"])
                cond.notify_all()

    c.on_message = on_message
    subbed = threading.Event()
    c.on_subscribe = lambda *a: subbed.set()
    c.subscribe(T.node_wildcard("ack"), 1)
    subbed.wait(5)
    start = time.perf_counter()
    for i in range(alarms):
        a = Alarm(alarm_id=str(uuid.uuid4()), kind=KINDS[i % len(KINDS)],
                  ts_ms=time.time_ns() // 1_000_000, source=Source.BUTTON, attempt=1)
        with cond:
            while len(pending) >= window:
                cond.wait(1)
            pending.add(a.alarm_id)
        c.publish(T.alarm(f"bench-{i % nodes:03d}"), encode(a), qos=1)
    deadline = time.monotonic() + 60
    with cond:
        while pending and time.monotonic() < deadline:
            cond.wait(1)
        lost = len(pending)
    elapsed = time.perf_counter() - start
    c.disconnect()
    c.loop_stop()
    return (alarms - lost) / elapsed, lost


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alarms", type=int, default=2000)
    ap.add_argument("--nodes", type=int, default=50)
    ap.add_argument("--window", type=int, default=100)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work).start()
        try:
            relay = Relay(broker)
            relay_rate, relay_lost = drive(broker, args.alarms, args.nodes, args.window)
            relay.close()
            (work / "registry.toml").write_text(registry(args.nodes))
            settings = load_settings(
                None, env={}, hub_id="bench-hub", broker_url=broker.url,
                db_url=f"sqlite:///{work / 'hub.db'}", data_dir=str(work / "data"),
                registry_file=str(work / "registry.toml"), escalate_after_s=3600.0,
                failed_to_sound_s=3600.0, heartbeat_s=3600.0)
            hub = Hub(settings).start()
            try:
                hub_rate, hub_lost = drive(broker, args.alarms, args.nodes, args.window)
                stored = hub.store.count_alarms()
            finally:
                hub.stop()
        finally:
            broker.stop()
    print(f"alarms: {args.alarms} from {args.nodes} nodes, window {args.window}")
    print(f"bare paho relay (ack only):     {relay_rate:8.0f} alarms/s, lost {relay_lost}")
    print(f"hub (SQLite, stored then acked): {hub_rate:8.0f} alarms/s, lost {hub_lost}, "
          f"stored {stored}")
    print(f"hub / relay ratio: {hub_rate / relay_rate:.2f}")


if __name__ == "__main__":
    main()
