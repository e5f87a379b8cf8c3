"""Supervision with real node agents: a killed node is a trouble, a short blip is not."""

from __future__ import annotations

import time

from hub.store import NodeStatus, TroubleKind
from tests.e2e.harness import E2E, wait_for

DEBOUNCE_S = 8.0       # a loss shorter than this is never reported
REPORT_WITHIN_S = 12.0
BLIP_S = 5.0
FAST = {"heartbeat_s": 1.0, "missing_after_heartbeats": 3, "loss_debounce_s": DEBOUNCE_S,
        "report_within_s": REPORT_WITHIN_S}
LOST = (TroubleKind.NODE_OFFLINE.value, TroubleKind.NODE_MISSING.value,
        TroubleKind.AREA_LOSS.value)


def test_a_killed_node_becomes_a_trouble_and_a_five_second_blip_does_not(e2e: E2E) -> None:
    hub = e2e.start_hub(e2e.hub_settings(**FAST))
    village = e2e.village()
    victim, blip = village["na-sang-01"], village["na-cha-01"]
    store = hub.store

    def status(node_id: str) -> NodeStatus | None:
        n = store.nodes.get(node_id)
        return None if n is None else n.status

    def troubles_of(node_id: str) -> list[str]:
        return [t.kind for t in store.troubles.find(open_only=False)
                if t.kind in LOST and node_id in (t.subject, *t.detail.get("nodes", ()))]

    wait_for(lambda: status("na-sang-01") is NodeStatus.ONLINE
             and status("na-cha-01") is NodeStatus.ONLINE, what="both nodes online")

    t_lost = time.monotonic()
    victim.kill()               # kill -9: no death of its own, the broker's Will speaks
    blip.cut_network()          # the link drops for a few seconds
    # The hub hears both losses (the Wills), so only the debounce keeps the blip quiet.
    wait_for(lambda: status("na-sang-01") is NodeStatus.OFFLINE
             and status("na-cha-01") is NodeStatus.OFFLINE, timeout=10,
             what="both Wills at the hub")
    time.sleep(max(0.0, t_lost + BLIP_S - time.monotonic()))
    blip.restore_network()
    assert blip.wait_connected(5), "the blipped node did not reconnect"
    wait_for(lambda: status("na-cha-01") is NodeStatus.ONLINE, what="the blipped node back")
    assert time.monotonic() - t_lost < DEBOUNCE_S, "the blip lasted longer than the debounce"

    wait_for(lambda: troubles_of("na-sang-01"), timeout=REPORT_WITHIN_S + 5,
             what="the killed node's trouble")
    reported_after = time.monotonic() - t_lost
    assert DEBOUNCE_S - 0.5 <= reported_after <= REPORT_WITHIN_S, reported_after
    assert troubles_of("na-sang-01") == [TroubleKind.NODE_OFFLINE.value]
    # Past the blip's own debounce too: still nothing for it.
    time.sleep(max(0.0, t_lost + DEBOUNCE_S + 1.5 - time.monotonic()))
    assert troubles_of("na-cha-01") == []
    assert status("na-cha-01") is NodeStatus.ONLINE

    # The killed node's agent starts again (next boot_id): its trouble clears.
    victim.restart()
    wait_for(lambda: not [t for t in store.troubles.find(open_only=True)
                          if t.subject == "na-sang-01"], what="the trouble to clear")
    assert status("na-sang-01") is NodeStatus.ONLINE
