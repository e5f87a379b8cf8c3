"""Shared parts of the scale benchmarks (bench/fleet_scale.py, bench/replicas_ingest.py).

A private Mosquitto, hubs as real `tiengmo hub run` processes, throwaway
PostgreSQL databases, /proc figures, and results written as JSON plus a PNG.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Subscriber, registry_text
from protocol import Topics
from tests.support.hubdb import fresh_pg_database

T = Topics()


def pg_database() -> contextlib.AbstractContextManager[str]:
    """A fresh PostgreSQL database, dropped afterwards (tests/support/hubdb.py's)."""
    return fresh_pg_database(f"tiengmo_bench_{os.getpid()}_")


def write_registry(path: Path, nodes: dict[str, str]) -> Path:
    path.write_text(registry_text(nodes), encoding="utf-8")
    return path


def write_hub_toml(path: Path, **values: Any) -> Path:
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()),
                    encoding="utf-8")
    return path


class HubProc:
    """`python -m tiengmo.cli hub run ...` with its log in `workdir`."""

    def __init__(self, workdir: Path, hub_id: str, broker_url: str, db_url: str,
                 registry: Path, config: Path, shared_group: str | None = None) -> None:
        self.hub_id = hub_id
        self.log = workdir / f"{hub_id}.log"
        args = [sys.executable, "-m", "tiengmo.cli", "hub", "run", "--hub-id", hub_id,
                "--broker", broker_url, "--db", db_url, "--registry", str(registry),
                "--config", str(config), "--data-dir", str(workdir / f"data-{hub_id}"),
                "--no-http", "--log-level", "WARNING"]
        if shared_group:
            args += ["--shared-group", shared_group]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIENGMO_")}
        with self.log.open("wb") as logf:
            self.proc = subprocess.Popen(args, cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT,
                                         env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Watcher(Subscriber):
    """A bare subscriber: births of nodes and hubs, alarms, area commands and `result`
    messages, with the time each was seen."""

    def __init__(self, port: int, topics: list[str]) -> None:
        self.online: dict[str, float] = {}
        self.hubs: set[str] = set()
        self.results: list[tuple[float, str, dict[str, Any]]] = []
        self.alarms: dict[str, float] = {}          # node -> when its latest alarm was seen
        self.area_cmds: dict[str, float] = {}       # area -> when its latest cmd was seen
        self.births = 0                             # every node birth, reconnects included
        super().__init__(port, f"bench-{os.getpid()}", topics)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        now = time.monotonic()
        parts = msg.topic.split("/")
        try:
            data = json.loads(msg.payload)
        except ValueError:
            return
        with self.cv:
            if msg.topic.endswith("/alarm"):
                self.alarms[parts[-2]] = now
            elif "/areas/" in msg.topic and msg.topic.endswith("/cmd"):
                self.area_cmds[msg.topic.split("/areas/", 1)[1][:-len("/cmd")]] = now
            elif msg.topic.endswith("/result"):
                self.results.append((now, parts[-2], data))
            elif "/hubs/" in msg.topic and data.get("online"):
                self.hubs.add(parts[-2])
            elif msg.topic.endswith("/state") and data.get("online"):
                self.online.setdefault(parts[-2], now)
                self.births += 1
            self.cv.notify_all()


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]
