"""Store: registry, births and deaths, heartbeats, commands, troubles, audit (both databases)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

import protocol
from hub.errors import NotFound
from hub.store import NodeStatus, Store
from tests.support.hubdb import db_url, pg_database  # noqa: F401 - fixtures

HAMLET = "bach-thong/vi-huong/na-sang"


def registry(*nodes: dict[str, object]) -> protocol.Registry:
    return protocol.parse_registry({
        "areas": [{"path": HAMLET, "name": "Thôn Nà Sang", "level": "thôn"}],
        "nodes": list(nodes),
    })


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:  # noqa: F811 - fixture parameter
    s = Store.open(db_url)
    s.nodes.sync_registry(registry({"id": "n1", "area": HAMLET, "households": 22},
                                   {"id": "n2", "area": HAMLET}))
    yield s
    s.close()


def birth(boot_id: int) -> protocol.NodeState:
    return protocol.NodeState(True, boot_id, 1, "1.0.0", HAMLET, ("gong",),
                              ((1, protocol.Kind.THEFT), (2, protocol.Kind.FIRE)))


def test_registry_sync_creates_areas_nodes_and_unregisters_the_removed(store: Store) -> None:
    paths = [a.path for a in store.nodes.areas()]
    assert paths == ["bach-thong", "bach-thong/vi-huong", HAMLET]
    sang = store.nodes.areas()[2]
    assert (sang.name, sang.level, sang.depth, sang.parent) == ("Thôn Nà Sang", "thôn", 3,
                                                                "bach-thong/vi-huong")
    n1 = store.nodes.get("n1")
    assert n1 is not None and n1.registered and n1.enabled and n1.households == 22
    store.nodes.sync_registry(registry({"id": "n1", "area": HAMLET, "enabled": False}))
    n1, n2 = store.nodes.get("n1"), store.nodes.get("n2")
    assert n1 is not None and n1.registered and not n1.enabled
    assert n2 is not None and not n2.registered          # history kept, now unknown
    assert [n.id for n in store.nodes.find(area="bach-thong")] == ["n1", "n2"]


def test_operator_registered_node_survives_a_registry_sync(store: Store) -> None:
    store.nodes.register("extra-1", "bach-thong/phu-thong/nga-ba", name="Ngã Ba")
    store.nodes.sync_registry(registry({"id": "n1", "area": HAMLET}))
    node = store.nodes.get("extra-1")
    assert node is not None and node.registered and node.registered_by == "operator"
    assert "bach-thong/phu-thong/nga-ba" in {a.path for a in store.nodes.areas()}


def test_birth_then_stale_death_is_ignored_then_current_death_applies(store: Store) -> None:
    on = store.nodes.record_state("n1", birth(7), 1000)
    assert on.applied and on.node.status is NodeStatus.ONLINE and on.new_boot
    assert on.node.buttons == ((1, "theft"), (2, "fire")) and on.node.outputs == ("gong",)
    stale = store.nodes.record_state("n1", protocol.NodeState(False, 6), 1100)
    assert not stale.applied
    assert store.nodes.get("n1").status is NodeStatus.ONLINE  # type: ignore[union-attr]
    dead = store.nodes.record_state("n1", protocol.NodeState(False, 7), 1200)
    assert dead.applied and dead.node.status is NodeStatus.OFFLINE
    assert dead.previous_status is NodeStatus.ONLINE


def test_unknown_node_birth_is_kept_and_placed_where_it_says(store: Store) -> None:
    change = store.nodes.record_state("stranger", birth(1), 1000)
    assert not change.known
    node = store.nodes.get("stranger")
    assert node is not None and not node.registered and node.area == HAMLET


def test_heartbeat_is_kept_and_brings_a_missing_node_back(store: Store) -> None:
    store.nodes.record_state("n1", birth(3), 1000)
    store.nodes.set_status("n1", NodeStatus.MISSING, 50_000)
    hb = protocol.Heartbeat(3, 10, 1, 300, 2, power=protocol.Power.BATTERY, battery_pct=41.5)
    change = store.nodes.record_heartbeat("n1", hb, 60_000)
    assert change.previous_status is NodeStatus.MISSING
    assert change.node.status is NodeStatus.ONLINE
    assert change.node.last_heartbeat_ms == 60_000
    assert change.node.heartbeat["power"] == "battery"
    assert change.node.heartbeat["battery_pct"] == 41.5 and change.node.heartbeat["outbox"] == 2


def test_heartbeat_does_not_revive_a_dead_node(store: Store) -> None:
    store.nodes.record_state("n1", birth(3), 1000)
    store.nodes.record_state("n1", protocol.NodeState(False, 3), 2000)
    change = store.nodes.record_heartbeat("n1", protocol.Heartbeat(3, 10, 1, 300, 0), 2100)
    assert change.node.status is NodeStatus.OFFLINE


def test_coalesced_heartbeats_follow_the_single_heartbeat_rules(store: Store) -> None:
    """The hub writes heartbeats in bulk; each row ends as record_heartbeat would leave it."""
    store.nodes.register("n3", HAMLET)
    store.nodes.record_state("n1", birth(3), 1000)
    store.nodes.set_status("n1", NodeStatus.MISSING, 50_000)          # missing: comes back
    store.nodes.record_state("n2", birth(3), 1000)
    store.nodes.record_state("n2", protocol.NodeState(False, 3), 2000)  # dead: stays offline
    store.nodes.record_state("n3", birth(5), 1000)
    store.nodes.set_status("n3", NodeStatus.MISSING, 50_000)          # older boot's beat: no
    store.nodes.record_heartbeats([("n2", protocol.Heartbeat(3, 11, 1, 310, 0), 70_000)])
    store.nodes.record_heartbeats([
        ("n1", protocol.Heartbeat(3, 10, 1, 300, 2, power=protocol.Power.BATTERY,
                                  battery_pct=41.5), 60_000),
        ("n2", protocol.Heartbeat(3, 10, 1, 300, 0), 60_000),
        ("n3", protocol.Heartbeat(4, 10, 1, 300, 0), 65_000),           # arrived late
        ("stranger", protocol.Heartbeat(1, 1, 1, 1, 0), 60_000),        # never registered
    ])
    n1, n2, n3, st = (store.nodes.get(n) for n in ("n1", "n2", "n3", "stranger"))
    assert n1 is not None and n1.status is NodeStatus.ONLINE and n1.status_since_ms == 60_000
    assert n1.last_seen_ms == n1.last_heartbeat_ms == 60_000
    assert n1.heartbeat["power"] == "battery" and n1.heartbeat["outbox"] == 2
    assert "v" not in n1.heartbeat and n1.boot_id == 3
    assert n2 is not None and n2.status is NodeStatus.OFFLINE
    assert n2.last_seen_ms == 70_000                                   # never moves back
    assert n3 is not None and n3.status is NodeStatus.MISSING and n3.boot_id == 5
    assert n3.last_seen_ms == 65_000
    assert st is not None and not st.registered and st.status is NodeStatus.ONLINE


def test_coalesced_heartbeat_recreates_a_row_that_vanished(store: Store) -> None:
    beat = protocol.Heartbeat(1, 1, 1, 1, 0)
    store.nodes.record_heartbeats([("stranger", beat, 1000)])
    with store.engine.begin() as conn:   # e.g. a backup restored under the hub
        conn.execute(text("DELETE FROM nodes WHERE id = 'stranger'"))
    store.nodes.record_heartbeats([("stranger", beat, 2000)])
    node = store.nodes.get("stranger")
    assert node is not None and node.last_seen_ms == 2000


def test_operator_node_actions(store: Store) -> None:
    assert not store.nodes.set_enabled("n1", False).enabled
    assert store.nodes.move("n1", "bach-thong/vi-huong/na-cha").area == \
        "bach-thong/vi-huong/na-cha"
    with pytest.raises(NotFound):
        store.nodes.set_enabled("nobody", True)


def sound_cmd(incident_id: str | None = None) -> protocol.Command:
    return protocol.Command(protocol.new_id(), protocol.Action.SOUND, 1000, 61_000,
                            pattern=protocol.default_pattern("fire"), duration_s=120,
                            priority=5, incident_id=incident_id)


def test_commands_and_results_are_kept_once(store: Store) -> None:
    alarm = protocol.Alarm(protocol.new_id(), protocol.Kind.FIRE, 1, protocol.Source.BUTTON, 1)
    inc = store.alarms.record("n1", alarm, 1000, window_s=600).incident
    cmd = sound_cmd(inc.incident_id)
    info = store.commands.record(cmd, "area", HAMLET, issued_by="hub")
    assert store.commands.record(cmd, "area", HAMLET) == info
    assert info.payload == cmd.to_dict()
    assert store.incidents.get(inc.incident_id).sounded_area == HAMLET  # type: ignore[union-attr]
    res = protocol.Result(cmd.cmd_id, protocol.ResultStatus.STARTED, 1100)
    first = store.commands.record_result("n2", res, 1100)
    again = store.commands.record_result("n2", res, 1150)
    assert first.new and not again.new and first.command == info
    store.commands.record_result(
        "n2", protocol.Result(cmd.cmd_id, protocol.ResultStatus.DONE, 1200), 1200)
    assert [r.status for r in store.commands.results_for(cmd.cmd_id)] == ["started", "done"]
    assert [c.cmd_id for c in store.commands.for_incident(inc.incident_id)] == [cmd.cmd_id]
    orphan = store.commands.record_result("n2", protocol.Result(protocol.new_id(),
                                                                protocol.ResultStatus.DONE, 1), 1)
    assert orphan.new and orphan.command is None


def test_one_open_trouble_per_kind_and_subject(store: Store) -> None:
    a = store.troubles.open("node_offline", "n1", {"boot_id": 3}, now_ms=1000)
    b = store.troubles.open("node_offline", "n1", {"seen": 2}, now_ms=2000)
    assert a.new and not b.new and a.id == b.id
    assert store.troubles.open("node_offline", "n2", now_ms=2000).new
    [t] = store.troubles.find(subject="n1")
    assert t.detail == {"boot_id": 3, "seen": 2} and t.opened_ms == 1000
    assert store.troubles.clear("node_offline", "n1", now_ms=3000)
    assert not store.troubles.clear("node_offline", "n1", now_ms=3100)
    assert store.troubles.open("node_offline", "n1", now_ms=4000).new
    history = store.troubles.find(open_only=False, subject="n1")
    assert [(t.state, t.cleared_ms) for t in history] == [("open", None), ("cleared", 3000)]


def test_audit_is_append_only_in_the_database(store: Store) -> None:
    entry = store.audit.record("officer-1", "acknowledge", "inc-1", {"why": "test"}, now_ms=5)
    assert store.audit.entries(subject="inc-1") == [entry]
    for sql in ("UPDATE audit SET actor = 'someone-else'", "DELETE FROM audit"):
        with pytest.raises(DBAPIError), store.engine.begin() as conn:
            conn.execute(text(sql))
    assert store.audit.entries(subject="inc-1") == [entry]
