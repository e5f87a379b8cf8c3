"""Escalation: an alarm nobody takes sounds again, wider; drills and taken ones never."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    COMMUNE,
    HAMLET,
    OTHER_HAMLET,
    alarm,
    hub_settings,
    is_ack,
    is_area_cmd,
    now_ms,
    running_hub,
    send_alarm,
    wait_until,
    watch_all,
)
from tests.support.wire import Wire


def test_unacknowledged_incident_escalates_wider_with_new_cmd_ids_and_drills_never(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path, escalate_after_s=1.5)) as hub:
        assert hub.fanout is not None
        # a drill in the other hamlet, sounded like an operator would
        drill = hub.store.incidents.open_drill(OTHER_HAMLET, "officer", now_ms())
        hub.fanout.sound(drill, hub.settings.policy.drill(OTHER_HAMLET), now_ms(),
                         issued_by="officer")
        # a theft that the duty officer takes at once
        taken = alarm("theft")
        send_alarm(wire, "na-cha-01", taken)
        taken_id = wire.wait_for(is_ack("na-cha-01", taken.alarm_id))[0].json()["incident_id"]
        hub.store.incidents.acknowledge(taken_id, "officer", now_ms())
        # a fire nobody takes
        fire = alarm("fire")
        send_alarm(wire, "na-sang-01", fire)
        fire_id = wire.wait_for(is_ack("na-sang-01", fire.alarm_id))[0].json()["incident_id"]
        first = wire.wait_for(is_area_cmd(HAMLET))[0].json()
        second = wire.wait_for(is_area_cmd(COMMUNE), timeout=15)[0].json()
        third = wire.wait_for(is_area_cmd("bach-thong"), timeout=15)[0].json()
        assert first["incident_id"] == second["incident_id"] == third["incident_id"] == fire_id
        assert len({first["cmd_id"], second["cmd_id"], third["cmd_id"]}) == 3
        assert second["pattern"] == first["pattern"] and second["priority"] == 5
        inc = hub.store.incidents.get(fire_id)
        assert inc is not None and inc.escalation_level == 2 and inc.sounded_area == "bach-thong"
        levels = wait_until(lambda: sorted(
            e.detail["level"] for e in hub.store.audit.entries(subject=fire_id)
            if e.action == "incident.escalated") == [1, 2], 10, "two escalations audited")
        assert levels
        # max_escalation (2) reached: one more period passes without a fourth sound
        time.sleep(2.0)
        sounds = [m.json() for m in wire.messages
                  if "/areas/" in m.topic and m.json().get("action") == "sound"]
        by_incident: dict[str, list[dict[str, object]]] = {}
        for s in sounds:
            by_incident.setdefault(s["incident_id"], []).append(s)
        assert len(by_incident[fire_id]) == 3
        assert len(by_incident[drill.incident_id]) == 1       # drills never escalate
        assert by_incident[drill.incident_id][0]["drill"] is True
        assert len(by_incident[taken_id]) == 1                # acknowledged in time
        for inc_id in (drill.incident_id, taken_id):
            got = hub.store.incidents.get(inc_id)
            assert got is not None and got.escalation_level == 0
