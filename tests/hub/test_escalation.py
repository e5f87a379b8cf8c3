"""Escalation: an alarm nobody takes sounds again, wider; drills and taken ones never."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import protocol
from hub.api.serialize import Presenter
from hub.errors import PolicyError
from hub.integrations.payloads import render
from hub.integrations.store import Event, IntegrationStore
from hub.integrations.texts import escalation_sms
from hub.policy import parse_policy
from hub.services import Services
from hub.settings import load_settings
from hub.store import Store
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
from tests.support.hubdb import db_url, pg_database  # noqa: F401 - fixtures
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
        # step 1 tells people (no gong); step 2 sounds the commune, fire's ceiling by
        # default: never the district (hub/escalation.py)
        second = wire.wait_for(is_area_cmd(COMMUNE), timeout=15)[0].json()
        assert first["incident_id"] == second["incident_id"] == fire_id
        assert first["cmd_id"] != second["cmd_id"]
        assert second["pattern"] == first["pattern"] and second["priority"] == 5
        inc = hub.store.incidents.get(fire_id)
        assert inc is not None and inc.escalation_level == 2 and inc.sounded_area == COMMUNE
        levels = wait_until(lambda: sorted(
            e.detail["level"] for e in hub.store.audit.entries(subject=fire_id)
            if e.action == "incident.escalated") == [1, 2], 10, "two escalations audited")
        assert levels
        # max_escalation (2) reached: one more period passes without a third sound
        time.sleep(2.0)
        sounds = [m.json() for m in wire.messages
                  if "/areas/" in m.topic and m.json().get("action") == "sound"]
        by_incident: dict[str, list[dict[str, object]]] = {}
        for s in sounds:
            by_incident.setdefault(s["incident_id"], []).append(s)
        assert len(by_incident[fire_id]) == 2
        assert not any(m.topic.endswith("/areas/bach-thong/cmd") for m in wire.messages)
        assert len(by_incident[drill.incident_id]) == 1       # drills never escalate
        assert by_incident[drill.incident_id][0]["drill"] is True
        assert len(by_incident[taken_id]) == 1                # acknowledged in time
        for inc_id in (drill.incident_id, taken_id):
            got = hub.store.incidents.get(inc_id)
            assert got is not None and got.escalation_level == 0


# --- the ceiling, people first, and the board's countdown (issue 13, point 8) ----------------

DISTRICT = "bach-thong"
NOW = 1_750_000_000_000


class _Clock:
    def __init__(self) -> None:
        self.ms = NOW

    def __call__(self) -> int:
        return self.ms


class _Recorder:
    def __init__(self) -> None:
        self.area_cmds: list[tuple[str, protocol.Command]] = []

    def publish_area_cmd(self, area: str, cmd: protocol.Command) -> None:
        self.area_cmds.append((area, cmd))

    def publish_node_cmd(self, node_id: str, cmd: protocol.Command) -> None:
        pass

    def publish_ack(self, node_id: str, ack: protocol.Ack) -> None:
        pass


Parts = tuple[Services, Store, _Recorder, _Clock]


def _parts(url: str, tmp_path: Path, policy: dict[str, Any]) -> Parts:
    clock, rec = _Clock(), _Recorder()
    store = Store.open(url, clock=clock)
    store.nodes.sync_registry(protocol.parse_registry({"nodes": [{"id": "n1", "area": HAMLET}]}))
    settings = load_settings(env={}, data_dir=tmp_path, escalate_after_s=120, policy=policy)
    return Services(store, rec, settings, clock=clock), store, rec, clock


@pytest.fixture
def night(db_url: str, tmp_path: Path) -> Iterator[Parts]:  # noqa: F811
    """A hub whose policy allows many steps, and medical's default ceiling."""
    parts = _parts(db_url, tmp_path, {"max_escalation": 4})
    yield parts
    parts[1].close()


def _press(svc: Services, store: Store, kind: protocol.Kind, at: int) -> str:
    a = protocol.Alarm(protocol.new_id(), kind, at, protocol.Source.BUTTON, 1)
    iid = store.alarms.record("n1", a, at, window_s=600).incident_id
    svc.sound_incident(iid)
    return iid


def _sounded(rec: _Recorder, iid: str) -> list[str]:
    return [area for area, c in rec.area_cmds if c.incident_id == iid and c.action.value == "sound"]


def _escalation_events(store: Store, iid: str) -> int:
    return sum(1 for e in store.history.events_after(0, 100_000)
               if e.type == "escalation" and e.subject == iid)


def test_one_unacknowledged_press_never_sounds_the_whole_district(night: Parts) -> None:
    svc, store, rec, clock = night
    iid = _press(svc, store, protocol.Kind.MEDICAL, NOW)
    assert _sounded(rec, iid) == [HAMLET]
    board = Presenter(store.history, svc.settings)
    inc = store.incidents.get(iid)
    assert inc is not None
    assert board.incidents([inc])[0].next_escalation_ms == NOW + 120_000
    # Step 1 (120 s): people first. An `escalation` event for the responders' SMS and
    # webhooks; no gong sounds wider yet.
    assert svc.escalate_due(NOW + 120_000) == []
    assert _sounded(rec, iid) == [HAMLET] and _escalation_events(store, iid) == 1
    inc = store.incidents.get(iid)
    assert inc is not None and inc.escalation_level == 1
    assert board.incidents([inc])[0].next_escalation_ms == NOW + 240_000
    # Step 2 (240 s): the commune. Steps 3, 4: the commune again (the ceiling), never
    # the district, however long nobody answers.
    for step in (2, 3, 4, 5, 6):
        clock.ms = NOW + step * 120_000
        svc.escalate_due()
    assert _sounded(rec, iid) == [HAMLET, COMMUNE, COMMUNE, COMMUNE]
    assert DISTRICT not in _sounded(rec, iid)
    assert _escalation_events(store, iid) == 4
    inc = store.incidents.get(iid)
    assert inc is not None and inc.escalation_level == 4
    assert board.incidents([inc])[0].next_escalation_ms is None   # the last step taken
    steps = [e.detail["step"] for e in reversed(store.audit.entries(subject=iid))
             if e.action == "incident.escalated"]
    assert steps == ["notify", "sound", "sound", "sound"]


def test_a_kind_may_name_a_wider_ceiling(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    svc, store, rec, _ = _parts(db_url, tmp_path, {
        "max_escalation": 4, "kinds": {"flood": {"level": "hamlet", "max_level": "district"}}})
    try:
        iid = _press(svc, store, protocol.Kind.FLOOD, NOW)
        for step in (1, 2, 3, 4):
            svc.escalate_due(NOW + step * 120_000)
        assert _sounded(rec, iid) == [HAMLET, COMMUNE, DISTRICT, DISTRICT]
    finally:
        store.close()


def test_acknowledged_incidents_and_drills_have_no_countdown(night: Parts) -> None:
    svc, store, _, _ = night
    board = Presenter(store.history, svc.settings)
    iid = _press(svc, store, protocol.Kind.FIRE, NOW)
    svc.acknowledge(iid, "officer")
    drill, _ = svc.start_drill(HAMLET, "officer")
    got = board.incidents([i for i in (store.incidents.get(iid), store.incidents.get(
        drill.incident_id)) if i is not None])
    assert [g.next_escalation_ms for g in got] == [None, None]
    assert svc.escalate_due(NOW + 1_000_000) == [] and _escalation_events(store, iid) == 0


def test_the_escalation_event_reaches_webhooks_and_sms_in_words(night: Parts) -> None:
    svc, store, _, _ = night
    iid = _press(svc, store, protocol.Kind.MEDICAL, NOW)
    svc.escalate_due(NOW + 120_000)
    [ev] = [e for e in store.history.events_after(0, 100_000) if e.type == "escalation"]
    istore = IntegrationStore(store.db)
    [body] = render(istore, "hub-1", [Event(ev.id, NOW, ev.type, ev.subject)]).values()
    assert '"type":"escalation"' in body and iid in body
    assert "CHƯA TIẾP NHẬN" in body and "NOT ACKNOWLEDGED" in body
    text = escalation_sms("medical", ["Thôn Nà Sang", "Xã Vi Hương"], NOW, "Asia/Ho_Chi_Minh",
                          iid, 1, None)
    assert "CHƯA AI TIẾP NHẬN" in text and "Nà Sang" in text


def test_max_level_narrower_than_level_is_refused() -> None:
    with pytest.raises(PolicyError, match="max_level"):
        parse_policy({"kinds": {"fire": {"level": "district", "max_level": "hamlet"}}})
