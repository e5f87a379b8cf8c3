"""An area subtree as the operators' API limits an account to it (docs/security.md).

`covers(scope, path)` answers for one object in Python; the `*_in` functions give the
same rule as SQL, so a scoped list is filtered before its LIMIT and pages stay whole.
A scope of None is the whole hub. What belongs to an area:

- an incident, an alarm, a node: its `area` (an alarm or incident of an unknown node,
  with no area, belongs to no commune: only hub-wide accounts see it);
- a command: its target area, or the area of its target node, or its incident's area
  (an escalation's sound over the district still belongs to the hamlet's incident);
- a trouble: its subject, a node (by the node's area) or an area path; the hub-wide
  kinds (`HUB_WIDE_TROUBLES`: the broker, the database) say nothing of any commune and
  are shown to everyone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select

from ..db import models as m

# Troubles about the hub itself, not about a place (TroubleKind values).
HUB_WIDE_TROUBLES = ("no_broker", "database_recreated")


def covers(scope: str | None, path: str | None) -> bool:
    """Whether the area `path` lies in the subtree `scope` (None: everything)."""
    if scope is None:
        return True
    return path is not None and (path == scope or path.startswith(scope + "/"))


def under(col: Any, scope: str) -> ColumnElement[bool]:
    return or_(col == scope, col.startswith(scope + "/", autoescape=True))


def _nodes_in(scope: str) -> Any:
    return select(m.Node.id).where(under(m.Node.area, scope))


def _incidents_in(scope: str) -> Any:
    return select(m.Incident.incident_id).where(under(m.Incident.area, scope))


def incident_in(scope: str) -> ColumnElement[bool]:
    return under(m.Incident.area, scope)


def alarm_in(scope: str) -> ColumnElement[bool]:
    return under(m.Alarm.area, scope)


def node_in(scope: str) -> ColumnElement[bool]:
    return under(m.Node.area, scope)


def command_in(scope: str) -> ColumnElement[bool]:
    c = m.Command
    return or_(and_(c.target_kind == "area", under(c.target, scope)),
               and_(c.target_kind == "node", c.target.in_(_nodes_in(scope))),
               and_(c.incident_id.is_not(None), c.incident_id.in_(_incidents_in(scope))))


def trouble_in(scope: str) -> ColumnElement[bool]:
    t = m.Trouble
    return or_(t.kind.in_(HUB_WIDE_TROUBLES), under(t.subject, scope),
               t.subject.in_(_nodes_in(scope)))
