"""The whole site applied as a district runs it: site.yml into machines that boot systemd.

Four Debian machines (tests/ansible/nspawn.py: systemd-nspawn containers, each with its
own network namespace, on a bridge of their own): the broker, the hub and two nodes of
one hamlet (two, so a staged rollout has a canary and a hamlet to stage). site.yml is
applied from this machine (the controller) twice; the second apply must change nothing.
One applied site serves every test of tests/ansible/test_site.py (the units, the nodes
online, a Chromium login on the district's LAN), test_hub_https.py (the hub installed
offline and served over HTTPS with the officers' CA) and test_site_rollout.py (a staged
node rollout): the `site` fixture of tests/ansible/conftest.py, made once per run.

The hub serves HTTPS (nginx on port 443) with a certificate from the controller's
officers' CA and installs offline from the controller's hub wheelhouse: a client on the
district's LAN (Chromium, or this process through `lan_connect`) opens
https://HUB_NAME/ and validates the chain against that CA (HUB_CA); certificate errors
are never ignored.

Time budget: see tests/ansible/conftest.py.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import socket
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.ansible import nspawn, support
from tests.support import progress

HUB_CA = "credentials/pki/web-ca.crt"    # under the site's work dir: the officers' CA
HUB_NAME = "hub.bach-thong.test"         # in the certificate's SAN, under SITE_DOMAIN
SITE_DOMAIN = "bach-thong.test"
SITE_NETWORK = f"{nspawn.SUBNET}.0/24"

CANARY, SECOND = "na-sang-01", "na-sang-02"
NODES = (CANARY, SECOND)                 # inventory order: the rollout's canary first
HOSTS = {"broker": f"{nspawn.SUBNET}.2", "hub": f"{nspawn.SUBNET}.3",
         CANARY: f"{nspawn.SUBNET}.4", SECOND: f"{nspawn.SUBNET}.5"}
HUB_ID = "hub-bach-thong"
# The version the site is built from (the agent reports its wheel's version).
VERSION = tomllib.loads((support.REPO / "pyproject.toml").read_text())["project"]["version"]
NODE_VARS: dict[str, dict[str, Any]] = {
    CANARY: dict(support.NODE_VARS),
    SECOND: {**support.NODE_VARS, "tiengmo_node_id": SECOND,
             "tiengmo_node_name": "Cuối thôn Nà Sang", "tiengmo_node_households": 14},
}


@dataclass
class Site:
    work: Path
    district: nspawn.District
    inventory: Path
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
            "tiengmo_site_networks": [SITE_NETWORK],
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
                # No GPIO in a container: the agents run on mock pins.
                node: {**machine(node), **NODE_VARS[node], "tiengmo_node_mock_pins": True}
                for node in NODES}}}},
        },
    }}
    path.write_text(yaml.safe_dump(inv, allow_unicode=True, sort_keys=False))


@contextmanager
def applied_site(work: Path) -> Iterator[Site]:
    """Boot the district, apply site.yml twice, yield it; power it off at the end."""
    district = nspawn.District(work)
    times: dict[str, float] = {}
    t = time.monotonic()
    try:
        district.create()
        for name in HOSTS:
            district.add(name, HOSTS)
        times["roots"] = time.monotonic() - t
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
        yield Site(work, district, inventory, logs, times)
    finally:
        district.shutdown()


# ------------------------------------------------------------- the hub's API --

def admin_password(site: Site) -> str:
    return (site.work / "credentials" / "hub-admin-user").read_text().split()[0]


def hub_api(site: Site, path: str) -> Any:
    """GET the hub's API inside the hub machine with the first operator's login (the
    session cookie read off the login's answer: over plain HTTP a cookie jar would not
    send a Secure cookie back)."""
    script = f"""
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", 8080, timeout=10)
c.request("POST", "/api/v1/session", json.dumps({{"username": "admin", "password": sys.argv[1]}}),
          {{"Content-Type": "application/json"}})
r = c.getresponse(); r.read()
cookie = "; ".join(h.split(";")[0] for k, h in r.getheaders() if k.lower() == "set-cookie")
c.request("GET", {path!r}, headers={{"Cookie": cookie}})
r = c.getresponse(); print(r.status); print(r.read().decode())
"""
    out = site.machine("hub").run("python3", "-c", script, admin_password(site))
    status, _, body = out.stdout.partition("\n")
    assert status.strip() == "200", out.stdout + out.stderr
    return json.loads(body)


def hub_nodes(site: Site) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in hub_api(site, "/api/v1/nodes")}


def wait_nodes_online(site: Site, nodes: tuple[str, ...], version: str | None = None,
                      timeout: float = 90) -> dict[str, dict[str, Any]]:
    """The hub's view of the nodes once each is online (on `version`), or at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        seen = hub_nodes(site)
        if all(seen.get(n, {}).get("status") == "online"
               and version in (None, seen[n].get("version")) for n in nodes) \
                or time.monotonic() > deadline:
            return seen
        time.sleep(2)


# ------------------------------------------------------- the district's LAN --

_CLONE_NEWNET = 0x40000000


def lan_connect(site: Site, address: str, port: int, timeout: float = 15) -> socket.socket:
    """A TCP connection made from the district's LAN namespace (where an officer's phone
    is), used from this process. setns changes only the calling thread's namespace, so a
    thread of its own makes the socket; a socket keeps the namespace it was made in."""
    got: dict[str, Any] = {}

    def connect() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{site.district.lan}", os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns into the district's LAN")
            finally:
                os.close(fd)
            got["sock"] = socket.create_connection((address, port), timeout)
        except BaseException as exc:   # handed to the caller's thread
            got["error"] = exc

    worker = threading.Thread(target=connect, name="lan-connect")
    worker.start()
    worker.join()
    if "error" in got:
        raise got["error"]
    sock: socket.socket = got["sock"]
    return sock
