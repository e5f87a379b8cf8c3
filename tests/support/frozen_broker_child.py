"""A process holding the embedded broker AND its clients, as `tiengmo demo` does, so a
SIGSTOP freezes them all at once (tests/test_frozen_broker.py).

A "hub" publishes a beacon every 0.2 s; NODES "nodes" (keepalive 2 s, reconnecting by
themselves like the node agent, each publishing a heartbeat every 0.2 s) receive
them; the file holds the fewest beacons any node has received.
Usage: python -m tests.support.frozen_broker_child COUNT_FILE [--without FIX]
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tiengmo.amqtt_fixes import ALL_FIXES
from tiengmo.broker import EmbeddedBroker

NODES = 12
USERS = {"hub-1": "hub-secret", **{f"n-{i:02d}": f"pw-{i}" for i in range(NODES)}}
TOPIC = "tiengmo/v1/hub/time"


def _client(port: int, user: str, keepalive: int) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, clean_session=False)
    c.username_pw_set(user, USERS[user])
    c.reconnect_delay_set(0.2, 1)
    c.connect_async("127.0.0.1", port, keepalive)
    return c


def main(count_file: Path, without: set[str]) -> None:
    broker = EmbeddedBroker(users=USERS, keepalive_grace_s=1,
                            fixes=ALL_FIXES - without).start()
    got = dict.fromkeys(range(NODES), 0)
    lock = threading.Lock()

    def counter(i: int) -> Any:
        def on_message(c: Any, u: Any, m: Any) -> None:
            with lock:
                got[i] += 1
                count_file.write_text(str(min(got.values())))
        return on_message

    nodes = []
    for i in range(NODES):
        node = _client(broker.port, f"n-{i:02d}", keepalive=2)
        node.on_connect = lambda c, *a: c.subscribe(TOPIC, 0)
        node.on_message = counter(i)
        node.loop_start()
        nodes.append(node)
    hub = _client(broker.port, "hub-1", keepalive=2)
    hub.loop_start()
    while True:
        hub.publish(TOPIC, str(time.time()).encode(), qos=0)
        for i, node in enumerate(nodes):
            node.publish(f"tiengmo/v1/nodes/n-{i:02d}/heartbeat", b"{}", qos=0)
        time.sleep(0.2)


if __name__ == "__main__":
    args = sys.argv[1:]
    skip = {args[args.index("--without") + 1]} if "--without" in args else set()
    main(Path(args[0]), skip)
