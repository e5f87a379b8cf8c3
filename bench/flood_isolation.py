"""Other hamlets' alarms while one node credential floods the hub (issue 12 point 1).

On a private Mosquitto (tests/support/broker.py), the hub in its own process (as in
production, so its RSS and CPU are its own), and in one run:

1. the baseline: `--presses` presses, no flood;
2. the same presses while a flooder (its own process, one node's credential and its
   own topics only, as the ACL allows) publishes a mix of valid `result`, `state` and
   `heartbeat` messages as fast as paho lets it.

A press is an alarm published for one of three probe nodes, each in a hamlet of its
own (never the flooder's), one at a time: t0 as it is published, `received` when
its ack reaches the origin, `sound` when the area command reaches a remote
subscribed like a node to the three hamlets' `cmd`. Each press is its own incident
(correlation window 10 ms, presses `--gap-ms` apart). A press with no ack or no
sound within `--timeout` s is lost. The hub's RSS (max of samples) and CPU (user +
system over the phase) come from /proc; its health at the end (messages handled,
dropped by node and reason) from its own report.

    python -m bench.flood_isolation --presses 200 [--production-broker] [--one-connection]
        [--busy N --nice K]

`--busy N` keeps N other processes spinning a CPU each through the run (a machine busy
with other work); `--nice K` runs the hub and the broker at nice K, as their units do
(the hub and broker roles: `Nice=-10`, `CPUWeight=1000`).

`--production-broker`: the production Mosquitto config with the dynamic-security store
of tiengmo.dynsec_config (a login per node, the hub's and its alarm lane's own,
`use_username_as_clientid`), every client with its own login, as users run it; the
fault table's flood row (`run_flood`) uses it.

Targets: p99 <= 100 ms for both during the flood, 0 lost. Writes
bench/results/flood_isolation.json with the commit and the load average.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import (
    ProcWatch,
    Server,
    client,
    hub_settings,
    load,
    ready_then_wait,
    registry_text,
    subscribe,
    write_result,
)
from hub.logins import alarm_login
from protocol import (
    Alarm,
    Heartbeat,
    Kind,
    NodeState,
    Result,
    ResultStatus,
    Source,
    Topics,
    encode,
)
from tests.support.broker import Mosquitto

T = Topics()
MODULE = "bench.flood_isolation"
PROBES = {f"probe-{i}": f"bench/xa/thon-probe-{i}" for i in range(3)}
REMOTES = {f"remote-{i}": area for i, area in enumerate(PROBES.values())}
FLOODER, FLOOD_AREA = "flooder", "bench/xa/thon-flood"
TARGET_P99_MS = 100.0


HUB_ID = "bench-hub"   # bench.common.hub_settings


def registry() -> str:
    return registry_text({**PROBES, **REMOTES, FLOODER: FLOOD_AREA})


def production_logins(work: Path) -> dict[str, str]:
    """Every login of a run on the production broker (`--production-broker`): the hub,
    its alarm lane, each node; kept in `work` for the hub's and the flooder's process."""
    users = {u: secrets.token_urlsafe(12) for u in
             [HUB_ID, alarm_login(HUB_ID), *PROBES, *REMOTES, FLOODER]}
    for user, pw in users.items():
        (work / f"{user}.pass").write_text(pw + "\n")
    (work / "logins.json").write_text(json.dumps(users))
    return users


def saved_logins(work: Path | None) -> dict[str, str] | None:
    f = work / "logins.json" if work is not None else None
    return json.loads(f.read_text()) if f is not None and f.exists() else None


# ---- the hub and the flooder (each in its own process) ------------------------------------

def serve_hub(port: int, work: Path, alarm_connection: bool) -> None:
    from hub.runtime import Hub

    lane: dict[str, Any] = {"alarm_connection": True} if alarm_connection else {}
    if saved_logins(work) is not None:   # the production broker: as the hub role sets it
        lane |= {"username": HUB_ID, "password_file": str(work / f"{HUB_ID}.pass")}
        if alarm_connection:
            lane |= {"alarm_username": alarm_login(HUB_ID),
                     "alarm_password_file": str(work / f"{alarm_login(HUB_ID)}.pass")}
    settings = hub_settings(port, work, "registry.toml", correlation_window_s=0.01,
                            noisy_max_fanouts=1_000_000, noisy_window_s=1.0, **lane)
    hub = Hub(settings).start()
    ready_then_wait()
    health = hub.health()
    hub.stop()
    keep = ("handled", "rejected", "dropped", "backlog", "reason")
    print(json.dumps({k: health.get(k) for k in keep}), flush=True)


def serve_flood(port: int, work: Path | None) -> None:
    """Publish result/state/heartbeat on the flooder's own topics until stdin closes."""
    c = client(port, FLOODER, (saved_logins(work) or {}).get(FLOODER))
    stop = threading.Event()
    count = [0]

    def run() -> None:
        now = time.time_ns() // 1_000_000
        state = encode(NodeState(online=True, boot_id=1, ts_ms=now, version="flood",
                                 area=FLOOD_AREA, outputs=("gong",),
                                 buttons=((1, Kind.THEFT), (2, Kind.FIRE))))
        topics = (T.result(FLOODER), T.node_state(FLOODER), T.heartbeat(FLOODER))
        seq = 0
        while not stop.is_set():
            seq += 1
            which = seq % 3
            if which == 0:
                payload = encode(Result(cmd_id=str(uuid.uuid4()), status=ResultStatus.DONE,
                                        ts_ms=now))
            elif which == 1:
                payload = state
            else:
                payload = encode(Heartbeat(boot_id=1, seq=seq, ts_ms=now, uptime_s=seq,
                                           outbox=0))
            c.publish(topics[which], payload, qos=1 if which < 2 else 0)
            count[0] += 1

    t = threading.Thread(target=run, daemon=True)
    t.start()
    ready_then_wait()
    stop.set()
    t.join(5)
    c.disconnect()
    c.loop_stop()
    print(json.dumps({"sent": count[0]}), flush=True)


# ---- the probes -------------------------------------------------------------------------

class Probes:
    """Each probe node publishes its alarms (and hears its acks); each remote, a node of
    the same hamlet, times its area's `sound`. One client per node, with its login on
    the production broker (which lets a node publish and read only its own)."""

    def __init__(self, port: int, logins: dict[str, str] | None = None) -> None:
        pw = (logins or {}).get
        self.origins = {node: client(port, node, pw(node)) for node in PROBES}
        self.remotes = [client(port, node, pw(node)) for node in REMOTES]
        self.got = threading.Condition()
        self.acked: dict[str, float] = {}
        self.sounded: dict[str, float] = {}
        self.pressed: dict[str, float] = {}   # alarm_id -> wall ms at publish
        self.sound_incidents: list[str] = []  # incident id of each `sound` (cmd_id once)
        self._cmd_ids: set[str] = set()
        for node, origin in self.origins.items():
            origin.on_message = self._on_ack
            subscribe(origin, T.ack(node))
        for remote, area in zip(self.remotes, REMOTES.values(), strict=True):
            remote.on_message = self._on_cmd
            subscribe(remote, T.area_cmd(area))

    def _on_ack(self, c: Any, u: Any, msg: Any) -> None:
        t = time.perf_counter()
        body = json.loads(msg.payload)
        if body.get("status") == "received":
            with self.got:
                self.acked.setdefault(body["alarm_id"], t)
                self.got.notify_all()

    def _on_cmd(self, c: Any, u: Any, msg: Any) -> None:
        t = time.perf_counter()
        area = msg.topic
        body = json.loads(msg.payload)
        with self.got:
            self.sounded.setdefault(area, t)
            # For the fault table: every sound must name an incident the database holds.
            if body.get("action") == "sound" and body.get("cmd_id") not in self._cmd_ids:
                self._cmd_ids.add(body.get("cmd_id"))
                self.sound_incidents.append(str(body.get("incident_id")))
            self.got.notify_all()

    def press(self, node: str, timeout: float) -> tuple[float | None, float | None]:
        """One press; ms to `received` and to `sound` (None: not within `timeout`)."""
        a = Alarm(alarm_id=str(uuid.uuid4()), kind=Kind.FIRE,
                  ts_ms=time.time_ns() // 1_000_000, source=Source.BUTTON, button=2,
                  attempt=1)
        cmd_topic = T.area_cmd(PROBES[node])
        with self.got:
            self.sounded.pop(cmd_topic, None)
        t0 = time.perf_counter()
        self.pressed[a.alarm_id] = time.time_ns() / 1e6
        self.origins[node].publish(T.alarm(node), encode(a), qos=1)
        with self.got:
            self.got.wait_for(lambda: a.alarm_id in self.acked and cmd_topic in self.sounded,
                              timeout)
            ack, snd = self.acked.get(a.alarm_id), self.sounded.get(cmd_topic)
        return (None if ack is None else (ack - t0) * 1000,
                None if snd is None else (snd - t0) * 1000)

    def close(self) -> None:
        for c in (*self.origins.values(), *self.remotes):
            c.disconnect()
            c.loop_stop()


def _quantiles(got: list[float]) -> dict[str, float | None]:
    if not got:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    got = sorted(got)
    q = statistics.quantiles(got, n=100, method="inclusive") if len(got) > 1 else got * 99
    return {"p50_ms": round(q[49], 2), "p99_ms": round(q[98], 2), "max_ms": round(got[-1], 2)}


def measure(probes: Probes, presses: int, gap_s: float, timeout: float,
            hub_pid: int) -> dict[str, Any]:
    received: list[float] = []
    sound: list[float] = []
    lost = 0
    nodes = list(PROBES)
    with ProcWatch(hub_pid) as watch:
        for i in range(presses):
            r, s = probes.press(nodes[i % len(nodes)], timeout)
            if r is None or s is None:
                lost += 1
            if r is not None:
                received.append(r)
            if s is not None:
                sound.append(s)
            time.sleep(gap_s)
    return {"presses": presses, "lost": lost, "received": _quantiles(received),
            "sound": _quantiles(sound), **watch.report()}


def _arrival(db: Path, pressed: dict[str, float]) -> dict[str, Any]:
    """Publish -> the hub's receipt (its stamp on the alarm row), for the baseline's and
    the flood's presses: how much of the wait is the broker and paho's reading."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT alarm_id, received_ms FROM alarms").fetchall())
        issued = dict(conn.execute(
            "SELECT a.alarm_id, c.issued_ms FROM alarms a JOIN commands c "
            "ON c.incident_id = a.incident_id WHERE c.action = 'sound'").fetchall())
    ids = list(pressed)
    half = len(ids) // 2
    out: dict[str, Any] = {}
    for name, part in (("baseline", ids[:half]), ("flood", ids[half:])):
        out[name] = {"to_receipt": _quantiles([rows[i] - pressed[i] for i in part
                                               if i in rows]),
                     "receipt_to_sound_issued": _quantiles([issued[i] - rows[i] for i in part
                                                            if i in rows and i in issued])}
    return out


def _line(name: str, r: dict[str, Any]) -> str:
    rc, sd = r["received"], r["sound"]
    return (f"{name:<13} received p50 {rc['p50_ms']} p99 {rc['p99_ms']} max {rc['max_ms']} ms | "
            f"sound p50 {sd['p50_ms']} p99 {sd['p99_ms']} max {sd['max_ms']} ms | lost "
            f"{r['lost']} | hub RSS {r['hub_rss_max_mib']} MiB, CPU {r['hub_cpu_pct']}%")


def _counts(db: Path, probes: Probes) -> dict[str, Any]:
    """What the fault table counts (bench/fault_table.py): every press of the run, its
    row, the incidents, acks without a row, sounds naming an incident not held."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        stored = {r[0] for r in conn.execute("SELECT alarm_id FROM alarms")}
        incidents = {r[0] for r in conn.execute("SELECT incident_id FROM incidents")}
    pressed = set(probes.pressed)
    return {"pressed": len(pressed), "stored": len(pressed & stored),
            "incidents": len(incidents),
            "acked_not_stored": len(set(probes.acked) - stored),
            "sounds": len(probes.sound_incidents),
            "phantom_sounds": sum(1 for i in probes.sound_incidents if i not in incidents)}


def start_broker(work: Path, production: bool) -> tuple[Mosquitto, dict[str, str] | None]:
    """A plain Mosquitto, or the production one (deploy/mosquitto/mosquitto.conf with
    the dynamic-security store tiengmo.dynsec_config makes: one login per node, the
    hub's and its alarm lane's, `use_username_as_clientid`), as users run it."""
    if not production:
        return Mosquitto(work).start(), None
    from protocol import load_registry
    from tests.support.prod_mosquitto import ProductionMosquitto, dynsec_store

    users = production_logins(work)
    store = dynsec_store(load_registry(work / "registry.toml"), [HUB_ID], users)
    (work / "broker").mkdir(exist_ok=True)
    return ProductionMosquitto(work / "broker", users, store).start(), users


def renice(pid: int, nice: int) -> None:
    """Every thread of `pid` at `nice` (Linux's nice is per thread, as systemd's `Nice=`
    gives it to the unit's first one and so to all it starts). Below 0 needs root."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.setpriority(os.PRIO_PROCESS, int(task.name), nice)


def busy(n: int) -> list[subprocess.Popen[bytes]]:
    """`n` processes each spinning a CPU at nice 0: other work on the hub's machine."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def run(work: Path, presses: int = 200, gap_ms: float = 50.0, timeout: float = 30.0,
        one_connection: bool = False, production: bool = False, busy_cpus: int = 0,
        nice: int = 0) -> dict[str, Any]:
    """The whole bench in `work` (registry, broker, hub database): the baseline, then the
    flood; returns the result (what main writes), `counts` for the fault table.
    `busy_cpus` processes spin through the whole run; the hub and the broker run at
    `nice` (the hub and broker roles' `Nice=`)."""
    result: dict[str, Any] = {"presses": presses, "gap_ms": gap_ms,
                              "alarm_connection": not one_connection,
                              "broker": "production" if production else "plain",
                              "busy_cpus": busy_cpus, "hub_and_broker_nice": nice,
                              "cpus": os.cpu_count(), "loadavg_start": load()}
    gap = gap_ms / 1000
    work.mkdir(parents=True, exist_ok=True)
    (work / "registry.toml").write_text(registry())
    broker, logins = start_broker(work, production)
    hub: Server | None = None
    probes: Probes | None = None
    spinners = busy(busy_cpus)
    try:
        hub = Server(MODULE, ["--serve", "hub", "--port", str(broker.port),
                              "--work", str(work)]
                     + (["--one-connection"] if one_connection else []))
        if nice:
            assert broker.proc is not None
            renice(broker.proc.pid, nice)
            renice(hub.proc.pid, nice)
        probes = Probes(broker.port, logins)
        for i in range(10):   # warm-up: first connections, first queries
            probes.press(list(PROBES)[i % len(PROBES)], timeout)
        result["baseline"] = measure(probes, presses, gap, timeout, hub.proc.pid)
        print(_line("baseline", result["baseline"]), flush=True)
        flood = Server(MODULE, ["--serve", "flood", "--port", str(broker.port),
                                "--work", str(work)])
        time.sleep(1.0)   # the flood is at full rate before the first press
        result["flood"] = measure(probes, presses, gap, timeout, hub.proc.pid)
        flood.stop()
        assert flood.proc.stdout is not None
        result["flood"]["flood_sent"] = json.loads(flood.proc.stdout.read() or "{}").get(
            "sent")
        print(_line("during flood", result["flood"]), flush=True)
        time.sleep(1.0)   # a late ack or sound still counts in the table
    finally:
        for p in spinners:
            p.kill()
            p.wait()
        if probes is not None:
            probes.close()
        if hub is not None:
            hub.stop()
            assert hub.proc.stdout is not None
            result["hub_health"] = json.loads(hub.proc.stdout.read() or "{}")
            result["hub_exit"] = hub.proc.returncode
            if probes is not None:
                result["broker_to_hub_ms"] = _arrival(work / "hub.db", probes.pressed)
                result["counts"] = _counts(work / "hub.db", probes)
        broker.stop()
    f = result["flood"]
    print(f"publish -> hub receipt: {result.get('broker_to_hub_ms')}")
    result["loadavg_end"] = load()
    result["p99_target_ms"] = TARGET_P99_MS
    result["met"] = bool(f["lost"] == 0 and f["received"]["p99_ms"] is not None
                         and f["received"]["p99_ms"] <= TARGET_P99_MS
                         and f["sound"]["p99_ms"] <= TARGET_P99_MS)
    dropped = result.get("hub_health", {}).get("dropped") or {}
    print(f"flood: {f['flood_sent']} messages sent by {FLOODER}; hub dropped "
          f"{sum(dropped.values())} unparsed ({dropped}); handled "
          f"{result.get('hub_health', {}).get('handled')}")
    print(f"target p99 <= {TARGET_P99_MS:g} ms and 0 lost during the flood: "
          f"{'met' if result['met'] else 'NOT met'}; load {result['loadavg_start']} -> "
          f"{result['loadavg_end']} on {os.cpu_count()} cpus; {busy_cpus} busy processes, "
          f"hub and broker at nice {nice}")
    return result


def run_flood(workdir: Path, presses: int = 200, production: bool = True) -> dict[str, Any]:
    """The fault table's flood row (bench/fault_table.flood_row): this bench with the
    alarm lane's own connection, as the Figures' keys plus notes.

    Sent = every press of the run (warm-up, baseline and flood), each published once by
    a bare client (no local gong to miss); "recover" is 0: a flood is no outage, what
    bites is the wait, hence the p99s in the notes (and `met`: p99 <= 100 ms for both
    during the flood, 0 lost). A hub that did not exit cleanly counts as a crash."""
    t0 = time.monotonic()
    r = run(workdir, presses=presses, production=production)
    c = r.get("counts", {})
    f, b = r["flood"], r["baseline"]
    pressed = int(c.get("pressed", 0))
    dropped = r.get("hub_health", {}).get("dropped") or {}
    out: dict[str, Any] = {
        "pressed": pressed, "stored": int(c.get("stored", 0)),
        "lost": pressed - int(c.get("stored", 0)) + int(f["lost"]) + int(b["lost"]),
        "incidents": int(c.get("incidents", 0)),
        # One incident per press (correlation window 10 ms, presses 50 ms apart): any
        # beyond is a duplicate; presses received within 10 ms of each other may share one.
        "duplicate_incidents": max(0, int(c.get("incidents", 0)) - pressed),
        "local_gongs": pressed, "acked_not_stored": int(c.get("acked_not_stored", 0)),
        "recover_s": 0.0, "hub_crashes": 0 if r.get("hub_exit") == 0 else 1,
        "sounds": c.get("sounds"), "phantom_sounds": c.get("phantom_sounds"),
        # The hub was never restarted; whether the wait met the target is `met`.
        "restarts_needed": 0 if r.get("hub_exit") == 0 else 1,
        "flood_sent": f.get("flood_sent"), "flood_dropped": sum(dropped.values()),
        "flood_received_p99_ms": f["received"]["p99_ms"],
        "flood_sound_p99_ms": f["sound"]["p99_ms"],
        "baseline_received_p99_ms": b["received"]["p99_ms"],
        "baseline_sound_p99_ms": b["sound"]["p99_ms"],
        "p99_target_ms": TARGET_P99_MS, "met": r["met"],
        "hub_rss_max_mib": f["hub_rss_max_mib"], "hub_cpu_pct": f["hub_cpu_pct"],
        "alarm_connection": r["alarm_connection"], "broker": r["broker"],
        "loadavg_start": r["loadavg_start"], "loadavg_end": r["loadavg_end"],
        "seconds": round(time.monotonic() - t0, 1),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--presses", type=int, default=200)
    ap.add_argument("--gap-ms", type=float, default=50.0, help="between presses")
    ap.add_argument("--timeout", type=float, default=30.0, help="a press is lost after this")
    ap.add_argument("--no-write", action="store_true", help="print only (a comparison run)")
    ap.add_argument("--one-connection", action="store_true",
                    help="the hub without the alarm lane's own MQTT connection")
    ap.add_argument("--production-broker", action="store_true",
                    help="the production Mosquitto config with its dynamic-security store "
                         "(a login per node, the hub's and its alarm lane's)")
    ap.add_argument("--busy", type=int, default=0, metavar="N",
                    help="N processes spinning a CPU each through the run (a busy machine)")
    ap.add_argument("--nice", type=int, default=0, metavar="K",
                    help="the hub's and the broker's nice (the roles set -10; below 0 needs "
                         "root)")
    ap.add_argument("--serve", choices=["hub", "flood"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.serve == "hub":
        return serve_hub(args.port, args.work, not args.one_connection)
    if args.serve == "flood":
        return serve_flood(args.port, args.work)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(Path(tmp), args.presses, args.gap_ms, args.timeout, args.one_connection,
                     args.production_broker, args.busy, args.nice)
    result.pop("counts", None)
    result.pop("hub_exit", None)
    if not args.no_write:
        print(f"written to {write_result('flood_isolation', result)}")
    sys.exit(0 if result["met"] else 1)


if __name__ == "__main__":
    main()
