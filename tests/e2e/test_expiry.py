"""A stale command never sounds, judged on the hub's clock by a node whose own clock is off."""

from __future__ import annotations

import time

import protocol
from hub.store import ResultInfo
from protocol import Action, Command
from tests.e2e.harness import E2E, ever_sounded, wait_for, wait_hub_ready, wait_strikes

HOURS_BEHIND = 3


def test_an_expired_command_never_sounds_on_a_node_whose_clock_is_hours_behind(
        e2e: E2E) -> None:
    hub = e2e.start_hub()
    node = e2e.node("na-sang-01", wall=lambda: time.time() - HOURS_BEHIND * 3600)
    wait_hub_ready(node)       # the hub's beacons have given it the hub's clock

    def sound(ts_ms: int, expires_ts_ms: int) -> Command:
        cmd = Command(protocol.new_id(), Action.SOUND, ts_ms, expires_ts_ms,
                      pattern=protocol.default_pattern("fire"), duration_s=5,
                      priority=protocol.PRIORITY_ALARM)
        hub.store.commands.record(cmd, "node", node.node_id, issued_by="e2e")
        assert hub.link is not None
        hub.link.publish_node_cmd(node.node_id, cmd)
        return cmd

    def result(cmd: Command) -> ResultInfo | None:
        got = [r for r in hub.store.commands.results_for(cmd.cmd_id) if r.status != "done"]
        return got[0] if got else None

    # Expired a minute ago on the hub's clock; hours in the future on the node's own.
    now = hub.clock_ms()
    stale = sound(now - 90_000, now - 60_000)
    r = wait_for(lambda: result(stale), what="the stale command's result")
    assert (r.status, r.reason) == ("rejected", "expired")
    assert abs(r.ts_ms - hub.clock_ms()) < 10_000       # the node speaks hub time
    assert not ever_sounded(node)

    # The same node does sound a fresh one: it was the expiry, not the node.
    t_fresh = time.monotonic()
    now = hub.clock_ms()
    fresh = sound(now, now + 60_000)
    r = wait_for(lambda: result(fresh), what="the fresh command's result")
    assert r.status == "started"
    wait_strikes(node, 2, since=t_fresh)
