"""Faults survived and bad input refused: the table of figures of issue 6.

    python -m bench.faults                     # everything, full size (~10 min + fuzz)
    python -m bench.faults --fuzz-cases 0      # faults only; fuzz figures from the last
                                               # bench/fuzz_ingest run, if any
    python -m bench.faults --only hub_killed --only disk_full
    python -m bench.faults --fuzz-cases 0 --only big_body --table-md   # and write its
                                               # row into docs/faults.md's fault table

Runs the six fault scenarios of tests/faults at full size (real Mosquitto, the
hub as a process on SQLite, the real node agents), then the bad-input run of
bench/fuzz_ingest, and prints one table: per fault, alarms pressed / stored /
lost, duplicate incidents, local gongs fired, acks without a stored row, time
to recover; then inputs tried and rejections by reason. Writes
bench/results/faults.json. Root is needed for the disk-full scenario (tmpfs).

Issue 12 added the rows of docs/faults.md's fault table (bench/fault_table.py):
the flood (bench/flood_isolation.run_flood, when present), a retained stale
alarm, a node taking a share of the replicas' stream, failing commits, the
hub's SQLite read-only, 300 MB bodies, 1,100 idle sockets; every row also
counts incidents, phantom sounds and restarts needed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import write_json
from bench.fault_table import flood_row, markdown_table, write_markdown
from tests.faults import (
    commit_scenarios,
    edge_scenarios,
    input_scenarios,
    pg_scenarios,
    scenarios,
)
from tests.faults.node_kill import node_killed
from tests.faults.rig import Figures

RESULTS = Path(__file__).resolve().parent / "results"
DOC = Path(__file__).resolve().parent.parent / "docs" / "faults.md"

FULL: dict[str, Callable[[Path], Figures]] = {
    "hub_killed": lambda d: scenarios.hub_killed(d, alarms=1000, nodes=100, spread_s=8.0),
    "broker_restarted": lambda d: scenarios.broker_restarted(d, alarms=1000, nodes=100,
                                                             spread_s=8.0, persistence=True),
    "broker_restarted_no_persistence": lambda d: scenarios.broker_restarted(
        d, alarms=1000, nodes=100, spread_s=8.0, persistence=False),
    "node_killed": lambda d: node_killed(d, nodes=10, presses_per_node=5),
    "network_cut": lambda d: scenarios.network_cut(d, cut_s=10.0, nodes=10,
                                                   presses_per_node=5),
    "database_locked": lambda d: scenarios.database_locked(d, lock_s=20.0, alarms=300,
                                                           nodes=50),
    "disk_full": lambda d: scenarios.disk_full(d, full_s=15.0, alarms=300, nodes=50,
                                               size="8M"),
    # PostgreSQL (issue 12.6): the hub heals itself, never restarted.
    "pg_locked": lambda d: pg_scenarios.pg_locked(d, lock_s=20.0, alarms=300, nodes=50),
    "pg_connections_killed": lambda d: pg_scenarios.pg_connections_killed(
        d, kills=8, alarms=300, nodes=50),
    "pg_recreated": lambda d: pg_scenarios.pg_recreated(d, gone_s=10.0, alarms=300, nodes=50),
    # Issue 12: the rest of the fault table of docs/faults.md.
    "flood": flood_row,
    "retained_stale": lambda d: input_scenarios.retained_stale(d, age_days=30, nodes=20),
    "share_hijack": input_scenarios.share_hijack,
    "commit_failures": lambda d: commit_scenarios.commit_failures(d, flaps=20, alarms=300,
                                                                 nodes=50),
    "sqlite_readonly": lambda d: commit_scenarios.sqlite_readonly(d, readonly_s=7.0,
                                                                 alarms=300, nodes=50),
    "big_body": lambda d: edge_scenarios.big_body(d, alarms=200, nodes=50),
    "idle_sockets": lambda d: edge_scenarios.idle_sockets(d, sockets=1100, nodes=50,
                                                          late_nodes=25),
}


def run_faults(only: list[str], workdir: Path) -> list[dict[str, Any]]:
    rows = []
    for name, fn in FULL.items():
        if only and name not in only:
            continue
        load = os.getloadavg()[0]
        start = time.monotonic()
        try:
            fig = fn(workdir / name).as_dict()
        except Exception as exc:   # a scenario that cannot finish is a fault not survived
            fig = {"scenario": name, "error": f"{type(exc).__name__}: {exc}"[:500],
                   "survived": False}
        fig["key"] = name
        if fig.get("notes", {}).get("not_run"):
            fig["not_run"] = fig["notes"]["not_run"]
        fig["seconds"] = round(time.monotonic() - start, 1)
        fig["load_before"] = round(load, 2)
        state = "not run" if fig.get("not_run") else \
            "survived" if fig.get("survived") else "NOT SURVIVED"
        print(f"  {name}: {state} "
              f"({fig['seconds']} s)", flush=True)
        rows.append(fig)
    return rows


def run_fuzz(cases: int, workdir: Path) -> dict[str, Any] | None:
    if cases > 0:
        from bench.fuzz_ingest import fuzz

        out = fuzz(cases, workdir / "fuzz")
        write_json(RESULTS / "fuzz_ingest.json", out)
        return out
    saved = RESULTS / "fuzz_ingest.json"
    if saved.exists():
        out = json.loads(saved.read_text())
        out["from"] = str(saved.relative_to(RESULTS.parent.parent))
        return dict(out)
    return None


def table(rows: list[dict[str, Any]], fuzz: dict[str, Any] | None) -> str:
    head = (f"{'fault':<46} {'pressed':>7} {'stored':>7} {'lost':>5} {'dup.inc':>7} "
            f"{'gongs':>6} {'ack!st':>6} {'recover':>8}  result")
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['scenario']:<46} ERROR {r['error'][:60]}")
            continue
        if r.get("not_run"):
            lines.append(f"{r['scenario']:<46} not run: {r['not_run']}")
            continue
        lines.append(f"{r['scenario']:<46} {r['pressed']:>7} {r['stored']:>7} {r['lost']:>5} "
                     f"{r['duplicate_incidents']:>7} {r['local_gongs']:>6} "
                     f"{r['acked_not_stored']:>6} {r['recover_s']:>7.2f}s  "
                     f"{'survived' if r['survived'] else 'NOT SURVIVED'}")
    rows = [r for r in rows if not r.get("not_run")] + [r for r in rows if r.get("not_run")]
    ran = [r for r in rows if not r.get("not_run")]
    ok = sum(1 for r in ran if r.get("survived"))
    pressed = sum(r.get("pressed", 0) for r in rows)
    lost = sum(r.get("lost", 0) for r in rows)
    dups = sum(r.get("duplicate_incidents", 0) for r in rows)
    lines += ["-" * len(head),
              f"faults survived {ok}/{len(ran)}; alarms pressed {pressed:,}, lost {lost}, "
              f"duplicate incidents {dups}"]
    if fuzz:
        lines += ["", f"bad input: {fuzz['cases']:,} inputs tried through a running hub, "
                      f"{fuzz['accepted']:,} valid accepted, {fuzz['rejected']:,} rejected, "
                      "0 crashes, 0 stored that should not be"
                      + (f" (from {fuzz['from']})" if "from" in fuzz else "")]
        for reason, n in sorted(fuzz["rejects_by_reason"].items(), key=lambda kv: -kv[1]):
            lines.append(f"  rejected {reason:<22} {n:>8,}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[], choices=sorted(FULL),
                    help="run only this scenario (repeatable)")
    ap.add_argument("--table-md", nargs="?", const=str(DOC), default=None, metavar="FILE",
                    help="write the fault table into FILE (default docs/faults.md) between "
                         "its markers, merged by row with the table already there")
    ap.add_argument("--size", default="full",
                    help="what to say in the table's 'run at' column (default: full)")
    ap.add_argument("--fuzz-cases", type=int, default=100_000,
                    help="bad inputs to try (0: reuse bench/results/fuzz_ingest.json)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    RESULTS.mkdir(exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        rows = run_faults(args.only, Path(tmp))
        fuzz = run_fuzz(args.fuzz_cases, Path(tmp))
    print()
    print(table(rows, fuzz))
    for r in rows:
        r["size"] = args.size
    if args.table_md:
        write_markdown(Path(args.table_md), rows)
        print(f"\nfault table written into {args.table_md}")
        print(markdown_table(rows))
    out = {"faults": rows, "fuzz": fuzz, "load_after": round(os.getloadavg()[0], 2)}
    write_json(RESULTS / "faults.json", out)   # with the commit and the load average
    return 0 if all(r.get("survived") or r.get("not_run") for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
