"""The fleet's parts: shard planning, headless nodes, and worker processes that always stop
their nodes cleanly (on "stop", on SIGTERM, and when the parent goes away)."""

from __future__ import annotations

import time
from pathlib import Path

from firmware_sim.fleet import Fleet, ProcessHandle, plan_shards
from firmware_sim.fleet_shard import ShardSpec
from firmware_sim.headless import HeadlessNode
from firmware_sim.village import node_config
from tests.support.broker import Mosquitto
from tests.support.wire import Received, Wire

P = "mo/v1"
FAST_BUTTONS = [{"pin": 17, "number": 1, "kind": "fire", "hold_s": 0.1}]


def spec(broker: Mosquitto, tmp_path: Path, count: int, **kw: object) -> ShardSpec:
    nodes = [(f"sim-{i:04d}", "a/b") for i in range(1, count + 1)]
    return ShardSpec(nodes=nodes, broker_url=broker.url, data_root=str(tmp_path),
                     buttons=FAST_BUTTONS, **kw)  # type: ignore[arg-type]


def is_death(m: Received) -> bool:
    return m.topic.endswith("/state") and m.json().get("online") is False


def assert_graceful(broker: Mosquitto, ids: list[str]) -> None:
    """Each node sent DISCONNECT (a stop), not a dropped socket (which fires the Will):
    Mosquitto logs the first as "disconnected", the second as "closed its connection"."""
    deadline = time.monotonic() + 5
    while True:
        text = broker.log.read_text()
        if all(f"Client {i} disconnected." in text for i in ids) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for i in ids:
        assert f"Client {i} disconnected." in text, text[-1500:]


def test_plan_shards_covers_every_node_once_in_order(tmp_path: Path) -> None:
    base = ShardSpec(nodes=[(f"n{i}", "a") for i in range(10)], broker_url="mqtt://x",
                     data_root=str(tmp_path))
    shards = plan_shards(base, 3)
    assert [len(s.nodes) for s in shards] == [4, 4, 2]
    assert [n for s in shards for n in s.nodes] == base.nodes
    assert len(plan_shards(base, 50)) == 10   # never an empty worker


def test_headless_node_sounds_locally_then_sends(broker: Mosquitto, wire: Wire,
                                                 tmp_path: Path) -> None:
    wire.subscribe(f"{P}/nodes/+/alarm")
    node = HeadlessNode(node_config("h1", "a/b", broker_url=broker.url, data_dir=tmp_path,
                                    buttons=FAST_BUTTONS)).start()
    try:
        assert node.wait_connected(10)
        node.press("fire")
        alarm = wire.wait_for(lambda m: True)[0].json()
        assert alarm["kind"] == "fire" and alarm["button"] == 1
        # The local gong started (the player drove the output), before any ack exists.
        assert any(on for _, on in node.output_timeline("gong"))
        node.press(1, hold_s=0.02)   # a brush shorter than hold_s raises nothing
        assert node.agent is not None and node.agent.stats["alarms_sent"] == 1
    finally:
        node.stop()
    assert not any(on for _, on in node.output_timeline("gong")[-1:])   # ends off


def test_in_process_fleet_reports_and_refuses_unknown_nodes(broker: Mosquitto,
                                                            tmp_path: Path) -> None:
    fleet = Fleet([spec(broker, tmp_path, 3, headless=True)], in_process=True).start()
    try:
        assert "error" in fleet.press("nope", 1)
        deadline = time.monotonic() + 20
        while not fleet.status().all_online and time.monotonic() < deadline:
            time.sleep(0.25)
        assert fleet.status().all_online
    finally:
        report = fleet.stop()
    assert sorted(report) == ["sim-0001", "sim-0002", "sim-0003"]
    assert all(r["online"] and r["outbox"] == 0 for r in report.values())


def test_worker_stops_its_nodes_when_the_parent_goes_away(broker: Mosquitto, wire: Wire,
                                                          tmp_path: Path) -> None:
    wire.subscribe(f"{P}/nodes/+/state")
    h = ProcessHandle(spec(broker, tmp_path, 2, headless=True))
    wire.wait_for(lambda m: m.json().get("online") is True, count=2)
    assert h.proc.stdin is not None
    h.proc.stdin.close()   # what the parent's death looks like to the worker
    assert h.proc.wait(30) == 0
    wire.wait_for(is_death, count=2)
    assert_graceful(broker, ["sim-0001", "sim-0002"])


def test_worker_stops_its_nodes_on_sigterm(broker: Mosquitto, wire: Wire,
                                           tmp_path: Path) -> None:
    wire.subscribe(f"{P}/nodes/+/state")
    h = ProcessHandle(spec(broker, tmp_path, 2))   # mock pins
    wire.wait_for(lambda m: m.json().get("online") is True, count=2)
    h.proc.terminate()
    assert h.proc.wait(30) == 0
    wire.wait_for(is_death, count=2)
    assert_graceful(broker, ["sim-0001", "sim-0002"])
