"""The alarm lane's own login on the production broker (docs/alarm-lane.md, issue 12).

The hub's alarm lane has an MQTT connection of its own, so a flood on a node's other
topics never queues alarms at the broker behind it. Production Mosquitto sets
`use_username_as_clientid`, so that connection logs in as `<hub_id>-alarms`, a login of
its own in the dynamic-security store tiengmo.dynsec_config generates (role
`tiengmo-hub-alarms`). Here, on the production config with that store:

- the hub comes up with both connections, and an alarm reaches it through the lane
  (the other connection does not subscribe to alarms at all);
- a node's credential cannot log in as the lane, and a node asking for the lane's
  client id gets its own (the broker names a client after its login): the lane's
  session is never taken over, alarms keep arriving;
- the lane's login can read alarms and cancels only;
- a broker that does not know the lane's login: /healthz degraded `alarm_link`, with
  the broker's refusal.
"""

from __future__ import annotations

import json
import logging
import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.settings import HubSettings, load_settings
from protocol import Topics, encode, load_registry
from tests.support.hub_harness import QUIET, alarm, running_hub, wait_until, write_registry
from tests.support.paho_client import Client
from tests.support.prod_mosquitto import ProductionMosquitto, dynsec_store

T = Topics()
HUB, LANE, NODE = "hub-test", "hub-test-alarms", "na-sang-01"
USERS = {HUB: "hub-pass-5d1e", LANE: "lane-pass-8c2f", NODE: "node-pass-41aa"}


@pytest.fixture
def mosq(tmp_path: Path) -> Iterator[ProductionMosquitto]:
    reg = load_registry(write_registry(tmp_path))
    (tmp_path / "broker").mkdir()
    m = ProductionMosquitto(tmp_path / "broker", USERS, dynsec_store(reg, [HUB], USERS)).start()
    yield m
    m.stop()


def settings_for(tmp_path: Path, port: int, lane_password: str) -> HubSettings:
    for login, pw in ((HUB, USERS[HUB]), (LANE, lane_password)):
        (tmp_path / f"{login}.pass").write_text(pw + "\n")
    return load_settings(None, env={}, **{
        **QUIET, "hub_id": HUB, "broker_url": f"mqtt://127.0.0.1:{port}",
        "password_file": str(tmp_path / f"{HUB}.pass"), "alarm_connection": True,
        "alarm_username": LANE, "alarm_password_file": str(tmp_path / f"{LANE}.pass"),
        "reconnect_min_s": 0.2, "reconnect_max_s": 0.5,
        "db_url": f"sqlite:///{tmp_path / 'hub.db'}", "data_dir": str(tmp_path / "data"),
        "registry_file": str(tmp_path / "registry.toml")})


def node_client(port: int, client_id: str | None = None) -> Client:
    c = Client(port, NODE, USERS[NODE], client_id=client_id)
    assert c.connect()[0], "the node could not log in"
    c.subscribe(T.ack(NODE))
    return c


def acked(c: Client, alarm_id: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            m = c.messages.get(timeout=left)
        except queue.Empty:
            return False
        body = json.loads(m.payload)
        if body.get("alarm_id") == alarm_id and body.get("status") == "received":
            return True
    return False


def test_the_hub_comes_up_with_two_connections_and_alarms_arrive_through_the_lane(
        mosq: ProductionMosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with running_hub(settings_for(tmp_path, mosq.port, USERS[LANE])) as hub:
        link = hub.link
        assert link is not None and link.alarm_client is not None
        assert link.connected.is_set() and link.alarm_client.connected.is_set()
        assert link.alarm_client.client_id == LANE
        # Alarms and cancels are the lane's alone: the other connection never asks.
        main_topics = [t for t, _q in link.client._subs]
        assert not any(t.endswith(("/alarm", "/cancel")) for t in main_topics)
        assert sorted(t for t, _q in link.alarm_client._subs) == [
            T.node_wildcard("alarm"), T.node_wildcard("cancel")]
        health = hub.health()
        assert health["status"] == "ok" and health["broker_connected"] is True
        node = node_client(mosq.port)
        try:
            a = alarm("fire")
            node.publish(T.alarm(NODE), encode(a))
            assert acked(node, a.alarm_id), "no `received` ack through the lane"
            assert hub.store.alarms.get(a.alarm_id) is not None
        finally:
            node.close()
    # The broker granted every subscription (a refused one is logged as an error).
    assert not [r for r in caplog.records if "refused" in r.getMessage()]
    log = mosq.log.read_text()
    assert f" as {LANE} " in log and f" as {HUB} " in log


def test_a_node_can_neither_log_in_as_the_lane_nor_take_its_session(
        mosq: ProductionMosquitto, tmp_path: Path) -> None:
    with running_hub(settings_for(tmp_path, mosq.port, USERS[LANE])) as hub:
        assert hub.link is not None and hub.link.alarm_client is not None
        lane = hub.link.alarm_client
        connects = lane.connects
        # The node's password with the lane's login: refused.
        posing = Client(mosq.port, LANE, USERS[NODE])
        try:
            assert posing.connect()[0] is False
        finally:
            posing.close()
        # The node's own login asking for the lane's client id: named after its login.
        node = node_client(mosq.port, client_id=LANE)
        try:
            time.sleep(1.0)
            assert lane.connected.is_set() and lane.connects == connects, \
                "the lane's session was taken over"
            a = alarm("theft")
            node.publish(T.alarm(NODE), encode(a))
            assert acked(node, a.alarm_id)
            assert lane.connects == connects
        finally:
            node.close()


def test_the_lanes_login_reads_alarms_and_cancels_only(mosq: ProductionMosquitto) -> None:
    lane = Client(mosq.port, LANE, USERS[LANE])
    granted: list[int] = []
    try:
        assert lane.connect()[0]
        lane.c.on_subscribe = lambda cl, ud, mid, rcs, props: granted.extend(
            r.value for r in rcs)
        lane.c.subscribe([(T.node_wildcard("alarm"), 1), (T.node_wildcard("cancel"), 1),
                          (T.node_wildcard("state"), 1), (f"{T.prefix}/nodes/#", 1),
                          (T.all_hub_states(), 1)])
        wait_until(lambda: len(granted) == 5, 10, "the SUBACK")
    finally:
        lane.close()
    assert granted == [1, 1, 0x80, 0x80, 0x80]


def test_a_broker_without_the_lanes_login_makes_the_hub_say_so(
        mosq: ProductionMosquitto, tmp_path: Path) -> None:
    from hub.runtime import Hub

    hub = Hub(settings_for(tmp_path, mosq.port, "not-the-lanes-password"))
    hub.start(wait_connected_s=None)
    try:
        wait_until(lambda: hub.health()["alarm_link_refused"] is not None, 10,
                   "the broker's refusal of the lane")
        wait_until(lambda: hub.link is not None and hub.link.connected.is_set(), 10,
                   "the hub's own connection")
        health = hub.health()
        assert health["status"] == "degraded"
        assert health["reasons"] == ["alarm_link"]
        assert "alarm lane's own connection (login hub-test-alarms)" in health["reason"]
        assert "refused" in health["reason"] and "not-the-lanes" not in health["reason"]
        assert health["broker_connected"] is False
    finally:
        hub.stop()
