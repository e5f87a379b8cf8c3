"""Commands and their results, trouble events and the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

import protocol

from ..db import models as m
from . import convert
from .base import Work
from .nodes import ensure_node
from .scope import trouble_in
from .snapshots import (
    AuditEntry,
    CommandInfo,
    ResultInfo,
    ResultOutcome,
    TroubleInfo,
    TroubleRef,
)

OPEN = "open"
CLEARED = "cleared"


def _open_key(kind: str, subject: str) -> str:
    return f"{kind}|{subject}"


class Commands:
    """Commands the hub sent and the results nodes reported."""

    def __init__(self, work: Work) -> None:
        self._work = work

    def record(self, cmd: protocol.Command, target_kind: str, target: str, *,
               issued_by: str = "hub", note: str | None = None) -> CommandInfo:
        if target_kind not in ("area", "node"):
            raise ValueError(f"target_kind must be 'area' or 'node', not {target_kind!r}")

        def tx(s: Session) -> CommandInfo:
            row = s.get(m.Command, cmd.cmd_id)
            if row is not None:
                return convert.command(row)
            row = m.Command(cmd_id=cmd.cmd_id, action=cmd.action.value, target_kind=target_kind,
                            target=target, incident_id=cmd.incident_id, payload=cmd.to_dict(),
                            issued_ms=cmd.ts_ms, expires_ms=cmd.expires_ts_ms,
                            drill=cmd.is_drill, issued_by=issued_by, note=note)
            s.add(row)
            s.flush()
            if (cmd.action is protocol.Action.SOUND and cmd.incident_id is not None
                    and target_kind == "area"):
                inc = s.get(m.Incident, cmd.incident_id)
                if inc is not None:
                    inc.fanned_out = True
                    # Only ever widen: a later, narrower sound does not hide a wide one.
                    if inc.sounded_area is None or protocol.area_contains(target,
                                                                          inc.sounded_area):
                        inc.sounded_area = target
            return convert.command(row)

        return self._work.write(tx, urgent=True)   # a sound: before heartbeats

    def record_result(self, node_id: str, result: protocol.Result,
                      received_ms: int) -> ResultOutcome:
        def tx(s: Session) -> ResultOutcome:
            node = ensure_node(s, node_id, received_ms)
            node.last_seen_ms = max(node.last_seen_ms or 0, received_ms)
            cmd = s.get(m.Command, result.cmd_id)
            row = s.scalars(select(m.CommandResult).where(
                m.CommandResult.cmd_id == result.cmd_id, m.CommandResult.node_id == node_id,
                m.CommandResult.status == result.status.value)).first()
            new = row is None
            if row is None:
                row = m.CommandResult(cmd_id=result.cmd_id, node_id=node_id,
                                      status=result.status.value, reason=result.reason,
                                      ts_ms=result.ts_ms, received_ms=received_ms)
                s.add(row)
                s.flush()
            return ResultOutcome(convert.result(row), new,
                                 convert.command(cmd) if cmd else None)

        return self._work.write(tx)

    def get(self, cmd_id: str) -> CommandInfo | None:
        with self._work.read() as s:
            row = s.get(m.Command, cmd_id.lower())
            return convert.command(row) if row else None

    def for_incident(self, incident_id: str) -> list[CommandInfo]:
        with self._work.read() as s:
            q = select(m.Command).where(m.Command.incident_id == incident_id).order_by(
                m.Command.issued_ms, m.Command.cmd_id)
            return [convert.command(r) for r in s.scalars(q)]

    def results_for(self, cmd_id: str) -> list[ResultInfo]:
        with self._work.read() as s:
            q = select(m.CommandResult).where(m.CommandResult.cmd_id == cmd_id).order_by(
                m.CommandResult.received_ms, m.CommandResult.id)
            return [convert.result(r) for r in s.scalars(q)]

class Troubles:
    """Trouble events (a node offline, a gong that did not sound, ...): one open per subject."""

    def __init__(self, work: Work) -> None:
        self._work = work

    def open(self, kind: str, subject: str, detail: dict[str, Any] | None = None,
             now_ms: int | None = None) -> TroubleRef:
        now = self._work.now_ms() if now_ms is None else now_ms
        key = _open_key(str(kind), subject)

        def tx(s: Session) -> TroubleRef:
            row = s.scalars(select(m.Trouble).where(m.Trouble.open_key == key)).first()
            if row is not None:
                if detail:
                    row.detail = {**(row.detail or {}), **detail}
                return TroubleRef(row.id, False)
            row = m.Trouble(kind=str(kind), subject=subject, state=OPEN, open_key=key,
                            opened_ms=now, detail=dict(detail or {}))
            s.add(row)
            s.flush()   # UNIQUE open_key: a racing replica's insert fails and retries
            return TroubleRef(row.id, True)

        return self._work.write(tx)

    def clear(self, kind: str, subject: str, now_ms: int | None = None) -> bool:
        now = self._work.now_ms() if now_ms is None else now_ms

        def tx(s: Session) -> bool:
            done = s.execute(update(m.Trouble).where(
                m.Trouble.open_key == _open_key(str(kind), subject)).values(
                state=CLEARED, cleared_ms=now, open_key=None))
            return bool(done.rowcount == 1)  # type: ignore[attr-defined]

        return self._work.write(tx)

    def find(self, open_only: bool = True, *, kind: str | None = None,
             subject: str | None = None, limit: int = 500,
             scope: str | None = None) -> list[TroubleInfo]:
        """Newest first; `scope` is the asking account's subtree (store/scope.py)."""
        q = select(m.Trouble)
        if scope is not None:
            q = q.where(trouble_in(scope))
        if open_only:
            q = q.where(m.Trouble.state == OPEN)
        if kind is not None:
            q = q.where(m.Trouble.kind == str(kind))
        if subject is not None:
            q = q.where(m.Trouble.subject == subject)
        q = q.order_by(m.Trouble.opened_ms.desc(), m.Trouble.id.desc()).limit(limit)
        with self._work.read() as s:
            return [convert.trouble(r) for r in s.scalars(q)]

class Audit:
    """The audit log: who did what, when."""

    def __init__(self, work: Work) -> None:
        self._work = work

    def record(self, actor: str, action: str, subject: str | None = None,
               detail: dict[str, Any] | None = None, now_ms: int | None = None) -> AuditEntry:
        now = self._work.now_ms() if now_ms is None else now_ms

        def tx(s: Session) -> AuditEntry:
            row = m.AuditRow(ts_ms=now, actor=actor, action=action, subject=subject,
                             detail=dict(detail or {}))
            s.add(row)
            s.flush()
            return convert.audit(row)

        return self._work.write(tx)

    def entries(self, *, subject: str | None = None, actor: str | None = None,
                action: str | None = None, limit: int = 200,
                offset: int = 0) -> list[AuditEntry]:
        q = select(m.AuditRow)
        if subject is not None:
            q = q.where(m.AuditRow.subject == subject)
        if actor is not None:
            q = q.where(m.AuditRow.actor == actor)
        if action is not None:
            q = q.where(m.AuditRow.action == action)
        q = q.order_by(m.AuditRow.id.desc()).limit(limit).offset(offset)
        with self._work.read() as s:
            return [convert.audit(r) for r in s.scalars(q)]
