"""Two hub replicas as real processes on PostgreSQL and a real Mosquitto; one killed mid-burst.

What a district relies on when it runs two hubs: an alarm pressed while one
of them dies is still stored and acked (the node re-sends until acked, and
the shared subscription hands the copy to the survivor), it still joins the
one incident of its kind and hamlet, and the dead hub's supervision passes to
the survivor: a node lost afterwards is still reported.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hub.store import Store, TroubleKind
from protocol import Kind
from tests.scale.support import HubProcess, Panel, hub_toml, registry_text, wait_until
from tests.support.broker import Mosquitto
from tests.support.hub_harness import BareNode, Beater
from tests.support.hubdb import pg_database, reset_pg  # noqa: F401 - fixtures
from tests.support.wire import Wire

HAMLETS = [f"tinh/huyen/xa/thon-{h}" for h in range(5)]
BURST_NODES = {f"n{h}-{i:02d}": area for h, area in enumerate(HAMLETS) for i in range(10)}
WATCHMAN = ("canh-01", "tinh/huyen/xa/thon-canh")   # alone in its hamlet: a node trouble
KINDS = (Kind.FIRE, Kind.THEFT)
GROUP = "tiengmo"

TIMERS = {
    "heartbeat_s": 1.0, "missing_after_heartbeats": 3, "loss_debounce_s": 1.5,
    "report_within_s": 5.0, "time_beacon_s": 1.0, "escalate_after_s": 600.0,
    "failed_to_sound_s": 600.0, "correlation_window_s": 600.0, "noisy_max_fanouts": 100,
    "reconnect_min_s": 1.0, "reconnect_max_s": 2.0, "orphan_check_s": 0.5,
    "orphan_grace_s": 3.0,
}


@pytest.fixture
def pg(pg_database: str) -> str:  # noqa: F811
    reset_pg(pg_database)
    return pg_database


def leader_of(url: str) -> str | None:
    """Which hub holds the leader lock, from PostgreSQL's own view of its sessions."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database() "
            "AND a.application_name LIKE 'tiengmo-leader-%'").fetchone()
    return None if row is None else str(row[0]).removeprefix("tiengmo-leader-")


@pytest.fixture
def replicas(broker: Mosquitto, pg: str, tmp_path: Path) -> Iterator[dict[str, HubProcess]]:
    nodes = {**BURST_NODES, WATCHMAN[0]: WATCHMAN[1]}
    (tmp_path / "registry.toml").write_text(registry_text(nodes), encoding="utf-8")
    conf = hub_toml(tmp_path / "hub.toml", **TIMERS)
    common = ["--config", str(conf), "--broker", broker.url, "--db", pg,
              "--registry", str(tmp_path / "registry.toml"), "--shared-group", GROUP]
    hubs = {h: HubProcess(tmp_path, h, common) for h in ("hub-a", "hub-b")}
    try:
        yield hubs
    finally:
        for h in hubs.values():
            h.stop()


def test_a_replica_killed_mid_burst_loses_no_alarm_and_hands_over_supervision(
        broker: Mosquitto, wire: Wire, pg: str, replicas: dict[str, HubProcess]) -> None:
    wire.subscribe("mo/v1/hubs/+/state", 1)
    wait_until(lambda: {m.json().get("hub_id") for m in wire.messages
                        if m.json().get("online")} >= set(replicas), 60, "both hubs' births")
    leader = wait_until(lambda: leader_of(pg), 15, "a leader")
    survivor = next(h for h in replicas if h != leader)

    panel = Panel(broker.host, broker.port, BURST_NODES, resend_s=1.0, heartbeat_s=1.0)
    watchman = BareNode(broker, WATCHMAN[0], area=WATCHMAN[1])
    beater = Beater([watchman], 0.5)
    try:
        presses = [(node_id, kind) for kind in KINDS for node_id in BURST_NODES]
        sent: list[str] = []
        for i, (node_id, kind) in enumerate(presses):
            if i == len(presses) // 2:
                # Frozen first, so the broker surely hands it some of the next alarms
                # (round robin), then killed with them unprocessed: only re-sends save them.
                replicas[leader].freeze()
            if i == len(presses) // 2 + 10:
                replicas[leader].kill()
            sent.append(panel.press(node_id, kind))
            time.sleep(0.01)
        assert panel.wait_all_acked(60), f"{len(panel.outbox)} alarms never acked"

        with Store.open(pg, migrate=False) as store:
            # No alarm lost: every alarm_id is stored, once.
            stored = {a.alarm_id: a for a in store.alarms.find(limit=10_000)}
            assert set(sent) <= set(stored)
            assert store.alarms.count() == len(sent)
            # No duplicate incident: exactly one per kind and hamlet.
            incidents = store.incidents.find(limit=1000)
            per_key = Counter((i.kind, i.area) for i in incidents)
            assert per_key == Counter({(k.value, h): 1 for k in KINDS for h in HAMLETS})
            # Every ack names the incident its alarm is stored in.
            for alarm_id in sent:
                assert {a["incident_id"] for a in panel.received[alarm_id]} == \
                    {stored[alarm_id].incident_id}
            # A replica killed between deciding an incident and recording its `sound`
            # leaves it to the leader's orphan check: every incident sounds in the end.
            unsounded = [i.incident_id for i in incidents
                         if not store.commands.for_incident(i.incident_id)]
            wait_until(lambda: all(store.commands.for_incident(i.incident_id)
                                   for i in incidents), 30, "every incident sounded")
        copies = sum(panel.sent.values())
        assert copies > len(sent)            # some alarms died with the leader and came again

        # Supervision passed to the survivor: a node lost now is still reported.
        wait_until(lambda: leader_of(pg) == survivor, 15, f"{survivor} to take the lead")
        beater.drop(watchman)
        watchman.kill()
        with Store.open(pg, migrate=False) as store:
            trouble = wait_until(
                lambda: [t for t in store.troubles.find(open_only=True)
                         if t.subject == WATCHMAN[0]
                         and t.kind == TroubleKind.NODE_OFFLINE.value], 30,
                "the watchman's trouble")
        assert len(trouble) == 1
        assert "leads supervision and escalation now" in replicas[survivor].text()
        assert replicas[leader].proc.returncode == -9
        print(f"{len(sent)} alarms, {copies} copies sent, leader {leader} killed, "
              f"{survivor} took over; incidents the orphan check had to sound: {len(unsounded)}")
    finally:
        beater.stop()
        panel.close()
