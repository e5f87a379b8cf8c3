"""Alarms in, incidents out: storing, correlating and cancelling alarms (PROTOCOL.md 2, 3, 8).

Correlation rule: an alarm joins the open incident of the same kind and hamlet
that holds the correlation key `kind|hamlet|ok` (or `|flagged` for unknown and
disabled nodes, so a flagged alarm can never swallow a real one's fan-out), if
it arrived within `window_s` of that incident's opening on the hub's clock.
The window is counted from the opening, not slid by every press, so a stuck
button cannot hold one incident open forever. The key is UNIQUE: of two
replicas opening the same incident at once, one insert fails and its retry
joins the winner's incident.
"""

from __future__ import annotations

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

import protocol

from ..db import models as m
from . import convert
from .base import StoreBase
from .nodes import ensure_node
from .snapshots import AlarmOutcome, CancelOutcome, IncidentState

OPEN_STATES = (IncidentState.OPEN.value, IncidentState.ACKNOWLEDGED.value)


def corr_key(kind: str, hamlet: str | None, node_id: str, flagged: bool) -> str:
    # Without a hamlet (an unknown node that never said where it is) an alarm can
    # only correlate with its own node's.
    where = hamlet if hamlet is not None else "@" + node_id
    return f"{kind}|{where}|{'flagged' if flagged else 'ok'}"


class AlarmsMixin(StoreBase):
    def record_alarm(self, node_id: str, alarm: protocol.Alarm, received_ms: int, *,
                     window_s: float, hamlet_area: str | None = None,
                     noisy_max_fanouts: int | None = None,
                     noisy_window_s: float = 600.0) -> AlarmOutcome:
        window_ms = int(window_s * 1000)
        noisy_ms = int(noisy_window_s * 1000)

        def tx(s: Session) -> AlarmOutcome:
            node = ensure_node(s, node_id, received_ms)
            node.last_seen_ms = max(node.last_seen_ms or 0, received_ms)
            known, enabled = bool(node.registered), bool(node.registered and node.enabled)
            row = s.get(m.Alarm, alarm.alarm_id)
            if row is not None:
                # A copy: re-sent after a lost ack, or by a second replica. Same answer.
                # In SQL, not Python: copies arriving on two replicas must both count.
                s.execute(update(m.Alarm).where(m.Alarm.alarm_id == row.alarm_id).values(
                    copies=m.Alarm.copies + 1,
                    attempts=case((m.Alarm.attempts < alarm.attempt, alarm.attempt),
                                  else_=m.Alarm.attempts)))
                s.refresh(row)
                inc = s.get(m.Incident, row.incident_id)
                assert inc is not None
                return AlarmOutcome(row.alarm_id, row.incident_id, False, False, known, enabled,
                                    False, convert.incident(inc), convert.alarm(row))
            flagged = not enabled
            hamlet = hamlet_area or node.area
            key = corr_key(alarm.kind.value, hamlet, node_id, flagged)
            noisy = False
            if not flagged and noisy_max_fanouts is not None:
                recent = s.scalar(select(func.count()).select_from(m.Incident).where(
                    m.Incident.origin_node == node_id, m.Incident.fanned_out.is_(True),
                    m.Incident.drill.is_(False),
                    m.Incident.opened_ms > received_ms - noisy_ms))
                noisy = (recent or 0) >= noisy_max_fanouts
            inc = s.scalars(select(m.Incident).where(m.Incident.corr_key == key)).first()
            if inc is not None and received_ms - inc.opened_ms > window_ms:
                # Its window is over: it stays open for operators but takes no more alarms.
                inc.corr_key = None
                s.flush()
                inc = None
            new_incident = inc is None
            fan_out = False
            if inc is None:
                inc = m.Incident(
                    incident_id=protocol.new_id(), kind=alarm.kind.value, area=hamlet,
                    origin_node=node_id, state=IncidentState.OPEN.value, corr_key=key,
                    opened_ms=received_ms, last_alarm_ms=received_ms, alarm_count=1,
                    drill=False, escalation_level=0, flagged=flagged, fanout_held=noisy,
                    fanned_out=not flagged and not noisy)
                s.add(inc)
                s.flush()   # the UNIQUE corr_key decides the race here
                fan_out = bool(inc.fanned_out)
            else:
                s.execute(update(m.Incident).where(
                    m.Incident.incident_id == inc.incident_id).values(
                    alarm_count=m.Incident.alarm_count + 1,
                    last_alarm_ms=case(
                        (func.coalesce(m.Incident.last_alarm_ms, 0) < received_ms, received_ms),
                        else_=m.Incident.last_alarm_ms)))
                if not inc.fanned_out and not flagged and not noisy:
                    # The incident was held (a noisy node opened it); a good node's alarm
                    # confirms it, and exactly one confirming alarm sounds it.
                    won = s.execute(update(m.Incident).where(
                        m.Incident.incident_id == inc.incident_id,
                        m.Incident.fanned_out.is_(False)).values(fanned_out=True))
                    fan_out = won.rowcount == 1  # type: ignore[attr-defined]
                s.refresh(inc)
            row = m.Alarm(
                alarm_id=alarm.alarm_id, node_id=node_id, kind=alarm.kind.value,
                pressed_ms=alarm.ts_ms, received_ms=received_ms, source=alarm.source.value,
                button=alarm.button, attempts=alarm.attempt, copies=1,
                incident_id=inc.incident_id, area=hamlet, unknown_node=not known,
                disabled_node=known and not enabled, fanout_held=noisy, drill=False,
                cancelled=False)
            s.add(row)
            s.flush()   # the alarm_id primary key decides a copy racing on another replica
            return AlarmOutcome(row.alarm_id, inc.incident_id, True, new_incident, known,
                                enabled, fan_out, convert.incident(inc), convert.alarm(row))

        return self._write(tx)

    def record_cancel(self, node_id: str, cancel: protocol.Cancel,
                      received_ms: int) -> CancelOutcome:
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

        return self._write(tx)
