"""The integrations' own reads and writes on the hub's database.

Reads the event log (table `events`, filled by triggers: migration 0002), the
aggregates behind /metrics, and the tables of migration 0003 (webhook subscribers
and deliveries, responders, CAP alerts taken in). Shares the hub store's engine;
each public method is one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from ..db import models as m
from ..store import convert
from ..store.base import Work
from ..store.scope import incident_in, under
from ..store.snapshots import AlarmInfo, CommandInfo, IncidentInfo, NodeInfo, TroubleInfo
from .config import Responder, Subscriber


@dataclass(frozen=True, slots=True)
class Event:
    """One row of the event log: something of `type` changed; `subject` is its key."""

    id: int
    ts_ms: int
    type: str
    subject: str


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    subscriber_id: int
    url: str
    secret: str
    event_id: int
    event_type: str
    payload: str
    attempts: int


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    id: int
    subscriber: str
    event_id: int
    event_type: str
    status: str
    attempts: int
    response_code: int | None
    error: str | None
    created_ms: int
    delivered_ms: int | None


def _rows(result: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in result]


class IntegrationStore:
    """The integrations' tables, on the hub store's unit of work (`store.db`)."""

    def __init__(self, work: Work) -> None:
        self._work = work

    @property
    def engine(self) -> Engine:
        return self._work.engine

    def now_ms(self) -> int:
        return self._work.now_ms()

    # --- the event log -------------------------------------------------------------------------

    def last_event_id(self) -> int:
        with self._work.read() as s:
            return int(s.scalar(select(func.max(m.EventRow.id))) or 0)

    def events_after(self, after_id: int, limit: int = 500) -> list[Event]:
        q = select(m.EventRow).where(m.EventRow.id > after_id).order_by(m.EventRow.id)
        with self._work.read() as s:
            return [Event(r.id, r.ts_ms, r.type, r.subject) for r in s.scalars(q.limit(limit))]

    # --- what the events name ------------------------------------------------------------------

    def incidents(self, ids: Iterable[str]) -> dict[str, IncidentInfo]:
        q = select(m.Incident).where(m.Incident.incident_id.in_(list(ids)))
        with self._work.read() as s:
            return {r.incident_id: convert.incident(r) for r in s.scalars(q)}

    def alarms(self, ids: Iterable[str]) -> dict[str, AlarmInfo]:
        with self._work.read() as s:
            q = select(m.Alarm).where(m.Alarm.alarm_id.in_(list(ids)))
            return {r.alarm_id: convert.alarm(r) for r in s.scalars(q)}

    def nodes(self, ids: Iterable[str] | None = None) -> dict[str, NodeInfo]:
        q = select(m.Node)
        if ids is not None:
            q = q.where(m.Node.id.in_(list(ids)))
        with self._work.read() as s:
            return {r.id: convert.node(r) for r in s.scalars(q)}

    def troubles(self, ids: Iterable[int]) -> dict[int, TroubleInfo]:
        q = select(m.Trouble).where(m.Trouble.id.in_(list(ids)))
        with self._work.read() as s:
            return {r.id: convert.trouble(r) for r in s.scalars(q)}

    def commands(self, ids: Iterable[str]) -> dict[str, CommandInfo]:
        q = select(m.Command).where(m.Command.cmd_id.in_(list(ids)))
        with self._work.read() as s:
            return {r.cmd_id: convert.command(r) for r in s.scalars(q)}

    def first_received(self, incident_ids: Iterable[str]) -> dict[str, int]:
        """The hub's receipt time of each incident's first alarm."""
        q = select(m.Alarm.incident_id, func.min(m.Alarm.received_ms)).where(
            m.Alarm.incident_id.in_(list(incident_ids))).group_by(m.Alarm.incident_id)
        with self._work.read() as s:
            return {iid: int(ms) for iid, ms in s.execute(q) if ms is not None}

    def area_names(self) -> dict[str, str]:
        with self._work.read() as s:
            return {str(p): str(n) for p, n in s.execute(select(m.Area.path, m.Area.name))}

    def recent_incidents(self, limit: int, scope: str | None = None) -> list[IncidentInfo]:
        q = select(m.Incident).where(m.Incident.flagged.is_(False)).order_by(
            m.Incident.opened_ms.desc()).limit(limit)
        if scope is not None:   # a token limited to an area (hub/store/scope.py)
            q = q.where(incident_in(scope))
        with self._work.read() as s:
            return [convert.incident(r) for r in s.scalars(q)]

    def recent_broadcasts(self, limit: int,
                          scope: str | None = None) -> list[tuple[CommandInfo, str | None]]:
        """Operators' warnings (a `sound` to an area with no incident), with their message."""
        q = select(m.Command).where(m.Command.action == "sound",
                                    m.Command.incident_id.is_(None),
                                    m.Command.target_kind == "area").order_by(
            m.Command.issued_ms.desc()).limit(limit)
        if scope is not None:
            q = q.where(under(m.Command.target, scope))
        with self._work.read() as s:
            return [(convert.command(r), r.note) for r in s.scalars(q)]

    def sound_state(self, node_ids: Sequence[str]) -> dict[str, str]:
        """Each node's latest `result` status for a sound or test: started | done | ..."""
        R, C = m.CommandResult, m.Command
        q = select(R.node_id, R.status, R.received_ms, R.id).join(
            C, C.cmd_id == R.cmd_id).where(R.node_id.in_(list(node_ids)),
                                           C.action.in_(("sound", "test", "silence"))
                                           ).order_by(R.received_ms, R.id)
        out: dict[str, str] = {}
        with self._work.read() as s:
            for node_id, status, _ms, _id in s.execute(q):
                out[node_id] = status
        return out

    # --- metrics -------------------------------------------------------------------------------

    def metric_counts(self) -> dict[str, list[tuple[Any, ...]]]:
        """Aggregates for one scrape, in one read transaction."""
        A, Inc, N, T = m.Alarm, m.Incident, m.Node, m.Trouble
        with self._work.read() as s:
            return {
                "alarms": _rows(s.execute(select(A.kind, A.drill, func.count()).group_by(
                    A.kind, A.drill))),
                "incidents": _rows(s.execute(select(Inc.state, Inc.drill, func.count()).group_by(
                    Inc.state, Inc.drill))),
                "nodes": _rows(s.execute(select(N.status, func.count()).where(
                    N.registered.is_(True)).group_by(N.status))),
                "outbox": [(r.id, (r.heartbeat or {}).get("outbox")) for r in s.scalars(
                    select(N).where(N.registered.is_(True)))],
                "troubles": _rows(s.execute(select(T.kind, func.count()).where(
                    T.state == "open").group_by(T.kind))),
                "deliveries": _rows(s.execute(select(
                    m.WebhookDelivery.status, func.count()).group_by(
                    m.WebhookDelivery.status))),
            }

    # --- webhooks ------------------------------------------------------------------------------

    def sync_subscribers(self, subs: Sequence[Subscriber]) -> dict[str, int]:
        """Make the configured subscribers the active ones; returns name -> id."""
        now = self.now_ms()

        def tx(s: Session) -> dict[str, int]:
            rows = {r.name: r for r in s.scalars(select(m.WebhookSubscriber))}
            for sub in subs:
                row = rows.get(sub.name)
                if row is None:
                    row = m.WebhookSubscriber(name=sub.name, created_ms=now)
                    s.add(row)
                    rows[sub.name] = row
                row.url, row.secret, row.events = sub.url, sub.secret, list(sub.events)
                row.active, row.updated_ms = True, now
            names = {sub.name for sub in subs}
            for name, row in rows.items():
                if name not in names and row.active:
                    row.active, row.updated_ms = False, now
            s.flush()
            return {name: r.id for name, r in rows.items() if r.active}

        return self._work.write(tx)

    def enqueue(self, items: Sequence[tuple[int, Event, str]]) -> int:
        """Pending deliveries for (subscriber id, event, JSON body); a pair already queued
        (by this or another replica) is skipped. Returns how many were added."""
        if not items:
            return 0
        now = self.now_ms()

        def tx(s: Session) -> int:
            keys = {(sid, ev.id) for sid, ev, _ in items}
            have = {(int(a), int(b)) for a, b in s.execute(select(
                m.WebhookDelivery.subscriber_id, m.WebhookDelivery.event_id).where(
                m.WebhookDelivery.event_id.in_([k[1] for k in keys])))}
            added = 0
            for sid, ev, body in items:
                if (sid, ev.id) in have:
                    continue
                have.add((sid, ev.id))
                s.add(m.WebhookDelivery(
                    subscriber_id=sid, event_id=ev.id, event_type=ev.type,
                    subject=ev.subject[:260], payload=body, status="pending", attempts=0,
                    next_attempt_ms=now, created_ms=now))
                added += 1
            return added

        return self._work.write(tx)

    def due_deliveries(self, limit: int = 50) -> list[Delivery]:
        now = self.now_ms()
        D, S = m.WebhookDelivery, m.WebhookSubscriber
        q = select(D, S.url, S.secret).join(S, S.id == D.subscriber_id).where(
            D.status == "pending", D.next_attempt_ms <= now, S.active.is_(True)).order_by(
            D.next_attempt_ms, D.id).limit(limit)
        with self._work.read() as s:
            return [Delivery(d.id, d.subscriber_id, url, secret, d.event_id, d.event_type,
                             d.payload, d.attempts) for d, url, secret in s.execute(q)]

    def next_due_ms(self) -> int | None:
        D = m.WebhookDelivery
        with self._work.read() as s:
            v = s.scalar(select(func.min(D.next_attempt_ms)).where(D.status == "pending"))
            return int(v) if v is not None else None

    def record_attempt(self, delivery_id: int, *, ok: bool, code: int | None,
                       error: str | None, next_attempt_ms: int | None) -> None:
        """One attempt's outcome: delivered, pending again at `next_attempt_ms`, or failed
        (no next attempt)."""
        now = self.now_ms()
        status = "delivered" if ok else ("pending" if next_attempt_ms is not None else "failed")
        values: dict[str, Any] = {
            "status": status, "attempts": m.WebhookDelivery.attempts + 1,
            "last_attempt_ms": now, "response_code": code,
            "error": (error or None) and error[:300]}
        if ok:
            values["delivered_ms"] = now
        if next_attempt_ms is not None:
            values["next_attempt_ms"] = next_attempt_ms

        def tx(s: Session) -> None:
            s.execute(update(m.WebhookDelivery).where(m.WebhookDelivery.id == delivery_id)
                      .values(**values))

        self._work.write(tx)

    def deliveries(self, *, event_type: str | None = None, limit: int = 100) -> list[DeliveryInfo]:
        D, S = m.WebhookDelivery, m.WebhookSubscriber
        q = select(D, S.name).join(S, S.id == D.subscriber_id)
        if event_type is not None:
            q = q.where(D.event_type == event_type)
        q = q.order_by(D.id.desc()).limit(limit)
        with self._work.read() as s:
            return [DeliveryInfo(d.id, name, d.event_id, d.event_type, d.status, d.attempts,
                                 d.response_code, d.error, d.created_ms, d.delivered_ms)
                    for d, name in s.execute(q)]

    # --- responders ----------------------------------------------------------------------------

    def sync_responders(self, responders: Sequence[Responder]) -> None:
        """The configured responders replace the previous configured ones."""
        now = self.now_ms()

        def tx(s: Session) -> None:
            s.execute(delete(m.Responder).where(m.Responder.source == "config"))
            for r in responders:
                s.add(m.Responder(area=r.area, phone=r.phone, name=r.name or None,
                                  role=r.role or None, source="config", created_ms=now))

        self._work.write(tx)

    def responders_for(self, area: str) -> list[Responder]:
        """Who must hear of trouble in `area`: responders of the area and of every area
        above it (the commune police hear of every hamlet of the commune)."""
        parts = area.split("/")
        ancestors = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        q = select(m.Responder).where(m.Responder.area.in_(ancestors)).order_by(
            m.Responder.area, m.Responder.id)
        with self._work.read() as s:
            return [Responder(r.area, r.phone, r.name or "", r.role or "")
                    for r in s.scalars(q)]

    # --- CAP alerts taken in -------------------------------------------------------------------

    def cap_seen(self, sender: str, identifier: str) -> list[str] | None:
        """The commands sent for this alert if it was taken in before, else None."""
        q = select(m.CapInbound.cmd_ids).where(m.CapInbound.sender == sender,
                                              m.CapInbound.identifier == identifier)
        with self._work.read() as s:
            row = s.execute(q).first()
            return list(row[0] or []) if row is not None else None

    def record_cap(self, *, sender: str, identifier: str, sent: str, msg_type: str,
                   status: str, actor: str, areas: list[str], cmd_ids: list[str]) -> None:
        now = self.now_ms()

        def tx(s: Session) -> None:
            s.add(m.CapInbound(sender=sender[:200], identifier=identifier[:200], sent=sent[:40],
                               msg_type=msg_type, status=status, received_ms=now,
                               actor=actor[:100], areas=areas, cmd_ids=cmd_ids))

        self._work.write(tx)

    # --- auth ----------------------------------------------------------------------------------

    def token_role(self, token_hash: str) -> tuple[str, str, str | None] | None:
        """(name, role, area) of the API token with this SHA-256, unless revoked."""
        q = select(m.ApiToken.name, m.ApiToken.role, m.ApiToken.area).where(
            m.ApiToken.token_hash == token_hash, m.ApiToken.revoked_ms.is_(None))
        with self._work.read() as s:
            row = s.execute(q).first()
            return (str(row[0]), str(row[1]), row[2]) if row is not None else None
