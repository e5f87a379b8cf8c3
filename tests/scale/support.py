"""Helpers for scale tests: hub processes, and a panel of nodes that re-send like real ones.

`Panel` is one bare paho connection speaking for many node ids (what a
third-party panel or a test script would do with only MQTT): retained births,
heartbeats, and alarms kept in an outbox and re-sent with `attempt` + 1 every
`resend_s` until a `received` ack comes back (PROTOCOL.md rule 2). It never
imports node/ code: the hub is judged on the wire contract alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocol import Alarm, Heartbeat, Kind, NodeState, Source, Topics, encode
from tests.support.hub_harness import now_ms
from tests.support.hub_harness import wait_until as harness_wait_until

T = Topics()
ROOT = Path(__file__).resolve().parents[2]


def wait_until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    """hub_harness's poll, at the gentler step a fleet of processes wants."""
    return harness_wait_until(cond, timeout, what, step=0.1)


def registry_text(nodes: dict[str, str]) -> str:
    """A registry TOML for {node id: area}, with every area listed."""
    areas: set[str] = set()
    for area in nodes.values():
        parts = area.split("/")
        areas.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    out = []
    for a in sorted(areas):
        out += ["[[areas]]", f'path = "{a}"', f'name = "{a.rsplit("/", 1)[-1]}"', ""]
    for node_id, area in sorted(nodes.items()):
        out += ["[[nodes]]", f'id = "{node_id}"', f'area = "{area}"', ""]
    return "\n".join(out)


def hub_toml(path: Path, **values: Any) -> Path:
    lines = [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class HubProcess:
    """`tiengmo hub run ...` as a real process, its log in a file."""

    def __init__(self, workdir: Path, hub_id: str, args: list[str]) -> None:
        self.hub_id = hub_id
        self.log = workdir / f"{hub_id}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env = {k: v for k, v in env.items() if not k.startswith("TIENGMO_")}
        with self.log.open("wb") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tiengmo.cli", "hub", "run", "--hub-id", hub_id,
                 "--data-dir", str(workdir / f"data-{hub_id}"), "--no-http", *args],
                cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT, env=env)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def freeze(self) -> None:
        """SIGSTOP: alive to the broker and the database, doing nothing (a hung hub)."""
        self.proc.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Pending:
    node_id: str
    alarm: Alarm
    sent_at: float


class Panel:
    """Many nodes on one connection: births, heartbeats, alarms re-sent until acked."""

    def __init__(self, host: str, port: int, nodes: dict[str, str], *,
                 resend_s: float = 1.0, heartbeat_s: float = 1.0) -> None:
        self.nodes = dict(nodes)
        self.resend_s = resend_s
        self.heartbeat_s = heartbeat_s
        self.outbox: dict[str, Pending] = {}
        self.received: dict[str, list[dict[str, Any]]] = {}   # alarm_id -> received acks
        self.sent: dict[str, int] = {}                         # alarm_id -> copies sent
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._seq = 0
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"panel-{uuid.uuid4().hex[:6]}")
        self.c.max_inflight_messages_set(200)
        ready = threading.Event()
        self.c.on_connect = lambda *a: ready.set()
        self.c.on_message = self._on_message
        self.c.connect(host, port, keepalive=15)
        self.c.loop_start()
        if not ready.wait(10):
            raise RuntimeError("panel could not connect")
        subbed = threading.Event()
        self.c.on_subscribe = lambda *a: subbed.set()
        self.c.subscribe(T.node_wildcard("ack"), 1)
        subbed.wait(5)
        for node_id, area in self.nodes.items():
            birth = NodeState(online=True, boot_id=1, ts_ms=now_ms(), version="panel",
                              area=area, outputs=("gong",), buttons=((2, Kind.FIRE),))
            self.c.publish(T.node_state(node_id), encode(birth), qos=1, retain=True)
        self._thread = threading.Thread(target=self._run, daemon=True, name="panel")
        self._thread.start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        body = json.loads(msg.payload)
        if body.get("status") != "received":
            return
        with self._cv:
            self.received.setdefault(body["alarm_id"], []).append(body)
            self.outbox.pop(body["alarm_id"], None)
            self._cv.notify_all()

    def _send(self, p: Pending) -> None:
        self.sent[p.alarm.alarm_id] = self.sent.get(p.alarm.alarm_id, 0) + 1
        self.c.publish(T.alarm(p.node_id), encode(p.alarm), qos=1)

    def press(self, node_id: str, kind: Kind) -> str:
        a = Alarm(alarm_id=str(uuid.uuid4()), kind=kind, ts_ms=now_ms(), source=Source.BUTTON,
                  button=2, attempt=1)
        p = Pending(node_id, a, time.monotonic())
        with self._cv:
            self.outbox[a.alarm_id] = p
            self._send(p)
        return a.alarm_id

    def _run(self) -> None:
        next_beat = 0.0
        while not self._stop.wait(0.1):
            now = time.monotonic()
            if now >= next_beat:
                self._seq += 1
                for node_id in self.nodes:
                    hb = Heartbeat(boot_id=1, seq=self._seq, ts_ms=now_ms(), uptime_s=self._seq,
                                   outbox=0)
                    self.c.publish(T.heartbeat(node_id), encode(hb), qos=0)
                next_beat = now + self.heartbeat_s
            with self._cv:
                due = [p for p in self.outbox.values() if now - p.sent_at >= self.resend_s]
                for p in due:
                    # The same alarm_id, attempt + 1: what a real node's outbox does.
                    a = p.alarm
                    p.alarm = Alarm(alarm_id=a.alarm_id, kind=a.kind, ts_ms=a.ts_ms,
                                    source=a.source, button=a.button, attempt=a.attempt + 1)
                    p.sent_at = now
                    self._send(p)

    def wait_all_acked(self, timeout: float) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: not self.outbox, timeout)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.c.disconnect()
        self.c.loop_stop()
