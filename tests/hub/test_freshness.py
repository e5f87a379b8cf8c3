"""Stale and foreign input is never live (issue 12, point 2), over a real Mosquitto.

A retained alarm, cancel or result is refused whatever its age; an alarm held in an
outbox through an ordinary outage still sounds; one far too old is stored as late and
sounds nothing; an alarm stamped on a node's own clock (`clock_synced: false`) is
never judged stale; an alarm_id belongs to the node that sent it first.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from protocol import Alarm, Cancel, Kind, Result, ResultStatus, Source, encode
from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    HAMLET,
    OTHER_HAMLET,
    T,
    alarm,
    cmds,
    hub_settings,
    is_ack,
    is_area_cmd,
    now_ms,
    running_hub,
    send_alarm,
    wait_until,
    watch_all,
)
from tests.support.wire import Received, Wire

DAY_MS = 86_400_000


def aged(kind: str, age_ms: int, *, clock_synced: bool | None = None,
         attempt: int = 1) -> Alarm:
    a = alarm(kind, attempt=attempt)
    return Alarm(alarm_id=a.alarm_id, kind=Kind(kind), ts_ms=now_ms() - age_ms,
                 source=Source.BUTTON, button=2, attempt=attempt, clock_synced=clock_synced)


def sounds_in(wire: Wire, area: str) -> list[Received]:
    return [m for m in cmds(wire) if m.topic == T.area_cmd(area)]


def acks_for(wire: Wire, node_id: str, alarm_id: str) -> list[dict[str, object]]:
    return [m.json() for m in wire.messages
            if m.topic == T.ack(node_id) and m.json().get("alarm_id") == alarm_id]


def live_probe(wire: Wire, node_id: str) -> str:
    """A live sos from `node_id`, acked: everything that node had queued before it was
    handled (a node's messages are handled in order). Its incident id."""
    p = alarm("sos")
    send_alarm(wire, node_id, p)
    return str(wire.wait_for(is_ack(node_id, p.alarm_id))[0].json()["incident_id"])


def test_a_retained_month_old_alarm_sounds_nothing_when_a_hub_starts_on_a_fresh_db(
        broker: Mosquitto, wire: Wire, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    watch_all(wire)
    old = aged("fire", 30 * DAY_MS)
    # Left on the broker a month ago (a node's bug, or someone with its password).
    wire.publish(T.alarm("na-sang-01"), encode(old), qos=1, retain=True)
    with caplog.at_level(logging.WARNING, logger="tiengmo.hub.freshness"), \
            running_hub(hub_settings(broker, tmp_path)) as hub:
        probe = live_probe(wire, "na-sang-01")
        assert [m.json()["incident_id"] for m in sounds_in(wire, HAMLET)] == [probe]
        assert acks_for(wire, "na-sang-01", old.alarm_id) == []
        assert hub.store.alarms.get(old.alarm_id) is None   # refused, not stored as late
        assert hub.store.incidents.count(area=HAMLET) == 1   # the probe's
        health = hub.health()
        assert health["rejected"].get("retained") == 1
        assert health["freshness"].get("retained") == 1
    assert sum("retained" in r.getMessage() for r in caplog.records) == 1


def test_a_retained_cancel_or_result_is_refused_and_a_live_one_is_not(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    settings = hub_settings(broker, tmp_path)
    a = alarm("theft")
    with running_hub(settings):
        send_alarm(wire, "na-sang-01", a)
        inc_id = wire.wait_for(is_ack("na-sang-01", a.alarm_id))[0].json()["incident_id"]
        cmd_id = wire.wait_for(is_area_cmd(HAMLET))[0].json()["cmd_id"]
    # While no hub listens, a cancel and a failed result are left retained on the broker.
    wire.publish(T.cancel("na-sang-01"),
                 encode(Cancel(alarm_id=a.alarm_id, ts_ms=now_ms())), qos=1, retain=True)
    wire.publish(T.result("na-sang-02"),
                 encode(Result(cmd_id=cmd_id, status=ResultStatus.FAILED, ts_ms=now_ms(),
                               reason="relay stuck")), qos=1, retain=True)
    with running_hub(settings) as hub:
        live_probe(wire, "na-sang-01")
        live_probe(wire, "na-sang-02")
        inc = hub.store.incidents.get(inc_id)
        assert inc is not None and inc.is_open                      # not cancelled
        assert hub.store.commands.results_for(cmd_id) == []         # no result stored
        assert hub.store.troubles.find(kind="sounder_fault") == []  # no fault raised
        assert hub.health()["rejected"].get("retained") == 2
        # The same cancel, live, is the node's to give: it cancels.
        wire.publish(T.cancel("na-sang-01"),
                     encode(Cancel(alarm_id=a.alarm_id, ts_ms=now_ms())), qos=1)
        wire.wait_for(is_ack("na-sang-01", a.alarm_id, "cancelled"))


def test_an_alarm_held_two_minutes_in_an_outbox_still_sounds(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        held = aged("fire", 120_000, attempt=6)   # the hub was away for two minutes
        send_alarm(wire, "na-sang-01", held)
        ack = wire.wait_for(is_ack("na-sang-01", held.alarm_id))[0].json()
        sound = wire.wait_for(is_area_cmd(HAMLET))[0].json()
        assert sound["incident_id"] == ack["incident_id"]
        stored = hub.store.alarms.get(held.alarm_id)
        assert stored is not None and not stored.late


def test_an_alarm_older_than_the_limit_is_stored_late_and_sounds_nothing(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    # 30 s limit and a 45 s old alarm: the default's logic (900 s) on a short time.
    # The leader's orphan check (sounds incidents stored but never sounded) runs often.
    settings = hub_settings(broker, tmp_path, alarm_max_age_s=30.0, orphan_check_s=0.1,
                            orphan_grace_s=0.1)
    with running_hub(settings) as hub:
        old = aged("fire", 45_000, attempt=9)
        send_alarm(wire, "na-sang-01", old)
        ack = wire.wait_for(is_ack("na-sang-01", old.alarm_id))[0].json()   # stored: acked
        stored = hub.store.alarms.get(old.alarm_id)
        assert stored is not None and stored.late and stored.incident_id == ack["incident_id"]
        inc = hub.store.incidents.get(stored.incident_id)
        assert inc is not None and inc.late and inc.is_open and not inc.fanned_out
        # A re-send of it, and a second late alarm of the hamlet, sound nothing either.
        send_alarm(wire, "na-sang-01", Alarm(alarm_id=old.alarm_id, kind=Kind.FIRE,
                                             ts_ms=old.ts_ms, source=Source.BUTTON,
                                             button=2, attempt=10))
        wire.wait_for(is_ack("na-sang-01", old.alarm_id), count=2)
        other = aged("fire", 50_000)
        send_alarm(wire, "na-sang-02", other)
        wire.wait_for(is_ack("na-sang-02", other.alarm_id))
        # ... nor does the orphan check take the late incident for one never sounded.
        wait_until(lambda: hub._orphans_checked_ms > stored.received_ms + 300,
                   what="an orphan check after the grace")
        assert sounds_in(wire, HAMLET) == []
        # Never escalated, however long nobody looks at it.
        assert hub.escalator is not None and hub.escalator.check(now_ms() + DAY_MS) == []
        # A live fire of the same hamlet is not swallowed by the late incident: it sounds.
        fresh = alarm("fire")
        send_alarm(wire, "na-sang-03", fresh)
        live_ack = wire.wait_for(is_ack("na-sang-03", fresh.alarm_id))[0].json()
        sound = wire.wait_for(is_area_cmd(HAMLET))[0].json()
        assert sound["incident_id"] == live_ack["incident_id"] != ack["incident_id"]
        assert hub.health()["freshness"].get("late_alarm") == 2


def test_an_alarm_on_the_nodes_own_clock_is_never_judged_stale(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        # A node without an RTC after a power cut, before any beacon: 1970 on its clock.
        unsynced = Alarm(alarm_id=alarm().alarm_id, kind=Kind.FIRE, ts_ms=5_000,
                         source=Source.BUTTON, button=2, attempt=1, clock_synced=False)
        send_alarm(wire, "na-sang-01", unsynced)
        ack = wire.wait_for(is_ack("na-sang-01", unsynced.alarm_id))[0].json()
        sound = wire.wait_for(is_area_cmd(HAMLET))[0].json()
        assert sound["incident_id"] == ack["incident_id"]
        stored = hub.store.alarms.get(unsynced.alarm_id)
        assert stored is not None and not stored.late


def test_an_alarm_stamped_in_the_future_sounds_and_is_counted(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        ahead = aged("fire", -3_600_000)   # the node's clock an hour fast
        send_alarm(wire, "na-sang-01", ahead)
        wire.wait_for(is_area_cmd(HAMLET))
        assert hub.health()["freshness"].get("future_ts") == 1


def test_another_nodes_alarm_id_is_refused_never_acked_with_its_incident(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        a = alarm("robbery")
        send_alarm(wire, "na-sang-01", a)
        victim = wire.wait_for(is_ack("na-sang-01", a.alarm_id))[0].json()["incident_id"]
        # Node B (another hamlet, a registered credential) re-sends A's alarm_id.
        stolen = Alarm(alarm_id=a.alarm_id, kind=Kind.ROBBERY, ts_ms=now_ms(),
                       source=Source.BUTTON, button=2, attempt=2)
        send_alarm(wire, "na-cha-01", stolen)
        refused = wire.wait_for(is_ack("na-cha-01", a.alarm_id, "rejected"))[0].json()
        assert refused["reason"] == "foreign_alarm_id" and "incident_id" not in refused
        assert all(m.get("incident_id") != victim
                   for m in acks_for(wire, "na-cha-01", a.alarm_id))
        stored = hub.store.alarms.get(a.alarm_id)
        assert stored is not None and stored.node_id == "na-sang-01" and stored.copies == 1
        assert hub.store.alarms.count(node_id="na-cha-01") == 0
        assert hub.store.incidents.count(area=OTHER_HAMLET) == 0
        assert len(sounds_in(wire, HAMLET)) == 1 and sounds_in(wire, OTHER_HAMLET) == []
        assert hub.health()["rejected"].get("foreign_alarm_id") == 1
        # The owner's own copy is still its copy.
        send_alarm(wire, "na-sang-01", Alarm(alarm_id=a.alarm_id, kind=Kind.ROBBERY,
                                             ts_ms=a.ts_ms, source=Source.BUTTON, button=2,
                                             attempt=3))
        wire.wait_for(is_ack("na-sang-01", a.alarm_id), count=2)
        assert all(m.get("incident_id") == victim
                   for m in acks_for(wire, "na-sang-01", a.alarm_id))
