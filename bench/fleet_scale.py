"""A hub under a simulated fleet: 1,000 / 2,000 / 5,000 headless nodes with 10 s heartbeats.

For each size, on a private Mosquitto (no connection limit), a `tiengmo hub
run` process on SQLite (or `--db postgresql`) and the fleet in worker
processes (firmware_sim.fleet, headless hardware: the real node code, no
gpiozero devices) measure:
- time from the fleet's start until every node's birth is seen on the wire,
  and until the hub's database has every node online;
- the hub's CPU (% of one core) and RSS over an idle window of heartbeats;
- press -> remote gong: from the pressed node's alarm on the wire (the press
  itself is a 1.5 s hold, reported apart) until the FIRST OTHER node of its
  hamlet reports its `started` result (its gong is on), p50/p99 over presses
  in different hamlets (each a new incident);
- the machine's load average with every figure (other work skews them).
Writes bench/results/fleet_scale.json and fleet_scale.png; asserts nothing.

    python -m bench.fleet_scale --sizes 1000 2000 5000
    python -m bench.fleet_scale --sizes 500 --window 20      # a quick proof
Target (issue 7): 5,000 nodes with the hub under 25 % of a core.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.common import RESULTS, load, save, start_broker
from bench.fleet_support import (
    HubProc,
    T,
    Watcher,
    percentile,
    pg_database,
    write_hub_toml,
    write_registry,
)
from bench.sim_scale import cpu_s, rss_mb
from firmware_sim.fleet import Fleet, default_processes, plan_shards
from firmware_sim.fleet_shard import ShardSpec
from hub.db import models as m
from hub.store import Store

PER_HAMLET = 20
SOUND_S = 5   # how long a pressed hamlet sounds in this bench (default policy: minutes)


def online_in_db(url: str) -> int:
    with Store.open(url, migrate=False) as st, st.engine.connect() as conn:
        q = select(func.count()).select_from(m.Node).where(m.Node.status == "online")
        return int(conn.execute(q).scalar_one())


def run_size(n: int, args: argparse.Namespace, db_url: str, work: Path) -> dict[str, Any]:
    nodes = {f"n{i:05d}": f"bench/xa/thon-{i // PER_HAMLET:04d}" for i in range(n)}
    reg = write_registry(work / "registry.toml", nodes)
    # Supervision and escalation on their defaults; the hub runs as in production, but
    # a fire sounds for SOUND_S instead of minutes: each press sounds a whole hamlet, and
    # twenty hamlets striking at once would load the simulator (not the hub) and skew
    # every later press.
    conf = write_hub_toml(work / "hub.toml", heartbeat_s=10.0)
    with conf.open("a", encoding="utf-8") as f:
        f.write(f"\n[policy.kinds.fire]\nduration_s = {SOUND_S}\n")
    broker, port = start_broker(work)
    url = f"mqtt://127.0.0.1:{port}"
    watcher = Watcher(port, [T.node_wildcard("state"), T.node_wildcard("result"),
                             T.node_wildcard("alarm"), T.all_hub_states(),
                             f"{T.prefix}/areas/#"])
    hub = HubProc(work, "bench-hub", url, db_url, reg, conf)
    fleet: Fleet | None = None
    out: dict[str, Any] = {"nodes": n, "db": db_url.split(":", 1)[0]}
    try:
        if not watcher.wait(lambda: "bench-hub" in watcher.hubs, 60):
            raise RuntimeError(f"hub did not start: {hub.log.read_text()[-2000:]}")
        base = ShardSpec(nodes=list(nodes.items()), broker_url=url,
                         data_root=str(work / "nodes"), headless=True,
                         timers={"heartbeat_s": 10.0})
        shards = plan_shards(base, args.processes or default_processes(n))
        out["sim_processes"] = len(shards)
        t0 = time.monotonic()
        fleet = Fleet(shards, timeout=120, log_level="error").start()
        all_seen = watcher.wait(lambda: len(watcher.online) >= n, args.online_timeout)
        out["all_births_seen"] = all_seen
        if watcher.online:
            out["all_online_s"] = round(max(watcher.online.values()) - t0, 1)
        deadline = time.monotonic() + 60
        while online_in_db(db_url) < n and time.monotonic() < deadline:
            time.sleep(0.5)
        out["hub_db_online_s"] = round(time.monotonic() - t0, 1)
        out["hub_db_online"] = online_in_db(db_url)
        out["load_after_start"] = load()
        time.sleep(args.settle)
        c0, w0 = cpu_s([hub.pid]), time.monotonic()
        time.sleep(args.window)
        out["idle_window_s"] = args.window
        out["hub_cpu_pct_of_one_core"] = round(100 * (cpu_s([hub.pid]) - c0)
                                               / (time.monotonic() - w0), 1)
        out["hub_rss_mb"] = round(rss_mb([hub.pid]), 1)
        out["broker_rss_mb"] = round(rss_mb([broker.pid]), 1)
        out["load_idle"] = load()
        births_before = watcher.births
        out.update(press_latency(fleet, watcher, nodes, args.presses))
        out["load_after_presses"] = load()
        # Births beyond one per node are reconnects: a simulator too slow to keep its
        # connections alive shows here, not as a mysterious latency tail.
        out["node_reconnects_before_presses"] = births_before - n
        out["node_reconnects_during_presses"] = watcher.births - births_before
    finally:
        if fleet is not None:
            fleet.stop()
        hub.stop()
        watcher.close()
        broker.terminate()
        broker.wait(10)
    return out


def press_latency(fleet: Fleet, watcher: Watcher, nodes: dict[str, str],
                  presses: int) -> dict[str, Any]:
    """Press button 2 (fire) on the first node of `presses` hamlets, one at a time."""
    by_area: dict[str, list[str]] = {}
    for node_id, area in nodes.items():
        by_area.setdefault(area, []).append(node_id)
    areas = [a for a, ns in by_area.items() if len(ns) > 1][:presses]
    lat: list[float] = []
    hub_part: list[float] = []      # alarm on the wire -> the hub's `sound` on the wire
    with_hold: list[float] = []
    for area in areas:
        origin, others = by_area[area][0], set(by_area[area][1:])
        with watcher.cv:
            start_idx = len(watcher.results)
        t0 = time.monotonic()
        fleet.press(origin, 2)

        def remote_started(idx: int = start_idx, others: set[str] = others) -> bool:
            return any(node in others and body.get("status") == "started"
                       for _, node, body in watcher.results[idx:])

        if watcher.wait(remote_started, 15):
            with watcher.cv:
                first = min(t for t, node, body in watcher.results[start_idx:]
                            if node in others and body.get("status") == "started")
                alarm_seen = watcher.alarms.get(origin)
                cmd_seen = watcher.area_cmds.get(area)
            with_hold.append(1000 * (first - t0))
            if alarm_seen is not None and alarm_seen >= t0:
                lat.append(1000 * (first - alarm_seen))
                if cmd_seen is not None and cmd_seen >= alarm_seen:
                    hub_part.append(1000 * (cmd_seen - alarm_seen))
        time.sleep(0.5)
    return {"presses": len(areas), "remote_gongs_seen": len(with_hold),
            "press_incl_hold_to_remote_gong_ms_p50": _r(percentile(with_hold, 50)),
            "press_to_remote_gong_ms_p50": _r(percentile(lat, 50)),
            "press_to_remote_gong_ms_p99": _r(percentile(lat, 99)),
            "press_to_remote_gong_ms_max": _r(max(lat) if lat else None),
            # The hub's share: from the alarm to the area's `sound`, both seen on the wire;
            # the rest is the simulated remote node receiving it and reporting `started`.
            "alarm_to_sound_on_wire_ms_p50": _r(percentile(hub_part, 50)),
            "alarm_to_sound_on_wire_ms_p99": _r(percentile(hub_part, 99)),
            # Every press, in press order: a tail is read from these, not guessed.
            "press_to_remote_gong_ms_each": [_r(x) for x in lat],
            "alarm_to_sound_on_wire_ms_each": [_r(x) for x in hub_part]}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def saved(db: str) -> list[dict[str, Any]]:
    """Every size saved in bench/results/fleet_scale.json for `db`, smallest first."""
    path = RESULTS / "fleet_scale.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    return sorted((r for r in data.values() if r.get("db") == db), key=lambda r: r["nodes"])


def plot(results: list[dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["nodes"] for r in results]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
    a1.plot(sizes, [r.get("hub_cpu_pct_of_one_core") for r in results], "o-", label="hub CPU %")
    a1.axhline(25, color="red", linestyle="--", label="target 25 %")
    a1.set_ylim(0, 30)
    a1.set_xlabel("nodes")
    a1.set_ylabel("% of one core (idle, 10 s heartbeats)")
    a1.legend()
    a2.plot(sizes, [r.get("press_to_remote_gong_ms_p99") for r in results], "o-", label="p99")
    a2.plot(sizes, [r.get("press_to_remote_gong_ms_p50") for r in results], "o-", label="p50")
    a2.plot(sizes, [r.get("alarm_to_sound_on_wire_ms_p99") for r in results], "s--",
            label="hub's share (alarm → sound) p99")
    a2.set_yscale("log")
    a2.set_xlabel("nodes")
    a2.set_ylabel("press → remote gong, ms")
    a2.legend()
    fig.suptitle(f"Fleet scale (load at end {results[-1].get('load_after_presses')})")
    fig.tight_layout()
    out = RESULTS / "fleet_scale.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 5000])
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--processes", type=int, help="simulator processes (default: the fleet's)")
    ap.add_argument("--window", type=float, default=30.0, help="idle CPU window, seconds")
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--presses", type=int, default=20)
    ap.add_argument("--online-timeout", type=float, default=180.0)
    args = ap.parse_args()
    results = []
    for n in args.sizes:
        work = Path(tempfile.mkdtemp(prefix="tiengmo-bench-fleet-"))
        try:
            if args.db == "postgresql":
                with pg_database() as url:
                    r = run_size(n, args, url, work)
            else:
                r = run_size(n, args, f"sqlite:///{work / 'hub.db'}", work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        results.append(r)
        for k, v in r.items():
            print(f"{k:>32}: {v}")
        save("fleet_scale", f"{n} nodes {args.db}", r)
        print()
    png = plot(saved(args.db) or results)
    print(f"written to bench/results/fleet_scale.json and {png.name}")


if __name__ == "__main__":
    main()
