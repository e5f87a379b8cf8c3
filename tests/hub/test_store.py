"""Store behaviour on real SQLite and PostgreSQL: alarms, correlation, cancel, concurrency."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

import protocol
from hub.store import AlarmOutcome, IncidentState, Outcome, Store
from tests.support.hubdb import db_url, pg_database  # noqa: F401 - fixtures

HAMLET = "bach-thong/vi-huong/na-sang"
OTHER = "bach-thong/vi-huong/na-cha"
WINDOW_S = 600.0

REGISTRY = protocol.parse_registry({
    "areas": [{"path": HAMLET, "name": "Thôn Nà Sang"}, {"path": OTHER, "name": "Thôn Nà Chá"}],
    "nodes": [
        {"id": "na-sang-01", "area": HAMLET},
        {"id": "na-sang-02", "area": HAMLET},
        {"id": "na-sang-03", "area": HAMLET, "enabled": False},
        {"id": "na-cha-01", "area": OTHER},
    ],
})


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:  # noqa: F811 - fixture parameter
    s = Store.open(db_url)
    s.nodes.sync_registry(REGISTRY)
    yield s
    s.close()


def alarm(kind: str = "fire", attempt: int = 1, alarm_id: str | None = None) -> protocol.Alarm:
    return protocol.Alarm(alarm_id or protocol.new_id(), protocol.Kind(kind), 1_700_000_000_000,
                          protocol.Source.BUTTON, attempt, button=2)


def test_the_same_alarm_three_times_is_one_row_and_one_incident(store: Store) -> None:
    a = alarm()
    outs = [store.alarms.record("na-sang-01", alarm(alarm_id=a.alarm_id, attempt=n), 1000 + n,
                                window_s=WINDOW_S) for n in (1, 2, 3)]
    assert [o.new_alarm for o in outs] == [True, False, False]
    assert [o.fan_out for o in outs] == [True, False, False]
    assert len({o.incident_id for o in outs}) == 1
    assert store.alarms.count() == 1
    stored = store.alarms.get(a.alarm_id)
    assert stored is not None and stored.attempts == 3 and stored.copies == 3
    assert stored.received_ms == 1001          # the hub's clock at first receipt
    assert outs[-1].incident.alarm_count == 1


def test_same_kind_and_hamlet_within_window_join_one_incident(store: Store) -> None:
    first = store.alarms.record("na-sang-01", alarm(), 10_000, window_s=WINDOW_S)
    second = store.alarms.record("na-sang-02", alarm(), 10_000 + 599_000, window_s=WINDOW_S)
    assert first.new_incident and first.fan_out
    assert second.incident_id == first.incident_id
    assert not second.new_incident and not second.fan_out   # only the first fans out
    assert second.incident.alarm_count == 2
    assert second.incident.last_alarm_ms == 609_000
    assert store.incidents.count() == 1


def test_outside_the_window_opens_a_second_incident(store: Store) -> None:
    first = store.alarms.record("na-sang-01", alarm(), 10_000, window_s=60)
    later = store.alarms.record("na-sang-02", alarm(), 10_000 + 61_000, window_s=60)
    assert later.incident_id != first.incident_id
    assert later.new_incident and later.fan_out
    # the first stays open for the operators, it only stopped taking alarms
    assert {i.incident_id for i in store.incidents.active()} == {first.incident_id,
                                                                 later.incident_id}


def test_window_is_measured_on_the_hub_clock_not_the_node_clock(store: Store) -> None:
    early = protocol.Alarm(protocol.new_id(), protocol.Kind.FIRE, 1, protocol.Source.BUTTON, 1)
    late = protocol.Alarm(protocol.new_id(), protocol.Kind.FIRE, 10**12,
                          protocol.Source.BUTTON, 1)
    a = store.alarms.record("na-sang-01", early, 50_000, window_s=60)
    b = store.alarms.record("na-sang-02", late, 51_000, window_s=60)
    assert a.incident_id == b.incident_id


def test_different_kind_or_hamlet_are_different_incidents(store: Store) -> None:
    fire = store.alarms.record("na-sang-01", alarm("fire"), 1000, window_s=WINDOW_S)
    theft = store.alarms.record("na-sang-02", alarm("theft"), 1001, window_s=WINDOW_S)
    other = store.alarms.record("na-cha-01", alarm("fire"), 1002, window_s=WINDOW_S)
    assert len({fire.incident_id, theft.incident_id, other.incident_id}) == 3
    assert fire.fan_out and theft.fan_out and other.fan_out
    assert fire.incident.area == HAMLET and other.incident.area == OTHER


def test_resolved_incident_takes_no_more_alarms(store: Store) -> None:
    first = store.alarms.record("na-sang-01", alarm(), 1000, window_s=WINDOW_S)
    store.incidents.resolve(first.incident_id, "officer", Outcome.REAL, None, 2000)
    again = store.alarms.record("na-sang-02", alarm(), 3000, window_s=WINDOW_S)
    assert again.incident_id != first.incident_id and again.fan_out


def test_unknown_node_alarm_is_stored_flagged_and_never_fans_out(store: Store) -> None:
    out = store.alarms.record("stranger-01", alarm(), 1000, window_s=WINDOW_S)
    assert out.new_alarm and out.new_incident
    assert not out.node_known and not out.node_enabled
    assert not out.fan_out
    assert out.incident.flagged and not out.incident.fanned_out
    assert out.alarm.unknown_node
    assert store.alarms.count(flagged=True) == 1
    node = store.nodes.get("stranger-01")
    assert node is not None and not node.registered


def test_disabled_node_alarm_is_stored_flagged_and_never_fans_out(store: Store) -> None:
    out = store.alarms.record("na-sang-03", alarm(), 1000, window_s=WINDOW_S)
    assert out.node_known and not out.node_enabled and not out.fan_out
    assert out.incident.flagged and out.alarm.disabled_node
    assert out.incident.area == HAMLET


def test_flagged_alarm_never_swallows_a_real_one(store: Store) -> None:
    bad = store.alarms.record("na-sang-03", alarm(), 1000, window_s=WINDOW_S)
    real = store.alarms.record("na-sang-01", alarm(), 1001, window_s=WINDOW_S)
    assert real.incident_id != bad.incident_id
    assert real.fan_out


def test_noisy_node_is_stored_and_acked_but_held_back(store: Store) -> None:
    outs = [store.alarms.record("na-sang-01", alarm(kind), 1000 + i, window_s=WINDOW_S,
                                noisy_max_fanouts=2, noisy_window_s=600)
            for i, kind in enumerate(["fire", "theft", "flood"])]
    assert [o.fan_out for o in outs] == [True, True, False]
    held = outs[2]
    assert held.new_alarm and held.incident.fanout_held and held.alarm.fanout_held
    assert store.alarms.count() == 3
    # a well-behaved neighbour confirming it sounds it, exactly once
    confirm = store.alarms.record("na-sang-02", alarm("flood"), 2000, window_s=WINDOW_S,
                                  noisy_max_fanouts=2)
    assert confirm.incident_id == held.incident_id and confirm.fan_out
    again = store.alarms.record("na-sang-02", alarm("flood"), 2001, window_s=WINDOW_S,
                                noisy_max_fanouts=2)
    assert not again.fan_out


def test_cancel_closes_the_incident_once_every_alarm_is_cancelled(store: Store) -> None:
    a, b = alarm(), alarm()
    first = store.alarms.record("na-sang-01", a, 1000, window_s=WINDOW_S)
    store.alarms.record("na-sang-02", b, 1001, window_s=WINDOW_S)
    wrong = store.alarms.cancel("na-sang-02", protocol.Cancel(a.alarm_id, 5), 1100)
    assert wrong.alarm is None                      # only a node's own alarm
    one = store.alarms.cancel("na-sang-01", protocol.Cancel(a.alarm_id, 5), 1200)
    assert one.new_cancel and not one.incident_cancelled
    two = store.alarms.cancel("na-sang-02", protocol.Cancel(b.alarm_id, 5), 1300)
    assert two.incident_cancelled
    assert two.incident is not None and two.incident.state is IncidentState.CANCELLED
    assert not store.alarms.cancel("na-sang-02", protocol.Cancel(b.alarm_id, 5), 1400).new_cancel
    fresh = store.alarms.record("na-sang-01", alarm(), 1500, window_s=WINDOW_S)
    assert fresh.incident_id != first.incident_id


def test_database_itself_refuses_two_correlating_incidents(store: Store) -> None:
    out = store.alarms.record("na-sang-01", alarm(), 1000, window_s=WINDOW_S)
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO incidents (incident_id, kind, area, state, corr_key, opened_ms, "
            "alarm_count, drill, escalation_level, fanned_out, flagged, fanout_held) "
            "SELECT :id, kind, area, state, corr_key, opened_ms, 0, drill, 0, fanned_out, "
            "flagged, fanout_held FROM incidents WHERE incident_id = :src"),
            {"id": protocol.new_id(), "src": out.incident_id})


def _press_together(stores: list[Store], nodes: list[str], received_ms: int,
                    ) -> list[AlarmOutcome]:
    """Every store presses for every node at the same instant (a barrier), new alarm ids."""
    barrier = threading.Barrier(len(stores) * len(nodes))
    outcomes: list[AlarmOutcome] = []
    lock = threading.Lock()

    def press(st: Store, node: str) -> None:
        a = alarm("fire")
        barrier.wait()
        out = st.alarms.record(node, a, received_ms, window_s=WINDOW_S)
        with lock:
            outcomes.append(out)

    threads = [threading.Thread(target=press, args=(st, node)) for st in stores for node in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def test_concurrent_alarms_from_two_engines_open_one_incident(db_url: str) -> None:  # noqa: F811
    stores = [Store.open(db_url) for _ in range(2)]
    stores[0].nodes.sync_registry(REGISTRY)
    nodes = ["na-sang-01", "na-sang-02", "na-sang-01"]
    rounds = 6
    try:
        for r in range(rounds):
            # each round far outside the last one's window
            outcomes = _press_together(stores, nodes, 10_000_000 * (r + 1))
            assert len(outcomes) == len(stores) * len(nodes)
            ids = {o.incident_id for o in outcomes}
            assert len(ids) == 1, f"round {r}: {len(ids)} incidents"
            assert sum(o.fan_out for o in outcomes) == 1
            assert sum(o.new_incident for o in outcomes) == 1
        assert stores[1].incidents.count() == rounds
        assert stores[1].alarms.count() == rounds * len(stores) * len(nodes)
    finally:
        for st in stores:
            st.close()


def test_concurrent_copies_of_one_alarm_store_one_row(db_url: str) -> None:  # noqa: F811
    stores = [Store.open(db_url) for _ in range(2)]
    stores[0].nodes.sync_registry(REGISTRY)
    a = alarm()
    barrier = threading.Barrier(6)
    results: list[bool] = []

    def send(st: Store) -> None:
        barrier.wait()
        results.append(st.alarms.record("na-sang-01", a, 1000, window_s=WINDOW_S).new_alarm)

    try:
        threads = [threading.Thread(target=send, args=(st,)) for st in stores * 3]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(results) == [False] * 5 + [True]
        assert stores[0].alarms.count() == 1
        stored = stores[0].alarms.get(a.alarm_id)
        assert stored is not None and stored.copies == 6
    finally:
        for st in stores:
            st.close()
