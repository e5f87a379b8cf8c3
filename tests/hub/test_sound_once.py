"""On the wire (a real Mosquitto, a running hub, SQLite and PostgreSQL): a `sound` only
ever names an incident the database holds (issue 12 point 4), and a hamlet still
sounds while the database cannot be written, acked only once stored (point 5)."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.store.health import StoreHealth
from tests.hub.outage import outage
from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    HAMLET,
    T,
    alarm,
    cmds,
    hub_settings,
    is_ack,
    is_area_cmd,
    running_hub,
    send_alarm,
    watch_all,
)
from tests.support.wire import Wire


@pytest.fixture(autouse=True)
def _every_write_tries_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about correlation across failed writes, one write after another;
    the store's fail-fast window (hub.store.health, one probe a second, which makes the
    node's re-send the retry) is tested on its own in tests/hub/test_store_health.py."""
    monkeypatch.setattr("hub.store.base.StoreHealth",
                        functools.partial(StoreHealth, probe_s=0.0))

# Press to sound while the database fails: the usual path is a few ms; this bound
# leaves room for a loaded CI machine (0.67-0.71 s seen there with both xdist workers
# busy), far below what waiting for the database would cost (its timeouts, then the
# node's re-send 5 s later).
SOUND_WITHIN_S = 1.5


def beacons_later(wire: Wire, n: int) -> None:
    """Let the hub run for `n` more time beacons (0.5 s apart in these settings)."""
    seen = len(wire.on_topic(T.hub_time()))
    wire.wait_for(lambda m: m.topic == T.hub_time(), count=seen + n)


@pytest.mark.parametrize("failures", [1, 2])
def test_a_commit_that_fails_and_is_retried_sends_one_sound_of_a_stored_incident(
        broker: Mosquitto, wire: Wire, tmp_path: Path, failures: int) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        with outage(hub.store.engine, times=failures) as o:
            a = alarm("fire")
            send_alarm(wire, "na-sang-01", a)
            ack = wire.wait_for(is_ack("na-sang-01", a.alarm_id))[0].json()
        assert o.failed == failures
        beacons_later(wire, 2)
        sounds = [m.json() for m in cmds(wire)]
        assert len(sounds) == 1, sounds
        assert sounds[0]["incident_id"] == ack["incident_id"]
        assert hub.store.incidents.get(ack["incident_id"]) is not None
        assert hub.store.commands.get(sounds[0]["cmd_id"]) is not None
        assert hub.store.incidents.count() == 1


@pytest.mark.parametrize("at", ["commit", "write"])
def test_the_hamlet_sounds_while_the_database_is_down_and_is_acked_once_stored(
        broker: Mosquitto, wire: Wire, tmp_path: Path, at: str) -> None:
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        warm = alarm("theft")   # the hub has stored an alarm of this hamlet before
        send_alarm(wire, "na-sang-02", warm)
        wire.wait_for(is_ack("na-sang-02", warm.alarm_id))
        wire.clear()
        with outage(hub.store.engine, at=at):
            a = alarm("fire")
            pressed = time.monotonic()
            send_alarm(wire, "na-sang-01", a)
            sound = wire.wait_for(is_area_cmd(HAMLET))[0]
            assert sound.at - pressed < SOUND_WITHIN_S
            # a second press of the hamlet, and the node's re-send, while still down
            second = alarm("fire")
            send_alarm(wire, "na-sang-03", second)
            send_alarm(wire, "na-sang-01", alarm("fire", a.alarm_id, attempt=2))
            beacons_later(wire, 4)
            assert not [m for m in wire.messages if "/ack" in m.topic], "acked unstored"
            assert len(cmds(wire)) == 1
            # Not stored while the database is down (read here, inside the outage: once it
            # ends, the re-send still in the hub's hands on a loaded machine may be stored
            # at once, under the incident that sounded, as asserted below; failed in CI).
            assert hub.store.alarms.get(a.alarm_id) is None
        # the database is back: the node re-sends, and is acked with the incident that
        # sounded; one incident, the alarm once, no second sound
        send_alarm(wire, "na-sang-01", alarm("fire", a.alarm_id, attempt=3))
        ack = wire.wait_for(is_ack("na-sang-01", a.alarm_id))[0].json()
        assert ack["incident_id"] == sound.json()["incident_id"]
        assert hub.store.incidents.count(kind="fire") == 1
        stored = hub.store.alarms.get(a.alarm_id)
        assert stored is not None and stored.incident_id == ack["incident_id"]
        # The second press was never re-sent (a bare client): on a loaded machine the
        # hub may still have been handling it when the database came back, and stored it
        # then, in the same incident. Nothing else is stored, and nothing twice.
        with hub.store.engine.connect() as c:
            rows = set(c.execute(sa.text(
                "SELECT alarm_id, incident_id FROM alarms WHERE kind = 'fire'")).all())
        assert (a.alarm_id, ack["incident_id"]) in rows
        assert rows <= {(a.alarm_id, ack["incident_id"]), (second.alarm_id, ack["incident_id"])}
        beacons_later(wire, 2)
        assert len(cmds(wire)) == 1


def test_two_replicas_sounding_one_hamlet_during_an_outage_name_one_incident(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    # A window of an hour: the presses below fall in one bucket except in the last
    # seconds of an hour (a split there is the documented boundary case).
    common = {"correlation_window_s": 3600.0}
    settings_a = hub_settings(broker, tmp_path, hub_id="hub-a", **common)
    settings_b = hub_settings(broker, tmp_path, hub_id="hub-b", **common)  # same database
    with running_hub(settings_a, shared_group="tiengmo") as a, \
            running_hub(settings_b, shared_group="tiengmo") as b:
        presses: list[tuple[str, Any]] = []
        with outage(a.store.engine, at="write"), outage(b.store.engine, at="write"):
            # The broker shares the stream between the replicas as it sees fit (under
            # load one may take a run of them): press until each has decided some.
            deadline = time.monotonic() + 30
            assert a.ingest is not None and b.ingest is not None
            while len(presses) < 8 or not (a.ingest.rejects["internal_error"]
                                           and b.ingest.rejects["internal_error"]):
                assert time.monotonic() < deadline, "one replica got no alarm in 30 s"
                node_id, al = f"na-sang-0{1 + len(presses) % 4}", alarm("fire")
                presses.append((node_id, al))
                send_alarm(wire, node_id, al)
                time.sleep(0.05)
            wire.wait_for(is_area_cmd(HAMLET))
            beacons_later(wire, 4)
            assert not [m for m in wire.messages if "/ack" in m.topic], "acked unstored"
        assert a.ingest is not None and b.ingest is not None
        assert a.ingest.rejects["internal_error"] and b.ingest.rejects["internal_error"], \
            "both replicas decided alarms during the outage"
        sounds = [m.json() for m in cmds(wire)]
        assert len({s["incident_id"] for s in sounds}) == 1
        assert len({s["cmd_id"] for s in sounds}) == 1   # the same command: played once
        # back: the nodes re-send, every alarm is stored in the incident that sounded
        for node_id, al in presses:
            send_alarm(wire, node_id, alarm("fire", al.alarm_id, attempt=2))
        acks = [wire.wait_for(is_ack(node_id, al.alarm_id))[0].json()
                for node_id, al in presses]
        assert {k["incident_id"] for k in acks} == {sounds[0]["incident_id"]}
        assert a.store.incidents.count(kind="fire") == 1
        assert a.store.alarms.count(kind="fire") == len(presses)


def test_another_nodes_alarm_id_is_refused_while_the_owners_alarm_waits_to_be_stored(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    """An alarm_id is bound to the node that sent it first even while only memory knows
    it (the database down): another node's copy is refused at once, never stored as
    that node's, and the owner's re-send is stored under the incident that sounded."""
    watch_all(wire)
    with running_hub(hub_settings(broker, tmp_path)) as hub:
        warm = alarm("theft")
        send_alarm(wire, "na-cha-01", warm)   # the hub knows the other hamlet's node
        wire.wait_for(is_ack("na-cha-01", warm.alarm_id))
        wire.clear()
        with outage(hub.store.engine, at="write"):
            a = alarm("fire")
            send_alarm(wire, "na-sang-01", a)
            sound = wire.wait_for(is_area_cmd(HAMLET))[0].json()
            send_alarm(wire, "na-cha-01", alarm("fire", a.alarm_id, attempt=2))
            refused = wire.wait_for(is_ack("na-cha-01", a.alarm_id, "rejected"))[0].json()
            assert refused["reason"] == "foreign_alarm_id" and "incident_id" not in refused
            beacons_later(wire, 2)
            assert [m.json()["incident_id"] for m in cmds(wire)] == [sound["incident_id"]]
        # The database is back. The other node tries again first: still not its alarm.
        send_alarm(wire, "na-cha-01", alarm("fire", a.alarm_id, attempt=3))
        wire.wait_for(is_ack("na-cha-01", a.alarm_id, "rejected"), count=2)
        send_alarm(wire, "na-sang-01", alarm("fire", a.alarm_id, attempt=3))
        ack = wire.wait_for(is_ack("na-sang-01", a.alarm_id))[0].json()
        assert ack["incident_id"] == sound["incident_id"]
        stored = hub.store.alarms.get(a.alarm_id)
        assert stored is not None and stored.node_id == "na-sang-01"
        assert hub.store.alarms.count(node_id="na-cha-01") == 1   # its own warm-up alarm
        assert hub.health()["rejected"].get("foreign_alarm_id") == 2
