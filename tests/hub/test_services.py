"""Operator actions: stored, audited with who and when, published as protocol messages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import protocol
from hub.errors import Conflict, InvalidAction, NotFound
from hub.services import Services
from hub.settings import load_settings
from hub.store import IncidentState, Store
from tests.support.hubdb import db_url, pg_database  # noqa: F401 - fixtures

HAMLET = "bach-thong/vi-huong/na-sang"
COMMUNE = "bach-thong/vi-huong"
NOW = 1_750_000_000_000


@dataclass
class Recorder:
    """A Publisher that keeps what would have gone on the wire."""

    area_cmds: list[tuple[str, protocol.Command]] = field(default_factory=list)
    node_cmds: list[tuple[str, protocol.Command]] = field(default_factory=list)
    acks: list[tuple[str, protocol.Ack]] = field(default_factory=list)

    def publish_area_cmd(self, area: str, cmd: protocol.Command) -> None:
        self.area_cmds.append((area, cmd))

    def publish_node_cmd(self, node_id: str, cmd: protocol.Command) -> None:
        self.node_cmds.append((node_id, cmd))

    def publish_ack(self, node_id: str, ack: protocol.Ack) -> None:
        self.acks.append((node_id, ack))


class Clock:
    def __init__(self) -> None:
        self.ms = NOW

    def __call__(self) -> int:
        return self.ms


Parts = tuple[Services, Store, Recorder, Clock]


@pytest.fixture
def parts(db_url: str, tmp_path: Path) -> Iterator[Parts]:  # noqa: F811
    clock = Clock()
    store = Store.open(db_url, clock=clock)
    store.nodes.sync_registry(protocol.parse_registry({"nodes": [
        {"id": "n1", "area": HAMLET}, {"id": "n2", "area": HAMLET}]}))
    rec = Recorder()
    settings = load_settings(env={}, data_dir=tmp_path, escalate_after_s=120)
    yield Services(store, rec, settings, clock=clock), store, rec, clock
    store.close()


def fire(store: Store, node: str, at: int) -> str:
    a = protocol.Alarm(protocol.new_id(), protocol.Kind.FIRE, at, protocol.Source.BUTTON, 1)
    return store.alarms.record(node, a, at, window_s=600).incident_id


def actions(store: Store, subject: str) -> list[tuple[str, str, int]]:
    return [(e.actor, e.action, e.ts_ms) for e in reversed(store.audit.entries(subject=subject))]


def test_new_incident_sounds_per_policy_and_is_recorded(parts: Parts) -> None:
    svc, store, rec, _ = parts
    inc = fire(store, "n1", NOW)
    cmd = svc.sound_incident(inc)
    assert rec.area_cmds == [(HAMLET, cmd)]
    assert cmd.action is protocol.Action.SOUND and cmd.priority == protocol.PRIORITY_ALARM
    assert cmd.pattern == protocol.default_pattern("fire") and cmd.incident_id == inc
    assert cmd.expires_ts_ms == NOW + 60_000                 # sound_expiry_s
    assert store.commands.get(cmd.cmd_id) is not None
    assert store.incidents.get(inc).sounded_area == HAMLET  # type: ignore[union-attr]
    assert actions(store, inc) == [("hub", "sound", NOW)]


def test_acknowledge_acks_every_alarm_and_is_audited_once(parts: Parts) -> None:
    svc, store, rec, clock = parts
    inc = fire(store, "n1", NOW)
    fire(store, "n2", NOW + 1000)
    clock.ms = NOW + 30_000
    got = svc.acknowledge(inc, "officer-a")
    assert got.state is IncidentState.ACKNOWLEDGED and got.acknowledged_by == "officer-a"
    assert sorted(n for n, _ in rec.acks) == ["n1", "n2"]
    assert {a.status for _, a in rec.acks} == {protocol.AckStatus.ACKNOWLEDGED}
    assert all(a.incident_id == inc for _, a in rec.acks)
    svc.acknowledge(inc, "officer-a")                        # a retry: no change, no error
    with pytest.raises(Conflict) as lost:                    # someone else: told who, when
        svc.acknowledge(inc, "officer-b")
    assert (lost.value.current, lost.value.by, lost.value.at_ms) == (
        "acknowledged", "officer-a", NOW + 30_000)
    assert len(rec.acks) == 2
    assert actions(store, inc) == [("officer-a", "acknowledge", NOW + 30_000)]


def test_resolve_acks_resolved_silences_and_records_outcome(parts: Parts) -> None:
    svc, store, rec, clock = parts
    inc = fire(store, "n1", NOW)
    svc.sound_incident(inc)
    clock.ms = NOW + 60_000
    done = svc.resolve(inc, "officer-a", "false_alarm", "trẻ con bấm nhầm")
    assert done.state is IncidentState.RESOLVED and done.outcome == "false_alarm"
    assert [a.status for _, a in rec.acks] == [protocol.AckStatus.RESOLVED]
    area, silence = rec.area_cmds[-1]
    assert area == HAMLET and silence.action is protocol.Action.SILENCE
    assert silence.incident_id == inc
    [entry] = [e for e in store.audit.entries(subject=inc) if e.action == "resolve"]
    assert entry.actor == "officer-a" and entry.detail["outcome"] == "false_alarm"
    with pytest.raises(InvalidAction):
        svc.acknowledge(inc, "late")
    with pytest.raises(InvalidAction):
        svc.resolve(inc, "x", "maybe")
    again = svc.resolve(inc, "officer-a", "false_alarm")     # the same retry: unchanged
    assert again.resolved_ms == NOW + 60_000 and again.note == "trẻ con bấm nhầm"
    for actor, outcome in (("officer-a", "real"), ("officer-b", "false_alarm")):
        with pytest.raises(Conflict) as lost:                # never a silent overwrite
            svc.resolve(inc, actor, outcome)
        assert lost.value.detail()["outcome"] == "false_alarm"
        assert lost.value.by == "officer-a" and lost.value.current == "resolved"
    assert store.incidents.get(inc).outcome == "false_alarm"  # type: ignore[union-attr]
    assert len([e for e in store.audit.entries(subject=inc) if e.action == "resolve"]) == 1


def test_escalation_widens_once_per_interval_and_stops_when_acknowledged(parts: Parts) -> None:
    svc, store, rec, _ = parts
    inc = fire(store, "n1", NOW)
    svc.sound_incident(inc)
    assert svc.escalate_due(NOW + 119_000) == []
    assert svc.escalate_due(NOW + 120_000) == []             # step 1 tells people, no gong
    assert store.incidents.get(inc).escalation_level == 1  # type: ignore[union-attr]
    assert svc.escalate_due(NOW + 121_000) == []             # not again right away
    [cmd] = svc.escalate_due(NOW + 240_000)                  # step 2 widens
    assert rec.area_cmds[-1] == (COMMUNE, cmd)
    svc.acknowledge(inc, "officer")
    assert svc.escalate_due(NOW + 400_000) == []


def test_drills_are_marked_and_never_counted(parts: Parts) -> None:
    svc, store, rec, _ = parts
    fire(store, "n1", NOW)
    inc, cmd = svc.start_drill(COMMUNE, "officer-a", duration_s=20)
    assert inc.drill and cmd.drill is True and cmd.priority == protocol.PRIORITY_DRILL
    assert cmd.pattern == protocol.default_pattern("drill") and cmd.duration_s == 20
    assert rec.area_cmds == [(COMMUNE, cmd)]
    assert store.incidents.count() == 1                      # the fire only
    assert store.incidents.count(include_drills=True) == 2
    assert any(i.drill for i in store.incidents.active())      # shown, marked
    assert all(c.incident_id != inc.incident_id for c in svc.escalate_due(NOW + 10**7))
    stop = svc.stop_drill(inc.incident_id, "officer-a")
    assert stop.action is protocol.Action.SILENCE and stop.incident_id == inc.incident_id
    assert store.incidents.get(inc.incident_id).state is IncidentState.RESOLVED  # type: ignore[union-attr]
    assert [a for _, a, _ in actions(store, COMMUNE)] == ["start_drill"]
    assert [a for _, a, _ in actions(store, inc.incident_id)] == ["stop_drill"]


def test_area_actions_are_audited(parts: Parts) -> None:
    svc, store, _, _ = parts
    warn = svc.broadcast(HAMLET, "officer-a", "flood", 30, "Lũ quét, sơ tán")
    assert warn.priority == protocol.PRIORITY_WARNING and warn.pattern.name == "flood"  # type: ignore[union-attr]
    assert store.commands.get(warn.cmd_id).note == "Lũ quét, sơ tán"  # type: ignore[union-attr]
    silence = svc.silence("officer-a", area=HAMLET)
    assert silence.incident_id is None
    cmds = svc.all_clear(HAMLET, "officer-a")
    assert [c.action for c in cmds] == [protocol.Action.SILENCE, protocol.Action.SOUND]
    assert cmds[1].pattern.name == "all_clear"  # type: ignore[union-attr]
    assert [a for _, a, _ in actions(store, HAMLET)] == ["broadcast", "silence", "all_clear"]
    with pytest.raises(InvalidAction):
        svc.broadcast(HAMLET, "officer-a", "no-such-signal")
    with pytest.raises(InvalidAction):
        svc.silence("officer-a")


def test_node_actions_are_audited(parts: Parts) -> None:
    svc, store, rec, _ = parts
    svc.register_node("n9", "bach-thong/phu-thong/dau-cau", "tech-1", name="Đầu Cầu")
    svc.disable_node("n9", "officer-a")
    a = protocol.Alarm(protocol.new_id(), protocol.Kind.THEFT, NOW, protocol.Source.BUTTON, 1)
    assert not store.alarms.record("n9", a, NOW, window_s=600).fan_out   # disabled: held
    svc.enable_node("n9", "officer-a")
    svc.move_node("n9", HAMLET, "tech-1")
    ping = svc.ping_node("n9", "tech-1")
    test = svc.test_node("n9", "tech-1", 5)
    assert rec.node_cmds == [("n9", ping), ("n9", test)]
    assert [a for _, a, _ in actions(store, "n9")] == [
        "register_node", "disable_node", "enable_node", "move_node", "ping_node", "test_node"]
    with pytest.raises(NotFound):
        svc.ping_node("nobody", "tech-1")


def test_observer_hub_never_publishes(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    store = Store.open(db_url)
    try:
        rec = Recorder()
        svc = Services(store, rec, load_settings(env={}, data_dir=tmp_path, observer=True))
        with pytest.raises(InvalidAction):
            svc.broadcast(HAMLET, "officer", "fire")
        assert rec.area_cmds == []
    finally:
        store.close()
