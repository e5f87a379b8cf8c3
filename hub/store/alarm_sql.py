"""The alarm path's statements (hub.store.alarms), built once: building them per alarm
was a good part of the alarm path's CPU. Values come as parameters, lists as expanding
IN parameters."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, bindparam, case, func, insert, select, union_all, update

from ..db import models as m
from .snapshots import IncidentState

ALARMS = cast(Table, m.Alarm.__table__)
INCIDENTS = cast(Table, m.Incident.__table__)
NODES = cast(Table, m.Node.__table__)

SEL_NODES = select(NODES.c.id, NODES.c.area, NODES.c.registered, NODES.c.enabled).where(
    NODES.c.id.in_(bindparam("ids", expanding=True)))
SEL_ALARMS = select(ALARMS).where(ALARMS.c.alarm_id.in_(bindparam("ids", expanding=True)))
# The open incidents of some keys, and some incidents by id, in one round trip; a UNION
# (not an OR, which SQLite answers with a scan of every incident) so each uses its index.
SEL_INC_KEYS = union_all(
    select(INCIDENTS).where(INCIDENTS.c.corr_key.in_(bindparam("keys", expanding=True))),
    select(INCIDENTS).where(INCIDENTS.c.incident_id.in_(bindparam("ids", expanding=True))))
SEL_FANNED = select(INCIDENTS.c.origin_node, INCIDENTS.c.opened_ms).where(
    INCIDENTS.c.origin_node.in_(bindparam("ids", expanding=True)), INCIDENTS.c.fanned_out.is_(True),
    INCIDENTS.c.drill.is_(False), INCIDENTS.c.opened_ms > bindparam("since"))
SEL_INC = select(INCIDENTS).where(INCIDENTS.c.incident_id == bindparam("b_id"))
INS_INC = insert(INCIDENTS)
INS_ALARM = insert(ALARMS)
CLOSE_WINDOW = update(INCIDENTS).where(INCIDENTS.c.incident_id == bindparam("b_id")).values(
    corr_key=None)
REOPEN = update(INCIDENTS).where(INCIDENTS.c.incident_id == bindparam("b_id")).values(
    state=IncidentState.OPEN.value, resolved_ms=None, resolved_by=None, outcome=None)
CONFIRM = update(INCIDENTS).where(INCIDENTS.c.incident_id == bindparam("b_id"),
                                  INCIDENTS.c.fanned_out.is_(False)).values(fanned_out=True)
JOIN = update(INCIDENTS).where(INCIDENTS.c.incident_id == bindparam("b_id")).values(
    alarm_count=INCIDENTS.c.alarm_count + bindparam("b_n"),
    last_alarm_ms=case((func.coalesce(INCIDENTS.c.last_alarm_ms, 0) < bindparam("b_ms"),
                        bindparam("b_ms")), else_=INCIDENTS.c.last_alarm_ms))
SEEN = update(NODES).where(NODES.c.id == bindparam("b_id")).values(
    last_seen_ms=case((func.coalesce(NODES.c.last_seen_ms, 0) < bindparam("b_ms"),
                       bindparam("b_ms")), else_=NODES.c.last_seen_ms))
