"""`tiengmo hub node-gate` (issue 15.5): a rollout's health gate on the hub's side, run as
the rollout runs it (a process reading the hub's database) against a real hub and the
real node agents: it passes only for a node that came back after the restart, online,
with the expected version and a heartbeat; it fails, saying why, otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib import metadata

from protocol.timing import wall_ms
from tests.e2e.harness import E2E
from tests.faults.rig import ROOT

VERSION = metadata.version("tiengmo")[:32]


def gate(e2e: E2E, node: str, version: str, since_ms: int, timeout: float) -> tuple[int, str]:
    assert e2e.settings is not None
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "tiengmo.cli", "hub", "node-gate",
                        "--db", e2e.settings.db_url, "--node", node, "--version", version,
                        "--since-ms", str(since_ms), "--timeout", str(timeout)],
                       capture_output=True, text=True, env=env, timeout=timeout + 60)
    return r.returncode, r.stdout + r.stderr


def test_the_gate_passes_a_node_back_with_its_version_and_fails_the_others(e2e: E2E) -> None:
    e2e.start_hub(e2e.hub_settings())
    restarted = wall_ms()
    village = e2e.village()               # the agents (re)started after `restarted`
    code, out = gate(e2e, "na-sang-01", VERSION, restarted, 20)
    assert code == 0, out
    assert "passed" in out

    code, out = gate(e2e, "na-sang-01", "9.9.9", restarted, 2)
    assert code == 1 and "reports version" in out and "'9.9.9'" in out, out

    code, out = gate(e2e, "na-sang-02", VERSION, wall_ms() + 60_000, 2)
    assert code == 1 and "has not come back" in out, out   # never restarted since then

    village["na-sang-03"].stop()
    time.sleep(0.5)
    code, out = gate(e2e, "na-sang-03", VERSION, restarted, 3)
    assert code == 1 and "not online" in out, out

    code, out = gate(e2e, "no-such-node", VERSION, restarted, 1)
    assert code == 1 and "does not know" in out, out
