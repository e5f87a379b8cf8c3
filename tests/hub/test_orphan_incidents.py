"""An incident stored but never sounded (its hub died in between) is sounded after all.

The alarm path sounds around the incident's commit and records the `sound`
right after it; a hub or replica killed in that gap leaves an incident that
no re-send will fan out again (only the first alarm of an incident does).
"""

from __future__ import annotations

import time
from pathlib import Path

from hub.store import Store
from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    HAMLET,
    alarm,
    cmds,
    hub_settings,
    is_area_cmd,
    running_hub,
    wait_until,
    watch_all,
)
from tests.support.wire import Wire


def _store_without_sounding(settings_db: str, received_ms: int) -> str:
    """What a hub that died right after its commit leaves behind."""
    store = Store.open(settings_db)
    try:
        return store.alarms.record("na-sang-01", alarm("fire"), received_ms,
                                   window_s=600).incident_id
    finally:
        store.close()


def test_a_restarted_hub_sounds_an_incident_that_was_never_sounded(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    settings = hub_settings(broker, tmp_path)
    with running_hub(settings):
        pass  # creates the database and loads the registry
    incident_id = _store_without_sounding(settings.db_url, time.time_ns() // 1_000_000)
    with running_hub(settings) as hub:
        sound = wire.wait_for(is_area_cmd(HAMLET))[0].json()
        assert sound["incident_id"] == incident_id
        assert [c.action for c in hub.store.commands.for_incident(incident_id)] == ["sound"]
    # Sounded once: a second restart finds the command recorded and stays quiet.
    with running_hub(settings):
        time.sleep(1.0)
    assert len(cmds(wire)) == 1


def test_the_leader_sounds_an_orphan_left_by_a_lost_replica(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    settings = hub_settings(broker, tmp_path, orphan_check_s=0.2, orphan_grace_s=1.0)
    with running_hub(settings) as hub:
        # Another replica stored this incident and died before sounding it.
        incident_id = _store_without_sounding(settings.db_url, time.time_ns() // 1_000_000)
        sound = wire.wait_for(is_area_cmd(HAMLET), timeout=15)[0].json()
        assert sound["incident_id"] == incident_id
        wait_until(lambda: hub.store.commands.for_incident(incident_id), what="sound recorded")
        time.sleep(0.6)  # several more checks: it is not sounded twice
        assert len(cmds(wire)) == 1
