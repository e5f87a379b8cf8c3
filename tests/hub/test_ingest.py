"""The hub's alarm path over a real Mosquitto: a press, as a household relies on it."""

from __future__ import annotations

import json
from pathlib import Path

from hub.store import TroubleKind
from protocol import DEFAULT_PATTERNS, Kind, encode
from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    COMMUNE,
    HAMLET,
    T,
    alarm,
    cmds,
    hub_settings,
    is_ack,
    is_area_cmd,
    running_hub,
    send_alarm,
    wait_until,
    watch_all,
)
from tests.support.wire import Wire


def test_press_stores_an_incident_sounds_the_hamlet_once_and_acks_the_origin(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        a = alarm("fire")
        send_alarm(wire, "na-sang-01", a)
        ack = wire.wait_for(is_ack("na-sang-01", a.alarm_id))[0].json()
        sound = wire.wait_for(is_area_cmd(HAMLET))[0].json()
        stored = hub.store.alarms.get(a.alarm_id)
        assert stored is not None and ack["incident_id"] == stored.incident_id
        inc = hub.store.incidents.get(stored.incident_id)
        assert inc is not None and inc.kind == "fire" and inc.area == HAMLET and not inc.drill
        assert sound["incident_id"] == inc.incident_id
        assert sound["pattern"] == DEFAULT_PATTERNS["fire"].to_dict()
        assert sound["priority"] == 5 and sound["drill"] is False
        assert sound["expires_ts_ms"] - sound["ts_ms"] == int(hub.settings.sound_expiry_s * 1000)
        # the command was recorded before it was published
        cmd = hub.store.commands.get(sound["cmd_id"])
        assert cmd is not None and cmd.target == HAMLET
        # exactly one sound, and none elsewhere
        wire.wait_for(lambda m: m.topic == T.hub_time())  # some time passes on the wire
        assert len(cmds(wire)) == 1


def test_every_copy_of_an_alarm_is_acked_but_stored_and_sounded_once(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        a = alarm("theft")
        for attempt in (1, 2, 3):
            send_alarm(wire, "na-sang-02", alarm("theft", a.alarm_id, attempt))
        acks = wire.wait_for(is_ack("na-sang-02", a.alarm_id), count=3)
        assert len({m.json()["incident_id"] for m in acks}) == 1
        assert hub.store.alarms.count(node_id="na-sang-02") == 1
        # another household of the hamlet presses theft too: same incident, no new sound
        b = alarm("theft")
        send_alarm(wire, "na-sang-03", b)
        ack_b = wire.wait_for(is_ack("na-sang-03", b.alarm_id))[0].json()
        assert ack_b["incident_id"] == acks[0].json()["incident_id"]
        wire.wait_for(lambda m: m.topic == T.hub_time(), count=2)
        assert len(cmds(wire)) == 1


def test_unknown_node_alarm_is_stored_and_flagged_but_never_sounds(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        for node_id in ("stranger-01", "na-cha-02"):  # unknown, and registered but disabled
            a = alarm("robbery")
            send_alarm(wire, node_id, a)
            ack = wire.wait_for(is_ack(node_id, a.alarm_id))[0].json()
            stored = hub.store.alarms.get(a.alarm_id)
            assert stored is not None and stored.incident_id == ack["incident_id"]
            inc = hub.store.incidents.get(stored.incident_id)
            assert inc is not None and inc.flagged and not inc.fanned_out
        kinds = {(t.kind, t.subject) for t in hub.store.troubles.find()}
        assert (TroubleKind.UNKNOWN_NODE.value, "stranger-01") in kinds
        assert (TroubleKind.DISABLED_NODE.value, "na-cha-02") in kinds
        wire.wait_for(lambda m: m.topic == T.hub_time(), count=2)
        assert cmds(wire) == []


def test_alarm_the_hub_will_never_accept_gets_a_rejected_ack(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        good = alarm("fire").to_dict()
        unknown_kind = {**good, "alarm_id": "6f1c1d1e-1111-4a4a-9b9b-000000000001",
                        "kind": "alien"}
        future = {**good, "alarm_id": "6f1c1d1e-1111-4a4a-9b9b-000000000002", "v": 2}
        for body in (unknown_kind, future):
            wire.publish(T.alarm("na-sang-01"), json.dumps(body), qos=1)
        for body, reason in ((unknown_kind, "unknown_kind"), (future, "unsupported_version")):
            ack = wire.wait_for(is_ack("na-sang-01", body["alarm_id"], "rejected"))[0].json()
            assert "incident_id" not in ack and ack["reason"].startswith(reason)
            assert hub.store.alarms.get(body["alarm_id"]) is None
        assert hub.ingest is not None
        assert hub.ingest.rejects["unknown_kind"] == 1
        assert hub.ingest.rejects["unsupported_version"] == 1


def test_garbage_is_counted_by_reason_and_the_hub_keeps_working(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        assert hub.ingest is not None
        bad = [
            (T.alarm("na-sang-01"), b"\xff\xfe not utf8", "not_utf8"),
            (T.alarm("na-sang-01"), b"{not json", "not_json"),
            (T.alarm("na-sang-01"), b"[1, 2]", "not_object"),
            (T.alarm("na-sang-01"), b"{}", "missing_field"),
            (T.heartbeat("na-sang-01"), b'{"v":1,"boot_id":-1,"seq":1,"ts_ms":1,"uptime_s":1,'
                                         b'"outbox":0}', "out_of_range"),
            (T.alarm("na-sang-01"), b"x" * 5000, "too_large"),
            (T.alarm("na-sang-01"), json.dumps({**alarm().to_dict(), "alarm_id": "nope"}),
             "bad_value"),
            (f"{T.prefix}/nodes/Not_A_Node/alarm", encode(alarm()), "bad_topic"),
        ]
        for topic, payload, _ in bad:
            wire.publish(topic, payload, qos=1)
        a = alarm("flood")
        send_alarm(wire, "na-sang-01", a)
        wire.wait_for(is_ack("na-sang-01", a.alarm_id))
        rejects = hub.ingest.rejects
        counted = {reason: rejects[reason] for _, _, reason in bad}
        # every garbage message counted under its own reason (bad_value may be named
        # by the uuid validator as wrong form); nothing crashed, the flood still sounded
        assert sum(rejects.values()) == len(bad), dict(rejects)
        assert counted["not_utf8"] == counted["not_json"] == counted["too_large"] == 1
        assert counted["bad_topic"] == 1 and counted["missing_field"] == 1
        wire.wait_for(is_area_cmd(HAMLET))
        assert hub.health()["rejected"] == dict(rejects)


def test_restarted_hub_carries_on_with_the_open_incident(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    settings = hub_settings(broker, tmp_path)
    a = alarm("fire")
    with running_hub(settings):
        send_alarm(wire, "na-sang-01", a)
        first = wire.wait_for(is_ack("na-sang-01", a.alarm_id))[0].json()["incident_id"]
        wire.wait_for(is_area_cmd(HAMLET))
    # the hub is gone: its death is retained for every node to see
    death = wire.wait_for(lambda m: m.topic == T.hub_state("hub-test")
                          and m.json()["online"] is False)
    assert death
    wire.clear()
    with running_hub(settings) as hub:
        b = alarm("fire")
        send_alarm(wire, "na-sang-04", b)
        again = wire.wait_for(is_ack("na-sang-04", b.alarm_id))[0].json()["incident_id"]
        assert again == first
        inc = hub.store.incidents.get(first)
        assert inc is not None and inc.alarm_count == 2
        wire.wait_for(lambda m: m.topic == T.hub_time(), count=2)
        assert cmds(wire) == []  # it already sounded before the restart


def test_cancel_of_the_only_alarm_cancels_and_silences_the_incident(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        a = alarm("medical")
        send_alarm(wire, "na-sang-01", a)
        inc_id = wire.wait_for(is_ack("na-sang-01", a.alarm_id))[0].json()["incident_id"]
        wire.wait_for(is_area_cmd(HAMLET))
        from protocol import Cancel

        wire.publish(T.cancel("na-sang-01"),
                     encode(Cancel(alarm_id=a.alarm_id, ts_ms=a.ts_ms + 1000)), qos=1)
        ack = wire.wait_for(is_ack("na-sang-01", a.alarm_id, "cancelled"))[0].json()
        assert ack["incident_id"] == inc_id
        silence = wire.wait_for(is_area_cmd(HAMLET, "silence"))[0].json()
        assert silence["incident_id"] == inc_id
        inc = wait_until(lambda: hub.store.incidents.get(inc_id))
        assert inc.state.value == "cancelled"


def test_hub_birth_is_retained_and_the_beacon_runs(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    with running_hub(hub_settings(broker, tmp_path, time_beacon_s=0.3)):
        late = Wire(broker.host, broker.port)
        try:
            late.subscribe(f"{T.prefix}/hubs/+/state")
            birth = late.wait_for(lambda m: m.topic == T.hub_state("hub-test"))[0]
            assert birth.retain and birth.json()["online"] is True
            late.subscribe(T.hub_time(), 0)
            beats = late.wait_for(lambda m: m.topic == T.hub_time(), count=3)
            assert all(m.json()["hub_id"] == "hub-test" for m in beats)
        finally:
            late.close()


def test_other_kinds_use_their_own_pattern(broker: Mosquitto, wire: Wire,
                                           tmp_path: Path) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)):
        a = alarm(Kind.THEFT.value)
        send_alarm(wire, "na-cha-01", a)
        sound = wire.wait_for(is_area_cmd("bach-thong/vi-huong/na-cha"))[0].json()
        assert sound["pattern"]["name"] == "theft"
        assert not [m for m in wire.messages if m.topic == T.area_cmd(COMMUNE)]


def test_two_replicas_share_the_alarm_stream_one_ack_and_one_sound(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    settings_a = hub_settings(broker, tmp_path, hub_id="hub-a")
    settings_b = hub_settings(broker, tmp_path, hub_id="hub-b")  # same database
    with running_hub(settings_a, shared_group="tiengmo") as a, \
            running_hub(settings_b, shared_group="tiengmo") as b:
        presses = [(f"na-sang-0{1 + i % 4}", alarm("fire")) for i in range(12)]
        for node_id, al in presses:
            send_alarm(wire, node_id, al)
        for node_id, al in presses:
            wire.wait_for(is_ack(node_id, al.alarm_id))
        wire.wait_for(lambda m: m.topic == T.hub_time(), count=4)
        acks = [m for m in wire.messages if "/ack" in m.topic]
        assert len(acks) == len(presses)                 # each copy answered once, not twice
        assert len({m.json()["incident_id"] for m in acks}) == 1
        assert len(cmds(wire)) == 1
        assert a.ingest is not None and b.ingest is not None
        assert a.ingest.handled["alarm"] + b.ingest.handled["alarm"] == len(presses)
        assert a.ingest.handled["alarm"] > 0 and b.ingest.handled["alarm"] > 0  # truly shared


def test_hub_resubscribes_and_republishes_its_birth_after_the_broker_restarts(
        broker: Mosquitto, tmp_path: Path) -> None:
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        assert hub.link is not None
        broker.restart()  # same port, no persistence: every subscription is gone
        wait_until(lambda: hub.link is not None and hub.link.connect_count >= 2
                   and hub.link.connected.is_set(), 20, "the hub back on the broker")
        fresh = Wire(broker.host, broker.port)
        try:
            watch_all(fresh)
            birth = fresh.wait_for(lambda m: m.topic == T.hub_state("hub-test"))[0]
            assert birth.json()["online"] is True
            a = alarm("sos")
            send_alarm(fresh, "na-sang-01", a)
            fresh.wait_for(is_ack("na-sang-01", a.alarm_id))
        finally:
            fresh.close()
