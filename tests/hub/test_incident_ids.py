"""A `sound` is only ever about an incident the database holds, or will hold (issue 12,
points 4 and 5), on real SQLite and PostgreSQL: derived incident and sound ids, a
commit that fails once or twice, another replica's incident appearing between two
attempts, and a database that cannot be written at all, on one and on two replicas."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_mock import MockerFixture

import protocol
from hub.alarm_batch import store_alarm_batch
from hub.commands import sound_command
from hub.correlation import Memory
from hub.errors import StoreError
from hub.policy import Sound
from hub.store import IncidentInfo, Outcome, Store
from hub.store.alarms import corr_key
from hub.store.health import StoreHealth
from hub.store.ids import first_sound_id, incident_id, window_start
from tests.hub.outage import outage
from tests.support.hubdb import db_url, pg_database  # noqa: F401 - fixtures


@pytest.fixture(autouse=True)
def _every_write_tries_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about correlation across failed writes, one write after another;
    the store's fail-fast window (hub.store.health, one probe a second, which makes the
    node's re-send the retry) is tested on its own in tests/hub/test_store_health.py."""
    monkeypatch.setattr("hub.store.base.StoreHealth",
                        functools.partial(StoreHealth, probe_s=0.0))

HAMLET = "bach-thong/vi-huong/na-sang"
REGISTRY = protocol.parse_registry({
    "areas": [{"path": HAMLET, "name": "Thôn Nà Sang"}],
    "nodes": [{"id": "na-sang-01", "area": HAMLET}, {"id": "na-sang-02", "area": HAMLET}],
})
PATTERN = protocol.Pattern("fire", ((500, 500),))
WINDOW_S = 600
T0 = 1_700_000_800_000   # 400 s into a 600 s bucket
KEY = corr_key("fire", HAMLET, "na-sang-01", False)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:  # noqa: F811 - fixture parameter
    s = Store.open(db_url)
    s.nodes.sync_registry(REGISTRY)
    yield s
    s.close()


def press(kind: str = "fire", alarm_id: str | None = None, attempt: int = 1) -> protocol.Alarm:
    return protocol.Alarm(alarm_id or protocol.new_id(), protocol.Kind(kind), T0,
                          protocol.Source.BUTTON, attempt, button=1)


class Gongs:
    """`publish` for store_alarm_batch: every sound, as it would go out on the wire."""

    def __init__(self) -> None:
        self.sent: list[protocol.Command] = []

    def __call__(self, inc: IncidentInfo) -> tuple[Sound, protocol.Command]:
        sound = Sound(HAMLET, PATTERN, 30, 5)
        cmd = sound_command(sound, T0, 60.0, incident_id=inc.incident_id,
                            cmd_id=first_sound_id(inc.incident_id))
        self.sent.append(cmd)
        return sound, cmd


def batch(store: Store, items: list[tuple[str, protocol.Alarm, int]], gongs: Gongs,
          memory: Memory) -> Any:
    return store_alarm_batch(store, items, window_s=WINDOW_S, noisy_max_fanouts=None,
                             noisy_window_s=600, publish=gongs, memory=memory)


def test_incident_and_sound_ids_are_derived_from_key_and_window(store: Store) -> None:
    gongs, mem = Gongs(), Memory()
    outs, _ = batch(store, [("na-sang-01", press(), T0)], gongs, mem)
    start = window_start(T0, WINDOW_S * 1000)
    assert start == T0 - 400_000
    assert outs[0].incident_id == incident_id(KEY, start)
    assert gongs.sent[0].cmd_id == first_sound_id(outs[0].incident_id)
    # closed early, the same bucket's next incident is the next generation
    store.incidents.resolve(outs[0].incident_id, "op", Outcome.REAL, None, T0 + 1)
    again, _ = batch(store, [("na-sang-01", press(), T0 + 2)], gongs, mem)
    assert again[0].incident_id == incident_id(KEY, start, 1) and again[0].fan_out


@pytest.mark.parametrize("failures", [1, 2])
def test_a_failed_commit_retried_sends_one_sound_for_the_incident_it_stores(
        store: Store, failures: int) -> None:
    gongs, mem = Gongs(), Memory()
    with outage(store.engine, times=failures) as o:
        outs, _ = batch(store, [("na-sang-01", press(), T0)], gongs, mem)
    assert o.failed == failures
    assert len(gongs.sent) == 1   # published in the first attempt, never again
    assert gongs.sent[0].incident_id == outs[0].incident_id
    assert store.incidents.get(outs[0].incident_id) is not None
    assert [c.cmd_id for c in store.commands.for_incident(outs[0].incident_id)] == [
        gongs.sent[0].cmd_id]
    assert store.incidents.count() == 1 and not mem.pins


def test_a_retry_that_would_now_decide_otherwise_keeps_the_incident_that_sounded(
        store: Store, db_url: str, mocker: MockerFixture) -> None:  # noqa: F811
    # Between the failed commit and its retry another replica opens an incident of the
    # same key (from the previous bucket, still within its window): correlation alone
    # would now join it, and the sound already out would name a phantom.
    other = Store.open(db_url)
    gongs, mem = Gongs(), Memory()

    def replica_wins() -> None:
        batch(other, [("na-sang-02", press(), T0 - 400_001)], Gongs(), Memory())

    retry = store.transaction

    def replica_wins_then_retry(*args: Any, **kw: Any) -> Any:
        replica_wins()
        return retry(*args, **kw)

    mocker.patch.object(store, "transaction", side_effect=replica_wins_then_retry)
    try:
        with outage(store.engine, times=1):
            outs, _ = batch(store, [("na-sang-01", press(), T0)], gongs, mem)
    finally:
        other.close()
    assert len(gongs.sent) == 1 and gongs.sent[0].incident_id == outs[0].incident_id
    assert store.incidents.get(outs[0].incident_id) is not None
    assert store.incidents.count() == 2   # the other replica's, and the one that sounded


@pytest.mark.parametrize("at", ["commit", "write"])
def test_while_the_database_cannot_be_written_the_alarm_sounds_and_is_stored_after(
        store: Store, at: str) -> None:
    gongs, mem = Gongs(), Memory()
    a = press()
    batch(store, [("na-sang-02", press("theft"), T0 - 1000)], gongs, mem)   # nodes known
    gongs.sent.clear()
    with outage(store.engine, at=at):
        with pytest.raises(StoreError):   # not stored: the caller acks nothing
            batch(store, [("na-sang-01", a, T0)], gongs, mem)
        assert len(gongs.sent) == 1, "the hamlet sounds though nothing could be stored"
        sounded = gongs.sent[0].incident_id
        assert sounded == incident_id(KEY, window_start(T0, WINDOW_S * 1000))
        assert mem.db_down
        # the node re-sends (no ack), and a second alarm of the hamlet joins in memory
        with pytest.raises(StoreError):
            batch(store, [("na-sang-01", press(alarm_id=a.alarm_id, attempt=2), T0 + 5000),
                          ("na-sang-02", press(), T0 + 6000)], gongs, mem)
        assert len(gongs.sent) == 1
    assert store.alarms.count() == 1 and store.incidents.count() == 1   # only the theft
    # the database is back: the next re-send is stored under the incident that sounded,
    # with its first receipt time, and sounds nothing new
    outs, _ = batch(store, [("na-sang-01", press(alarm_id=a.alarm_id, attempt=3), T0 + 90_000)],
                    gongs, mem)
    assert outs[0].incident_id == sounded and len(gongs.sent) == 1
    stored = store.alarms.get(a.alarm_id)
    assert stored is not None and stored.received_ms == T0
    assert [c.cmd_id for c in store.commands.for_incident(sounded)] == [gongs.sent[0].cmd_id]
    assert store.incidents.count(kind="fire") == 1
    assert not mem.db_down


def test_two_replicas_deciding_during_an_outage_derive_one_incident(
        store: Store, db_url: str) -> None:  # noqa: F811 - fixture parameter
    other = Store.open(db_url)
    mems, gongs = (Memory(), Memory()), (Gongs(), Gongs())
    a1, a2 = press(), press()
    try:
        with outage(store.engine, at="write"), outage(other.engine, at="write"):
            for st, al, node, g, mm, t in ((store, a1, "na-sang-01", gongs[0], mems[0], T0),
                                           (other, a2, "na-sang-02", gongs[1], mems[1],
                                            T0 + 30_000)):
                with pytest.raises(StoreError):
                    batch(st, [(node, al, t)], g, mm)
        ids = {g.sent[0].incident_id for g in gongs}
        assert len(ids) == 1 and len(gongs[0].sent) == len(gongs[1].sent) == 1
        assert gongs[0].sent[0].cmd_id == gongs[1].sent[0].cmd_id   # nodes play it once
        # back: both re-sends are stored, in either order, under that one incident
        o2, _ = batch(other, [("na-sang-02", press(alarm_id=a2.alarm_id, attempt=2),
                                T0 + 60_000)], gongs[1], mems[1])
        o1, _ = batch(store, [("na-sang-01", press(alarm_id=a1.alarm_id, attempt=2),
                               T0 + 61_000)], gongs[0], mems[0])
    finally:
        other.close()
    assert {o1[0].incident_id, o2[0].incident_id} == ids
    assert store.incidents.count(kind="fire") == 1
    inc = store.incidents.get(o1[0].incident_id)
    assert inc is not None and inc.alarm_count == 2 and inc.fanned_out


def test_an_incident_resolved_before_the_outage_takes_no_alarm_decided_in_memory(
        store: Store) -> None:
    gongs, mem = Gongs(), Memory()
    outs, _ = batch(store, [("na-sang-01", press(), T0)], gongs, mem)
    store.incidents.resolve(outs[0].incident_id, "op", Outcome.REAL, None, T0 + 1000)
    a = press()
    with outage(store.engine, at="write"), pytest.raises(StoreError):
        batch(store, [("na-sang-02", a, T0 + 2000)], gongs, mem)
    # memory still thought it open; a read says resolved: a new incident, sounded
    nxt = incident_id(KEY, window_start(T0, WINDOW_S * 1000), 1)
    assert [c.incident_id for c in gongs.sent] == [outs[0].incident_id, nxt]
    again, _ = batch(store, [("na-sang-02", press(alarm_id=a.alarm_id, attempt=2), T0 + 9000)],
                     gongs, mem)
    assert again[0].incident_id == nxt and len(gongs.sent) == 2


def test_an_incident_closed_while_its_alarm_waited_is_reopened_by_it(
        store: Store, db_url: str) -> None:  # noqa: F811 - fixture parameter
    other = Store.open(db_url)
    try:
        gongs, mem = Gongs(), Memory()
        a1 = press()
        with outage(store.engine, at="write"), pytest.raises(StoreError):
            batch(store, [("na-sang-01", a1, T0)], gongs, mem)
        # a healthy replica stores the hamlet's other alarm in the same incident; an
        # operator resolves it; then this hub's database is back and the node re-sends
        outs, _ = batch(other, [("na-sang-02", press(), T0 + 1000)], Gongs(), Memory())
        assert outs[0].incident_id == gongs.sent[0].incident_id
        other.incidents.resolve(outs[0].incident_id, "op", Outcome.REAL, None, T0 + 2000)
    finally:
        other.close()
    back, _ = batch(store, [("na-sang-01", press(alarm_id=a1.alarm_id, attempt=2), T0 + 3000)],
                    gongs, mem)
    assert back[0].incident_id == gongs.sent[0].incident_id and len(gongs.sent) == 1
    inc = store.incidents.get(back[0].incident_id)
    assert inc is not None and inc.is_open and inc.alarm_count == 2
