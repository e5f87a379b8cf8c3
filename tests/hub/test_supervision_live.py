"""Supervision with real nodes dying on a real broker, on short timers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.runtime import Hub
from hub.store import NodeStatus, TroubleKind
from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    HAMLET,
    OTHER_HAMLET,
    BareNode,
    Beater,
    hub_settings,
    running_hub,
    wait_until,
)

DEBOUNCE_S = 4.0
FAST = {"heartbeat_s": 1.0, "missing_after_heartbeats": 3, "loss_debounce_s": DEBOUNCE_S,
        "report_within_s": 12.0, "area_trouble_min_nodes": 3, "area_trouble_fraction": 0.5}
ENABLED = {"na-sang-01": HAMLET, "na-sang-02": HAMLET, "na-sang-03": HAMLET,
           "na-sang-04": HAMLET, "na-cha-01": OTHER_HAMLET}


class Village:
    def __init__(self, broker: Mosquitto) -> None:
        self.broker = broker
        self.nodes = {nid: BareNode(broker, nid, area) for nid, area in ENABLED.items()}
        self.beater = Beater(list(self.nodes.values()), 0.4)

    def kill(self, node_id: str) -> float:
        node = self.nodes[node_id]
        self.beater.drop(node)
        node.kill()
        return time.time()

    def revive(self, node_id: str) -> None:
        old = self.nodes[node_id]
        new = BareNode(self.broker, node_id, old.area, boot_id=old.boot_id + 1)
        new.beat()
        self.nodes[node_id] = new
        self.beater.add(new)

    def close(self) -> None:
        self.beater.stop()
        for n in self.nodes.values():
            n.close()


@pytest.fixture
def village_hub(broker: Mosquitto, tmp_path: Path) -> Iterator[tuple[Village, Hub]]:
    village = Village(broker)
    try:
        with running_hub(hub_settings(broker, tmp_path, **FAST)) as hub:
            yield village, hub
    finally:
        village.close()


def open_troubles(hub: Hub, subject: str) -> list[str]:
    return [t.kind for t in hub.store.troubles.find(subject=subject)]


def test_killed_node_becomes_a_trouble_after_the_debounce_and_clears_on_return(
        village_hub: tuple[Village, Hub]) -> None:
    village, hub = village_hub
    killed_at = village.kill("na-sang-01")
    trouble = wait_until(lambda: hub.store.troubles.find(subject="na-sang-01"), 12 + 5,
                         "a trouble for the killed node")[0]
    assert trouble.kind == TroubleKind.NODE_OFFLINE.value
    assert trouble.opened_ms / 1000 - killed_at >= DEBOUNCE_S - 0.2  # never a mere blip
    node = hub.store.nodes.get("na-sang-01")
    assert node is not None and node.status is NodeStatus.OFFLINE
    village.revive("na-sang-01")
    wait_until(lambda: not hub.store.troubles.find(subject="na-sang-01"), 10, "trouble cleared")
    wait_until(lambda: (n := hub.store.nodes.get("na-sang-01")) and n.status is NodeStatus.ONLINE,
               10, "node online again")
    # the others never were in trouble
    assert [t.subject for t in hub.store.troubles.find()] == []


def test_a_short_blip_is_not_reported_but_a_real_loss_beside_it_is(
        village_hub: tuple[Village, Hub]) -> None:
    village, hub = village_hub
    village.kill("na-cha-01")           # a real loss: the yardstick
    village.kill("na-sang-02")          # a blip: back after ~2 s
    time.sleep(2.0)
    village.revive("na-sang-02")
    wait_until(lambda: hub.store.troubles.find(subject="na-cha-01"), 17, "the real loss reported")
    assert open_troubles(hub, "na-sang-02") == []
    assert [t.subject for t in hub.store.troubles.find(open_only=False)] == ["na-cha-01"]


def test_many_nodes_of_one_hamlet_lost_at_once_are_one_area_trouble(
        village_hub: tuple[Village, Hub]) -> None:
    village, hub = village_hub
    for nid in ("na-sang-01", "na-sang-02", "na-sang-03"):
        village.kill(nid)
    area = wait_until(lambda: hub.store.troubles.find(kind=TroubleKind.AREA_LOSS.value), 17,
                      "an area trouble")
    assert [t.subject for t in area] == [HAMLET]
    assert set(area[0].detail["nodes"]) == {"na-sang-01", "na-sang-02", "na-sang-03"}
    # one trouble for the hamlet, not three for its gongs
    assert [t.subject for t in hub.store.troubles.find()] == [HAMLET]
    for nid in ("na-sang-01", "na-sang-02", "na-sang-03"):
        village.revive(nid)
    wait_until(lambda: not hub.store.troubles.find(), 10, "the area trouble cleared")
