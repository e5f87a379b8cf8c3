"""The whole site applied as a district runs it: site.yml into machines that boot systemd.

Three Debian machines (tests/ansible/nspawn.py: systemd-nspawn containers, each with its
own network namespace, on a bridge of their own): the broker, the hub and one node.
site.yml is applied from this machine (the controller) twice; the second apply must
change nothing. Then: the units the roles installed run under the machines' systemd,
the node is online at the hub, and a real Chromium, on the district's LAN (outside every
container), logs in to the hub's dashboard and sees the node online.

Time budget: 40 min (the timeout). Measured on the 2-core machine at load 20 (other
runs sharing it): 32 min 34 s in all: 3 roots unpacked 98 s, booted 9 s, first apply
17 min 27 s, second 12 min 5 s, the checks 41 s. The first run on a machine also
builds the systemd root (debootstrap ~2 min, then apt ~2 min; cached in
/var/cache/tiengmo-ci by its inputs: the minbase inputs and nspawn.PACKAGES) and
downloads the hub's wheels (cached there too, by the declared dependencies).

HUB_SERVES_HTTPS is the one switch for what the hub role does after the `tls` work:
False (today's role): the hub listens on plain HTTP on its own 127.0.0.1 only, so the
login step's Chromium runs in the hub machine's network namespace (outside its
container, on its loopback); and the hub's pip, which reaches no index here, is given a
local mirror of the hub's wheels. True: the role serves HTTPS (nginx on port 443) with
a certificate from the controller's officers' CA and installs offline from the
controller's hub wheelhouse: Chromium then runs on the district's LAN, opens
https://HUB_NAME/, and validates the chain against that CA (HUB_CA, put in Chromium's
own NSS store; certificate errors are never ignored); the hub gets no mirror.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ansible import nspawn, support
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support import progress

pytestmark = pytest.mark.timeout(2400)     # long tier (tests/conftest.py TIERS)

# Flip to True once the hub role serves HTTPS and installs from the hub wheelhouse.
HUB_SERVES_HTTPS = True
HUB_CA = "credentials/pki/web-ca.crt"    # under the test's work dir: the officers' CA
HUB_NAME = "hub.bach-thong.test"         # in the certificate's SAN, under SITE_DOMAIN
SITE_DOMAIN = "bach-thong.test"

HOSTS = {"broker": f"{nspawn.SUBNET}.2", "hub": f"{nspawn.SUBNET}.3",
         "na-sang-01": f"{nspawn.SUBNET}.4"}
HUB_ID = "hub-bach-thong"
NODE = "na-sang-01"


@dataclass
class Site:
    work: Path
    district: nspawn.District
    logs: list[str]
    times: dict[str, float]

    def machine(self, name: str) -> nspawn.Machine:
        return self.district.machines[name]


def write_inventory(path: Path, work: Path, src: Path, district: nspawn.District) -> None:
    def machine(name: str) -> dict[str, Any]:
        m = district.machines[name]
        return {"ansible_connection": "community.general.chroot", "ansible_host": str(m.root),
                "ansible_chroot_exe": str(m.enter)}

    inv = {"all": {
        "vars": {
            "tiengmo_deployment_name": "site-test",
            "tiengmo_controller_repo_dir": str(src),
            "tiengmo_credentials_dir": str(work / "credentials"),
            "tiengmo_build_dir": str(work / "build"),
            "tiengmo_mqtt_prefix": "mo/v1",
            "tiengmo_broker_hostname": "broker",
            "tiengmo_broker_dynsec_admin": "hub-admin",
            # The officers' CA is constrained to these (HTTPS, the `tls` work).
            "tiengmo_site_domains": [SITE_DOMAIN],
            "tiengmo_site_networks": [f"{nspawn.SUBNET}.0/24"],
            "tiengmo_areas": [
                {"path": "bach-thong", "name": "Huyện Bạch Thông", "level": "huyện"},
                {"path": "bach-thong/vi-huong", "name": "Xã Vi Hương", "level": "xã"},
                {"path": "bach-thong/vi-huong/na-sang", "name": "Thôn Nà Sang",
                 "level": "thôn"},
            ],
        },
        "children": {
            "tiengmo_controller": {"hosts": {"localhost": {
                "ansible_connection": "local",
                "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}},
            "tiengmo_brokers": {"hosts": {"broker": machine("broker")}},
            "tiengmo_hubs": {"hosts": {"hub": {
                **machine("hub"), "tiengmo_hub_id": HUB_ID,
                "tiengmo_hub_tls_names": [HUB_NAME],
                "tiengmo_hub_tls_addresses": [HOSTS["hub"]],
                # The machines' LAN is IPv4 only: nginx listens on IPv4 alone.
                "tiengmo_hub_listen_ipv6": False}}},
            "tiengmo_nodes": {"children": {"thon_na_sang": {"hosts": {
                NODE: {**machine(NODE), **support.NODE_VARS,
                       # No GPIO in a container: the agent runs on mock pins.
                       "tiengmo_node_mock_pins": True}}}}},
        },
    }}
    path.write_text(yaml.safe_dump(inv, allow_unicode=True, sort_keys=False))


def hub_wheels() -> Path:
    """The hub's dependency wheels, downloaded once (cached beside the roots) by the
    project's declared dependencies. Until the controller's wheelhouse holds them (the
    hub role's offline install), the hub machine, which reaches no index, gets them as
    a local mirror: /etc/pip.conf points pip at this folder copied into its root."""
    project = tomllib.loads((support.REPO / "pyproject.toml").read_text())["project"]
    deps = sorted(project["dependencies"] + project["optional-dependencies"]["hub"])
    import hashlib
    key = hashlib.sha256("\n".join(deps).encode()).hexdigest()[:16]
    folder = support.rootfs_cache().parent / f"hub-wheels-{key}"
    if not folder.exists():
        tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
        got = subprocess.run(["python3", "-m", "pip", "download", "-q", "--only-binary=:all:",
                              "--dest", str(tmp), *deps], capture_output=True, text=True,
                             timeout=900)
        assert got.returncode == 0, f"pip download of the hub's wheels failed:\n{got.stderr}"
        tmp.rename(folder)
    return folder


def give_hub_a_local_mirror(hub: nspawn.Machine) -> None:
    dest = hub.root / "var/cache/tiengmo-mirror"
    shutil.copytree(hub_wheels(), dest)
    (hub.root / "etc/pip.conf").write_text(
        f"[global]\nno-index = true\nfind-links = /{dest.relative_to(hub.root)}\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("site")
    district = nspawn.District(work)
    times: dict[str, float] = {}
    t = time.monotonic()
    try:
        district.create()
        for name in HOSTS:
            district.add(name, HOSTS)
        times["roots"] = time.monotonic() - t
        if not HUB_SERVES_HTTPS:
            give_hub_a_local_mirror(district.machines["hub"])
        t = time.monotonic()
        for m in district.machines.values():
            district.boot(m)
        times["boot"] = time.monotonic() - t
        src = work / "src"
        shutil.copytree(support.REPO, src, ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "*.egg-info", ".venv", "venv", "__pycache__", ".*_cache",
            ".hypothesis", "node_modules", "artifacts"))
        inventory = work / "hosts.yml"
        write_inventory(inventory, work, src, district)
        logs = []
        for name in ("first", "second"):
            t = time.monotonic()
            proc = support.run_playbooks(inventory, ["site.yml"], "all",
                                         work / f"{name}-site.log", timeout=1500)
            times[name] = time.monotonic() - t
            assert proc.returncode == 0, f"{name} apply failed:\n{proc.stdout[-8000:]}"
            logs.append(proc.stdout)
        summary = ("site.yml into booted machines: " + ", ".join(
            f"{k} {v:.1f} s" for k, v in times.items())
            + f"\nfirst apply:\n{support.recap_lines(logs[0])}"
            + f"\nsecond apply:\n{support.recap_lines(logs[1])}\n")
        progress.say(summary)
        Path(os.environ.get("TIENGMO_SITE_REPORT", "/tmp/tiengmo-site-report.txt")).write_text(
            summary)
        yield Site(work, district, logs, times)
    finally:
        district.shutdown()


def test_second_apply_of_the_site_changes_nothing(site: Site) -> None:
    first, second = (support.recap(log) for log in site.logs)
    assert set(first) == {"localhost", "broker", "hub", NODE}
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in second.values())
    changed = {host: r["changed"] for host, r in second.items() if r["changed"]}
    assert not changed, f"the second apply changed {changed}:\n{site.logs[1][-6000:]}"


def test_the_installed_units_run_under_the_machines_systemd(site: Site) -> None:
    for machine, unit in (("broker", "mosquitto"), ("broker", "tiengmo-mqtt-limits"),
                          ("hub", "tiengmo-hub"), (NODE, "tiengmo-node")):
        m = site.machine(machine)
        assert m.run("systemctl", "is-system-running").stdout.strip() in ("running",
                                                                          "degraded")
        state = m.is_active(unit)
        assert state == "active", (f"{unit} on {machine} is {state}:\n" + m.run(
            "journalctl", "-u", unit, "--no-pager", "-n", "40").stdout)
    # The node's agent is the unit's main process, as the watchdog needs.
    node = site.machine(NODE)
    pid = node.run("systemctl", "show", "-p", "MainPID", "--value", "tiengmo-node").stdout
    cmdline = node.run("cat", f"/proc/{pid.strip()}/cmdline").stdout.replace("\0", " ")
    assert "tiengmo node --config /etc/tiengmo/node.toml" in cmdline
    # lgpio makes its notification pipe in the working directory at import: under
    # ProtectSystem=strict that must be the unit's own writable runtime directory, or
    # the agent and ExecStopPost cannot open a pin on a real Pi (found by tests/hil).
    cwd = node.run("readlink", f"/proc/{pid.strip()}/cwd").stdout.strip()
    assert cwd == "/run/tiengmo-node"
    probe = node.run("systemd-run", "--wait", "--pipe", "-q", "-p", "User=tiengmo",
                     "-p", "ProtectSystem=strict", "-p", "WorkingDirectory=/run/tiengmo-node",
                     "touch", ".lgd-nfy-probe")
    assert probe.returncode == 0, probe.stdout + probe.stderr
    node.run("rm", "-f", "/run/tiengmo-node/.lgd-nfy-probe")


def admin_password(site: Site) -> str:
    return (site.work / "credentials" / "hub-admin-user").read_text().split()[0]


def hub_api(site: Site, path: str) -> Any:
    """GET the hub's API inside the hub machine with the first operator's login (the
    session cookie read off the login's answer: over plain HTTP a cookie jar would not
    send a Secure cookie back)."""
    password = admin_password(site)
    script = f"""
import http.client, json, ssl, sys
c = http.client.HTTPConnection("127.0.0.1", 8080, timeout=10)
c.request("POST", "/api/v1/session", json.dumps({{"username": "admin", "password": sys.argv[1]}}),
          {{"Content-Type": "application/json"}})
r = c.getresponse(); r.read()
cookie = "; ".join(h.split(";")[0] for k, h in r.getheaders() if k.lower() == "set-cookie")
c.request("GET", {path!r}, headers={{"Cookie": cookie}})
r = c.getresponse(); print(r.status); print(r.read().decode())
"""
    out = site.machine("hub").run("python3", "-c", script, password)
    status, _, body = out.stdout.partition("\n")
    assert status.strip() == "200", out.stdout + out.stderr
    return json.loads(body)


def test_the_node_is_online_at_the_hubs_api(site: Site) -> None:
    deadline = time.monotonic() + 60
    while True:
        nodes = {n["id"]: n for n in hub_api(site, "/api/v1/nodes")}
        if nodes.get(NODE, {}).get("status") == "online" or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert nodes[NODE]["status"] == "online", nodes
    assert nodes[NODE]["registered"] and nodes[NODE]["area"] == support.NODE_VARS[
        "tiengmo_node_area"]


def chromium_in(site: Site, netns: str) -> Path:
    """A Chromium that runs in `netns` (Playwright talks to it over a pipe, so only its
    network is elsewhere; nothing else of a container)."""
    wrapper = site.work / f"chromium-{netns}"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {netns} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def test_chromium_logs_in_to_the_applied_hub_and_sees_the_node_online(site: Site) -> None:
    from playwright.sync_api import sync_playwright

    hub = site.machine("hub")
    home = site.work / "chromium-home"
    home.mkdir(exist_ok=True)
    args = list(CHROMIUM_ARGS)
    if HUB_SERVES_HTTPS:
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
        netns, url = site.district.lan, f"https://{HUB_NAME}"
    else:
        netns, url = hub.netns, "http://127.0.0.1:8080"
    password = admin_password(site)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium_in(site, netns)), args=args,
                                    env={"HOME": str(home), "PATH": os.environ["PATH"]})
        try:
            page = browser.new_page(ignore_https_errors=False)
            page.goto(url + "/")
            page.fill("#login-user", "admin")
            page.fill("#login-pass", password)
            page.click("#login-form button[type=submit]")
            page.wait_for_selector("#tabs:not([hidden])", timeout=30_000)
            page.wait_for_function(
                "document.querySelector('#sys-nodes')?.textContent.includes('1/1')",
                timeout=60_000)
            page.click('.tab[data-view="map"]')
            page.wait_for_selector(f'tr[data-node="{NODE}"].row-online', timeout=30_000)
            if HUB_SERVES_HTTPS:
                assert page.url.startswith(f"https://{HUB_NAME}/")
        finally:
            browser.close()
