"""How far `tiengmo sim` scales: N nodes with real MQTT connections, in worker processes.

Prints figures and writes them to bench/results/sim_scale.json; asserts nothing.

    python -m bench.sim_scale                      # 1,000 nodes (headless by default)
    python -m bench.sim_scale --nodes 200 --mock-pins

It starts its own Mosquitto on a free port (no connection limit, open-files
limit raised), so it disturbs no one else's broker, then runs the real CLI
(`python -m tiengmo.cli sim`) and measures, with a bare subscriber on the
state topics and /proc:
- time from launch until every birth has been seen;
- total RSS of the sim's processes (the CLI and its workers);
- their CPU over an idle window (default 30 s, the nodes' default 10 s heartbeats);
- the broker's RSS and CPU over the same window, for scale;
- time for a SIGTERM to stop everything, and the deaths seen.
Targets (from the issue): all online within 60 s, at most 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Subscriber, save, start_broker
from protocol import Topics

T = Topics()
TICK = os.sysconf("SC_CLK_TCK")


class StateWatcher(Subscriber):
    """A bare subscriber on every node's state: births and deaths, with times."""

    def __init__(self, port: int) -> None:
        self.online: dict[str, float] = {}
        self.dead: set[str] = set()
        super().__init__(port, "bench-watcher", [T.node_wildcard("state")])

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        node = msg.topic.split("/")[-2]
        data = json.loads(msg.payload)
        with self.cv:
            if data.get("online"):
                self.online.setdefault(node, time.monotonic())
            else:
                self.dead.add(node)
            self.cv.notify_all()


def tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc)."""
    parents: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += parents.get(p, [])
    return out


def cpu_s(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])   # utime, stime
        except (OSError, IndexError):
            continue
    return total / TICK


def rss_mb(pids: list[int]) -> float:
    kb = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kb += int(line.split()[1])
        except OSError:
            continue
    return kb / 1024


def threads(pids: list[int]) -> int:
    return sum(len(os.listdir(f"/proc/{p}/task")) for p in pids if os.path.exists(f"/proc/{p}"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="tiengmo-bench-sim-"))
    broker, port = start_broker(work)
    watcher = StateWatcher(port)
    mode = ["--mock-pins"] if args.mock_pins else ["--headless"]
    cmd = [sys.executable, "-m", "tiengmo.cli", "sim", "--broker", f"mqtt://127.0.0.1:{port}",
           "--nodes", str(args.nodes), "--area", "bench/thon-1", "--json", "--data-dir",
           str(work / "nodes"), "--online-timeout", str(args.online_timeout), *mode]
    if args.processes:
        cmd += ["--processes", str(args.processes)]
    n = args.nodes
    result: dict[str, Any] = {"nodes": n, "mode": "mock pins" if args.mock_pins else "headless"}
    t0 = time.monotonic()
    sim = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True)
    try:
        ok = watcher.wait(lambda: len(watcher.online) >= n, args.online_timeout + 30)
        result["all_online"] = ok
        result["births_seen"] = len(watcher.online)
        if watcher.online:
            result["all_online_s"] = round(max(watcher.online.values()) - t0, 2)
            result["half_online_s"] = round(sorted(watcher.online.values())[len(watcher.online)
                                                                            // 2] - t0, 2)
        time.sleep(args.settle)
        pids = tree(sim.pid)
        result["processes"] = len(pids)
        c0, b0, w0 = cpu_s(pids), cpu_s([broker.pid]), time.monotonic()
        time.sleep(args.window)
        c1, b1, w1 = cpu_s(pids), cpu_s([broker.pid]), time.monotonic()
        result["idle_window_s"] = round(w1 - w0, 1)
        result["sim_cpu_pct_of_one_core"] = round(100 * (c1 - c0) / (w1 - w0), 1)
        result["sim_rss_mb"] = round(rss_mb(pids), 1)
        result["sim_rss_kb_per_node"] = round(1024 * result["sim_rss_mb"] / n, 1)
        result["sim_threads"] = threads(pids)
        result["broker_cpu_pct_of_one_core"] = round(100 * (b1 - b0) / (w1 - w0), 1)
        result["broker_rss_mb"] = round(rss_mb([broker.pid]), 1)
        s0 = time.monotonic()
        sim.send_signal(signal.SIGTERM)
        out, _ = sim.communicate(timeout=180)
        result["stop_s"] = round(time.monotonic() - s0, 2)
        result["exit_code"] = sim.returncode
        watcher.wait(lambda: len(watcher.dead) >= n, 30)
        result["deaths_seen"] = len(watcher.dead)
        report = json.loads(out) if out.strip() else {}
        result["report_online"] = report.get("online")
        result["report_processes"] = report.get("processes")
    finally:
        if sim.poll() is None:
            sim.kill()
        watcher.close()
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    result["targets_met"] = bool(result.get("all_online") and result.get("all_online_s", 1e9)
                                 <= 60 and result.get("sim_rss_mb", 1e9) <= 2048)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--mock-pins", action="store_true", help="gpiozero mock pins, not headless")
    ap.add_argument("--processes", type=int, help="default: the CLI's own choice")
    ap.add_argument("--window", type=float, default=30.0, help="idle CPU window, seconds")
    ap.add_argument("--settle", type=float, default=5.0, help="wait after all online")
    ap.add_argument("--online-timeout", type=float, default=120.0)
    args = ap.parse_args()
    r = run(args)
    for k, v in r.items():
        print(f"{k:>28}: {v}")
    path = save("sim_scale", f"{r['nodes']} {r['mode']}", r)
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
