"""The hub's own isolation is not the nodes' fault: no NODE LOST / AREA LOST while the
hub has never reached its broker, nor for the time its link was down (a real Mosquitto,
stopped and started again on the same port, and short supervision timers)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.runtime import Hub
from tests.support.broker import Mosquitto
from tests.support.hub_harness import HAMLET, BareNode, Beater, hub_settings, wait_until

# A node silent since t is missing at t + 3 s, its loss counted from t + 1 s (its first
# heartbeat due) and reported once that loss has lasted the debounce: at t + GRACE_S.
HEARTBEAT_S, MISSING_AFTER, DEBOUNCE_S = 1.0, 3, 4.0
GRACE_S = max(HEARTBEAT_S * MISSING_AFTER, HEARTBEAT_S + DEBOUNCE_S)
FAST = {"heartbeat_s": HEARTBEAT_S, "missing_after_heartbeats": MISSING_AFTER,
        "loss_debounce_s": DEBOUNCE_S, "report_within_s": 8.0,
        "reconnect_min_s": 1.0, "reconnect_max_s": 1.0, "keepalive_s": 5.0}
LIVE = ("na-sang-01", "na-sang-02", "na-sang-03")   # na-sang-04, na-cha-01: never heard


def lost(hub: Hub) -> list[str]:
    """Every node or area trouble ever opened (cleared ones too)."""
    return sorted(t.subject for t in hub.store.troubles.find(open_only=False)
                  if t.kind in ("node_offline", "node_missing", "area_loss"))


def live_nodes(broker: Mosquitto) -> list[BareNode]:
    nodes = [BareNode(broker, nid, HAMLET) for nid in LIVE]
    for n in nodes:
        n.client.reconnect_delay_set(1, 1)   # back within a second of the broker
    return nodes


@pytest.fixture
def stopped_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path)      # a port is chosen; nothing listens on it yet
    yield b
    b.stop()


def test_nothing_is_lost_before_the_hub_first_reaches_its_broker(
        stopped_broker: Mosquitto, tmp_path: Path) -> None:
    hub = Hub(hub_settings(stopped_broker, tmp_path, **FAST)).start(wait_connected_s=None)
    try:
        time.sleep(GRACE_S + 2)           # every registered node "silent" past its grace
        assert lost(hub) == [], "nodes reported lost while the hub had no broker"
        stopped_broker.start()
        assert hub.link is not None and hub.link.wait_connected(10)
        connected_at = time.time()
        nodes = live_nodes(stopped_broker)
        beater = Beater(nodes, 0.3)
        try:
            # The yardsticks: registered nodes that never speak are reported, and not
            # before their grace counted from the hub's connect.
            found = wait_until(lambda: [t for t in hub.store.troubles.find()
                                        if t.subject == "na-cha-01"], GRACE_S + 8,
                               "the silent node reported after the connect")
            assert found[0].opened_ms / 1000 - connected_at >= GRACE_S - 0.5
            assert not set(LIVE) & set(lost(hub))
        finally:
            beater.stop()
            for n in nodes:
                n.close()
    finally:
        hub.stop()


def test_no_node_is_lost_for_the_time_the_hubs_own_link_was_down(
        broker: Mosquitto, tmp_path: Path) -> None:
    nodes = live_nodes(broker)
    beater = Beater(nodes, 0.3)
    hub = Hub(hub_settings(broker, tmp_path, **FAST)).start()
    try:
        assert hub.link is not None and hub.link.wait_connected(10)
        # The registered nodes that never speak are reported normally first.
        wait_until(lambda: {"na-cha-01", "na-sang-04"} <= set(lost(hub)), GRACE_S + 8,
                   "the silent nodes reported")
        before = lost(hub)
        assert before == ["na-cha-01", "na-sang-04"]
        # The beater pauses with the broker: its publishes would wait on dead links
        # and the beats after the outage come late (a harness effect, not a node's).
        beater.stop()
        # The hub (and everyone) cut off. Mosquitto sends the nodes' Wills as it shuts
        # down, so the hub also hears deaths that are the broker's, not the nodes'.
        broker.stop()
        wait_until(lambda: not hub.link.connected.is_set(), 5, "the hub sees its link down")
        time.sleep(GRACE_S + 2)           # longer than any node's grace
        assert lost(hub) == before, f"reported lost while the hub was cut off: {lost(hub)}"
        broker.start()                    # same port: everyone reconnects
        assert hub.link.wait_connected(10)
        beater = Beater(nodes, 0.3)
        time.sleep(GRACE_S + 1)           # the nodes are back within a second or two
        assert lost(hub) == before, f"live nodes reported lost after the outage: {lost(hub)}"
        # ...while a node that really dies now is still reported.
        beater.drop(nodes[0])
        nodes[0].kill()
        wait_until(lambda: "na-sang-01" in lost(hub), GRACE_S + 8, "a real loss reported")
    finally:
        beater.stop()
        for n in nodes:
            n.close()
        hub.stop()
