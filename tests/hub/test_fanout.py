"""Fan-out limits and checks: a pranked button, and gongs that did not sound."""

from __future__ import annotations

from pathlib import Path

from hub.store import Outcome, TroubleKind
from protocol import Result, ResultStatus, encode
from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    HAMLET,
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
from tests.support.wire import Wire


def test_hundreds_of_presses_are_all_stored_and_acked_as_one_incident(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        presses = [alarm("theft") for _ in range(150)]
        for a in presses:
            wire.client.publish(T.alarm("na-sang-01"), encode(a), qos=1)
        acks = wire.wait_for(lambda m: m.topic == T.ack("na-sang-01"), count=150, timeout=60)
        assert {m.json()["alarm_id"] for m in acks} == {a.alarm_id for a in presses}
        assert len({m.json()["incident_id"] for m in acks}) == 1
        assert hub.store.alarms.count(node_id="na-sang-01") == 150
        assert len(cmds(wire)) == 1


def test_noisy_node_is_stored_and_acked_but_stops_sounding_and_is_a_trouble(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path, noisy_max_fanouts=2)) as hub:
        incidents = []
        for i in range(3):
            a = alarm("fire")
            send_alarm(wire, "na-sang-01", a)
            inc_id = wire.wait_for(is_ack("na-sang-01", a.alarm_id))[0].json()["incident_id"]
            incidents.append(inc_id)
            if i < 2:
                wire.wait_for(is_area_cmd(HAMLET), count=i + 1)
            # the duty officer finds a prank each time
            hub.store.incidents.resolve(inc_id, "officer", Outcome.PRANK, None, now_ms())
        assert len(set(incidents)) == 3
        third = hub.store.incidents.get(incidents[2])
        assert third is not None and third.fanout_held and not third.fanned_out
        noisy = hub.store.troubles.find(kind=TroubleKind.NOISY_NODE.value)
        assert [t.subject for t in noisy] == ["na-sang-01"]
        wire.wait_for(lambda m: m.topic == T.hub_time(), count=2)
        assert len(cmds(wire)) == 2
        # another household's fire in the same hamlet still sounds
        b = alarm("fire")
        send_alarm(wire, "na-sang-02", b)
        wire.wait_for(is_area_cmd(HAMLET), count=3)


def test_gongs_that_do_not_start_within_the_limit_become_troubles(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path, failed_to_sound_s=1.5)) as hub:
        a = alarm("fire")
        send_alarm(wire, "na-sang-01", a)
        cmd_id = wire.wait_for(is_area_cmd(HAMLET))[0].json()["cmd_id"]
        for nid, status in (("na-sang-01", ResultStatus.STARTED),
                            ("na-sang-02", ResultStatus.DONE)):
            wire.publish(T.result(nid), encode(Result(cmd_id=cmd_id, status=status,
                                                      ts_ms=now_ms())), qos=1)
        def silent() -> list[str]:
            return sorted(t.subject for t in
                          hub.store.troubles.find(kind=TroubleKind.FAILED_TO_SOUND.value))

        # opened one by one: wait for both, then check that no other node was asked
        wait_until(lambda: len(silent()) >= 2, 10, "failed-to-sound troubles")
        assert silent() == ["na-sang-03", "na-sang-04"]  # the disabled/other hamlet never asked
        # na-sang-03 starts a later sound: its trouble is over
        wire.publish(T.result("na-sang-03"), encode(Result(
            cmd_id=cmd_id, status=ResultStatus.STARTED, ts_ms=now_ms())), qos=1)
        wait_until(lambda: [t.subject for t in hub.store.troubles.find(
            kind=TroubleKind.FAILED_TO_SOUND.value)] == ["na-sang-04"], 10, "one cleared")


def test_failed_result_is_a_sounder_fault(broker: Mosquitto, wire: Wire,
                                          tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        a = alarm("fire")
        send_alarm(wire, "na-sang-01", a)
        cmd_id = wire.wait_for(is_area_cmd(HAMLET))[0].json()["cmd_id"]
        wire.publish(T.result("na-sang-02"), encode(Result(
            cmd_id=cmd_id, status=ResultStatus.FAILED, ts_ms=now_ms(), reason="no current")),
            qos=1)
        fault = wait_until(
            lambda: hub.store.troubles.find(kind=TroubleKind.SOUNDER_FAULT.value), 10,
            "a sounder fault")
        assert fault[0].subject == "na-sang-02" and fault[0].detail["reason"] == "no current"
