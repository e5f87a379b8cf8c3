"""The applied site (tests/ansible/site_rig.py, the `site` fixture of conftest.py): the
second apply changes nothing, the units the roles installed run under the machines'
systemd, both nodes are online at the hub, and a real Chromium, on the district's LAN
(outside every container), logs in to the hub's dashboard over validated HTTPS and sees
the nodes online with their version.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.ansible import site_rig, support
from tests.ansible.site_rig import CANARY, HUB_CA, HUB_NAME, NODES, VERSION, Site
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.timeout(2400)     # long tier (tests/conftest.py TIERS)


def test_second_apply_of_the_site_changes_nothing(site: Site) -> None:
    first, second = (support.recap(log) for log in site.logs)
    assert set(first) == {"localhost", "broker", "hub", *NODES}
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in second.values())
    changed = {host: r["changed"] for host, r in second.items() if r["changed"]}
    assert not changed, f"the second apply changed {changed}:\n{site.logs[1][-6000:]}"


def test_the_installed_units_run_under_the_machines_systemd(site: Site) -> None:
    for machine, unit in (("broker", "mosquitto"), ("broker", "tiengmo-mqtt-limits"),
                          ("hub", "tiengmo-hub"), ("hub", "nginx"),
                          *((node, "tiengmo-node") for node in NODES)):
        m = site.machine(machine)
        assert m.run("systemctl", "is-system-running").stdout.strip() in ("running",
                                                                          "degraded")
        state = m.is_active(unit)
        assert state == "active", (f"{unit} on {machine} is {state}:\n" + m.run(
            "journalctl", "-u", unit, "--no-pager", "-n", "40").stdout)
    # The node's agent is the unit's main process, as the watchdog needs.
    node = site.machine(CANARY)
    pid = node.run("systemctl", "show", "-p", "MainPID", "--value", "tiengmo-node").stdout
    cmdline = node.run("cat", f"/proc/{pid.strip()}/cmdline").stdout.replace("\0", " ")
    assert "tiengmo node --config /etc/tiengmo/node.toml" in cmdline
    # lgpio makes its notification pipe in the working directory at import: under
    # ProtectSystem=strict that must be the unit's own writable runtime directory, or
    # the agent and ExecStopPost cannot open a pin on a real Pi (found by tests/hil).
    cwd = node.run("readlink", f"/proc/{pid.strip()}/cwd").stdout.strip()
    assert cwd == "/run/tiengmo-node"
    # Written as lgpio would: as the agent's user, in the agent's own mount namespace
    # (the unit's ProtectSystem=strict view). A transient unit with ProtectSystem=strict
    # but no RuntimeDirectory= sees /run read-only, so it cannot stand in for the unit.
    ids = [node.run("id", opt, "tiengmo").stdout.strip() for opt in ("-u", "-g")]

    def in_agents_view(path: str, *user: str) -> subprocess.CompletedProcess[str]:
        return node.run("nsenter", f"--target={pid.strip()}", "--mount", *user, "touch", path)

    probe = in_agents_view("/run/tiengmo-node/.lgd-nfy-probe",
                           f"--setuid={ids[0]}", f"--setgid={ids[1]}")
    assert probe.returncode == 0, probe.stdout + probe.stderr
    node.run("rm", "-f", "/run/tiengmo-node/.lgd-nfy-probe")
    # That view is the strict one (even root cannot write /opt there), not the machine's.
    ro = in_agents_view("/opt/.lgd-nfy-probe")
    assert ro.returncode != 0 and "Read-only file system" in ro.stderr, ro


def test_the_alarm_path_runs_before_other_work_on_a_busy_machine(site: Site) -> None:
    """The hub and Mosquitto carry every alarm, and each node agent its hamlet's presses:
    their units run them, every thread, at the roles' nice and CPU weight
    (bench/flood_isolation.py --busy 2: during a flood, received p99 36-39 ms at nice 0,
    16-19 ms at -10; docs/alarm-lane.md)."""
    for machine, unit in (("hub", "tiengmo-hub"), ("broker", "mosquitto"),
                          *((node, "tiengmo-node") for node in NODES)):
        m = site.machine(machine)
        props = m.run("systemctl", "show", "-p", "Nice", "-p", "CPUWeight", unit).stdout
        assert {"Nice=-10", "CPUWeight=1000"} <= set(props.split()), (unit, props)
        pid = m.run("systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip()
        stats = m.run("sh", "-c", f"cat /proc/{pid}/task/*/stat").stdout.splitlines()
        # A thread's nice is the 19th field of its stat; its name (2nd) may hold spaces.
        nices = {int(line.rsplit(")", 1)[1].split()[16]) for line in stats}
        assert stats and nices == {-10}, (unit, pid, nices)
        if unit == "tiengmo-hub":   # the lanes and paho's threads too, not only the first
            assert len(stats) >= 5, stats


def test_the_nodes_are_online_at_the_hubs_api_with_their_version(site: Site) -> None:
    nodes = site_rig.wait_nodes_online(site, NODES)
    for node in NODES:
        assert nodes[node]["status"] == "online", nodes
        assert nodes[node]["registered"] and nodes[node]["area"] == support.NODE_VARS[
            "tiengmo_node_area"]
        assert nodes[node]["version"] == VERSION, nodes[node]


def chromium_in(site: Site, netns: str) -> Path:
    """A Chromium that runs in `netns` (Playwright talks to it over a pipe, so only its
    network is elsewhere; nothing else of a container)."""
    wrapper = site.work / f"chromium-{netns}"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {netns} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def test_chromium_logs_in_to_the_applied_hub_and_sees_the_nodes_online(site: Site) -> None:
    from playwright.sync_api import sync_playwright

    hub = site.machine("hub")
    home = site.work / "chromium-home"
    home.mkdir(exist_ok=True)
    args = list(CHROMIUM_ARGS)
    ca = site.work / HUB_CA
    assert ca.exists(), f"the controller made no CA at {ca}"
    # Chromium on Linux trusts what its NSS store holds: the district's CA only.
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    # A new, empty store (certutil asks for a password forever on an old one).
    for cmd in (["-N", "--empty-password"],
                ["-A", "-t", "C,,", "-n", "tiengmo-district", "-i", str(ca)]):
        subprocess.run(["certutil", "-d", f"sql:{nssdb}", *cmd], check=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    # The hub's name as the LAN's DNS would answer it.
    args.append(f"--host-resolver-rules=MAP {HUB_NAME} {hub.address}")
    url = f"https://{HUB_NAME}"
    password = site_rig.admin_password(site)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium_in(site, site.district.lan)),
                                    args=args, env={"HOME": str(home), "PATH": os.environ["PATH"]})
        try:
            page = browser.new_page(ignore_https_errors=False)
            page.goto(url + "/")
            page.fill("#login-user", "admin")
            page.fill("#login-pass", password)
            page.click("#login-form button[type=submit]")
            page.wait_for_selector("#tabs:not([hidden])", timeout=30_000)
            all_online = f"{len(NODES)}/{len(NODES)}"
            page.wait_for_function(
                f"document.querySelector('#sys-nodes')?.textContent.includes('{all_online}')",
                timeout=60_000)
            page.click('.tab[data-view="map"]')
            for node in NODES:
                row = page.wait_for_selector(f'tr[data-node="{node}"].row-online',
                                             timeout=30_000)
                assert row is not None and VERSION in row.inner_text()   # on the board
            assert page.url.startswith(f"https://{HUB_NAME}/")
        finally:
            browser.close()
