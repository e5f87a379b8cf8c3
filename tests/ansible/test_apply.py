"""A real apply of the node and broker roles into a throwaway Debian root.

One module-scoped apply (debootstrap root from a cache, then the node and
broker playbooks through the chroot connection), then a second apply that
must change nothing. The tests then look at what the roles left in the root,
run the installed agent's --check inside it, and run the installed Mosquitto
with the installed config against real MQTT clients. The broker is also
bridged up (tiengmo_broker_bridge) to a second, provincial Mosquitto that
runs with the dynamic-security store the role made (its bridge clients' logins
and roles).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import socket
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ansible import support
from tests.ansible.mqtt_client import Client
from tests.support.broker import Mosquitto

pytestmark = pytest.mark.timeout(1200)

LIMIT = "localhost,na-sang-01,broker-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Applied:
    root: Path
    work: Path
    ports: dict[str, int]
    first: str
    second: str
    times: dict[str, float]

    def password(self, user: str) -> str:
        return (self.work / "credentials" / "mqtt" / user).read_text().strip()


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Applied]:
    work = tmp_path_factory.mktemp("ansible-apply")
    root = work / "root"
    times: dict[str, float] = {}
    t = time.monotonic()
    support.make_root(root)
    times["root"] = time.monotonic() - t
    # Build from a snapshot of the tree, so the wheel cannot change between
    # the two applies while people edit the working tree.
    src = work / "src"
    shutil.copytree(support.REPO, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", ".venv", "venv", "__pycache__", ".*_cache",
        ".hypothesis", "node_modules"))
    ports = {"tls": free_port(), "plain": free_port(), "province": free_port()}
    inventory = work / "hosts.yml"
    support.write_inventory(inventory, root, work, ports, repo=src)
    logs = []
    for name in ("first", "second"):
        t = time.monotonic()
        proc = support.run_playbooks(inventory, ["node.yml", "broker.yml"], LIMIT,
                                     work / f"{name}-apply.log")
        times[name] = time.monotonic() - t
        assert proc.returncode == 0, f"{name} apply failed:\n{proc.stdout[-6000:]}"
        logs.append(proc.stdout)
    summary = (f"root {times['root']:.1f} s, first apply {times['first']:.1f} s, "
               f"second apply {times['second']:.1f} s\nfirst apply:\n"
               f"{support.recap_lines(logs[0])}\nsecond apply:\n{support.recap_lines(logs[1])}\n")
    Path(os.environ.get("TIENGMO_ANSIBLE_REPORT", "/tmp/tiengmo-ansible-report.txt")).write_text(
        summary)
    print(summary)
    yield Applied(root, work, ports, logs[0], logs[1], times)
    shutil.rmtree(root, ignore_errors=True)


def in_root(applied: Applied, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chroot", str(applied.root), *argv], text=True,
                          capture_output=True, timeout=120)


# ------------------------------------------------------------ the applies --

def test_first_apply_changes_things_and_the_second_changes_nothing(applied: Applied) -> None:
    first = support.recap(applied.first)
    second = support.recap(applied.second)
    for host in ("na-sang-01", "broker-test"):
        assert first[host]["failed"] == 0 and first[host]["unreachable"] == 0
        assert first[host]["changed"] > 0, f"{host}: the first apply installed nothing?"
        assert second[host]["changed"] == 0, (
            f"{host} is not idempotent:\n{support.recap_lines(applied.second)}")
        assert second[host]["failed"] == 0
    assert second["localhost"]["changed"] == 0


def test_secrets_are_never_printed(applied: Applied) -> None:
    for user in ("na-sang-01", "na-cha-01", "hub-test-1", "hub-test-1-alarms", "hub-admin"):
        secret = applied.password(user)
        assert len(secret) == 32
        assert secret not in applied.first and secret not in applied.second


def test_registry_generated_from_the_inventory_names_every_node(applied: Applied) -> None:
    from protocol import load_registry

    reg = load_registry(applied.work / "build" / "registry.toml")
    assert {n.id for n in reg.nodes} == {"na-sang-01", "na-cha-01"}
    node = reg.node("na-sang-01")
    assert node is not None and node.households == 22
    assert node.name == "Nhà văn hoá thôn Nà Sang"
    area = reg.area("bach-thong/vi-huong/na-sang")
    assert area is not None and area.name == "Thôn Nà Sang"


# ------------------------------------------------------------------ node --

def test_node_config_is_rendered_from_host_vars(applied: Applied) -> None:
    conf = tomllib.loads((applied.root / "etc/tiengmo/node.toml").read_text())
    assert conf["node"]["id"] == "na-sang-01"
    assert conf["node"]["area"] == "bach-thong/vi-huong/na-sang"
    assert conf["mqtt"]["url"] == f"mqtts://localhost:{applied.ports['tls']}"
    assert conf["mqtt"]["username"] == "na-sang-01"
    assert conf["mqtt"]["ca_file"] == "/etc/tiengmo/ca.crt"
    assert [o["pin"] for o in conf["outputs"]] == [23, 16]
    assert conf["outputs"][1]["active_high"] is False
    assert conf["patterns"]["fire"]["steps"] == [[120, 180]]


def test_node_credential_is_private_to_the_service_user(applied: Applied) -> None:
    pw = applied.root / "etc/tiengmo/mqtt-password"
    st = pw.stat()
    assert st.st_mode & 0o777 == 0o600
    uid = in_root(applied, "id", "-u", "tiengmo").stdout.strip()
    assert str(st.st_uid) == uid
    assert pw.read_text().strip() == applied.password("na-sang-01")
    groups = in_root(applied, "id", "-nG", "tiengmo").stdout.split()
    assert "gpio" in groups


def test_output_pins_boot_off_and_the_watchdog_is_on(applied: Applied) -> None:
    text = (applied.root / "boot/firmware/config.txt").read_text()
    assert "gpio=23,25=op,dl" in text      # active-high gong and the enable line: low
    assert "gpio=16=op,dh" in text         # active-low siren relay: high
    assert "dtparam=watchdog=on" in text
    wd = (applied.root / "etc/systemd/system.conf.d/tiengmo-watchdog.conf").read_text()
    assert "RuntimeWatchdogSec=15" in wd
    journal = (applied.root / "etc/systemd/journald.conf.d/tiengmo.conf").read_text()
    assert "SystemMaxUse=64M" in journal


def test_unit_restarts_always_and_drives_outputs_off_after_exit(applied: Applied) -> None:
    unit = (applied.root / "etc/systemd/system/tiengmo-node.service").read_text()
    assert "Restart=always" in unit
    assert ("ExecStopPost=/opt/tiengmo/venv/bin/tiengmo node --config /etc/tiengmo/node.toml "
            "--outputs-off") in unit
    assert "User=tiengmo" in unit
    # The agent says READY=1 and pings WATCHDOG=1 while its main loop makes progress.
    assert {"Type=notify", "WatchdogSec=30", "NotifyAccess=main"} <= set(unit.splitlines())
    # lgpio's notification pipe goes in the working directory: a writable one of its own.
    assert {"RuntimeDirectory=tiengmo-node", "RuntimeDirectoryPreserve=restart",
            "WorkingDirectory=/run/tiengmo-node"} <= set(unit.splitlines())
    wants = applied.root / "etc/systemd/system/multi-user.target.wants/tiengmo-node.service"
    assert wants.is_symlink()
    assert (applied.root / "etc/systemd/system/sysinit.target.wants/"
            "systemd-timesyncd.service").exists()


def test_installed_agent_checks_the_installed_config(applied: Applied) -> None:
    tiengmo = "/opt/tiengmo/venv/bin/tiengmo"
    ok = in_root(applied, tiengmo, "node", "--config", "/etc/tiengmo/node.toml",
                 "--check", "--no-hardware")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # The same check refuses a config with a kind of alarm the protocol lacks.
    bad = applied.root / "tmp/bad-node.toml"
    bad.write_text((applied.root / "etc/tiengmo/node.toml").read_text()
                   .replace('kind = "fire"', 'kind = "earthquake"'))
    refused = in_root(applied, tiengmo, "node", "--config", "/tmp/bad-node.toml",
                      "--check", "--no-hardware")
    assert refused.returncode != 0
    assert "buttons[1].kind" in refused.stdout + refused.stderr


def test_agent_was_installed_offline_from_the_wheelhouse(applied: Applied) -> None:
    listed = in_root(applied, "/opt/tiengmo/venv/bin/pip", "list", "--format=freeze")
    names = {line.split("==")[0].lower() for line in listed.stdout.split()}
    assert {"tiengmo", "paho-mqtt", "gpiozero"} <= names
    wheels = sorted(p.name for p in (applied.root / "opt/tiengmo/wheelhouse").glob("*.whl"))
    assert any(w.startswith("tiengmo-") for w in wheels)
    assert any(w.startswith("paho_mqtt-") for w in wheels)


# ---------------------------------------------------------------- broker --

@pytest.fixture(scope="module")
def province(applied: Applied) -> Iterator[Mosquitto]:
    """The provincial broker: a real Mosquitto on this machine, TLS on the port the
    role's bridge points at, with the role's dynamic-security store (which lets the
    bridge login in). Started before the local one so the bridge connects at once."""
    from tests.support.prod_mosquitto import dynsec_plugin

    d = applied.work / "province"
    d.mkdir()
    pki = applied.work / "credentials" / "pki"
    shutil.copy(applied.root / "var/lib/mosquitto/dynamic-security.json", d / "store.json")
    extra = "\n".join([
        "user root", "allow_anonymous false",
        f"plugin {dynsec_plugin()}", f"plugin_opt_config_file {d / 'store.json'}",
        f"listener {applied.ports['province']} 127.0.0.1",
        f"cafile {pki / 'ca.crt'}", f"certfile {pki / 'broker-test.crt'}",
        f"keyfile {pki / 'broker-test.key'}", "tls_version tlsv1.2",
        "use_username_as_clientid true",
    ])
    broker = Mosquitto(d, extra=extra).start()    # + a plain listener for the test's clients
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def mosquitto(applied: Applied, province: Mosquitto) -> Iterator[Applied]:
    """The installed Mosquitto, run inside the root with the installed config."""
    run = applied.root / "run/mosquitto"
    run.mkdir(parents=True, exist_ok=True)
    uid = int(in_root(applied, "id", "-u", "mosquitto").stdout)
    os.chown(run, uid, uid)
    log = (applied.work / "mosquitto.log").open("wb")
    proc = subprocess.Popen(["chroot", str(applied.root), "/usr/sbin/mosquitto", "-c",
                             "/etc/mosquitto/mosquitto.conf"], stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise RuntimeError((applied.work / "mosquitto.log").read_text())
        try:
            for port in (applied.ports["tls"], applied.ports["plain"]):
                socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield applied
    proc.terminate()
    proc.wait(15)


def tls_client(a: Applied, user: str, password: str | None = None) -> Client:
    return Client("localhost", a.ports["tls"], user,
                  a.password(user) if password is None else password,
                  ca_file=str(a.work / "credentials/pki/ca.crt"))


def test_the_sentinel_is_installed_beside_the_broker_with_a_read_only_login(
        applied: Applied) -> None:
    unit = (applied.root / "etc/systemd/system/tiengmo-sentinel.service").read_text()
    assert {"Type=notify", "WatchdogSec=30", "SupplementaryGroups=dialout"} <= set(
        unit.splitlines())
    assert ("ExecStart=/opt/tiengmo-sentinel/venv/bin/tiengmo sentinel --config "
            "/etc/tiengmo-sentinel/sentinel.toml") in unit
    conf = tomllib.loads((applied.root / "etc/tiengmo-sentinel/sentinel.toml").read_text())
    assert conf["sentinel"] == {"id": "sentinel", "grace_s": 90, "beacon_stale_s": 30}
    assert conf["sms"]["police"] == ["+84987654321"]
    pw = applied.root / "etc/tiengmo-sentinel/sentinel.password"
    assert pw.stat().st_mode & 0o777 == 0o600
    assert pw.read_text().strip() == applied.password("sentinel")
    ok = in_root(applied, "/opt/tiengmo-sentinel/venv/bin/tiengmo", "sentinel", "--check",
                 "--config", "/etc/tiengmo-sentinel/sentinel.toml")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # Nothing of the hub is installed with it.
    hub = in_root(applied, "/opt/tiengmo-sentinel/venv/bin/python", "-c", "import sqlalchemy")
    assert hub.returncode != 0
    store = json.loads((applied.root / "var/lib/mosquitto/dynamic-security.json").read_text())
    [client] = [c for c in store["clients"] if c["username"] == "sentinel"]
    assert client["roles"] == [{"rolename": "tiengmo-sentinel"}]


def test_broker_accepts_a_nodes_credential_over_tls(mosquitto: Applied) -> None:
    c = tls_client(mosquitto, "na-sang-01")
    try:
        assert c.wait_connected(), f"refused: {c.reason}"
    finally:
        c.close()


def test_broker_refuses_a_wrong_password_and_an_unknown_user(mosquitto: Applied) -> None:
    wrong = tls_client(mosquitto, "na-sang-01", password="not-the-password")
    unknown = tls_client(mosquitto, "nobody-01", password="x")
    try:
        assert not wrong.wait_connected()
        assert not unknown.wait_connected()
    finally:
        wrong.close()
        unknown.close()


def test_node_cannot_publish_as_another_node_or_read_its_commands(mosquitto: Applied) -> None:
    a = tls_client(mosquitto, "na-sang-01")
    b = tls_client(mosquitto, "na-cha-01")
    hub = Client("127.0.0.1", mosquitto.ports["plain"], "hub-test-1",
                 mosquitto.password("hub-test-1"))
    try:
        assert a.wait_connected() and b.wait_connected() and hub.wait_connected()
        hub.subscribe("mo/v1/nodes/#")
        b.subscribe("mo/v1/nodes/na-cha-01/cmd")
        a.subscribe("mo/v1/nodes/na-cha-01/cmd")      # refused (or never delivered)
        a.publish("mo/v1/nodes/na-cha-01/alarm", b'{"forged": true}')
        a.publish("mo/v1/nodes/na-sang-01/alarm", b'{"own": true}')
        hub.publish("mo/v1/nodes/na-cha-01/cmd", b'{"for": "na-cha-01"}')
        # The hub gets A's own alarm and nothing forged under B's topics.
        topic, payload = hub.messages.get(timeout=15)
        assert (topic, payload) == ("mo/v1/nodes/na-sang-01/alarm", b'{"own": true}')
        # B gets its command; A, having asked for it, does not.
        assert b.messages.get(timeout=15) == ("mo/v1/nodes/na-cha-01/cmd",
                                              b'{"for": "na-cha-01"}')
        time.sleep(1.0)  # give a wrongly delivered copy time to arrive
        assert a.messages.empty()
        assert all(t != "mo/v1/nodes/na-cha-01/alarm" for t, _ in list(hub.messages.queue))
    finally:
        for c in (a, b, hub):
            c.close()


def test_the_hubs_alarm_lane_has_a_login_of_its_own_with_only_what_it_needs(
        applied: Applied) -> None:
    store = json.loads((applied.root / "var/lib/mosquitto/dynamic-security.json").read_text())
    [client] = [c for c in store["clients"] if c["username"] == "hub-test-1-alarms"]
    assert client["roles"] == [{"rolename": "tiengmo-hub-alarms"}]
    [role] = [r for r in store["roles"] if r["rolename"] == "tiengmo-hub-alarms"]
    sends = {a["topic"] for a in role["acls"] if a["acltype"] == "publishClientSend"}
    subs = {a["topic"] for a in role["acls"] if a["acltype"] == "subscribePattern"}
    assert sends == {"mo/v1/nodes/+/cmd", "mo/v1/nodes/+/ack", "mo/v1/areas/#", "mo/v1/hub/time"}
    assert subs == {"mo/v1/nodes/+/alarm", "mo/v1/nodes/+/cancel",
                    "$share/+/mo/v1/nodes/+/alarm", "$share/+/mo/v1/nodes/+/cancel"}
    assert len(applied.password("hub-test-1-alarms")) == 32
    assert applied.password("hub-test-1-alarms") != applied.password("hub-test-1")


def test_the_alarm_lane_gets_a_nodes_alarm_and_a_node_cannot_take_its_place(
        mosquitto: Applied) -> None:
    lane = Client("127.0.0.1", mosquitto.ports["plain"], "hub-test-1-alarms",
                  mosquitto.password("hub-test-1-alarms"))
    # The node's own login with the lane's client id: the broker names it after its login.
    node = Client("localhost", mosquitto.ports["tls"], "na-sang-01",
                  mosquitto.password("na-sang-01"), ca_file=str(
                      mosquitto.work / "credentials/pki/ca.crt"),
                  client_id="hub-test-1-alarms")
    posing = tls_client(mosquitto, "hub-test-1-alarms", password=mosquitto.password("na-sang-01"))
    try:
        assert lane.wait_connected() and node.wait_connected()
        assert not posing.wait_connected()           # its password is not the node's
        lane.subscribe("mo/v1/nodes/+/alarm")
        lane.subscribe("mo/v1/nodes/+/state")         # not granted to the lane
        time.sleep(0.5)
        node.publish("mo/v1/nodes/na-sang-01/state", b'{"not": "for the lane"}')
        node.publish("mo/v1/nodes/na-sang-01/alarm", b'{"lane": true}')
        assert lane.messages.get(timeout=15) == ("mo/v1/nodes/na-sang-01/alarm",
                                                 b'{"lane": true}')
        time.sleep(1.0)
        assert lane.messages.empty()
        assert not lane.dropped.is_set()             # never taken over by the node
    finally:
        for c in (lane, node, posing):
            c.close()


def test_hub_admin_manages_clients_through_dynamic_security(mosquitto: Applied) -> None:
    out = subprocess.run(
        ["mosquitto_ctrl", "-h", "localhost", "-p", str(mosquitto.ports["tls"]),
         "--cafile", str(mosquitto.work / "credentials/pki/ca.crt"),
         "-u", "hub-admin", "-P", mosquitto.password("hub-admin"), "dynsec", "listClients"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "hub-admin" in out.stdout.split()


# ---------------------------------------------------------------- bridge --

def test_bridge_section_is_the_projects_generator_output(applied: Applied) -> None:
    from hub.federation import render_bridge

    conf = applied.root / "etc/mosquitto/bridge.d/tiengmo-bridge.conf"
    user = f"bridge-{support.BRIDGE_NAME}"
    assert conf.read_text() == render_bridge(
        support.BRIDGE_NAME, "localhost", applied.ports["province"], username=user,
        password=applied.password(user), cafile="/etc/mosquitto/certs/bridge-ca.crt")
    assert conf.stat().st_mode & 0o777 == 0o640       # it holds the bridge password
    assert applied.password(user) not in applied.first + applied.second
    main = (applied.root / "etc/mosquitto/mosquitto.conf").read_text()
    assert main.rstrip().endswith("include_dir /etc/mosquitto/bridge.d")
    assert ((applied.root / "etc/mosquitto/certs/bridge-ca.crt").read_bytes()
            == (applied.work / "credentials/pki/ca.crt").read_bytes())


def test_bridge_carries_a_local_alarm_up_and_nothing_comes_down(
        mosquitto: Applied, province: Mosquitto) -> None:
    node = tls_client(mosquitto, "na-sang-01")
    local_hub = Client("127.0.0.1", mosquitto.ports["plain"], "hub-test-1",
                       mosquitto.password("hub-test-1"))
    prov_hub = Client(province.host, province.port, "hub-test-1",
                      mosquitto.password("hub-test-1"))
    try:
        assert node.wait_connected() and local_hub.wait_connected()
        assert prov_hub.wait_connected(), f"provincial broker refused: {prov_hub.reason}"
        prov_hub.subscribe("mo/v1/nodes/+/alarm")
        node.subscribe("mo/v1/nodes/na-sang-01/cmd")
        node.subscribe("mo/v1/hub/time")
        # Up: the node's alarm on the local broker reaches the province through the
        # bridge (its login, hash and ACL block all made by the role). Re-sent each
        # second until it arrives: the bridge may still be connecting.
        deadline = time.monotonic() + 30
        arrived = None
        while arrived is None and time.monotonic() < deadline:
            node.publish("mo/v1/nodes/na-sang-01/alarm", b'{"up": true}')
            with contextlib.suppress(queue.Empty):
                arrived = prov_hub.messages.get(timeout=1.0)
        log = (mosquitto.work / "mosquitto.log").read_text(errors="replace")
        assert arrived == ("mo/v1/nodes/na-sang-01/alarm", b'{"up": true}'), log[-3000:]
        # Down: the provincial hub commands this node and sends a beacon; neither
        # may reach the gong. The local hub's own command does (the node listens).
        prov_hub.publish("mo/v1/nodes/na-sang-01/cmd", b'{"from": "province"}')
        prov_hub.publish("mo/v1/hub/time", b'{"from": "province"}')
        local_hub.publish("mo/v1/nodes/na-sang-01/cmd", b'{"from": "local"}')
        assert node.messages.get(timeout=15) == ("mo/v1/nodes/na-sang-01/cmd",
                                                 b'{"from": "local"}')
        time.sleep(1.5)   # give a wrongly bridged copy time to arrive
        assert node.messages.empty(), list(node.messages.queue)
    finally:
        for c in (node, local_hub, prov_hub):
            c.close()
