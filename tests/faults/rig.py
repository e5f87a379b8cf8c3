"""The fault rig: a real Mosquitto, the hub as a real process, simulated nodes, and figures.

Everything here is what the fault scenarios (tests/faults/scenarios.py) share:

- `HubProcess`: `python -m tiengmo.cli hub run --config hub.toml` as a subprocess on
  SQLite (or on PostgreSQL: give a `postgresql://` URL for the database), so it can
  be killed with SIGKILL, stopped with SIGSTOP, or starved of disk;
- `Nodes`: the real node agent (firmware_sim's HeadlessNode, or VirtualNode on
  gpiozero mock pins) with short timers; every press is timed when the button
  callback fires, so each local gong can be checked against it;
- `count_figures`: pressed (button callbacks), stored (rows in the hub's database,
  never acks), lost, duplicate incidents (more than one incident per kind and
  hamlet within one correlation window), local gongs fired.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from firmware_sim.headless import HeadlessNode
from firmware_sim.village import node_config
from firmware_sim.virtual import VirtualNode
from node.hwconfig import ButtonConfig
from tests.faults.sounds import SoundWatch
from tests.support.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
AREA_ROOT = "faults/xa"
# Short timers: the real logic, compressed so a scenario runs in seconds.
NODE_TIMERS: dict[str, Any] = {
    "heartbeat_s": 2.0, "resend_first_s": 0.5, "resend_max_s": 2.0, "clock_hold_s": 1.5,
    "hub_time_stale_s": 5.0, "test_duration_s": 0.5, "stop_timeout_s": 2.0,
}
NODE_MQTT: dict[str, Any] = {"reconnect_min_s": 0.2, "reconnect_max_s": 1.0}
BUTTONS = [
    {"pin": 17, "number": 1, "kind": "theft", "hold_s": 0.05},
    {"pin": 27, "number": 2, "kind": "fire", "hold_s": 0.05},
]
# Local patterns short, so a hundred nodes striking at once do not swamp two CPUs.
PATTERNS = {"patterns": {"fire": {"steps": [[100, 150]], "duration_s": 2},
                         "theft": {"steps": [[100, 150]], "duration_s": 2}}}
HUB_SETTINGS: dict[str, Any] = {
    "heartbeat_s": 30.0, "loss_debounce_s": 60.0, "report_within_s": 120.0,
    "escalate_after_s": 600.0, "failed_to_sound_s": 600.0, "time_beacon_s": 0.5,
    "reconnect_min_s": 0.2, "reconnect_max_s": 1.0, "keepalive_s": 5.0,
}
# A gong counts as fired for a press if it was striking within this long after it
# (the largest delay seen is reported too: on two loaded CPUs threads wait their turn).
GONG_WITHIN_S = 2.0


def hamlet(i: int) -> str:
    return f"{AREA_ROOT}/thon-{i}"


def node_ids(count: int) -> list[str]:
    return [f"fn-{i:03d}" for i in range(count)]


def registry_text(count: int, hamlets: int) -> str:
    lines = []
    for h in range(hamlets):
        lines += ["[[areas]]", f'path = "{hamlet(h)}"', f'name = "Thôn {h}"', ""]
    for i, nid in enumerate(node_ids(count)):
        lines += ["[[nodes]]", f'id = "{nid}"', f'area = "{hamlet(i % hamlets)}"', ""]
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(str(v))


# ---- the hub as a process ---------------------------------------------------------------

# The hub's database as the rig reads it: a SQLite file, or a PostgreSQL URL.
DbRef = Path | str


def _is_pg(db: DbRef) -> bool:
    return str(db).startswith(("postgresql://", "postgres://"))


def _db_url(db: DbRef) -> str:
    return str(db) if _is_pg(db) else f"sqlite:///{db}"


class HubProcess:
    """One hub process; start/kill/restart on the same database and port."""

    def __init__(self, workdir: Path, broker_url: str, registry: Path, db_path: DbRef,
                 *, prefix: list[str] | None = None, http_host: str = "127.0.0.1",
                 **settings: Any) -> None:
        self.workdir = workdir
        # `prefix` runs the hub inside something (e.g. `ip netns exec NS`, or setpriv to drop root's
        # file-mode override); its HTTP is
        # then bound (and asked) at `http_host`, an address of that namespace.
        self.prefix = prefix or []
        self.http_host = http_host
        self.db_path = db_path
        self.http_port = free_port()
        self.config = workdir / "hub.toml"
        self.log = workdir / "hub.log"
        values = {"hub_id": "hub-faults", "broker_url": broker_url,
                  "db_url": _db_url(db_path), "data_dir": str(workdir / "hub-data"),
                  "registry_file": str(registry), **HUB_SETTINGS, **settings}
        self.config.write_text("".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items()))
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, wait_s: float = 60.0) -> HubProcess:
        logf = self.log.open("ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("TIENGMO_CONFIG", None)
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "tiengmo.cli", "hub", "run", "--config",
             str(self.config), "--http", f"{self.http_host}:{self.http_port}"],
            stdout=logf, stderr=logf, cwd=str(self.workdir), env=env)
        self.starts += 1
        if wait_s:
            self.wait_ready(wait_s)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until /healthz answers 200 (started, broker connected)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited ({self.proc.returncode}):\n"
                                   f"{self.log_text()[-3000:]}")
            code, _ = self.health()
            if code == 200:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the hub was not ready within {timeout} s:\n"
                           f"{self.log_text()[-3000:]}")

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of /healthz; (0, {}) when nothing answers."""
        url = f"http://{self.http_host}:{self.http_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"{}")
            except ValueError:
                return exc.code, {}
        except (OSError, ValueError):
            return 0, {}

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no death published, nothing flushed (the broker sends the Will)."""
        if self.proc is not None:
            self.signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.signal(signal.SIGCONT)   # a stopped process cannot act on SIGTERM
        self.signal(signal.SIGTERM)
        try:
            code = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self.proc = None
        return code

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() \
            else ""


# ---- nodes ------------------------------------------------------------------------------

@dataclass
class Press:
    node_id: str
    at: float     # monotonic time the button callback fired (the alarm's moment)


SimNode = HeadlessNode | VirtualNode


class Nodes:
    """Node agents in this process, on one broker, with every press timed."""

    def __init__(self, broker_url: str, data_root: Path, count: int, hamlets: int, *,
                 headless: bool = True) -> None:
        self.presses: list[Press] = []
        self._lock = threading.Lock()
        self.nodes: dict[str, SimNode] = {}
        for i, nid in enumerate(node_ids(count)):
            cfg = node_config(nid, hamlet(i % hamlets), broker_url=broker_url,
                              data_dir=data_root / nid, timers=NODE_TIMERS, mqtt=NODE_MQTT,
                              buttons=BUTTONS, hardware=PATTERNS)
            self.nodes[nid] = HeadlessNode(cfg) if headless else VirtualNode(cfg)

    def start(self, wait_s: float = 60.0) -> Nodes:
        for n in self.nodes.values():
            self.start_one(n.node_id)
        deadline = time.monotonic() + wait_s
        for n in self.nodes.values():
            if not n.wait_connected(max(0.1, deadline - time.monotonic())):
                raise TimeoutError(f"{n.node_id} did not connect within {wait_s} s")
        return self

    def start_one(self, node_id: str) -> None:
        n = self.nodes[node_id]
        n.start()
        assert n.agent is not None
        hw = n.agent.hardware
        original = hw.on_press
        assert original is not None

        def timed(b: ButtonConfig, _orig: Callable[[ButtonConfig], None] = original) -> None:
            with self._lock:
                self.presses.append(Press(node_id, time.monotonic()))
            _orig(b)

        hw.on_press = timed

    def __getitem__(self, node_id: str) -> SimNode:
        return self.nodes[node_id]

    def __iter__(self) -> Any:
        return iter(self.nodes.values())

    def press(self, node_id: str, button: int) -> None:
        self.nodes[node_id].press(button, block=False)

    def burst(self, total: int, spread_s: float, only: Iterable[str] | None = None) -> None:
        """`total` presses round-robin over the nodes, evenly over `spread_s` (blocking)."""
        ids = list(only) if only is not None else list(self.nodes)
        start = time.monotonic()
        for i in range(total):
            due = start + spread_s * i / max(1, total)
            time.sleep(max(0.0, due - time.monotonic()))
            self.press(ids[i % len(ids)], 1 + (i // len(ids)) % 2)

    def wait_pressed(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.presses) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        if len(self.presses) < count:
            raise AssertionError(f"only {len(self.presses)} of {count} presses fired")

    def outbox_ids(self) -> tuple[set[str], set[str]]:
        """(every alarm id the nodes hold, those the hub answered `received` for)."""
        held: set[str] = set()
        acked: set[str] = set()
        for n in self.nodes.values():
            if n.agent is None or n.agent.outbox is None:
                continue
            for e in n.agent.outbox.all():
                held.add(e.alarm_id)
                if e.state.value != "pending":
                    acked.add(e.alarm_id)
        return held, acked

    def pending(self) -> int:
        return sum(n.agent.outbox.depth() for n in self.nodes.values()
                   if n.agent is not None and n.agent.outbox is not None)

    def gong_latencies(self) -> list[float | None]:
        """Per press: seconds until its node's gong was striking (0 if it already was),
        None if not within GONG_WITHIN_S."""
        timelines = {nid: n.output_timeline("gong") for nid, n in self.nodes.items()
                     if n.agent is not None}
        out: list[float | None] = []
        for p in self.presses:
            tl = timelines.get(p.node_id, [])
            before = [on for t, on in tl if t <= p.at]
            if before and before[-1]:
                out.append(0.0)
                continue
            ons = [t - p.at for t, on in tl if on and p.at <= t <= p.at + GONG_WITHIN_S]
            out.append(min(ons) if ons else None)
        return out

    def gongs_fired(self) -> int:
        """Presses whose node's gong was striking within GONG_WITHIN_S after the press."""
        return sum(1 for lat in self.gong_latencies() if lat is not None)

    def stop(self) -> None:
        for n in self.nodes.values():
            with contextlib.suppress(Exception):   # teardown: the others must still stop
                n.stop()


# ---- the database, read directly ---------------------------------------------------------

def _pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return list(conn.execute(sql).fetchall())


def db_alarm_ids(db_path: DbRef) -> set[str]:
    """Every alarm id stored in the hub's database (read-only use)."""
    if _is_pg(db_path):
        try:
            return {r[0] for r in _pg_rows(str(db_path), "SELECT alarm_id FROM alarms")}
        except psycopg.Error:   # dropped, not migrated yet, or not reachable
            return set()
    assert isinstance(db_path, Path)
    if not db_path.exists():
        return set()
    conn = sqlite3.connect(str(db_path), timeout=30)
    try:
        return {r[0] for r in conn.execute("SELECT alarm_id FROM alarms")}
    except sqlite3.OperationalError:   # not migrated yet
        return set()
    finally:
        conn.close()


def incident_count(db_path: DbRef) -> int:
    """Incidents in the hub's database, drills left out."""
    sql = "SELECT count(*) FROM incidents WHERE NOT drill"
    if _is_pg(db_path):
        return int(_pg_rows(str(db_path), sql)[0][0])
    conn = sqlite3.connect(str(db_path), timeout=30)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def duplicate_incidents(db_path: DbRef) -> int:
    """Incidents beyond the first per kind and hamlet (a scenario runs inside one window)."""
    sql = "SELECT kind, area, count(*) FROM incidents WHERE NOT drill GROUP BY kind, area"
    if _is_pg(db_path):
        return sum(n - 1 for _, _, n in _pg_rows(str(db_path), sql))
    conn = sqlite3.connect(str(db_path), timeout=30)
    try:
        rows = conn.execute(sql).fetchall()
    finally:
        conn.close()
    return sum(n - 1 for _, _, n in rows)


@dataclass
class Figures:
    """One scenario's outcome (bench/faults.py prints these as the table)."""

    scenario: str
    nodes: int
    pressed: int = 0
    stored: int = 0
    lost: int = 0
    duplicate_incidents: int = 0
    local_gongs: int = 0
    acked_not_stored: int = 0
    recover_s: float = 0.0
    hub_crashes: int = 0
    incidents: int = 0
    # `sound` commands seen on the broker, and those naming an incident the database
    # does not hold at the end (tests/faults/sounds.py); None where not watched.
    sounds: int | None = None
    phantom_sounds: int | None = None
    # 1 when the scenario did not recover within its bound without restarting the hub.
    restarts_needed: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def survived(self) -> bool:
        return (self.lost == 0 and self.duplicate_incidents == 0 and self.acked_not_stored == 0
                and self.local_gongs == self.pressed and self.hub_crashes == 0
                and not self.phantom_sounds and self.restarts_needed == 0
                and self.pressed > 0)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "survived": self.survived}


class AckAudit:
    """Samples "acked but not stored" on a thread: acks read first, then the database,
    so any ack without a stored row is a broken promise (PROTOCOL.md rule 2)."""

    def __init__(self, nodes: Nodes, db_path: DbRef, every_s: float = 0.5) -> None:
        self.nodes, self.db_path, self.every_s = nodes, db_path, every_s
        self.violations: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="ack-audit")
        self._thread.start()

    def check(self) -> None:
        _, acked = self.nodes.outbox_ids()
        stored = db_alarm_ids(self.db_path)
        self.violations |= acked - stored

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.check()
            except (sqlite3.Error, psycopg.Error):   # locked, full or gone: next time
                continue

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(10)
        self.check()
        return len(self.violations)


def wait_all_home(nodes: Nodes, db_path: DbRef, timeout: float) -> float:
    """Wait until every pressed alarm is stored AND acked; the monotonic time it happened."""
    deadline = time.monotonic() + timeout
    while True:
        held, _ = nodes.outbox_ids()
        if len(held) >= len(nodes.presses) and nodes.pending() == 0 \
                and held <= db_alarm_ids(db_path):
            return time.monotonic()
        if time.monotonic() > deadline:
            stored = len(held & db_alarm_ids(db_path))
            raise AssertionError(f"after {timeout} s: {stored} of {len(nodes.presses)} pressed "
                                 f"alarms stored, {nodes.pending()} still pending on nodes")
        time.sleep(0.1)


def count_figures(fig: Figures, nodes: Nodes, db_path: DbRef, audit: AckAudit,
                  sounds: SoundWatch | None = None) -> Figures:
    held, _ = nodes.outbox_ids()
    stored = held & db_alarm_ids(db_path)
    fig.pressed = len(nodes.presses)
    fig.stored = len(stored)
    # A press whose alarm never reached the outbox is lost as surely as one the hub dropped.
    fig.lost = fig.pressed - fig.stored
    fig.duplicate_incidents = duplicate_incidents(db_path)
    fig.incidents = incident_count(db_path)
    if sounds is not None:
        fig.sounds, fig.phantom_sounds = sounds.phantoms(db_path)
    lat = nodes.gong_latencies()
    fig.local_gongs = sum(1 for x in lat if x is not None)
    fig.notes["gong_latency_max_s"] = round(max((x for x in lat if x is not None),
                                                default=0.0), 3)
    fig.acked_not_stored = audit.stop()
    return fig
