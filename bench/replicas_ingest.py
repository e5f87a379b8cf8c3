"""Alarm ingest with one and two hub replicas, on SQLite and PostgreSQL, beside a bare relay.

Every configuration runs in the same invocation on the same private Mosquitto
and the same load (bench.hub_ingest.drive: `--alarms` alarms from `--nodes`
nodes, at most `--window` unacknowledged): a bare paho relay (receive, publish
one ack: the ceiling), then the hub as real `tiengmo hub run` processes (two
replicas share the stream with an MQTT 5 shared subscription). Figures:
alarms acked per second, ratio to the relay, alarms never acked, rows stored,
the hubs' CPU during the run, and the machine's load average.

    python -m bench.replicas_ingest --alarms 2000
Writes bench/results/replicas_ingest.json and replicas_ingest.png; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, Server, load, save
from bench.fleet_support import HubProc, T, Watcher, pg_database, write_hub_toml
from bench.hub_ingest import MODULE, drive, registry
from bench.sim_scale import cpu_s
from hub.store import Store
from tests.support.broker import Mosquitto

QUIET = {"escalate_after_s": 3600.0, "failed_to_sound_s": 3600.0, "heartbeat_s": 3600.0,
         "report_within_s": 7200.0, "loss_debounce_s": 3600.0}


def run_hubs(broker: Mosquitto, work: Path, db_url: str, replicas: int,
             args: argparse.Namespace) -> dict[str, Any]:
    reg = work / "registry.toml"
    reg.write_text(registry(args.nodes), encoding="utf-8")
    conf = write_hub_toml(work / "hub.toml", **QUIET)
    watcher = Watcher(broker.port, [T.all_hub_states()])
    ids = [f"bench-hub-{i}" for i in range(replicas)]
    group = "bench" if replicas > 1 else None
    hubs = [HubProc(work, h, broker.url, db_url, reg, conf, shared_group=group) for h in ids]
    try:
        if not watcher.wait(lambda: watcher.hubs >= set(ids), 60):
            raise RuntimeError(f"hubs did not come up: {(work / (ids[0] + '.log')).read_text()}")
        pids = [h.pid for h in hubs]
        c0, t0 = cpu_s(pids), time.monotonic()
        r = drive(broker.port, args.alarms, args.nodes, args.window)
        rate, lost = r["rate"], r["lost"]
        cpu = 100 * (cpu_s(pids) - c0) / (time.monotonic() - t0)
    finally:
        for h in hubs:
            h.stop()
        watcher.close()
    with Store.open(db_url, migrate=False) as store:
        stored = store.alarms.count()
    return {"alarms_per_s": round(rate), "lost": lost, "stored": stored,
            "hub_cpu_pct_of_one_core": round(cpu, 1), "load": load()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alarms", type=int, default=2000)
    ap.add_argument("--nodes", type=int, default=50)
    ap.add_argument("--window", type=int, default=100)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work).start()
        try:
            # The relay in its own process, like each hub (bench.hub_ingest's relay).
            relay = Server(MODULE, ["--serve", "relay", "--port", str(broker.port)])
            r = drive(broker.port, args.alarms, args.nodes, args.window)
            relay.stop()
            rows["relay"] = {"alarms_per_s": round(r["rate"]), "lost": r["lost"], "load": load()}
            for db in ("sqlite", "postgresql"):
                for replicas in (1, 2):
                    sub = work / f"{db}-{replicas}"
                    sub.mkdir()
                    if db == "sqlite":
                        rows[f"{db} x{replicas}"] = run_hubs(
                            broker, sub, f"sqlite:///{sub / 'hub.db'}", replicas, args)
                    else:
                        with pg_database() as url:
                            rows[f"{db} x{replicas}"] = run_hubs(broker, sub, url, replicas,
                                                                 args)
        finally:
            broker.stop()
    relay_rate = rows["relay"]["alarms_per_s"] or 1
    print(f"alarms: {args.alarms} from {args.nodes} nodes, window {args.window}")
    for name, r in rows.items():
        r["ratio_to_relay"] = round(r["alarms_per_s"] / relay_rate, 2)
        extra = (f"stored {r['stored']}, hub CPU {r['hub_cpu_pct_of_one_core']}% of a core"
                 if "stored" in r else "")
        print(f"{name:>14}: {r['alarms_per_s']:6d} alarms/s  ratio {r['ratio_to_relay']:.2f}  "
              f"lost {r['lost']}  {extra}  load {r['load']}")
    result = {"alarms": args.alarms, "nodes": args.nodes, "window": args.window, "runs": rows}
    path = save("replicas_ingest", f"{args.alarms} alarms", result)
    png = plot(rows, args)
    print(f"written to {path.relative_to(RESULTS.parents[1])} and {png.name}")


def plot(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bars = ax.bar(names, [rows[n]["alarms_per_s"] for n in names],
                  color=["grey", "tab:blue", "tab:cyan", "tab:green", "tab:olive"])
    ax.bar_label(bars, labels=[f"{rows[n]['ratio_to_relay']:.2f}×" for n in names])
    ax.set_ylabel("alarms acked per second")
    ax.set_title(f"Ingest, {args.alarms} alarms, window {args.window} "
                 f"(load {rows['relay']['load'][0]})")
    fig.tight_layout()
    out = RESULTS / "replicas_ingest.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


if __name__ == "__main__":
    main()
