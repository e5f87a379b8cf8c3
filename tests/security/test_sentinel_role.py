"""The sentinel's broker login reads the hubs' states and beacons and nothing else: on a
real Mosquitto running production's dynamic-security store (tiengmo.dynsec_config)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol import Topics, load_registry
from tests.security import test_dynsec_roles as roles
from tests.support.hub_harness import write_registry
from tests.support.paho_client import Client
from tests.support.prod_mosquitto import ProductionMosquitto, dynsec_store
from tiengmo.dynsec_config import DynsecConfigError, render_dynsec

T = Topics()
SENTINEL = "sentinel-1"
USERS = {**roles.USERS, SENTINEL: "sentinel-pass-7f3e"}


@pytest.fixture
def mosq(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProductionMosquitto]:
    monkeypatch.setattr(roles, "USERS", USERS)   # subscribe_codes logs in from this table
    reg = load_registry(write_registry(tmp_path))
    (tmp_path / "broker").mkdir()
    m = ProductionMosquitto(tmp_path / "broker", USERS,
                            dynsec_store(reg, roles.HUBS, USERS, sentinels=[SENTINEL])).start()
    yield m
    m.stop()


def test_the_sentinel_reads_hub_states_and_beacons_only(mosq: ProductionMosquitto) -> None:
    assert roles.subscribe_codes(mosq.port, SENTINEL, [T.all_hub_states(), T.hub_time()]) \
        == [1, 1]
    for topic in (T.node_wildcard("alarm"), f"{T.prefix}/#", T.node_cmd("na-sang-01"),
                  f"$share/g/{T.hub_time()}", "#"):
        assert roles.subscribe_codes(mosq.port, SENTINEL, [topic]) in ([0x87], None), topic


def test_the_sentinel_cannot_speak_for_a_hub(mosq: ProductionMosquitto) -> None:
    listener = Client(mosq.port, roles.SENDER, USERS[roles.SENDER])   # a node reads both
    sentinel = Client(mosq.port, SENTINEL, USERS[SENTINEL])
    try:
        assert listener.connect()[0] and sentinel.connect()[0]
        listener.subscribe(T.all_hub_states())
        listener.subscribe(T.hub_time())
        time.sleep(0.3)
        sentinel.publish(T.hub_time(), b'{"v":1,"hub_id":"hub-a","ts_ms":1}')
        sentinel.publish(T.hub_state("hub-a"), b'{"v":1,"online":false,"hub_id":"hub-a"}')
        assert listener.quiet(1.0) == []
        # Positive control: the listener hears a real hub's beacon.
        hub_b = Client(mosq.port, "hub-b", USERS["hub-b"])
        try:
            assert hub_b.connect()[0]
            hub_b.publish(T.hub_time(), b'{"v":1,"hub_id":"hub-b","ts_ms":2}')
        finally:
            hub_b.close()
        [beacon] = listener.take(1, timeout=5)
        assert b"hub-b" in beacon.payload
    finally:
        listener.close()
        sentinel.close()


def test_a_sentinel_login_must_not_be_a_node_or_hub(tmp_path: Path) -> None:
    reg = load_registry(write_registry(tmp_path))
    node = reg.nodes[0].id
    with pytest.raises(DynsecConfigError, match="also a node"):
        render_dynsec(reg, ["hub-a"], lambda u: "pw", sentinels=[node])
    with pytest.raises(DynsecConfigError, match="also a node"):
        render_dynsec(reg, ["hub-a"], lambda u: "pw", sentinels=["hub-a"])
