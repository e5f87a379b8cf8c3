"""MQTT over TLS end to end: a real node agent and the real hub on the production config.

The broker is deploy/mosquitto/mosquitto.conf with its TLS listener kept (only ports and
certificate paths moved), one login per node and per hub and their roles from
tiengmo.dynsec_config. A press on the node's mock pin must come back as a `received` ack over
TLS; a client trusting another CA, and a client speaking plain MQTT to the TLS port,
never get a connection.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from firmware_sim.village import node_config
from firmware_sim.virtual import VirtualNode
from hub.settings import load_settings
from protocol import load_registry
from tests.support.hub_harness import HAMLET, QUIET, running_hub, wait_until, write_registry
from tests.support.nodes import FAST_BUTTONS, FAST_TIMERS
from tests.support.prod_mosquitto import dynsec_store
from tests.support.secure_broker import Pki, SecureMosquitto, make_pki

HUB, NODE = "hub-1", "na-sang-01"
USERS = {HUB: "hub-tls-pass-7f3a", NODE: "node-tls-pass-91c2", "na-sang-02": "n2-pass-55d1"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[SecureMosquitto]:
    reg = load_registry(write_registry(tmp_path))
    m = SecureMosquitto(tmp_path / "broker", USERS, dynsec_store(reg, [HUB], USERS), pki=pki)
    m.start()
    yield m
    m.stop()


def secret_file(folder: Path, user: str) -> Path:
    path = folder / f"{user}.pass"
    path.write_text(USERS[user] + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def tls_node(m: SecureMosquitto, folder: Path, ca: Path, node_id: str = NODE) -> VirtualNode:
    cfg = node_config(node_id, HAMLET, broker_url=f"mqtts://127.0.0.1:{m.port}",
                      data_dir=folder / node_id, username=node_id,
                      password_file=secret_file(folder, node_id), timers=FAST_TIMERS,
                      buttons=FAST_BUTTONS,
                      mqtt={"ca_file": str(ca), "reconnect_min_s": 0.2, "reconnect_max_s": 1.0})
    return VirtualNode(cfg)


def connack(port: int, *, tls_ca: Path | None, user: str = NODE,
            timeout: float = 3.0) -> str:
    """What a bare paho client gets: 'accepted', 'refused', or the error that stopped it."""
    got = threading.Event()
    outcome: dict[str, Any] = {}
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user)
    c.username_pw_set(user, USERS[user])
    if tls_ca is not None:
        c.tls_set(ca_certs=str(tls_ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)

    def on_connect(cl: Any, u: Any, f: Any, rc: Any, p: Any) -> None:
        outcome["rc"] = "refused" if rc.is_failure else "accepted"
        got.set()

    c.on_connect = on_connect
    try:
        c.connect("127.0.0.1", port, keepalive=5)
    except (OSError, ssl.SSLError) as exc:
        return type(exc).__name__
    c.loop_start()
    try:
        return str(outcome["rc"]) if got.wait(timeout) else "no CONNACK"
    finally:
        c.disconnect()
        c.loop_stop()


def test_press_to_received_ack_over_tls(tls_broker: SecureMosquitto, pki: Pki,
                                        tmp_path: Path) -> None:
    settings = load_settings(None, env={}, **{
        **QUIET, "hub_id": HUB, "broker_url": f"mqtts://127.0.0.1:{tls_broker.port}",
        "ca_file": str(pki.ca), "password_file": str(secret_file(tmp_path, HUB)),
        "db_url": f"sqlite:///{tmp_path / 'hub.db'}", "data_dir": str(tmp_path / "data"),
        "registry_file": str(tmp_path / "registry.toml")})
    with running_hub(settings) as hub:
        node = tls_node(tls_broker, tmp_path, pki.ca).start()
        try:
            assert node.wait_connected(15), tls_broker.log.read_text()[-2000:]
            node.press("fire")
            wait_until(lambda: node.stats.get("acks_received", 0) >= 1, 20,
                       "the node's `received` ack over TLS")
            assert [a.node_id for a in hub.store.alarms.find()] == [NODE]
            assert node.agent is not None and node.agent.outbox is not None
            wait_until(lambda: node.agent is not None and node.agent.outbox is not None
                       and node.agent.outbox.depth() == 0, 10, "the outbox to empty")
        finally:
            node.stop()
    log = tls_broker.log.read_text()
    # Both logged in on the TLS listener as themselves.
    assert f"u'{NODE}'" in log and f"u'{HUB}'" in log


def test_a_client_trusting_another_ca_never_connects(tls_broker: SecureMosquitto, pki: Pki,
                                                      tmp_path: Path) -> None:
    # Positive control first: the right CA and password get in.
    assert connack(tls_broker.port, tls_ca=pki.ca) == "accepted"
    assert connack(tls_broker.port, tls_ca=pki.other_ca) == "SSLCertVerificationError"
    node = tls_node(tls_broker, tmp_path, pki.other_ca).start()
    try:
        assert not node.wait_connected(3)
        assert node.stats.get("connects", 0) == 0
    finally:
        node.stop()


def test_plain_mqtt_to_the_tls_port_gets_no_connection(tls_broker: SecureMosquitto,
                                                       pki: Pki) -> None:
    outcome = connack(tls_broker.port, tls_ca=None)
    assert outcome != "accepted"
    # The broker never parsed a CONNECT: it dropped the handshake instead.
    with socket.create_connection(("127.0.0.1", tls_broker.port), 3) as s:
        s.settimeout(3)
        s.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x0f\x00\x00")  # CONNECT, empty id
        try:
            answer = s.recv(16)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"\x20"), "a plain CONNACK came back from the TLS port"
