"""Incident life cycle (acknowledge, resolve, escalate, drills) and the alarm/incident queries.

State changes are conditional UPDATEs (compare-and-set), so two operators or two
replicas acting at once cannot both "win" an acknowledgement or an escalation.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.orm import Session

import protocol

from ..db import models as m
from ..errors import Conflict, InvalidAction, NotFound
from . import convert
from .alarms import OPEN_STATES
from .base import Work
from .snapshots import DRILL_KIND, IncidentInfo, IncidentState, Outcome

I = m.Incident  # noqa: E741 - short alias keeps the query lines readable


def _under(col: Any, area: str) -> ColumnElement[bool]:
    """`col` is `area` or an area below it."""
    return or_(col == area, col.startswith(area + "/", autoescape=True))


ESCALATION_EVENT = "escalation"
STATE_VI = {"open": "đang mở", "acknowledged": "đã được tiếp nhận",
            "resolved": "đã kết thúc", "cancelled": "đã bị hủy"}
OUTCOME_VI = {"real": "thật", "false_alarm": "báo nhầm", "prank": "báo đùa", "test": "thử"}


def conflict(row: m.Incident, action: str, action_vi: str,
             attempted_outcome: str | None = None) -> Conflict:
    """The loser's answer: what the incident is now, by whom and when."""
    state = row.state
    if state == IncidentState.ACKNOWLEDGED.value:
        by, at = row.acknowledged_by, row.acknowledged_ms
    elif state == IncidentState.RESOLVED.value:
        by, at = row.resolved_by, row.resolved_ms
    elif state == IncidentState.CANCELLED.value:
        by, at = row.origin_node, row.last_alarm_ms
    else:
        by, at = None, None
    what = state + (f" as {row.outcome!r}" if row.outcome else "")
    what_vi = STATE_VI.get(state, state) + (
        f" với kết quả \"{OUTCOME_VI.get(row.outcome, row.outcome)}\"" if row.outcome else "")
    who = f" by {by}" if by else ""
    who_vi = f" bởi {by}" if by else ""
    return Conflict(
        f"cannot {action} incident {row.incident_id}: it is now {what}{who}; "
        "nothing was changed",
        f"Không thể {action_vi} vụ việc: vụ việc {what_vi}{who_vi}; không có gì bị thay đổi.",
        current=state, by=by, at_ms=at, outcome=row.outcome,
        attempted_outcome=attempted_outcome, incident_id=row.incident_id)


class Incidents:
    """Incidents: their life cycle and the queries on them."""

    def __init__(self, work: Work) -> None:
        self._work = work

    def open_drill(self, area: str, actor: str, now_ms: int) -> IncidentInfo:
        if not protocol.is_area_path(area):
            raise ValueError(f"area {area!r} is not 1-4 slugs joined by '/'")

        def tx(s: Session) -> IncidentInfo:
            # No correlation key: drills never absorb (or get absorbed by) real alarms.
            row = I(incident_id=protocol.new_id(), kind=DRILL_KIND, area=area, origin_node=None,
                    state=IncidentState.OPEN.value, corr_key=None, opened_ms=now_ms,
                    last_alarm_ms=None, alarm_count=0, drill=True, escalation_level=0,
                    sounded_area=area, fanned_out=True, flagged=False, fanout_held=False,
                    note=f"drill started by {actor}")
            s.add(row)
            s.flush()
            return convert.incident(row)

        return self._work.write(tx)

    def _get(self, s: Session, incident_id: str) -> m.Incident:
        row = s.get(I, incident_id)
        if row is None:
            raise NotFound(f"incident {incident_id!r} does not exist")
        return row

    def acknowledge(self, incident_id: str, actor: str, now_ms: int, *,
                    expected: str | None = None) -> tuple[IncidentInfo, bool]:
        """open -> acknowledged, compare-and-set. The same officer again is a retry
        (unchanged, no error); anyone else finds it taken: Conflict saying by whom."""
        if expected is not None and expected != IncidentState.OPEN.value:
            raise InvalidAction(f"expected_state {expected!r}: only an open incident can "
                                "be acknowledged")

        def tx(s: Session) -> tuple[IncidentInfo, bool]:
            row = self._get(s, incident_id)
            done = s.execute(update(I).where(I.incident_id == incident_id,
                                             I.state == IncidentState.OPEN.value).values(
                state=IncidentState.ACKNOWLEDGED.value, acknowledged_ms=now_ms,
                acknowledged_by=actor))
            s.refresh(row)
            if done.rowcount == 1:  # type: ignore[attr-defined]
                return convert.incident(row), True
            if row.state == IncidentState.ACKNOWLEDGED.value and row.acknowledged_by == actor:
                return convert.incident(row), False
            raise conflict(row, "acknowledge", "tiếp nhận")

        return self._work.write(tx)

    def resolve(self, incident_id: str, actor: str, outcome: Outcome, note: str | None,
                now_ms: int, *, expected: str | None = None) -> tuple[IncidentInfo, bool]:
        """-> resolved with `outcome`, compare-and-set on `expected` (default: open,
        acknowledged or cancelled; a cancelled incident may still be resolved, to record
        what it really was). The same officer with the same outcome again is a retry
        (unchanged); a closed incident is never overwritten: Conflict."""
        outcome = Outcome(outcome)
        closable = [*OPEN_STATES, IncidentState.CANCELLED.value]
        if expected is not None and expected not in closable:
            raise InvalidAction(f"expected_state {expected!r} is not one of "
                                f"{', '.join(closable)}")

        def tx(s: Session) -> tuple[IncidentInfo, bool]:
            row = self._get(s, incident_id)
            states = closable if expected is None else [expected]
            if expected == IncidentState.OPEN.value and row.acknowledged_by == actor:
                states = [*states, IncidentState.ACKNOWLEDGED.value]  # my own ack: not stale
            done = s.execute(update(I).where(
                I.incident_id == incident_id, I.state.in_(states)).values(
                state=IncidentState.RESOLVED.value, resolved_ms=now_ms, resolved_by=actor,
                outcome=outcome.value, note=note, corr_key=None))
            s.refresh(row)
            if done.rowcount == 1:  # type: ignore[attr-defined]
                return convert.incident(row), True
            if (row.state == IncidentState.RESOLVED.value and row.resolved_by == actor
                    and row.outcome == outcome.value):
                return convert.incident(row), False
            raise conflict(row, "resolve", "kết thúc", attempted_outcome=outcome.value)

        return self._work.write(tx)

    def get(self, incident_id: str) -> IncidentInfo | None:
        with self._work.read() as s:
            row = s.get(I, incident_id)
            return convert.incident(row) if row else None

    def active(self, *, include_drills: bool = True, opened_after_ms: int | None = None,
               opened_until_ms: int | None = None) -> list[IncidentInfo]:
        """Open (or acknowledged) incidents, newest first; `opened_after_ms` < opened
        <= `opened_until_ms` when given (the leader's orphan check every 5 s must not
        load every open incident of a busy day)."""
        q = select(I).where(I.state.in_(OPEN_STATES)).order_by(I.opened_ms.desc())
        if not include_drills:
            q = q.where(I.drill.is_(False))
        if opened_after_ms is not None:
            q = q.where(I.opened_ms > opened_after_ms)
        if opened_until_ms is not None:
            q = q.where(I.opened_ms <= opened_until_ms)
        with self._work.read() as s:
            return [convert.incident(r) for r in s.scalars(q)]

    @staticmethod
    def _incident_filters(q: Select[Any], state: str | None, kind: str | None,
                          area: str | None, since_ms: int | None, until_ms: int | None,
                          include_drills: bool) -> Select[Any]:
        if state is not None:
            q = q.where(I.state == state)
        if kind is not None:
            q = q.where(I.kind == kind)
        if area is not None:
            q = q.where(_under(I.area, area))
        if since_ms is not None:
            q = q.where(I.opened_ms >= since_ms)
        if until_ms is not None:
            q = q.where(I.opened_ms < until_ms)
        if not include_drills:
            q = q.where(I.drill.is_(False))
        return q

    def find(self, *, state: str | None = None, kind: str | None = None,
             area: str | None = None, since_ms: int | None = None,
             until_ms: int | None = None, include_drills: bool = True,
             limit: int = 100, offset: int = 0) -> list[IncidentInfo]:
        q = self._incident_filters(select(I), state, kind, area, since_ms, until_ms,
                                   include_drills)
        q = q.order_by(I.opened_ms.desc(), I.incident_id).limit(limit).offset(offset)
        with self._work.read() as s:
            return [convert.incident(r) for r in s.scalars(q)]

    def count(self, *, state: str | None = None, kind: str | None = None,
              area: str | None = None, since_ms: int | None = None,
              until_ms: int | None = None, include_drills: bool = False) -> int:
        q = self._incident_filters(select(func.count()).select_from(I), state, kind, area,
                                   since_ms, until_ms, include_drills)
        with self._work.read() as s:
            return int(s.scalar(q) or 0)

    def due_for_escalation(self, now_ms: int, after_s: float, *,
                           max_level: int | None = None) -> list[IncidentInfo]:
        due = now_ms - int(after_s * 1000)
        q = select(I).where(I.state == IncidentState.OPEN.value, I.drill.is_(False),
                            I.flagged.is_(False), I.fanned_out.is_(True),
                            func.coalesce(I.escalated_ms, I.opened_ms) <= due)
        if max_level is not None:
            q = q.where(I.escalation_level < max_level)
        with self._work.read() as s:
            return [convert.incident(r) for r in s.scalars(q.order_by(I.opened_ms))]

    def mark_escalated(self, incident_id: str, level: int, area: str, now_ms: int) -> bool:
        """Compare-and-set the escalation step; the winner also logs an `escalation` event
        (subject: the incident) in the same transaction, for the integrations' SMS and
        webhooks and the board."""
        def tx(s: Session) -> bool:
            done = s.execute(update(I).where(
                I.incident_id == incident_id, I.escalation_level == level - 1,
                I.state == IncidentState.OPEN.value).values(
                escalation_level=level, escalated_ms=now_ms, sounded_area=area))
            won = bool(done.rowcount == 1)  # type: ignore[attr-defined]
            if won:
                s.add(m.EventRow(ts_ms=now_ms, type=ESCALATION_EVENT, subject=incident_id))
            return won

        return self._work.write(tx)

    def mark_fanned_out(self, incident_id: str, area: str) -> None:
        def tx(s: Session) -> None:
            row = self._get(s, incident_id)
            row.fanned_out = True
            if row.sounded_area is None or protocol.area_contains(area, row.sounded_area):
                row.sounded_area = area

        self._work.write(tx)
