"""The fuzz target: a running hub on a real Mosquitto, fed one published case at a time.

For every case: publish it with a bare paho client, wait until the hub has
counted it (handled or rejected: each message is counted exactly once), and
check what the hub did against the wire contract (the protocol package decoding
the same bytes is the oracle):

- no crash: the hub counts the case, never as `internal_error`;
- a refused case is a counted rejection with the oracle's reason, and leaves
  the database as it was (no alarm, incident or result row appears);
- a case the contract accepts is handled, and an accepted alarm is stored;
- a case built by a mutation that must be refused is refused by the oracle too.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from hub.runtime import Hub
from protocol import (
    Alarm,
    Cancel,
    Heartbeat,
    HubState,
    Message,
    NodeState,
    ProtocolError,
    Result,
    TopicKind,
    Topics,
    decode,
)
from tests.fuzz.cases import Case
from tests.support.broker import Mosquitto
from tests.support.hub_harness import hub_settings
from tests.support.wire import Wire

T = Topics()
DECODERS: dict[TopicKind, type[Message]] = {
    TopicKind.ALARM: Alarm, TopicKind.CANCEL: Cancel, TopicKind.HEARTBEAT: Heartbeat,
    TopicKind.NODE_STATE: NodeState, TopicKind.RESULT: Result, TopicKind.HUB_STATE: HubState,
}


def oracle(case: Case) -> str | None:
    """None if the wire contract accepts the case, else the reason it is refused."""
    try:
        match = T.parse(case.topic)
        cls = DECODERS.get(match.kind)
        if cls is None:
            return "not_for_hub"
        decode(cls, case.payload)
    except ProtocolError as exc:
        return exc.reason
    return None


class IngestTarget:
    def __init__(self, hub: Hub, wire: Wire) -> None:
        self.hub = hub
        self.wire = wire
        self.tried = 0
        self.alarm_owner: dict[str, str] = {}   # alarm_id -> the node that sent it first
        self.by_mutation: Counter[str] = Counter()
        self.accepted = 0

    def _counts(self) -> tuple[int, Counter[str], Counter[str]]:
        ing = self.hub.ingest
        assert ing is not None
        rejects, handled = Counter(ing.rejects), Counter(ing.handled)
        return sum(rejects.values()) + sum(handled.values()), rejects, handled

    def _rows(self) -> tuple[int, int, int]:
        with self.hub.store.engine.connect() as conn:
            return tuple(int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() or 0)
                         for t in ("alarms", "incidents", "command_results"))  # type: ignore[return-value]

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the hub has counted what arrived so far (its own birth, say)."""
        last = -1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            total, _, _ = self._counts()
            if total == last and self.hub.backlog == 0:
                return
            last = total
            time.sleep(0.2)

    def run(self, case: Case, timeout: float = 10.0) -> str:
        """Publish one case and check the hub's answer; returns its reason or 'accepted'."""
        expected = oracle(case)
        if expected is None and T.parse(case.topic).kind is TopicKind.ALARM:
            # An alarm_id is bound to the first node that sent it (hub.freshness): the
            # same id from another node is refused, whatever the payload's validity.
            node = T.parse(case.topic).node_id
            owner = self.alarm_owner.setdefault(decode(Alarm, case.payload).alarm_id, node)
            if owner != node:
                expected = "foreign_alarm_id"
        if case.must_reject:
            assert expected is not None, f"the contract accepts a {case.mutation} case: {case}"
        total0, rejects0, handled0 = self._counts()
        rows0 = self._rows()
        self.wire.publish(case.topic, case.payload, qos=1)
        deadline = time.monotonic() + timeout
        while True:
            total, rejects, handled = self._counts()
            if total > total0:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the hub did not count {case} within {timeout} s "
                                     "(hung or crashed)")
            time.sleep(0.0005)
        assert total == total0 + 1, (f"one case counted {total - total0} times: {case}; "
                                     f"{dict(handled - handled0)} {dict(rejects - rejects0)}")
        new_rejects = rejects - rejects0
        assert "internal_error" not in new_rejects, f"internal error on {case}"
        self.tried += 1
        self.by_mutation[case.mutation] += 1
        if expected is not None:
            assert new_rejects == Counter({expected: 1}), \
                f"expected a rejection for {expected}, got {dict(new_rejects)}: {case}"
            assert self._rows() == rows0, f"a refused case changed the database: {case}"
            return expected
        assert sum((handled - handled0).values()) == 1, f"not handled: {case}"
        if T.parse(case.topic).kind is TopicKind.ALARM:
            alarm = decode(Alarm, case.payload)
            assert self.hub.store.alarms.get(alarm.alarm_id) is not None, f"not stored: {case}"
        self.accepted += 1
        return "accepted"

    @property
    def rejects(self) -> dict[str, int]:
        ing = self.hub.ingest
        return dict(ing.rejects) if ing is not None else {}


@contextmanager
def ingest_target(workdir: Path) -> Iterator[IngestTarget]:
    """A Mosquitto, a hub on SQLite and a bare publisher, for one fuzz run."""
    broker = Mosquitto(workdir).start()
    hub: Hub | None = None
    wire: Wire | None = None
    try:
        # Quiet timers: nothing but the cases may make the hub count anything. The cases
        # come from a few nodes as fast as they can: a node budget (hub/budget.py) would
        # drop some unparsed, and this run is about parsing each one.
        hub = Hub(hub_settings(broker, workdir, time_beacon_s=30.0, node_budget_per_s=1e6,
                               node_budget_burst=1_000_000)).start()
        assert hub.link is not None and hub.link.wait_connected(10), "hub did not connect"
        wire = Wire(broker.host, broker.port)
        target = IngestTarget(hub, wire)
        target.settle()
        yield target
    finally:
        if wire is not None:
            wire.close()
        if hub is not None:
            hub.stop()
        broker.stop()
