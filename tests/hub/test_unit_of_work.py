"""The store's unit of work, on real SQLite and PostgreSQL: several repositories in one
transaction, retried whole on a race; the alarm batch (alarms, incidents, the sound's
command) committed as one; every repository behind the one writer gate."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_mock import MockerFixture
from sqlalchemy.orm import Session

import protocol
from hub.alarm_batch import store_alarm_batch
from hub.commands import sound_command
from hub.db import models as m
from hub.integrations.store import IntegrationStore
from hub.policy import Sound
from hub.store import IncidentInfo, Repositories, Store, TroubleRef
from tests.support.hubdb import db_url, pg_database  # noqa: F401 - fixtures

HAMLET = "bach-thong/vi-huong/na-sang"
REGISTRY = protocol.parse_registry({
    "areas": [{"path": HAMLET, "name": "Thôn Nà Sang"}],
    "nodes": [{"id": "na-sang-01", "area": HAMLET}, {"id": "na-sang-02", "area": HAMLET}],
})
PATTERN = protocol.Pattern("fire", ((500, 500),))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:  # noqa: F811 - fixture parameter
    s = Store.open(db_url)
    s.nodes.sync_registry(REGISTRY)
    yield s
    s.close()


def press(kind: str = "fire") -> protocol.Alarm:
    return protocol.Alarm(protocol.new_id(), protocol.Kind(kind), 1_700_000_000_000,
                          protocol.Source.BUTTON, 1, button=1)


def test_a_unit_commits_every_repository_together_or_none(store: Store) -> None:
    with pytest.raises(RuntimeError), store.unit() as uow:
        uow.troubles.open("node_offline", "na-sang-01", now_ms=1)
        uow.audit.record("test", "half_done", "na-sang-01", now_ms=1)
        assert uow.troubles.find(kind="node_offline")   # the unit reads its own writes
        raise RuntimeError("the second half failed")
    assert store.troubles.find(kind="node_offline") == []
    assert store.audit.entries(action="half_done") == []

    with store.unit() as uow:
        uow.troubles.open("node_offline", "na-sang-01", now_ms=2)
        uow.audit.record("test", "all_done", "na-sang-01", now_ms=2)
    assert [t.subject for t in store.troubles.find(kind="node_offline")] == ["na-sang-01"]
    assert [e.action for e in store.audit.entries(action="all_done")] == ["all_done"]


# PostgreSQL only: on SQLite a write transaction holds the one write lock from BEGIN,
# so another replica cannot commit inside it.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_transaction_is_retried_whole_when_another_replica_wins_a_race(
        store: Store, db_url: str) -> None:  # noqa: F811 - fixture parameter
    assert store.db.gate is None
    other = Store.open(db_url, migrate=False)   # a second replica: its own engine and gate
    attempts: list[int] = []

    def unit(uow: Repositories) -> TroubleRef:
        attempts.append(len(attempts))
        uow.audit.record("test", "attempt", HAMLET, {"n": len(attempts)}, now_ms=6)
        if len(attempts) == 1:
            # The other replica opens the trouble after this one looked and found none:
            # this one's insert meets its UNIQUE open_key.
            other.troubles.open("area_loss", HAMLET, now_ms=5)

            def insert(s: Session) -> None:
                s.add(m.Trouble(kind="area_loss", subject=HAMLET, state="open",
                                open_key=f"area_loss|{HAMLET}", opened_ms=6, detail={}))
                s.flush()

            uow.work.write(insert)
        return uow.troubles.open("area_loss", HAMLET, now_ms=6)

    try:
        ref = store.transaction(unit)
    finally:
        other.close()
    # the first attempt was rolled back whole (its audit row too); the retry saw the
    # winner's trouble and joined it
    assert attempts == [0, 1] and not ref.new
    assert len(store.troubles.find(kind="area_loss")) == 1
    assert [e.detail["n"] for e in store.audit.entries(action="attempt")] == [2]


def test_the_alarm_batch_stores_alarms_incidents_and_the_sound_in_one_transaction(
        store: Store, mocker: MockerFixture) -> None:
    published: list[tuple[IncidentInfo, protocol.Command]] = []

    def publish(inc: IncidentInfo) -> tuple[Sound, protocol.Command]:
        sound = Sound(HAMLET, PATTERN, 30, 1)
        cmd = sound_command(sound, 1000, 60.0, incident_id=inc.incident_id)
        published.append((inc, cmd))
        return sound, cmd

    sessions = mocker.spy(store.db, "session")
    items = [("na-sang-01", press(), 1000), ("na-sang-02", press(), 1001)]
    outs, sounds = store_alarm_batch(store, items, window_s=600, noisy_max_fanouts=None,
                                     noisy_window_s=600, publish=publish)
    assert sessions.call_count == 1   # ONE write transaction for the whole batch
    assert [o.new_alarm for o in outs] == [True, True]
    assert outs[0].incident_id == outs[1].incident_id
    assert len(published) == 1 and set(sounds) == {outs[0].alarm_id}
    cmds = store.commands.for_incident(outs[0].incident_id)
    assert [c.cmd_id for c in cmds] == [published[0][1].cmd_id]
    inc = store.incidents.get(outs[0].incident_id)
    assert inc is not None and inc.fanned_out and inc.sounded_area == HAMLET


def test_a_failed_alarm_batch_leaves_no_alarm_no_incident_and_no_command(store: Store) -> None:
    def publish(inc: IncidentInfo) -> tuple[Sound, protocol.Command]:
        raise OSError("the link went away mid-batch")

    with pytest.raises(OSError):
        store_alarm_batch(store, [("na-sang-01", press(), 1000)], window_s=600,
                          noisy_max_fanouts=None, noisy_window_s=600, publish=publish)
    assert store.alarms.count() == 0 and store.incidents.count() == 0
    assert store.history.commands(limit=10) == []


# SQLite only: PostgreSQL has no writer gate (many writers at once).
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_repository_on_the_store_waits_at_its_one_writer_gate(
        store: Store, mocker: MockerFixture) -> None:
    assert store.db.gate is not None
    hold = mocker.spy(store.db.gate, "hold")
    store.auth.create_user("truong-thon", "argon2-hash", "operator", "test")
    store.history.prune_events(0)
    IntegrationStore(store.db).sync_responders([])
    store.troubles.open("node_offline", "na-sang-01", now_ms=1)
    assert hold.call_count == 4
