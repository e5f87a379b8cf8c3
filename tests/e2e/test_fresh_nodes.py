"""Nodes that have just come online sound the hub's first command at once.

A node holds hub commands until its first hub-clock sample (PROTOCOL.md rule
5). The hub answers node births with a prompt time beacon, so a press right
after a village comes online still sounds the whole hamlet within a second or
two, not at the next regular beacon (here 60 s away).
"""

from __future__ import annotations

import time

from tests.e2e.harness import E2E, ever_sounded, wait_for


def test_a_press_right_after_the_village_comes_online_sounds_the_hamlet(e2e: E2E) -> None:
    e2e.start_hub(e2e.hub_settings(time_beacon_s=60.0))
    time.sleep(3.0)   # the hub's first regular beacon is out before any node is there
    village = e2e.village()
    origin = village["na-sang-01"]
    neighbours = [village[f"na-sang-0{i}"] for i in (2, 3, 4)]
    wait_for(lambda: all(n.agent is not None and n.agent.clock.has_sample for n in neighbours),
             timeout=5, what="a hub-clock sample on every neighbour (from the birth beacon)")
    t0 = time.monotonic()
    origin.press("fire")
    wait_for(lambda: all(ever_sounded(n, t0) for n in neighbours), timeout=5,
             what="every neighbour's gong")
