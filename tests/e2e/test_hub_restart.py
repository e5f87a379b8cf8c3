"""The hub restarted mid-incident carries on from its database."""

from __future__ import annotations

import time

from tests.e2e.harness import (
    E2E,
    LedState,
    ever_sounded,
    wait_for,
    wait_hub_ready,
    wait_led,
)


def test_a_restarted_hub_joins_the_open_incident_and_its_acknowledge_reaches_the_node(
        e2e: E2E) -> None:
    settings = e2e.hub_settings()
    first_hub = e2e.start_hub(settings)
    village = e2e.village()
    origin, second, listener = village["na-sang-01"], village["na-sang-02"], village["na-sang-04"]
    wait_hub_ready(origin)

    origin.press("fire")
    inc = wait_for(lambda: first_hub.store.incidents.active(), what="the incident")[0]
    wait_led(origin, LedState.RECEIVED)
    sound = [c for c in first_hub.store.commands.for_incident(inc.incident_id)
             if c.action == "sound"]
    assert len(sound) == 1
    wait_for(lambda: any(r.node_id == "na-sang-04" and r.status == "started"
                         for r in first_hub.store.commands.results_for(sound[0].cmd_id)),
             what="the hamlet sounding")

    first_hub.stop()
    wait_for(lambda: origin.led_state is LedState.NO_HUB, what="the nodes to see no hub")
    hub = e2e.start_hub(settings)       # a new process on the same database
    wait_hub_ready(second)

    t_restart = time.monotonic()
    second.press("fire")
    joined = wait_for(lambda: hub.store.alarms.find(node_id="na-sang-02"),
                      what="the second alarm stored")[0]
    assert joined.incident_id == inc.incident_id          # same incident, from the database
    wait_led(second, LedState.RECEIVED)
    after = hub.store.incidents.get(inc.incident_id)
    assert after is not None and after.alarm_count == 2
    # No second fan-out: still the one command; the listener got no new one.
    assert [c.cmd_id for c in hub.store.commands.for_incident(inc.incident_id)] \
        == [sound[0].cmd_id]
    assert listener.stats.get("commands", 0) == 1
    assert not ever_sounded(village["na-cha-01"])

    # An operator takes it on the new hub: both households see "acknowledged".
    e2e.services(hub).acknowledge(inc.incident_id, "cong-an-xa")
    wait_led(origin, LedState.ACKNOWLEDGED)
    wait_led(second, LedState.ACKNOWLEDGED)
    assert time.monotonic() - t_restart < 30
