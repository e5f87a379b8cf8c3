"""A staged node rollout (ansible/rollout.yml) on the applied site (tests/ansible/site_rig.py:
two nodes of one hamlet, the canary first in the inventory), with real Ansible into
machines that boot systemd, the real hub judging the gate (`tiengmo hub node-gate`).

First a bad release: a bumped version whose agent starts, says READY=1, feeds its
watchdog and passes `tiengmo node --check`, but whose link dials the wrong port, so it
never comes online at the hub. The rollout must fail at the canary's gate, put the canary
back on the old version (online at the hub, reporting it), and never touch the second
node. Then a good release (only the version bumped) goes out to both, each gated once.

Each release is built by the controller play rollout.yml imports, as in the field: from
a patched copy of the site's source into a copy of its build folder (so the controller's
offline-first download finds every dependency), both in the site's work dir, never in the
repository. Runs after test_site.py and test_hub_https.py (it changes the nodes' version).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.ansible import nspawn, site_rig, support
from tests.ansible.site_rig import CANARY, NODES, SECOND, VERSION, Site

pytestmark = pytest.mark.timeout(2400)

BAD, GOOD = f"{VERSION}.post1", f"{VERSION}.post2"
GATE_S = 60                  # tiengmo_node_rollout_gate_timeout_s for these rollouts
# The bad release's fault: its MQTT link dials port 1, where nothing listens.
LINK_CONNECT = "self._client.connect_async(self.cfg.host, self.cfg.port,"
LINK_BROKEN = "self._client.connect_async(self.cfg.host, 1,"


def release(site: Site, name: str, version: str, broken: bool) -> dict[str, Any]:
    """The source and build folder of a release, as extra vars for rollout.yml."""
    src, build = site.work / f"src-{name}", site.work / f"build-{name}"
    shutil.copytree(site.work / "src", src)
    shutil.copytree(site.work / "build", build)

    def patch(rel: str, old: str, new: str) -> None:
        path = src / rel
        text = path.read_text()
        assert text.count(old) == 1, f"{rel} no longer holds {old!r}: update the test"
        path.write_text(text.replace(old, new))

    patch("pyproject.toml", f'version = "{VERSION}"', f'version = "{version}"')
    if broken:
        patch("node/link.py", LINK_CONNECT, LINK_BROKEN)
    return {"tiengmo_controller_repo_dir": str(src), "tiengmo_build_dir": str(build),
            "tiengmo_node_rollout_gate_timeout_s": GATE_S}


def unit(m: nspawn.Machine) -> dict[str, str]:
    props = m.run("systemctl", "show", "-p", "ActiveState", "-p", "InvocationID", "-p",
                  "ExecMainStartTimestampMonotonic", "tiengmo-node").stdout
    return dict(line.split("=", 1) for line in props.splitlines() if "=" in line)


def installed(m: nspawn.Machine) -> str:
    return m.run("/opt/tiengmo/venv/bin/python", "-c",
                 "import importlib.metadata as m; print(m.version('tiengmo'))").stdout.strip()


def starts_since(m: nspawn.Machine, node: str, epoch: int) -> int:
    """How many times the node's agent started since `epoch` (its own log line)."""
    log = m.run("journalctl", "-u", "tiengmo-node", "--since", f"@{epoch}", "-o", "cat",
                "--no-pager").stdout
    return sum(f"node {node} (area" in line and "started, boot_id" in line
               for line in log.splitlines())


def rollout(site: Site, name: str, extra: dict[str, Any]) -> tuple[int, str, float]:
    t = time.monotonic()
    proc = support.run_playbooks(site.inventory, ["rollout.yml"], "all",
                                 site.work / f"rollout-{name}.log", timeout=1200,
                                 extra_vars=extra)
    return proc.returncode, proc.stdout, time.monotonic() - t


@dataclass
class Failed:
    code: int
    log: str
    since: int                     # the rollout's start (Unix s)
    before: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def failed(site: Site) -> Failed:
    """The bad release rolled out, once both nodes are online on the old version."""
    seen = site_rig.wait_nodes_online(site, NODES, VERSION)
    assert all(seen[n]["status"] == "online" for n in NODES), seen
    before = {n: unit(site.machine(n)) for n in NODES}
    extra = release(site, "bad", BAD, broken=True)
    since = int(time.time())
    code, log, took = rollout(site, "bad", extra)
    site.times["rollout-bad"] = took
    return Failed(code, log, since, before)


def test_the_bad_release_fails_the_canarys_gate_and_stops_the_rollout(failed: Failed) -> None:
    assert failed.code != 0, support.recap_lines(failed.log)
    recap = support.recap(failed.log)
    assert recap[CANARY]["failed"] == 1 and recap[CANARY]["rescued"] == 1, recap
    # The hub's half of the gate is what caught it: the agent ran, under its watchdog,
    # and passed --check; it never came online.
    assert f"FAILED after {GATE_S} s: not online" in failed.log      # node-gate's verdict
    assert f"version {BAD} failed its health gate (tiengmo hub node-gate: {CANARY}" in failed.log
    assert f"rolled back to {VERSION}" in failed.log
    # The second node was never in a batch: serial stopped at the canary.
    assert recap.get(SECOND, {}).get("ok", 0) == 0, recap


def test_the_canary_is_back_online_on_the_old_version(site: Site, failed: Failed) -> None:
    node = site.machine(CANARY)
    assert installed(node) == VERSION
    assert not (node.root / "opt/tiengmo/venv.rollback").exists()    # moved back
    now = unit(node)
    assert now["ActiveState"] == "active" and now["InvocationID"] != failed.before[CANARY][
        "InvocationID"]
    assert starts_since(node, CANARY, failed.since) == 2           # the bad one, the old one
    seen = site_rig.hub_nodes(site)[CANARY]
    assert seen["status"] == "online" and seen["version"] == VERSION, seen


def test_the_second_node_was_never_touched(site: Site, failed: Failed) -> None:
    node = site.machine(SECOND)
    assert installed(node) == VERSION
    assert not (node.root / "opt/tiengmo/venv.rollback").exists()
    assert unit(node) == failed.before[SECOND]          # same run of the same unit, active
    assert failed.before[SECOND]["ActiveState"] == "active"
    assert starts_since(node, SECOND, failed.since) == 0
    wheels = {p.name for p in (node.root / "opt/tiengmo/wheelhouse").glob("tiengmo-*.whl")}
    assert len(wheels) == 1 and wheels.pop().startswith(f"tiengmo-{VERSION}-"), wheels
    seen = site_rig.hub_nodes(site)[SECOND]
    assert seen["status"] == "online" and seen["version"] == VERSION, seen


def test_a_good_release_reaches_both_nodes_each_gated_once(site: Site, failed: Failed) -> None:
    extra = release(site, "good", GOOD, broken=False)
    since = int(time.time())
    code, log, took = rollout(site, "good", extra)
    site.times["rollout-good"] = took
    assert code == 0, log[-6000:]
    seen = site_rig.wait_nodes_online(site, NODES, GOOD, timeout=30)
    for n in NODES:
        node = site.machine(n)
        assert installed(node) == GOOD
        assert unit(node)["ActiveState"] == "active"
        # Restarted once, before its gate: no ungated restart after it.
        assert starts_since(node, n, since) == 1, log[-4000:]
        assert seen[n]["status"] == "online" and seen[n]["version"] == GOOD, seen[n]
    report = Path(site.work / "rollout-times.txt")
    report.write_text(", ".join(f"{k} {v:.1f} s" for k, v in site.times.items()) + "\n")
