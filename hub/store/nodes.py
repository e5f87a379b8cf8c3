"""Areas and nodes: the registry, births and deaths, heartbeats, supervision state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import BigInteger, and_, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import Table

import protocol

from ..db import models as m
from ..errors import Conflict, NotFound
from . import convert
from .base import Work
from .scope import node_in
from .snapshots import AreaInfo, NodeChange, NodeInfo, NodeStatus

REGISTRY = "registry"
OPERATOR = "operator"


class _RowsChanged(Exception):
    """The cached set of node rows was wrong; the transaction is retried without it."""


def _beat_dict(hb: protocol.Heartbeat) -> dict[str, Any]:
    return {k: v for k, v in hb.to_dict().items() if k != "v"}


def _heartbeat_update() -> Any:
    """UPDATE nodes for one heartbeat (executemany): the rules of Nodes._heartbeat."""
    table = cast(Table, m.Node.__table__)
    n = table.c
    ms = bindparam("ms", type_=BigInteger)
    boot = bindparam("boot", type_=BigInteger)
    # Heartbeats resume: not missing any more. A node that died (offline) comes back
    # with a birth, never by heartbeat, since a late heartbeat can follow its Last
    # Will out of the broker. (Every right-hand side sees the row as it was.)
    # (No IN (...): its expanding parameter cannot be used in an executemany.)
    revive = and_(or_(n.status == NodeStatus.MISSING.value, n.status == NodeStatus.UNKNOWN.value),
                  or_(n.boot_id.is_(None), n.boot_id <= boot))
    return (update(table).where(n.id == bindparam("node_id"))
            .values(last_seen_ms=case((func.coalesce(n.last_seen_ms, 0) < ms, ms),
                                      else_=n.last_seen_ms),
                    last_heartbeat_ms=case((func.coalesce(n.last_heartbeat_ms, 0) < ms, ms),
                                           else_=n.last_heartbeat_ms),
                    heartbeat=bindparam("beat", type_=n.heartbeat.type),
                    status=case((revive, NodeStatus.ONLINE.value), else_=n.status),
                    status_since_ms=case((revive, ms), else_=n.status_since_ms),
                    boot_id=case((revive, boot), else_=n.boot_id)))


_HEARTBEAT_UPDATE = _heartbeat_update()


def ensure_node(s: Session, node_id: str, now_ms: int) -> m.Node:
    """The node's row, created as an unregistered (unknown) node if it has none.

    Unknown nodes are kept, not dropped: operators must see who is talking.
    """
    row = s.get(m.Node, node_id)
    if row is None:
        row = m.Node(id=node_id, enabled=False, registered=False, status=NodeStatus.UNKNOWN,
                     outputs=[], buttons={}, heartbeat={}, created_ms=now_ms)
        s.add(row)
        s.flush()
    return row


def ensure_areas(s: Session, path: str) -> None:
    """Create `path` and its ancestors if missing, named by their slug."""
    for p in protocol.area_ancestors(path):
        if s.get(m.Area, p) is None:
            s.add(m.Area(path=p, name=p.rsplit("/", 1)[-1], level=None, depth=p.count("/") + 1,
                         parent=protocol.area_parent(p)))
    s.flush()


class Nodes:
    """Areas and nodes: the registry, births and deaths, heartbeats, status."""

    def __init__(self, work: Work) -> None:
        self._work = work

    def sync_registry(self, reg: protocol.Registry) -> None:
        now = self._work.now_ms()

        def tx(s: Session) -> None:
            listed = {a.path for a in reg.areas}
            for a in reg.areas:
                row = s.get(m.Area, a.path)
                if row is None:
                    row = m.Area(path=a.path)
                    s.add(row)
                row.name, row.level, row.depth = a.name, a.level, a.depth
                row.parent = protocol.area_parent(a.path)
            in_file = {n.id for n in reg.nodes}
            for n in reg.nodes:
                node = ensure_node(s, n.id, now)
                node.area, node.name, node.households = n.area, n.name, n.households
                node.lat, node.lon, node.enabled = n.lat, n.lon, n.enabled
                node.registered, node.registered_by = True, REGISTRY
            gone = s.scalars(select(m.Node).where(m.Node.registered_by == REGISTRY,
                                                  m.Node.id.not_in(in_file))).all()
            for node in gone:
                # Its history stays; it is now an unknown node whose alarms are flagged.
                node.registered, node.registered_by, node.enabled = False, None, False
            # Areas no longer listed stay while an operator-registered node still uses them.
            used = {a for (area,) in s.execute(select(m.Node.area).where(
                m.Node.registered.is_(True))) if area for a in protocol.area_ancestors(area)}
            for row in s.scalars(select(m.Area)).all():
                if row.path not in listed and row.path not in used:
                    s.delete(row)
            s.add(m.AuditRow(ts_ms=now, actor="registry", action="registry_sync",
                             subject=None, detail={"source": reg.source,
                                                   "areas": len(reg.areas),
                                                   "nodes": len(reg.nodes),
                                                   "unregistered": sorted(n.id for n in gone)}))

        self._work.write(tx)

    def register(self, node_id: str, area: str, *, name: str | None = None,
                 households: int | None = None, lat: float | None = None,
                 lon: float | None = None, enabled: bool = True) -> NodeInfo:
        if not protocol.is_node_id(node_id):
            raise ValueError(f"node id {node_id!r} must match ^[a-z0-9][a-z0-9-]{{0,62}}$")
        if not protocol.is_area_path(area):
            raise ValueError(f"area {area!r} is not 1-4 slugs joined by '/'")
        now = self._work.now_ms()

        def tx(s: Session) -> NodeInfo:
            ensure_areas(s, area)
            node = ensure_node(s, node_id, now)
            node.area, node.name, node.households = area, name, households
            node.lat, node.lon, node.enabled = lat, lon, enabled
            node.registered, node.registered_by = True, OPERATOR
            return convert.node(node)

        return self._work.write(tx)

    def _known(self, s: Session, node_id: str) -> m.Node:
        row = s.get(m.Node, node_id)
        if row is None or not row.registered:
            raise NotFound(f"node {node_id!r} is not registered")
        return row

    @staticmethod
    def _stale(s: Session, row: m.Node, field: str, expected: object,
               current: object) -> Conflict:
        """Another admin changed `field` first: who and when, from the audit log."""
        last = s.scalars(select(m.AuditRow).where(
            m.AuditRow.subject == row.id,
            m.AuditRow.action.in_(("register_node", "enable_node", "disable_node",
                                   "move_node"))).order_by(m.AuditRow.id.desc())).first()
        by, at = (last.actor, last.ts_ms) if last is not None else (None, None)
        who, who_vi = (f" by {by}", f" bởi {by}") if by else ("", "")
        return Conflict(
            f"node {row.id}: {field} is now {current!r}{who}, not {expected!r} as "
            "expected; nothing was changed",
            f"Nút {row.id}: {field} hiện là {current!r}{who_vi}, không phải {expected!r} "
            "như đã thấy; không có gì bị thay đổi.",
            current=str(current).lower(), by=by, at_ms=at, field=field, node_id=row.id)

    def set_enabled(self, node_id: str, enabled: bool, *,
                    expected: bool | None = None) -> NodeInfo:
        """Compare-and-set when `expected` is given: already `enabled` is no change;
        neither is a Conflict (who changed it, when)."""
        def tx(s: Session) -> NodeInfo:
            row = self._known(s, node_id)
            if expected is not None and row.enabled not in (expected, enabled):
                raise self._stale(s, row, "enabled", expected, row.enabled)
            same = [] if expected is None else [m.Node.enabled.is_(expected)]
            done = s.execute(update(m.Node).where(m.Node.id == node_id, *same).values(
                enabled=enabled))
            s.refresh(row)
            if done.rowcount != 1 and row.enabled != enabled:  # type: ignore[attr-defined]
                raise self._stale(s, row, "enabled", expected, row.enabled)
            return convert.node(row)

        return self._work.write(tx)

    def move(self, node_id: str, area: str, *, expected: str | None = None) -> NodeInfo:
        """Compare-and-set on the area when `expected` is given (as set_enabled)."""
        if not protocol.is_area_path(area):
            raise ValueError(f"area {area!r} is not 1-4 slugs joined by '/'")

        def tx(s: Session) -> NodeInfo:
            row = self._known(s, node_id)
            ensure_areas(s, area)
            if expected is not None and row.area not in (expected, area):
                raise self._stale(s, row, "area", expected, row.area)
            same = [] if expected is None else [m.Node.area == expected]
            done = s.execute(update(m.Node).where(m.Node.id == node_id, *same).values(
                area=area))
            s.refresh(row)
            if done.rowcount != 1 and row.area != area:  # type: ignore[attr-defined]
                raise self._stale(s, row, "area", expected, row.area)
            return convert.node(row)

        return self._work.write(tx)

    def record_state(self, node_id: str, state: protocol.NodeState,
                     received_ms: int) -> NodeChange:
        def tx(s: Session) -> NodeChange:
            row = ensure_node(s, node_id, received_ms)
            before = NodeStatus(row.status)
            row.last_seen_ms = max(row.last_seen_ms or 0, received_ms)
            if state.online:
                new_boot = row.boot_id is None or state.boot_id != row.boot_id
                row.boot_id = state.boot_id
                row.version = state.version
                row.reported_area = state.area
                row.outputs = list(state.outputs or ())
                row.buttons = {str(k): str(v) for k, v in state.buttons or ()}
                if not row.registered:
                    row.area = state.area   # an unknown node is placed where it says it is
                self._set_status(row, NodeStatus.ONLINE, received_ms)
                return NodeChange(convert.node(row), True, before, bool(row.registered),
                                  new_boot)
            if row.boot_id is not None and state.boot_id < row.boot_id:
                # The Last Will of an earlier run, delivered late: the node is back.
                return NodeChange(convert.node(row), False, before, bool(row.registered))
            row.boot_id = state.boot_id
            self._set_status(row, NodeStatus.OFFLINE, received_ms)
            return NodeChange(convert.node(row), True, before, bool(row.registered))

        return self._work.write(tx)

    @staticmethod
    def _set_status(row: m.Node, status: NodeStatus, now_ms: int) -> None:
        if row.status != status:
            row.status = status
            row.status_since_ms = now_ms

    def record_heartbeat(self, node_id: str, hb: protocol.Heartbeat,
                         received_ms: int) -> NodeChange:
        return self._work.write(lambda s: self._heartbeat(s, node_id, hb, received_ms))

    def record_heartbeats(self, beats: Sequence[tuple[str, protocol.Heartbeat, int]]) -> None:
        """Each node's latest heartbeat, all in one transaction (the hub coalesces them).

        One Core UPDATE run as an executemany: the same rules as `record_heartbeat`
        (last seen only moves forward; a missing or never-heard node whose boot is
        not older comes back online), decided by the database row by row, at a
        fraction of the ORM's cost per row (5,000 nodes every 10 s is 500 rows/s).
        """
        if not beats:
            return

        rows = [{"node_id": node_id, "ms": received_ms, "boot": hb.boot_id,
                 "beat": _beat_dict(hb)} for node_id, hb, received_ms in beats]
        known = self._work.node_rows   # ids known to have a row (rows are never deleted)

        def tx(s: Session) -> None:
            conn = s.connection()
            ids = {n for n, _, _ in beats} - known
            if ids:
                have = set(conn.scalars(select(m.Node.id).where(m.Node.id.in_(ids))))
                for node_id, _, received_ms in beats:
                    if node_id not in have:   # unknown nodes are kept: operators see them
                        ensure_node(s, node_id, received_ms)
                        have.add(node_id)
            done = conn.execute(_HEARTBEAT_UPDATE, rows).rowcount
            if conn.dialect.supports_sane_multi_rowcount and done != len(rows):
                # A row went missing under us (a restored backup?): ask the database.
                known.clear()
                raise _RowsChanged
            known.update(n for n, _, _ in beats)

        try:
            self._work.write(tx)
        except _RowsChanged:
            self._work.write(tx)

    def _heartbeat(self, s: Session, node_id: str, hb: protocol.Heartbeat,
                   received_ms: int) -> NodeChange:
        row = ensure_node(s, node_id, received_ms)
        before = NodeStatus(row.status)
        row.last_seen_ms = max(row.last_seen_ms or 0, received_ms)
        row.last_heartbeat_ms = max(row.last_heartbeat_ms or 0, received_ms)
        row.heartbeat = _beat_dict(hb)
        # Heartbeats resume: not missing any more. A node that died (offline) comes
        # back with a birth, never by heartbeat, since a late heartbeat can follow
        # its Last Will out of the broker.
        if before in (NodeStatus.MISSING, NodeStatus.UNKNOWN) and (
                row.boot_id is None or hb.boot_id >= row.boot_id):
            self._set_status(row, NodeStatus.ONLINE, received_ms)
            row.boot_id = hb.boot_id
        return NodeChange(convert.node(row), True, before, bool(row.registered))

    def set_status(self, node_id: str, status: NodeStatus, now_ms: int) -> NodeChange:
        def tx(s: Session) -> NodeChange:
            row = s.get(m.Node, node_id)
            if row is None:
                raise NotFound(f"node {node_id!r} is unknown")
            before = NodeStatus(row.status)
            self._set_status(row, status, now_ms)
            return NodeChange(convert.node(row), True, before, bool(row.registered))

        return self._work.write(tx)

    def get(self, node_id: str) -> NodeInfo | None:
        with self._work.read() as s:
            row = s.get(m.Node, node_id)
            return convert.node(row) if row else None

    def find(self, *, area: str | None = None, scope: str | None = None) -> list[NodeInfo]:
        """Nodes in `area` and below; `scope` is the asking account's subtree."""
        with self._work.read() as s:
            q = select(m.Node).order_by(m.Node.id)
            if scope is not None:
                q = q.where(node_in(scope))
            if area is not None:
                q = q.where((m.Node.area == area) | m.Node.area.startswith(area + "/",
                                                                           autoescape=True))
            return [convert.node(r) for r in s.scalars(q)]

    def status_counts(self, *, area: str | None = None,
                      scope: str | None = None) -> dict[str, int]:
        """{status: count} of the nodes expected to answer (registered and enabled), in
        `area` and below when given: one GROUP BY, not every row (the board asks for the
        system strip every few seconds, for thousands of nodes)."""
        n = m.Node
        q = (select(n.status, func.count())
             .where(n.registered.is_(True), n.enabled.is_(True)).group_by(n.status))
        if scope is not None:
            q = q.where(node_in(scope))
        if area is not None:
            q = q.where((n.area == area) | n.area.startswith(area + "/", autoescape=True))
        with self._work.read() as s:
            return {str(getattr(st, "value", st)): int(c)
                    for st, c in s.connection().execute(q)}

    def roster(self, *, area: str | None = None) -> list[tuple[str, str, bool]]:
        """(id, area, enabled) of every registered node that has an area (in `area` and
        below when given), by id: what supervision and fan-out need, without loading
        whole rows (the supervisor refreshes it every 10 s for thousands of nodes)."""
        n = m.Node
        q = (select(n.id, n.area, n.enabled)
             .where(n.registered.is_(True), n.area.is_not(None), n.area != "")
             .order_by(n.id))
        if area is not None:
            q = q.where((n.area == area) | n.area.startswith(area + "/", autoescape=True))
        with self._work.read() as s:
            return [(i, a or "", bool(e)) for i, a, e in s.connection().execute(q)]

    def areas(self) -> list[AreaInfo]:
        with self._work.read() as s:
            return [convert.area(r) for r in s.scalars(select(m.Area).order_by(m.Area.path))]
