"""The production Mosquitto config, run for real: logins, PROTOCOL.md rule 8, queueing.

deploy/mosquitto/mosquitto.conf runs unchanged except for ports, paths and
TLS (plain TCP on loopback here); logins and access are the dynamic-security
store tiengmo.dynsec_config renders for a registry. Each "cannot"
check has a positive control on the same subscriber, so silence means the
broker refused, not that the test listened in the wrong place.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol import Topics, parse_registry
from tests.support.client_pool import closing_clients
from tests.support.paho_client import Client
from tests.support.prod_mosquitto import ProductionMosquitto, dynsec_store

T = Topics()
A, B, HUB = "na-sang-01", "pho-chinh-01", "hub-1"
AREA_A, AREA_B = "bach-thong/vi-huong/na-sang", "bach-thong/phu-thong/pho-chinh"
USERS = {HUB: "hub-secret", A: "secret-a", B: "secret-b"}
REGISTRY = parse_registry({"nodes": [{"id": A, "area": AREA_A}, {"id": B, "area": AREA_B}]})
BURST = 5000


def start_broker(workdir: Path, drop: tuple[str, ...] = ()) -> ProductionMosquitto:
    return ProductionMosquitto(workdir, USERS, dynsec_store(REGISTRY, [HUB], USERS),
                               drop=drop).start()


@pytest.fixture
def mosq(tmp_path: Path) -> Iterator[ProductionMosquitto]:
    m = start_broker(tmp_path)
    yield m
    m.stop()


@pytest.fixture
def made() -> Iterator[list[Client]]:
    with closing_clients() as clients:
        yield clients


def login(m: ProductionMosquitto, made: list[Client], user: str, **kw: Any) -> Client:
    c = Client(m.port, user, USERS[user], **kw)
    made.append(c)
    accepted, _ = c.connect()
    assert accepted, f"{user} was refused: {m.log.read_text()[-1500:]}"
    return c


def test_node_logs_in_and_a_wrong_password_or_no_login_is_refused(
        mosq: ProductionMosquitto, made: list[Client]) -> None:
    login(mosq, made, A)
    for user, password in ((A, "wrong"), ("stranger", "x"), (None, None)):
        c = Client(mosq.port, user, password, client_id="someone")
        made.append(c)
        accepted, _ = c.connect()
        assert not accepted, f"{user!r}/{password!r} was let in"


def test_node_cannot_publish_under_another_nodes_topics(
        mosq: ProductionMosquitto, made: list[Client]) -> None:
    hub = login(mosq, made, HUB)
    hub.subscribe(f"{T.prefix}/nodes/#")
    a = login(mosq, made, A)
    a.publish(T.alarm(B), b"forged alarm")
    a.publish(T.node_state(B), b"forged death", retain=True)
    a.publish(T.alarm(A), b"own alarm")
    [m] = hub.take(1)
    assert (m.topic, m.payload) == (T.alarm(A), b"own alarm")
    assert hub.quiet(0.5) == []


def test_node_reads_only_its_own_commands_and_its_own_areas(
        mosq: ProductionMosquitto, made: list[Client]) -> None:
    a = login(mosq, made, A)
    for topic in (T.node_cmd(B), T.ack(B), f"{T.prefix}/nodes/+/cmd", T.area_cmd(AREA_B),
                  f"{T.prefix}/#"):
        a.subscribe(topic)
    for topic, _qos in T.node_subscriptions(A, AREA_A):
        a.subscribe(topic)
    hub = login(mosq, made, HUB)
    hub.publish(T.node_cmd(B), b"for b")
    hub.publish(T.ack(B), b"ack for b")
    hub.publish(T.area_cmd(AREA_B), b"for pho-chinh")
    hub.publish(T.area_cmd("bach-thong/vi-huong"), b"for vi-huong")
    hub.publish(T.node_cmd(A), b"for a")
    got = {m.payload for m in a.take(2)}
    assert got == {b"for vi-huong", b"for a"}
    assert a.quiet(0.5) == []


def test_node_cannot_publish_commands_acks_hub_state_or_time(
        mosq: ProductionMosquitto, made: list[Client]) -> None:
    b = login(mosq, made, B)
    for topic, _qos in T.node_subscriptions(B, AREA_B):
        b.subscribe(topic, 1)
    a = login(mosq, made, A)
    a.publish(T.node_cmd(B), b"forged cmd")
    a.publish(T.ack(B), b"forged ack")
    a.publish(T.area_cmd(AREA_B), b"forged area cmd")
    a.publish(T.area_cmd("bach-thong"), b"forged district cmd")
    a.publish(T.hub_state(A), b"fake hub online", retain=True)
    a.publish(T.hub_time(), b"fake time", qos=0)
    hub = login(mosq, made, HUB)
    hub.publish(T.area_cmd("bach-thong"), b"real district cmd")
    [m] = b.take(1)
    assert m.payload == b"real district cmd"
    assert b.quiet(0.5) == []


def test_client_id_is_bound_to_the_username(mosq: ProductionMosquitto,
                                            made: list[Client]) -> None:
    hub = login(mosq, made, HUB)
    hub.subscribe(f"{T.prefix}/nodes/#")
    b = login(mosq, made, B)
    # A claims B's client id: Mosquitto replaces it with "na-sang-01", so B is
    # not kicked and A still only has A's rights.
    a_as_b = login(mosq, made, A, client_id=B)
    a_as_b.publish(T.alarm(B), b"forged")
    a_as_b.publish(T.alarm(A), b"as itself")
    [m] = hub.take(1)
    assert (m.topic, m.payload) == (T.alarm(A), b"as itself")
    assert hub.quiet(0.5) == []
    assert not b.disconnected.is_set()
    # Nor can a node take the hub's session.
    login(mosq, made, A, client_id=HUB)
    assert not hub.disconnected.is_set()


def test_hub_reads_every_node_and_sends_commands_and_acks(
        mosq: ProductionMosquitto, made: list[Client]) -> None:
    hub = login(mosq, made, HUB)
    for topic, qos in T.hub_subscriptions():
        hub.subscribe(topic, qos)
    a = login(mosq, made, A)
    for topic, qos in T.node_subscriptions(A, AREA_A):
        a.subscribe(topic, qos)
    b = login(mosq, made, B)
    a.publish(T.node_state(A), b"born a", retain=True)
    b.publish(T.alarm(B), b"alarm b")
    b.publish(T.heartbeat(B), b"beat b", qos=0)
    b.publish(T.result(B), b"result b")
    assert {m.payload for m in hub.take(4)} == {b"born a", b"alarm b", b"beat b", b"result b"}
    hub.publish(T.hub_state(HUB), b"hub online", retain=True)
    hub.publish(T.hub_time(), b"tick", qos=0)
    hub.publish(T.ack(A), b"ack a")
    hub.publish(T.node_cmd(A), b"cmd a")
    hub.publish(T.area_cmd(AREA_A), b"area a")
    assert {m.payload for m in a.take(5)} == {b"hub online", b"tick", b"ack a", b"cmd a",
                                              b"area a"}


def burst_received(workdir: Path, drop: tuple[str, ...]) -> int:
    """QoS 1 messages a persistent subscriber gets of a burst sent while it was away."""
    m = start_broker(workdir, drop)
    clients: list[Client] = []
    try:
        hub = login(m, clients, HUB, clean_session=False)
        hub.subscribe(T.node_wildcard("alarm"), 1)
        hub.close()
        a = login(m, clients, A)
        infos = [a.c.publish(T.alarm(A), str(i).encode(), qos=1) for i in range(BURST)]
        for info in infos:
            info.wait_for_publish(30)
        back = Client(m.port, HUB, USERS[HUB], clean_session=False)
        clients.append(back)
        accepted, session_present = back.connect()
        assert accepted and session_present
        return back.count_until_quiet(BURST)
    finally:
        for c in clients:
            c.c.disconnect()
            c.c.loop_stop()
        m.stop()


def test_a_burst_queued_for_an_absent_subscriber_arrives_whole(tmp_path: Path) -> None:
    (tmp_path / "production").mkdir()
    (tmp_path / "default").mkdir()
    fixed = burst_received(tmp_path / "production", ())
    default = burst_received(tmp_path / "default", ("max_queued_messages",))
    print(f"\n{BURST}-message QoS 1 burst to an absent persistent subscriber: "
          f"production config delivered {fixed}, Mosquitto's default "
          f"max_queued_messages delivered {default}")
    assert fixed == BURST
    # Why the production line exists: without it, most of the burst is gone.
    assert default < BURST // 2


def test_production_access_is_the_plugin_alone(tmp_path: Path) -> None:
    """No password or ACL file to fall through to (docs/security.md: the ACL file grants
    a node's $share subscription); the old files only where a caller asks for them."""
    from tiengmo.mosquitto_conf import PRODUCTION_CONF, ConfRenderError, render_conf

    text = PRODUCTION_CONF.read_text(encoding="utf-8")
    keys = [line.split()[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert "password_file" not in keys and "acl_file" not in keys
    assert keys.count("plugin") == 1 and keys.count("plugin_opt_config_file") == 1
    common: dict[str, Any] = {"ports": {8883: 1, 1883: 2}, "persistence_location": tmp_path}
    with pytest.raises(ConfRenderError, match="dynsec_file"):
        render_conf(text, **common)
    dynsec = render_conf(text, dynsec_file=tmp_path / "s.json", dynsec_plugin=tmp_path / "p.so",
                         **common)
    assert f"plugin {tmp_path / 'p.so'}" in dynsec.splitlines()
    old = render_conf(text, password_file=tmp_path / "pw", acl_file=tmp_path / "acl", **common)
    old_keys = [ln.split()[0] for ln in old.splitlines() if ln and not ln.startswith("#")]
    assert "plugin" not in old_keys and {"password_file", "acl_file"} <= set(old_keys)
