"""A stuck button inside one correlation window: one incident, one sound, and a trouble.

Hundreds of presses that all join the same open incident never reach the
fan-out limit (only new incidents fan out), yet operators must see that the
node is misbehaving; and every alarm is still stored and acked (rule 3).
"""

from __future__ import annotations

from pathlib import Path

from hub.store import TroubleKind
from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    alarm,
    cmds,
    hub_settings,
    is_ack,
    running_hub,
    send_alarm,
    wait_until,
    watch_all,
)
from tests.support.wire import Wire

PRESSES = 60


def test_a_flood_in_one_incident_is_one_sound_and_a_noisy_trouble(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path, noisy_max_alarms=10)) as hub:
        sent = [alarm("theft") for _ in range(PRESSES)]
        for a in sent:
            send_alarm(wire, "na-sang-01", a)
        for a in sent:
            wire.wait_for(is_ack("na-sang-01", a.alarm_id), timeout=20)
        assert hub.store.alarms.count(node_id="na-sang-01") == PRESSES
        assert len({hub.store.alarms.get(a.alarm_id).incident_id for a in sent}) == 1  # type: ignore[union-attr]
        assert len(cmds(wire)) == 1
        troubles = wait_until(lambda: [t for t in hub.store.troubles.find(open_only=True)
                                       if t.kind == TroubleKind.NOISY_NODE.value],
                              what="a noisy-node trouble")
        assert [t.subject for t in troubles] == ["na-sang-01"]


def test_a_few_presses_in_one_incident_are_not_noisy(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path, noisy_max_alarms=10)) as hub:
        sent = [alarm("theft") for _ in range(5)]
        for a in sent:
            send_alarm(wire, "na-sang-01", a)
        for a in sent:
            wire.wait_for(is_ack("na-sang-01", a.alarm_id), timeout=20)
        assert not [t for t in hub.store.troubles.find(open_only=True)
                    if t.kind == TroubleKind.NOISY_NODE.value]
