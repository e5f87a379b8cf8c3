"""Drills and escalation, heard on real node agents' gongs."""

from __future__ import annotations

import time

from tests.e2e.harness import (
    COMMUNE,
    E2E,
    HAMLET,
    assert_rhythm,
    ever_sounded,
    gaps_ms,
    strikes,
    wait_for,
    wait_hub_ready,
    wait_strikes,
)

HAMLET_NODES = ("na-sang-01", "na-sang-02", "na-sang-03", "na-sang-04")


def test_a_drill_sounds_the_drill_pattern_is_marked_and_never_counted(e2e: E2E) -> None:
    # Escalation on a short timer: a drill must never escalate either (rule 10).
    hub = e2e.start_hub(e2e.hub_settings(escalate_after_s=0.5))
    village = e2e.village()

    t0 = time.monotonic()
    inc, cmd = e2e.services(hub).start_drill(HAMLET, "cong-an-xa", duration_s=6)
    # The drill pattern [[300, 1700]] on a striker with a 120 ms pulse: a pair of
    # strikes 180 ms apart, then quiet, every 2 s. Nothing like an alarm.
    for node_id in HAMLET_NODES:
        got = wait_strikes(village[node_id], 3, since=t0, timeout=10)
        pair, period = gaps_ms(got)[:2]
        assert abs(pair - 180) <= 70, (node_id, gaps_ms(got))
        assert abs(pair + period - 2000) <= 250, (node_id, gaps_ms(got))
    assert not ever_sounded(village["na-cha-01"])
    wait_for(lambda: {r.node_id for r in hub.store.commands.results_for(cmd.cmd_id)
                      if r.status == "started"} >= set(HAMLET_NODES), what="drill started")

    stored = hub.store.incidents.get(inc.incident_id)
    command = hub.store.commands.get(cmd.cmd_id)
    assert stored is not None and stored.drill and stored.escalation_level == 0
    assert command is not None and command.drill and command.payload["drill"] is True
    assert command.payload["pattern"]["name"] == "drill"
    # Never counted as a real incident.
    assert hub.store.incidents.count() == 0
    assert hub.store.incidents.count(include_drills=True) == 1
    assert hub.store.incidents.active(include_drills=False) == []
    assert [c.cmd_id for c in hub.store.commands.for_incident(inc.incident_id)] == [cmd.cmd_id]


ESCALATE_AFTER_S = 2.5


def test_an_unacknowledged_incident_escalates_to_the_commune(e2e: E2E) -> None:
    hub = e2e.start_hub(e2e.hub_settings(escalate_after_s=ESCALATE_AFTER_S))
    village = e2e.village()
    origin, neighbour = village["na-sang-01"], village["na-cha-01"]   # na-cha: same commune
    wait_hub_ready(origin)

    t0 = time.monotonic()
    origin.press("fire")
    inc = wait_for(lambda: hub.store.incidents.active(), what="the incident")[0]
    first = hub.store.commands.for_incident(inc.incident_id)[0]
    assert first.target == HAMLET
    wait_strikes(village["na-sang-02"], 2, since=t0)
    assert not ever_sounded(neighbour), "the neighbouring hamlet sounded before escalation"

    # Nobody acknowledges: the responders are told first (step 1, no gong), then the
    # commune hears it, on a new command (step 2; hub/escalation.py).
    got = wait_strikes(neighbour, 5, since=t0, timeout=2 * ESCALATE_AFTER_S + 10)
    assert got[0][0] - t0 >= 2 * ESCALATE_AFTER_S - 0.5
    assert_rhythm(got, on_ms=120, period_ms=300)
    sounds = [c for c in hub.store.commands.for_incident(inc.incident_id) if c.action == "sound"]
    second = sounds[1]
    assert second.cmd_id != first.cmd_id and second.target == COMMUNE
    escalated = hub.store.incidents.get(inc.incident_id)
    assert escalated is not None and escalated.escalation_level >= 2
    # A new cmd_id restarts the hamlet's gongs too (rule 4): they started it.
    wait_for(lambda: {r.node_id for r in hub.store.commands.results_for(second.cmd_id)
                      if r.status == "started"} >= {"na-cha-01", *HAMLET_NODES},
             what="the commune starting the escalated sound")
    assert strikes(village["na-sang-03"], since=got[0][0])
