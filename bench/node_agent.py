"""Benchmark one node agent: memory, start-up, idle CPU, press-to-gong latency.

    python bench/node_agent.py [--seconds 60] [--json] [--out FILE]

Runs a private Mosquitto on a free port. The agent runs as a real process
(`tiengmo node --mock-pins`) for RSS, start -> birth and idle CPU; the
press-to-output latency is measured in-process on mock pins (the time from
the end of the button's hold time to the gong's pin going high).
Targets (Pi Zero 2 W budget): RSS <= 40 MB, birth <= 1.5 s, idle CPU <= 1 %
of a core, output on <= 50 ms after the hold completes. The figures are written
to bench/results/node_agent.json (with the commit and the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, write_json  # noqa: E402
from firmware_sim.village import node_config  # noqa: E402
from firmware_sim.virtual import VirtualNode  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.nodes import node_config_toml  # noqa: E402
from tests.support.wire import Wire  # noqa: E402

TARGETS = {"rss_mb": 40.0, "birth_s": 1.5, "idle_cpu_pct": 1.0, "press_to_output_ms": 50.0}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_figures(broker: Mosquitto, work: Path, seconds: float) -> dict[str, float]:
    cfg = work / "node.toml"
    # Default (production) timers: heartbeat every 10 s, as on a real node.
    cfg.write_text(node_config_toml(broker, work / "data", "bench-01")
                   .replace("heartbeat_s = 1", "heartbeat_s = 10"))
    wire = Wire(broker.host, broker.port)
    wire.subscribe("mo/v1/nodes/bench-01/state")
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tiengmo.cli", "node", "--config", str(cfg),
                             "--mock-pins", "--log-level", "warning"], cwd=ROOT)
    try:
        [birth] = wire.wait_for(lambda m: m.json().get("online") is True, timeout=30)
        birth_s = birth.at - t0
        time.sleep(2)   # let start-up settle before measuring idle
        cpu0, w0 = _cpu_s(proc.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, w1 = _cpu_s(proc.pid), time.monotonic()
        rss = _rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(15)
        wire.close()
    return {"rss_mb": round(rss, 1), "birth_s": round(birth_s, 3),
            "idle_cpu_pct": round(100 * (cpu1 - cpu0) / (w1 - w0), 3)}


def press_latency_ms(broker: Mosquitto, work: Path, presses: int = 5) -> dict[str, float]:
    hold = 0.3
    cfg = node_config("bench-02", "bench/area", broker_url=broker.url, data_dir=work / "d2",
                      buttons=[{"pin": 17, "number": 1, "kind": "fire", "hold_s": hold}])
    node = VirtualNode(cfg).start()
    node.wait_connected(10)
    lat: list[float] = []
    try:
        pin = node.factory.pin(17)
        for _ in range(presses):
            assert node.agent is not None
            node.agent.player.silence(None)
            time.sleep(0.5)
            before = len(node.output_timeline("gong"))
            t_press = time.monotonic()
            pin.drive_low()
            time.sleep(hold + 0.2)
            pin.drive_high()
            ons = [t for t, on in node.output_timeline("gong")[before:] if on]
            if ons:
                lat.append((ons[0] - (t_press + hold)) * 1000)
    finally:
        node.stop()
    return {"press_to_output_ms": round(max(lat), 1) if lat else float("nan"),
            "press_to_output_ms_median": round(statistics.median(lat), 1) if lat else float("nan")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="idle CPU window (default 60)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--out", type=Path, default=RESULTS / "node_agent.json",
                    help="results file (default bench/results/node_agent.json)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work).start()
        try:
            figures: dict[str, Any] = process_figures(broker, work, args.seconds)
            figures.update(press_latency_ms(broker, work))
        finally:
            broker.stop()
    figures["idle_window_s"] = args.seconds
    write_json(args.out, {"figures": figures, "targets": TARGETS,
                          "python": sys.version.split()[0],
                          "note": "measured on the development machine (x86-64), not a Pi"})
    if args.json:
        print(json.dumps({"figures": figures, "targets": TARGETS}, indent=2))
        return 0
    for key, target in TARGETS.items():
        value = figures[key]
        ok = "ok" if value <= target else "OVER"
        print(f"{key:22} {value:>10}   target <= {target:<6} {ok}")
    print(f"{'press_to_output_ms_median':22} {figures['press_to_output_ms_median']:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
