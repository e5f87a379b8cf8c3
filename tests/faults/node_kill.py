"""Scenario 3: a node agent killed with SIGKILL while alarms wait in its outbox.

The nodes run in their own process (tests/faults/node_proc.py, real agents on
gpiozero mock pins). The hub is stalled with SIGSTOP while they are pressed, so
no ack can come back and every alarm is still `pending` in an outbox; then the
node process is killed with SIGKILL, the hub resumed, and the node process
started again on the same data directories: each alarm must be re-sent and stored.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from tests.faults.rig import (
    ROOT,
    Figures,
    HubProcess,
    db_alarm_ids,
    duplicate_incidents,
    node_ids,
    registry_text,
)
from tests.support.broker import Mosquitto


class NodeProcess:
    def __init__(self, broker_url: str, data_root: Path, count: int, hamlets: int,
                 log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._log: IO[bytes] = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.node_proc", broker_url, str(data_root),
             str(count), str(hamlets)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            cwd=str(ROOT), env=env)
        first = self._reply(60)
        if not first.get("ready"):
            raise RuntimeError(f"node process did not start: {first}")

    def _reply(self, timeout: float = 30) -> dict[str, Any]:
        assert self.proc.stdout is not None
        # The driver answers every command promptly; a hang here is a failure anyway
        # and pytest-timeout ends it.
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"node process exited ({self.proc.poll()})")
        out: dict[str, Any] = json.loads(line)
        return out

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._reply()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(RuntimeError, OSError, ValueError):
                self.ask("stop")
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def outbox_state(data_root: Path, ids: list[str]) -> tuple[set[str], set[str]]:
    """(every alarm id in the outboxes on disk, the pending ones), read with sqlite3."""
    held: set[str] = set()
    pending: set[str] = set()
    for nid in ids:
        path = data_root / nid / "outbox.sqlite"
        if not path.exists():
            continue
        conn = sqlite3.connect(str(path), timeout=10)
        try:
            for alarm_id, state in conn.execute("SELECT alarm_id, state FROM alarms"):
                held.add(alarm_id)
                if state == "pending":
                    pending.add(alarm_id)
        finally:
            conn.close()
    return held, pending


def node_killed(workdir: Path, nodes: int = 4, presses_per_node: int = 3) -> Figures:
    fig = Figures("node agent SIGKILL with a full outbox", nodes)
    workdir.mkdir(parents=True, exist_ok=True)
    broker = Mosquitto(workdir).start()
    registry = workdir / "registry.toml"
    registry.write_text(registry_text(nodes, 1), encoding="utf-8")
    hub = HubProcess(workdir, broker.url, registry, workdir / "hub.db")
    data_root = workdir / "nodes"
    ids = node_ids(nodes)
    second: NodeProcess | None = None
    first: NodeProcess | None = None
    try:
        hub.start()
        first = NodeProcess(broker.url, data_root, nodes, 1, workdir / "nodes.log")
        hub.signal(signal.SIGSTOP)   # stalled: no ack can come back
        for i in range(presses_per_node):
            for nid in ids:
                first.ask(f"press {nid} {1 + i % 2}")
        gongs = first.ask("gongs")
        fig.pressed, fig.local_gongs = int(gongs["presses"]), int(gongs["fired"])
        fig.notes["pending_at_kill"] = first.ask("pending")["pending"]
        first.kill()
        first = None
        held, pending = outbox_state(data_root, ids)
        fig.notes["pending_on_disk_after_kill"] = len(pending)
        hub.signal(signal.SIGCONT)
        t0 = time.monotonic()
        second = NodeProcess(broker.url, data_root, nodes, 1, workdir / "nodes.log")
        deadline = time.monotonic() + 60
        while True:
            held, pending = outbox_state(data_root, ids)
            if not pending and held <= db_alarm_ids(hub.db_path):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        fig.recover_s = round(time.monotonic() - t0, 2)
        stored = held & db_alarm_ids(hub.db_path)
        received = held - pending
        fig.stored = len(stored)
        fig.lost = fig.pressed - fig.stored
        fig.acked_not_stored = len(received - stored)
        fig.duplicate_incidents = duplicate_incidents(hub.db_path)
        if not hub.alive:
            fig.hub_crashes += 1
        return fig
    finally:
        for p in (first, second):
            if p is not None:
                p.stop()
        hub.stop()
        broker.stop()
