"""Retention of old events: the default keeps everything.

Two settings (hub/settings.py, docs/faults.md):

- `retention_days` (0 = keep for ever, the default): finished incidents (resolved
  or cancelled) whose end is older than that many days are deleted with their
  alarms, commands and command results, and so are cleared troubles older than
  that. Open or acknowledged incidents are never deleted, however old: an alarm
  nobody has dealt with is not history yet.
- `audit_retention_days` (0 = keep for ever, the default): the audit log is
  append-only in the database itself (triggers, migration 0001), so nothing else
  can remove a row of it; only this explicit setting does, by lifting the trigger
  inside the deleting transaction and putting it back before the commit. Each
  prune that removes audit rows appends an audit row saying how many and why.

The hub's leader runs `Retention.tick` from its tick thread once an hour (the
`check_every_s`), in one transaction per run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select

from .db import models as m
from .store.base import Work

log = logging.getLogger("tiengmo.hub.retention")

DAY_MS = 86_400_000
FINISHED = ("resolved", "cancelled")
_SQLITE_AUDIT_TRIGGER = ("CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
                         "BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END")


@dataclass(frozen=True)
class Pruned:
    incidents: int = 0
    alarms: int = 0
    commands: int = 0
    results: int = 0
    troubles: int = 0
    audit: int = 0

    @property
    def total(self) -> int:
        return (self.incidents + self.alarms + self.commands + self.results + self.troubles
                + self.audit)


def prune(work: Work, now_ms: int, *, retention_days: float = 0.0,
          audit_retention_days: float = 0.0) -> Pruned:
    """Delete what the settings let go of, in one transaction; 0 days keeps everything.

    `work` is the store's unit of work (`store.db`): on SQLite the prune waits at the
    store's writer gate like every other writer, so an alarm goes first."""
    if retention_days <= 0 and audit_retention_days <= 0:
        return Pruned()
    out = work.write_once(lambda s: _prune(s.connection(), now_ms, retention_days,
                                           audit_retention_days))
    if out.total:
        log.info("retention: deleted %d incidents, %d alarms, %d commands, %d results, "
                 "%d troubles, %d audit rows", out.incidents, out.alarms, out.commands,
                 out.results, out.troubles, out.audit)
    return out


def _prune(conn: Connection, now_ms: int, retention_days: float,
           audit_retention_days: float) -> Pruned:
    out = Pruned()
    if retention_days > 0:
        out = _prune_events(conn, now_ms - int(retention_days * DAY_MS))
    if audit_retention_days > 0:
        cutoff = now_ms - int(audit_retention_days * DAY_MS)
        n = _prune_audit(conn, cutoff)
        if n:
            conn.execute(insert(m.AuditRow).values(
                ts_ms=now_ms, actor="hub", action="audit_retention", subject=None,
                detail={"deleted": n, "older_than_ms": cutoff,
                        "audit_retention_days": audit_retention_days}))
        out = Pruned(out.incidents, out.alarms, out.commands, out.results, out.troubles, n)
    return out


def _prune_events(conn: Connection, cutoff_ms: int) -> Pruned:
    inc = m.Incident
    ended = func.coalesce(inc.resolved_ms, inc.last_alarm_ms, inc.opened_ms)
    old = select(inc.incident_id).where(inc.state.in_(FINISHED), ended < cutoff_ms)
    old_cmds = select(m.Command.cmd_id).where(m.Command.incident_id.in_(old))
    results = conn.execute(delete(m.CommandResult).where(
        m.CommandResult.cmd_id.in_(old_cmds))).rowcount
    commands = conn.execute(delete(m.Command).where(m.Command.incident_id.in_(old))).rowcount
    alarms = conn.execute(delete(m.Alarm).where(m.Alarm.incident_id.in_(old))).rowcount
    incidents = conn.execute(delete(inc).where(inc.incident_id.in_(old))).rowcount
    tr = m.Trouble
    troubles = conn.execute(delete(tr).where(tr.state == "cleared", tr.cleared_ms.is_not(None),
                                             tr.cleared_ms < cutoff_ms)).rowcount
    return Pruned(incidents, alarms, commands, results, troubles)


def _prune_audit(conn: Connection, cutoff_ms: int) -> int:
    """Delete old audit rows with the append-only trigger lifted for this transaction only."""
    where = m.AuditRow.ts_ms < cutoff_ms
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_no_delete")
        n = conn.execute(delete(m.AuditRow).where(where)).rowcount
        conn.exec_driver_sql(_SQLITE_AUDIT_TRIGGER)
        return n
    conn.exec_driver_sql("ALTER TABLE audit DISABLE TRIGGER audit_no_change")
    n = conn.execute(delete(m.AuditRow).where(where)).rowcount
    conn.exec_driver_sql("ALTER TABLE audit ENABLE TRIGGER audit_no_change")
    return n


class Retention:
    """Runs `prune` at most every `check_every_s` (from the hub's tick thread)."""

    def __init__(self, retention_days: float = 0.0, audit_retention_days: float = 0.0,
                 check_every_s: float = 3600.0) -> None:
        self.retention_days = retention_days
        self.audit_retention_days = audit_retention_days
        self.check_every_s = check_every_s
        self._due = 0.0
        self.last: Pruned | None = None

    @property
    def enabled(self) -> bool:
        return self.retention_days > 0 or self.audit_retention_days > 0

    def tick(self, work: Work, now_ms: int) -> Pruned | None:
        if not self.enabled or time.monotonic() < self._due:
            return None
        self._due = time.monotonic() + self.check_every_s
        self.last = prune(work, now_ms, retention_days=self.retention_days,
                          audit_retention_days=self.audit_retention_days)
        return self.last
