"""Alarms in, incidents out: storing, correlating and cancelling alarms (PROTOCOL.md 2, 3, 8).

Correlation rule: an alarm joins the open incident of the same kind and hamlet
that holds the correlation key `kind|hamlet|ok` (or `|flagged` for unknown and
disabled nodes, so a flagged alarm can never swallow a real one's fan-out), if
it arrived within `window_s` of that incident's opening on the hub's clock.
The window is counted from the opening, not slid by every press, so a stuck
button cannot hold one incident open forever. The key is UNIQUE: of two
replicas opening the same incident at once, one insert fails and its retry
joins the winner's incident.

Ids: a new incident's id is derived from its key and the window bucket of its
opening alarm (hub.store.ids), so every replica and every retry names it alike.
A pinned alarm (decided, and maybe sounded, before it could be stored:
hub.correlation) is stored under its pinned incident whatever the rows say now:
made with that id if missing (taking the key over), reopened if it was closed.

Group commit: `Alarms.record_batch` stores a whole batch in ONE transaction (one
fsync), with a handful of set-wise statements instead of a dozen ORM round
trips per alarm; `Alarms.record` is the batch of one, so both follow the same
code. A constraint race anywhere in a batch (an incident or an alarm_id that
another replica committed first) rolls the whole batch back and retries it
whole: the retry sees the winner's rows and decides again, alarm by alarm.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    Select,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

import protocol

from ..db import models as m
from . import alarm_sql as sql
from . import convert
from .alarm_cursor import statements_for
from .base import Work
from .ids import incident_id, window_start
from .nodes import ensure_node
from .phone import PhoneAlarm
from .snapshots import AlarmInfo, AlarmOutcome, CancelOutcome, IncidentInfo, IncidentState

OPEN_STATES = (IncidentState.OPEN.value, IncidentState.ACKNOWLEDGED.value)

# One alarm as received: (node id from the topic, the decoded alarm, hub clock at receipt);
# or by phone: (its `tel:` origin, the PhoneAlarm, hub clock at receipt).
AlarmItem = tuple[str, protocol.Alarm | PhoneAlarm, int]
# alarm_id -> (incident id, sounded): decided before it was stored (hub.correlation);
# it is stored under that incident whatever the database holds now.
Pinned = Mapping[str, tuple[str, bool]]


def corr_key(kind: str, hamlet: str | None, node_id: str, flagged: bool,
             late: bool = False) -> str:
    # Without a hamlet (an unknown node that never said where it is) an alarm can
    # only correlate with its own node's. Flagged and late alarms have keys of their
    # own, so neither can swallow a real, live alarm's fan-out.
    where = hamlet if hamlet is not None else "@" + node_id
    return f"{kind}|{where}|{'flagged' if flagged else 'late' if late else 'ok'}"


def _snap_incident(row: dict[str, Any]) -> IncidentInfo:
    return convert.incident(SimpleNamespace(**row))  # type: ignore[arg-type]


def _snap_alarm(row: dict[str, Any]) -> AlarmInfo:
    return convert.alarm(SimpleNamespace(**row))  # type: ignore[arg-type]


class _Batch:
    """One batch's view of the rows it touches, kept in memory for the transaction."""

    def __init__(self, s: Session, items: Sequence[AlarmItem], hamlet_area: str | None,
                 window_ms: int, noisy_max: int | None, noisy_ms: int,
                 pinned: Pinned | None = None, late: frozenset[str] = frozenset()) -> None:
        self.s, self.conn = s, s.connection()
        self.sql = statements_for(self.conn)
        self.pinned: Pinned = pinned or {}
        self.late = late   # alarm ids too old to sound (hub.freshness): stored, never sounded
        self.items, self.hamlet_area = items, hamlet_area
        self.window_ms, self.noisy_max, self.noisy_ms = window_ms, noisy_max, noisy_ms
        self.incidents: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str | None] = {}
        self.alarms: dict[str, dict[str, Any]] = {}   # found in the db, or new in this batch
        self.new_rows: list[dict[str, Any]] = []
        self.joined: dict[str, tuple[int, int]] = {}   # incident -> (alarms added, max ms)
        self.seen: dict[str, int] = {}                 # node -> last received_ms
        self.fanned: dict[str, list[int]] = {}         # node -> opened_ms of its fan-outs
        self.absent: set[str] = set()   # incident ids the load looked for and did not find
        self.keys: dict[tuple[str, str], tuple[str, str | None, bool, bool]] = {}

    def load(self) -> None:
        node_ids = {n for n, _, _ in self.items}
        self.nodes: dict[str, tuple[str | None, bool, bool]] = {
            i: (area, registered, registered and enabled)
            for i, area, registered, enabled in self.sql.nodes(list(node_ids))}
        for node_id, alarm, received_ms in self.items:
            if isinstance(alarm, PhoneAlarm):   # a registered household: its hamlet's
                self.nodes[node_id] = (alarm.area, True, True)
            elif node_id not in self.nodes:   # an unknown node: kept, so operators see it
                ensure_node(self.s, node_id, received_ms)
                self.nodes[node_id] = (None, False, False)
        ids = {a.alarm_id for _, a, _ in self.items}
        for r in self.sql.alarms(list(ids)):
            self.alarms[r["alarm_id"]] = {**r, "_stored": True}
        # The keys and buckets of the new alarms (a batch holds few of each: derived ids
        # are computed once per bucket, not per alarm).
        buckets = {(self._key(n, a)[0], window_start(r, self.window_ms))
                   for n, a, r in self.items if a.alarm_id not in self.alarms}
        keys = {k for k, _ in buckets}
        # With the open incidents of the keys, the ids a new incident would take (first
        # generation of its bucket) and the pinned ones: all in the same one query.
        ids = {incident_id(k, start) for k, start in buckets}
        ids.update(p[0] for a, p in self.pinned.items() if a not in self.alarms)
        if keys:
            for r in self.sql.incidents(list(keys), list(ids)):
                self._keep(r)
            # a new incident's id is then known free without another round trip
            self.absent = ids - self.incidents.keys()
        if self.noisy_max is not None:
            since = min(r for _, _, r in self.items) - self.noisy_ms
            for origin, opened_ms in self.sql.fanned(list(node_ids), since):
                self.fanned.setdefault(origin, []).append(opened_ms)

    def _keep(self, inc: dict[str, Any]) -> None:
        self.incidents[inc["incident_id"]] = inc
        if inc["corr_key"] is not None:
            self.by_key[inc["corr_key"]] = inc["incident_id"]

    def _key(self, node_id: str,
             alarm: protocol.Alarm | PhoneAlarm) -> tuple[str, str | None, bool, bool]:
        # Asked by `load` for each new alarm, then by `one`: computed once per alarm (the
        # nodes, late and pinned ids it reads are fixed once the batch is loaded).
        got = self.keys.get((node_id, alarm.alarm_id))
        if got is None:
            area, known, enabled = self.nodes[node_id]
            hamlet = self.hamlet_area or area
            late = alarm.alarm_id in self.late and alarm.alarm_id not in self.pinned
            got = self.keys[node_id, alarm.alarm_id] = (
                corr_key(alarm.kind.value, hamlet, node_id, not enabled, late), hamlet, known,
                enabled)
        return got

    def _incident(self, inc_id: str) -> dict[str, Any]:
        if inc_id not in self.incidents:
            row = self.sql.incident(inc_id)
            if row is None:
                raise LookupError(f"incident {inc_id} of a stored alarm is missing")
            self._keep(row)
        return self.incidents[inc_id]

    def _exists(self, inc_id: str) -> bool:
        if inc_id in self.incidents:
            return True
        if inc_id in self.absent:
            return False
        row = self.sql.incident(inc_id)
        if row is not None:
            self._keep(row)
        return row is not None

    def _new_id(self, key: str, received_ms: int) -> str:
        # The bucket's first generation was loaded with the batch if it exists; a later
        # one is looked up only when an incident of this bucket was closed early.
        start, gen = window_start(received_ms, self.window_ms), 0
        while self._exists(cand := incident_id(key, start, gen)):
            gen += 1
        return cand

    def _close_window(self, inc: dict[str, Any], key: str) -> None:
        self.conn.execute(sql.CLOSE_WINDOW, {"b_id": inc["incident_id"]})
        inc["corr_key"], self.by_key[key] = None, None

    def _noisy(self, node_id: str, received_ms: int) -> bool:
        if self.noisy_max is None:
            return False
        since = received_ms - self.noisy_ms
        return sum(1 for t in self.fanned.get(node_id, ()) if t > since) >= self.noisy_max

    def _count_fanout(self, inc: dict[str, Any]) -> None:
        if not inc["drill"] and inc["origin_node"] is not None:
            self.fanned.setdefault(inc["origin_node"], []).append(inc["opened_ms"])

    def one(self, node_id: str, alarm: protocol.Alarm | PhoneAlarm,
            received_ms: int) -> AlarmOutcome:
        self.seen[node_id] = max(self.seen.get(node_id, 0), received_ms)
        key, hamlet, known, enabled = self._key(node_id, alarm)
        row = self.alarms.get(alarm.alarm_id)
        if row is not None:
            if row["node_id"] != node_id:
                # Bound to the node that sent it first: another node's copy is refused,
                # unwritten (issue 12), and the caller never acks it with this incident.
                return self._foreign(row, known, enabled)
            return self._copy(row, alarm, known, enabled)
        flagged = not enabled
        # A pinned alarm was decided (and maybe sounded) as live: it stays so.
        late = alarm.alarm_id in self.late and alarm.alarm_id not in self.pinned
        noisy = not flagged and self._noisy(node_id, received_ms)
        inc_id = self.by_key.get(key)
        inc = self.incidents[inc_id] if inc_id is not None else None
        pin = self.pinned.get(alarm.alarm_id)
        if pin is not None:
            # Decided (and maybe sounded) before it could be stored: its incident is the
            # one that sounded. If that incident is new here and another holds the key,
            # the sounded one takes the key over (the newer sound is what plays now).
            if self._exists(pin[0]):
                inc = self.incidents[pin[0]]
                if inc["state"] not in OPEN_STATES:
                    # Closed while this alarm, which sounded as it, waited to be stored:
                    # it is open again, so operators see the alarm (rule 3's intent).
                    self.conn.execute(sql.REOPEN, {"b_id": pin[0]})
                    inc.update(state=IncidentState.OPEN.value, resolved_ms=None,
                               resolved_by=None, outcome=None)
            elif inc is not None:
                self._close_window(inc, key)
                inc = None
        elif inc is not None and received_ms - inc["opened_ms"] > self.window_ms:
            # Its window is over: it stays open for operators but takes no more alarms.
            self._close_window(inc, key)
            inc = None
        fan_out = False
        if inc is None:
            inc = {c.name: None for c in sql.INCIDENTS.columns}
            sounded = pin is not None and pin[1]
            inc.update(incident_id=pin[0] if pin is not None else self._new_id(key, received_ms),
                       kind=alarm.kind.value, area=hamlet,
                       origin_node=node_id, state=IncidentState.OPEN.value, corr_key=key,
                       opened_ms=received_ms, last_alarm_ms=received_ms, alarm_count=1,
                       drill=False, escalation_level=0, flagged=flagged,
                       fanout_held=noisy and not sounded and not late, late=late,
                       fanned_out=sounded or (not flagged and not noisy and not late))
            self.sql.insert_incident(inc)   # the UNIQUE corr_key decides a race
            self._keep(inc)
            self.absent.discard(inc["incident_id"])
            fan_out = bool(inc["fanned_out"])
            if fan_out:
                self._count_fanout(inc)
            new_incident = True
        else:
            new_incident = False
            n, last = self.joined.get(inc["incident_id"], (0, 0))
            self.joined[inc["incident_id"]] = (n + 1, max(last, received_ms))
            inc["alarm_count"] += 1
            inc["last_alarm_ms"] = max(inc["last_alarm_ms"] or 0, received_ms)
            if not inc["fanned_out"] and not flagged and not noisy and not late:
                # The incident was held (a noisy node opened it); a good node's alarm
                # confirms it, and exactly one confirming alarm sounds it (compare-and-set).
                won = self.conn.execute(sql.CONFIRM, {"b_id": inc["incident_id"]})
                fan_out = won.rowcount == 1
                inc["fanned_out"] = True
                if fan_out:
                    self._count_fanout(inc)
        new = dict(
            alarm_id=alarm.alarm_id, node_id=node_id, kind=alarm.kind.value,
            pressed_ms=alarm.ts_ms, received_ms=received_ms, source=alarm.source.value,
            button=alarm.button, attempts=alarm.attempt, copies=1,
            incident_id=inc["incident_id"], area=hamlet, unknown_node=not known,
            disabled_node=known and not enabled, fanout_held=noisy and not late, drill=False,
            cancelled=False, cancelled_ms=None, late=late)
        self.new_rows.append(new)
        self.alarms[alarm.alarm_id] = {**new, "_stored": False}
        return AlarmOutcome(alarm.alarm_id, inc["incident_id"], True, new_incident, known,
                            enabled, fan_out, _snap_incident(inc), _snap_alarm(new))

    def _foreign(self, row: dict[str, Any], known: bool, enabled: bool) -> AlarmOutcome:
        snap = {k: v for k, v in row.items() if k != "_stored"}
        inc = self._incident(row["incident_id"])
        return AlarmOutcome(row["alarm_id"], row["incident_id"], False, False, known, enabled,
                            False, _snap_incident(inc), _snap_alarm(snap), foreign=True)

    def _copy(self, row: dict[str, Any], alarm: protocol.Alarm | PhoneAlarm, known: bool,
              enabled: bool) -> AlarmOutcome:
        # A copy: re-sent after a lost ack, or by a second replica. Same answer.
        if row.pop("_stored"):
            # In SQL, not Python: copies arriving on two replicas must both count.
            t = sql.ALARMS
            self.conn.execute(update(t).where(t.c.alarm_id == row["alarm_id"]).values(
                copies=t.c.copies + 1,
                attempts=case((t.c.attempts < alarm.attempt, alarm.attempt),
                              else_=t.c.attempts)))
            fresh = self.conn.execute(select(t).where(t.c.alarm_id == row["alarm_id"])).one()
            row.update(fresh._mapping)
            row["_stored"] = True
        else:   # a copy of an alarm new in this very batch: its row is not written yet
            row["copies"] += 1
            row["attempts"] = max(row["attempts"], alarm.attempt)
            row["_stored"] = False
        inc = self._incident(row["incident_id"])
        snap = {k: v for k, v in row.items() if k != "_stored"}
        return AlarmOutcome(row["alarm_id"], row["incident_id"], False, False, known, enabled,
                            False, _snap_incident(inc), _snap_alarm(snap))

    def write(self) -> None:
        """The batch's set-wise writes: joined incidents, new alarm rows, nodes' last seen."""
        if self.joined:
            self.sql.join({i: (n, ms, self.incidents[i]["alarm_count"],
                               self.incidents[i]["last_alarm_ms"])
                           for i, (n, ms) in self.joined.items()})
        if self.new_rows:
            # the alarm_id primary key decides a copy racing on another replica
            by_id = {r["alarm_id"]: r for r in self.new_rows}   # in-batch copies updated it
            self.sql.insert_alarms([
                {k: v for k, v in self.alarms[i].items() if k != "_stored"} for i in by_id])
        self.sql.seen(self.seen)


A = m.Alarm


class Alarms:
    """Alarms: stored and correlated in batches, cancelled by their node, queried."""

    def __init__(self, work: Work) -> None:
        self._work = work

    def record(self, node_id: str, alarm: protocol.Alarm, received_ms: int, *,
               window_s: float, hamlet_area: str | None = None,
               noisy_max_fanouts: int | None = None,
               noisy_window_s: float = 600.0) -> AlarmOutcome:
        """Store one alarm (a batch of one); see `record_batch`."""
        return self.record_batch([(node_id, alarm, received_ms)], window_s=window_s,
                                 hamlet_area=hamlet_area, noisy_max_fanouts=noisy_max_fanouts,
                                 noisy_window_s=noisy_window_s)[0]

    def record_batch(self, items: Sequence[AlarmItem], *, window_s: float,
                     hamlet_area: str | None = None, noisy_max_fanouts: int | None = None,
                     noisy_window_s: float = 600.0,
                     decided: Callable[[list[AlarmOutcome]], None] | None = None,
                     pinned: Pinned | None = None,
                     late: frozenset[str] = frozenset()) -> list[AlarmOutcome]:
        """Store `items` in order in ONE transaction; one outcome per item, in order.

        Idempotent on alarm_id (also within the batch), correlated on each item's
        receipt time exactly as if they had been stored one by one. On the Database
        this is its own transaction: when it returns, every alarm of the batch is
        committed (durable), and only then may `received` be acked. In a unit of work
        (`Store.transaction`) the unit's commit makes them durable. `decided(outcomes)`
        runs once every alarm's incident is decided (new incidents inserted, so a race
        with another replica has surfaced), before the alarm rows are written (the hub
        publishes new incidents' sounds there); on a retried race it runs again, with
        the retry's outcomes. `pinned` alarms (decided before they could be stored:
        alarm_id -> (incident id, sounded)) are stored under that incident, made with
        that id if the database does not hold it yet. `late` alarm ids (too old to
        sound: hub.freshness) are stored as late, in late incidents that never fan out.
        An alarm_id already stored for another node is no copy: its outcome is
        `foreign` and nothing is written for it.
        """
        if not items:
            return []
        window_ms = int(window_s * 1000)
        noisy_ms = int(noisy_window_s * 1000)

        def tx(s: Session) -> list[AlarmOutcome]:
            batch = _Batch(s, items, hamlet_area, window_ms, noisy_max_fanouts, noisy_ms,
                           pinned, late)
            batch.load()
            outs = [batch.one(n, a, r) for n, a, r in items]
            if decided is not None:
                # The gongs need not wait for the alarm rows to be written, nor for the
                # commit.
                decided(outs)
            batch.write()
            return outs

        return self._work.write(tx, urgent=True)

    def cancel(self, node_id: str, cancel: protocol.Cancel, received_ms: int) -> CancelOutcome:
        def tx(s: Session) -> CancelOutcome:
            row = s.get(m.Alarm, cancel.alarm_id)
            if row is None or row.node_id != node_id:
                # Only a node's own alarm may be cancelled by it (rule 8's spirit).
                return CancelOutcome(None, None, False, False)
            inc = s.get(m.Incident, row.incident_id)
            assert inc is not None
            new = not row.cancelled
            row.cancelled = True
            row.cancelled_ms = row.cancelled_ms or received_ms
            s.flush()
            closed = False
            if new and inc.state in OPEN_STATES:
                left = s.scalar(select(func.count()).select_from(m.Alarm).where(
                    m.Alarm.incident_id == inc.incident_id, m.Alarm.cancelled.is_(False)))
                if not left:
                    inc.state = IncidentState.CANCELLED.value
                    inc.resolved_ms = received_ms
                    inc.resolved_by = f"node:{node_id}"
                    inc.corr_key = None
                    closed = True
            return CancelOutcome(convert.alarm(row), convert.incident(inc), new, closed)

        return self._work.write(tx)

    # --- queries -------------------------------------------------------------------------------

    def get(self, alarm_id: str) -> AlarmInfo | None:
        with self._work.read() as s:
            row = s.get(A, alarm_id.lower())
            return convert.alarm(row) if row else None

    def find(self, *, node_id: str | None = None, incident_id: str | None = None,
             kind: str | None = None, since_ms: int | None = None,
             until_ms: int | None = None, flagged: bool | None = None,
             limit: int = 100, offset: int = 0) -> list[AlarmInfo]:
        """Alarms matching every filter given, newest first."""
        q = _alarm_filters(select(A), node_id, incident_id, kind, since_ms, until_ms, flagged)
        q = q.order_by(A.received_ms.desc(), A.alarm_id).limit(limit).offset(offset)
        with self._work.read() as s:
            return [convert.alarm(r) for r in s.scalars(q)]

    def count(self, *, node_id: str | None = None, incident_id: str | None = None,
              kind: str | None = None, since_ms: int | None = None,
              until_ms: int | None = None, flagged: bool | None = None) -> int:
        q = _alarm_filters(select(func.count()).select_from(A), node_id, incident_id,
                           kind, since_ms, until_ms, flagged)
        with self._work.read() as s:
            return int(s.scalar(q) or 0)


def _alarm_filters(q: Select[Any], node_id: str | None, incident_id: str | None,
                   kind: str | None, since_ms: int | None, until_ms: int | None,
                   flagged: bool | None) -> Select[Any]:
    if node_id is not None:
        q = q.where(A.node_id == node_id)
    if incident_id is not None:
        q = q.where(A.incident_id == incident_id)
    if kind is not None:
        q = q.where(A.kind == kind)
    if since_ms is not None:
        q = q.where(A.received_ms >= since_ms)
    if until_ms is not None:
        q = q.where(A.received_ms < until_ms)
    if flagged is True:
        q = q.where(or_(A.unknown_node.is_(True), A.disabled_node.is_(True)))
    elif flagged is False:
        q = q.where(A.unknown_node.is_(False), A.disabled_node.is_(False))
    return q
