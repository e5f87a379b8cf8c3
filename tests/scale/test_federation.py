"""A local Mosquitto bridged up to a provincial one (hub.federation), with two real brokers.

The local hub owns its district: it acks and sounds. The provincial hub, in
observer mode on the provincial broker, stores every alarm that comes up but
never acks or sounds, and nothing it publishes ever comes down.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.federation import bridge_client_id, render_bridge, render_remote_acl
from protocol import Kind
from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    HAMLET,
    BareNode,
    T,
    alarm,
    hub_settings,
    is_ack,
    running_hub,
    send_alarm,
    wait_until,
)
from tests.support.hubdb import pg_database, reset_pg  # noqa: F401 - fixtures
from tests.support.wire import Received, Wire

LOCAL = "xa-vi-huong"


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[Mosquitto, Mosquitto]]:
    province = Mosquitto(tmp_path).start()
    bridge = render_bridge(LOCAL, province.host, province.port, tls=False,
                           restart_timeout=(1, 2))
    local = Mosquitto(tmp_path, extra=bridge).start()
    try:
        yield local, province
    finally:
        local.stop()
        province.stop()


def watch(broker: Mosquitto, *topics: str) -> Wire:
    w = Wire(broker.host, broker.port)
    for t in topics:
        w.subscribe(t, 1)
    return w


def acks(w: Wire) -> list[Received]:
    return [m for m in w.messages if m.topic.endswith("/ack")]


def sounds(w: Wire) -> list[Received]:
    return [m for m in w.messages if "/areas/" in m.topic and m.json().get("action") == "sound"]


def test_province_observes_every_alarm_and_never_acks_or_sounds(
        brokers: tuple[Mosquitto, Mosquitto], pg_database: str,  # noqa: F811
        tmp_path: Path) -> None:
    local, province = brokers
    reset_pg(pg_database)
    up = watch(province, f"$SYS/broker/connection/{bridge_client_id(LOCAL)}/state",
               f"{T.prefix}/#")
    up.wait_for(lambda m: m.topic.startswith("$SYS") and m.payload == b"1", 15)
    down = watch(local, f"{T.prefix}/#")
    local_settings = hub_settings(local, tmp_path, hub_id="hub-xa")
    observer_settings = hub_settings(province, tmp_path, hub_id="hub-tinh", observer=True,
                                     db_url=pg_database)
    with running_hub(local_settings) as hub, running_hub(observer_settings) as observer:
        node = BareNode(local, "na-sang-01")
        try:
            a = alarm(Kind.FIRE.value)
            send_alarm(down, "na-sang-01", a)
            send_alarm(down, "na-sang-01", a)      # a re-send: both copies answered
            down.wait_for(is_ack("na-sang-01", a.alarm_id), 10, count=2)
            down.wait_for(lambda m: m in sounds(down), 10)
            # The province stored it (bridged up) in an incident of its own store.
            stored = wait_until(lambda: observer.store.alarms.get(a.alarm_id), 15,
                                "the observer to store the alarm")
            inc = observer.store.incidents.get(stored.incident_id)
            assert inc is not None and inc.kind == "fire" and inc.area == HAMLET
            assert hub.store.alarms.get(a.alarm_id) is not None
            # Give the observer time to misbehave: several of its own beacons go by.
            up.wait_for(lambda m: m.topic == T.hub_time() and m.json()["hub_id"] == "hub-tinh",
                        10, count=3)
            up.wait_for(lambda m: m.topic.endswith("/ack"), 10, count=2)  # the local acks
        finally:
            node.close()
        # Locally: exactly one `received` per copy and one `sound`, all from the local hub.
        assert len(acks(down)) == 2
        assert {m.json()["status"] for m in acks(down)} == {"received"}
        assert len(sounds(down)) == 1
        # Nothing of the province ever came down: not its birth, beacon, ack or command.
        assert not [m for m in down.messages if b"hub-tinh" in m.payload
                    or m.topic == T.hub_state("hub-tinh")]
        # Up there, the only acks are the local hub's, bridged; the observer sent none.
        assert len(acks(up)) == 2
        assert not sounds(up)      # area commands are not bridged: any here would be its own
        assert observer.ingest is not None and observer.ingest.handled["alarm"] == 2
        # The local hub's retained birth reached the province.
        assert [m for m in up.messages if m.topic == T.hub_state("hub-xa") and m.json()["online"]]
    down.close()
    up.close()


def test_the_provincial_acl_lets_the_bridge_write_only_what_goes_up() -> None:
    acl = render_remote_acl(LOCAL)
    assert f"user {bridge_client_id(LOCAL)}" in acl
    assert all(line.startswith(("#", "user", "topic write")) for line in acl.splitlines())
    assert "mo/v1/nodes/+/alarm" in acl and "/cmd" not in acl and "hub/time" not in acl
    conf = render_bridge(LOCAL, "prov.example", 8883, username="bridge-x", password="pw",
                         cafile="/etc/ca.crt")
    topics = [line.split() for line in conf.splitlines() if line.startswith("topic ")]
    assert topics and all(t[2] == "out" for t in topics)    # nothing comes down, ever
    assert not [t for t in topics if t[1].endswith("/cmd") or "areas" in t[1]]


def test_bad_bridge_settings_are_refused_naming_the_field() -> None:
    from hub.federation import BridgeConfigError

    with pytest.raises(BridgeConfigError, match="local_name"):
        render_bridge("Bad Name", "h", 1, tls=False)
    with pytest.raises(BridgeConfigError, match="cafile"):
        render_bridge("ok", "h", 8883)
    with pytest.raises(BridgeConfigError, match="password"):
        render_bridge("ok", "h", 1, tls=False, username="u", password="a\nconnection x")
