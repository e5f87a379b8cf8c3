"""The simulator runs the real node code: a village from a registry, on one broker."""

from __future__ import annotations

from pathlib import Path

from firmware_sim.village import Village
from protocol import parse_registry
from tests.support.broker import Mosquitto
from tests.support.nodes import BareHub, wait_until
from tests.support.wire import Wire

REGISTRY = parse_registry({
    "areas": [{"path": "vi-huong/na-sang", "name": "Thôn Nà Sang"}],
    "nodes": [{"id": "na-sang-01", "area": "vi-huong/na-sang"},
              {"id": "na-sang-02", "area": "vi-huong/na-sang"},
              {"id": "na-cha-01", "area": "vi-huong/na-cha"},
              {"id": "old-01", "area": "vi-huong/na-cha", "enabled": False}],
})


def test_a_village_from_a_registry_has_its_own_pins_per_node(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    hub = BareHub(wire)
    village = Village.from_registry(REGISTRY, broker_url=broker.url, data_root=tmp_path,
                                    timers={"heartbeat_s": 1})
    assert [n.node_id for n in village] == ["na-sang-01", "na-sang-02", "na-cha-01"]
    village.start()
    try:
        births = wire.wait_for(lambda m: m.topic.endswith("/state") and m.json()["online"],
                               count=3)
        assert {b.json()["area"] for b in births} == {"vi-huong/na-sang", "vi-huong/na-cha"}
        village["na-sang-02"].press("fire")
        [alarm] = hub.wait_alarm("na-sang-02")
        assert alarm["kind"] == "fire"
        # Each node has its own MockFactory: the neighbour's gong stayed silent.
        assert village["na-sang-02"].is_sounding()
        assert not village["na-sang-01"].is_sounding()
        assert not any(on for _, on in village["na-sang-01"].output_timeline("gong"))
        hub.beacon()   # a clock sample, so commands are judged at once
        # A command to the hamlet reaches its two nodes and not the other hamlet.
        cmd = hub.command("ping", area="vi-huong/na-sang")
        hub.wait_result("na-sang-01", cmd, "done")
        hub.wait_result("na-sang-02", cmd, "done")
        assert hub.results("na-cha-01", cmd) == []
        assert [n.node_id for n in village.in_area("vi-huong/na-cha")] == ["na-cha-01"]
    finally:
        village.stop()


def test_a_cut_network_fires_the_will_and_a_restore_brings_a_new_birth(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    wire.subscribe("mo/v1/nodes/+/state")
    village = Village.from_count(2, "xa/thon", broker_url=broker.url, data_root=tmp_path,
                                 mqtt={"reconnect_min_s": 0.2, "reconnect_max_s": 1.0})
    village.start()
    try:
        node = village["sim-0002"]
        node.cut_network()
        wire.wait_for(lambda m: m.topic == "mo/v1/nodes/sim-0002/state"
                      and m.json() == {"v": 1, "online": False, "boot_id": 0})
        assert wait_until(lambda: not node.agent.connected)   # type: ignore[union-attr]
        node.restore_network()
        wire.wait_for(lambda m: m.topic == "mo/v1/nodes/sim-0002/state"
                      and m.json()["online"], count=2)
        node.kill()
        wire.wait_for(lambda m: m.topic == "mo/v1/nodes/sim-0002/state"
                      and not m.json()["online"], count=2)
        node.restart()
        [birth] = wire.wait_for(lambda m: m.topic == "mo/v1/nodes/sim-0002/state"
                                and m.json()["online"] and m.json()["boot_id"] == 1)
        assert birth.json()["buttons"] == {"1": "theft", "2": "fire"}
    finally:
        village.stop()
