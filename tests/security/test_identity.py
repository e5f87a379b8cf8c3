"""Identity is the topic, checked twice (PROTOCOL.md rule 8).

With the production broker, node A's alarm on node B's topic never reaches the hub (the
ACL), while A's own alarm is stored and acked. With a broker that checks nothing (the
demo's, or a misconfigured one) the hub still believes only the topic: a payload naming
another node changes nothing, and an unknown or disabled node's alarm is stored, acked,
flagged and never sounded (tests/hub/test_ingest.py covers the flagging in detail).
"""

from __future__ import annotations

import json
from pathlib import Path

from hub.settings import load_settings
from protocol import Topics, encode, load_registry
from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    QUIET,
    alarm,
    cmds,
    hub_settings,
    is_ack,
    running_hub,
    wait_until,
    watch_all,
    write_registry,
)
from tests.support.paho_client import Client
from tests.support.prod_mosquitto import dynsec_store
from tests.support.secure_broker import SecureMosquitto
from tests.support.wire import Wire

T = Topics()
HUB, A, B = "hub-1", "na-sang-01", "na-cha-01"
USERS = {HUB: "hub-id-pass-c3d2", A: "a-id-pass-9e1f", B: "b-id-pass-4a6b"}


def test_the_broker_keeps_a_node_off_another_nodes_topic(tmp_path: Path) -> None:
    reg = load_registry(write_registry(tmp_path))
    m = SecureMosquitto(tmp_path / "broker", USERS, dynsec_store(reg, [HUB], USERS)).start()
    (tmp_path / "hub.pass").write_text(USERS[HUB] + "\n")
    settings = load_settings(None, env={}, **{
        **QUIET, "hub_id": HUB, "broker_url": f"mqtt://127.0.0.1:{m.port}",
        "password_file": str(tmp_path / "hub.pass"),
        "db_url": f"sqlite:///{tmp_path / 'hub.db'}", "data_dir": str(tmp_path / "data"),
        "registry_file": str(tmp_path / "registry.toml")})
    a = Client(m.port, A, USERS[A])
    try:
        with running_hub(settings) as hub:
            assert a.connect()[0]
            a.subscribe(T.ack(A))
            forged, own = alarm("robbery"), alarm("fire")
            a.publish(T.alarm(B), encode(forged))
            a.publish(T.alarm(A), encode(own))
            [ack] = a.take(1)
            assert json.loads(ack.payload)["alarm_id"] == own.alarm_id
            wait_until(lambda: hub.store.alarms.get(own.alarm_id), 10, "A's own alarm stored")
            assert hub.store.alarms.get(forged.alarm_id) is None
            assert hub.store.alarms.count(node_id=B) == 0
    finally:
        a.close()
        m.stop()


def test_without_acls_the_hub_believes_the_topic_not_the_payload(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        # A payload that claims to come from a node other than its topic's.
        claim = {**alarm("fire").to_dict(), "node_id": "na-sang-02", "from": "na-sang-02"}
        wire.publish(T.alarm(B), json.dumps(claim), qos=1)
        wire.wait_for(is_ack(B, claim["alarm_id"]))
        stored = hub.store.alarms.get(claim["alarm_id"])
        assert stored is not None and stored.node_id == B
        # A node the hub does not know, and one it has disabled: stored, acked, flagged,
        # never sounded, even on a broker that let them publish.
        for node_id in ("intruder-01", "na-cha-02"):
            a = alarm("fire")
            wire.publish(T.alarm(node_id), encode(a), qos=1)
            wire.wait_for(is_ack(node_id, a.alarm_id))
            got = hub.store.alarms.get(a.alarm_id)
            assert got is not None and got.incident_id is not None
            inc = hub.store.incidents.get(got.incident_id)
            assert inc is not None and inc.flagged and not inc.fanned_out
        wire.wait_for(lambda m: m.topic == T.hub_time(), count=2)
        sounded = {msg.json().get("incident_id") for msg in cmds(wire)}
        assert sounded == {stored.incident_id}
