"""A long `timers.idle_tick_s` (what simulated fleets use) changes nothing a user sees:
heartbeats keep their interval, commands, acks and sound ends are answered at once,
and the LED still leaves "hub available" when the beacons go stale."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_sim.virtual import VirtualNode
from node.led import LedState
from tests.support.broker import Mosquitto
from tests.support.nodes import BareHub, make_node, wait_until
from tests.support.wire import Wire

LONG = {"idle_tick_s": 60.0}


@pytest.fixture
def hub(wire: Wire) -> BareHub:
    return BareHub(wire)


@pytest.fixture
def node(broker: Mosquitto, tmp_path: Path) -> Iterator[VirtualNode]:
    # A long heartbeat too, so nothing but the thing under test wakes the agent.
    n = make_node(broker, tmp_path, timers={**LONG, "heartbeat_s": 30, "hub_time_stale_s": 1.0})
    n.start()
    assert n.wait_connected(10)
    yield n
    n.stop()


def test_heartbeats_keep_their_interval(broker: Mosquitto, tmp_path: Path,
                                        hub: BareHub) -> None:
    node = make_node(broker, tmp_path, timers={**LONG, "heartbeat_s": 0.5}).start()
    try:
        beats = hub.wire.wait_for(lambda m: m.topic.endswith("/n1/heartbeat"), 5, count=4)
    finally:
        node.stop()
    gaps = [b.at - a.at for a, b in itertools.pairwise(beats)]
    assert all(g < 0.9 for g in gaps), gaps   # 0.5 s apart, not one idle tick


def test_commands_and_sound_ends_are_answered_at_once(node: VirtualNode, hub: BareHub) -> None:
    hub.beacon()
    ping = hub.command("ping", node_id="n1")
    t0 = time.monotonic()
    [res] = hub.wait_result("n1", ping)
    assert res["status"] == "done" and time.monotonic() - t0 < 1.0
    cmd = hub.sound(node_id="n1", duration_s=1)
    hub.wait_result("n1", cmd, "started")
    t1 = time.monotonic()
    hub.wait_result("n1", cmd, "done", timeout=5)
    assert time.monotonic() - t1 < 1.8   # the 1 s sound plus prompt polling, not 60 s


def test_an_ack_is_taken_at_once(node: VirtualNode, hub: BareHub) -> None:
    node.press("fire")
    [alarm] = hub.wait_alarm("n1")
    hub.ack("n1", alarm["alarm_id"])
    assert node.agent is not None
    assert wait_until(lambda: node.agent is not None and node.agent.outbox is not None
                      and node.agent.outbox.depth() == 0, timeout=1.0)


def test_the_led_shows_no_hub_when_beacons_go_stale(node: VirtualNode, hub: BareHub) -> None:
    hub.online()
    hub.beacon()
    assert wait_until(lambda: node.led_state is LedState.IDLE, timeout=2)
    went_idle = time.monotonic()
    # hub_time_stale_s is 1 s: the LED must follow within about that, not the 60 s tick.
    assert wait_until(lambda: node.led_state is LedState.NO_HUB, timeout=3)
    assert time.monotonic() - went_idle < 2.0
    hub.online(False)
