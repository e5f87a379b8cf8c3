"""Commands from the hub: expiry on the hub's clock, idempotency, priorities, caps."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware_sim.virtual import VirtualNode
from tests.support.broker import Mosquitto
from tests.support.nodes import BareHub, make_node, wait_until
from tests.support.wire import Wire

HOURS = 3600.0


@pytest.fixture
def hub(wire: Wire) -> BareHub:
    return BareHub(wire)


@pytest.fixture
def nodes(broker: Mosquitto, tmp_path: Path) -> Iterator[Callable[..., VirtualNode]]:
    made: list[VirtualNode] = []

    def make(skew_s: float = 0.0, **kw: object) -> VirtualNode:
        n = make_node(broker, tmp_path / f"n{len(made)}", wall=lambda: time.time() + skew_s,
                      **kw)  # type: ignore[arg-type]
        made.append(n)
        n.start()
        assert n.wait_connected(10)
        return n
    yield make
    for n in made:
        n.stop()


def test_expiry_is_judged_on_the_hub_clock_not_the_nodes_own(
        nodes: Callable[..., VirtualNode], hub: BareHub) -> None:
    node = nodes(skew_s=-5 * HOURS)   # the node's own clock is five hours behind
    hub.beacon()
    # Issued 2 minutes ago with a 60 s life: stale by the hub's clock, although
    # the node's own clock would think it is hours in the future.
    stale = hub.sound(node_id="n1", now_ms=hub.now() - 120_000)
    [res] = hub.wait_result("n1", stale)
    assert res["status"] == "rejected" and res["reason"] == "expired"
    time.sleep(0.3)
    assert not node.is_sounding()
    assert not any(on for _, on in node.output_timeline("gong"))


def test_a_fresh_command_sounds_although_the_nodes_clock_is_hours_ahead(
        nodes: Callable[..., VirtualNode], hub: BareHub) -> None:
    node = nodes(skew_s=+5 * HOURS)
    hub.beacon()
    fresh = hub.sound(node_id="n1")
    [res] = hub.wait_result("n1", fresh)
    assert res["status"] == "started"
    assert wait_until(lambda: node.output_on("gong") or len(node.output_timeline("gong")) > 1)


def test_commands_wait_for_the_first_clock_sample(
        nodes: Callable[..., VirtualNode], hub: BareHub) -> None:
    node = nodes(skew_s=+5 * HOURS, timers={"clock_hold_s": 30})
    cmd = hub.sound(node_id="n1")
    time.sleep(0.6)
    assert hub.results("n1", cmd) == [] and not node.is_sounding()   # held, not judged
    hub.beacon()
    [res] = hub.wait_result("n1", cmd)
    assert res["status"] == "started"


def test_without_any_sample_a_held_command_is_judged_on_the_own_clock(
        nodes: Callable[..., VirtualNode], hub: BareHub) -> None:
    nodes(skew_s=+5 * HOURS, timers={"clock_hold_s": 0.5})
    cmd = hub.sound(node_id="n1")
    [res] = hub.wait_result("n1", cmd, timeout=5)
    assert res["status"] == "rejected" and res["reason"] == "expired"


def test_silencing_a_theft_leaves_the_fire_sounding(
        nodes: Callable[..., VirtualNode], hub: BareHub) -> None:
    node = nodes()
    hub.beacon()
    fire_inc, theft_inc = ("11111111-1111-4111-8111-111111111111",
                           "22222222-2222-4222-8222-222222222222")
    fire = hub.sound(area="a", incident_id=fire_inc, name="fire", duration_s=30)
    theft = hub.sound(area="a/b", incident_id=theft_inc, name="theft", duration_s=30)
    hub.wait_result("n1", fire, "started")
    hub.wait_result("n1", theft, "started")
    assert node.agent is not None
    assert wait_until(lambda: node.agent.player.current.key == theft_inc)  # type: ignore[union-attr]
    silence = hub.command("silence", node_id="n1", incident_id=theft_inc)
    hub.wait_result("n1", silence, "done")
    hub.wait_result("n1", theft, "done")
    cur = node.agent.player.current
    assert cur is not None and cur.key == fire_inc
    assert [s.key for s in node.agent.player.active()] == [fire_inc]


def test_a_duplicate_command_is_answered_again_and_does_not_restart_the_sound(
        nodes: Callable[..., VirtualNode], hub: BareHub) -> None:
    node = nodes()
    hub.beacon()
    inc = "33333333-3333-4333-8333-333333333333"
    cmd = hub.sound(node_id="n1", incident_id=inc, duration_s=30)
    hub.wait_result("n1", cmd, "started")
    assert node.agent is not None
    started = node.agent.player.current.started   # type: ignore[union-attr]
    time.sleep(0.2)
    hub.sound(node_id="n1", incident_id=inc, duration_s=30, cmd_id=cmd)
    hub.wait_result("n1", cmd, "started", count=2)
    assert node.agent.player.current.started == started   # type: ignore[union-attr]
    # A new cmd_id for the same incident (an escalation) does restart it.
    again = hub.sound(node_id="n1", incident_id=inc, duration_s=30)
    hub.wait_result("n1", again, "started")
    hub.wait_result("n1", cmd, "done")
    assert node.agent.player.current.started > started   # type: ignore[union-attr]


def test_a_hostile_one_hour_on_step_is_capped_by_the_node(
        nodes: Callable[..., VirtualNode], hub: BareHub) -> None:
    node = nodes(hardware={"outputs": [{"name": "siren", "type": "siren", "pin": 23,
                                        "max_on_s": 0.5}]})
    hub.beacon()
    cmd = hub.sound(node_id="n1", steps=((3_600_000, 0),), duration_s=3600, name="evil")
    hub.wait_result("n1", cmd, "started")
    time.sleep(1.5)
    tl = node.output_timeline("siren")
    ons = [t for t, on in tl if on]
    offs = [t for t, on in tl if not on and ons and t > ons[0]]
    assert ons and offs, tl
    assert offs[0] - ons[0] <= 0.5 + 0.25   # cut at max_on_s, not an hour later


def test_ping_test_and_invalid_commands_each_get_a_result(
        nodes: Callable[..., VirtualNode], hub: BareHub) -> None:
    node = nodes()
    hub.beacon()
    ping = hub.command("ping", node_id="n1")
    assert hub.wait_result("n1", ping)[0]["status"] == "done"
    test = hub.command("test", node_id="n1", duration_s=1)
    hub.wait_result("n1", test, "started")
    assert node.agent is not None and node.agent.player.current is not None
    assert node.agent.player.current.drill is True
    hub.wait_result("n1", test, "done", timeout=5)
    # Garbage and a broken command: counted, answered when the id is readable,
    # and the next command is still handled.
    hub.wire.publish("mo/v1/nodes/n1/cmd", b"\xff not json")
    bad_id = "44444444-4444-4444-8444-444444444444"
    hub.wire.publish("mo/v1/nodes/n1/cmd",
                     f'{{"v":1,"cmd_id":"{bad_id}","action":"sound","ts_ms":1,'
                     f'"expires_ts_ms":2}}'.encode())
    [res] = hub.wait_result("n1", bad_id)
    assert res["status"] == "rejected" and "required" in res["reason"]
    ping2 = hub.command("ping", node_id="n1")
    hub.wait_result("n1", ping2, "done")
    assert node.stats["invalid"] >= 2 and node.stats.get("agent_errors", 0) == 0


def test_area_commands_reach_the_node_from_its_own_and_ancestor_areas_only(
        nodes: Callable[..., VirtualNode], hub: BareHub) -> None:
    nodes()
    hub.beacon()
    mine = hub.command("ping", area="a")
    other = hub.command("ping", area="a/c")
    hub.wait_result("n1", mine, "done")
    time.sleep(0.5)
    assert hub.results("n1", other) == []


def test_heartbeats_carry_boot_id_seq_outbox_and_power(
        nodes: Callable[..., VirtualNode], hub: BareHub) -> None:
    node = nodes()
    hub.wire.wait_for(lambda m: m.topic == "mo/v1/nodes/n1/heartbeat", count=2, timeout=5)
    node.set_power(False)
    hbs = hub.wire.wait_for(lambda m: m.topic == "mo/v1/nodes/n1/heartbeat"
                            and m.json().get("power") == "battery", timeout=5)
    beats = [m.json() for m in hub.wire.on_topic("n1/heartbeat")]
    assert [b["seq"] for b in beats] == sorted({b["seq"] for b in beats})
    assert beats[0]["power"] == "mains" and hbs[0].json()["outbox"] == 0
    assert all(b["boot_id"] == 0 for b in beats)
