"""The hub's durable state: alarms, incidents, nodes, commands, troubles, audit.

`Store.open(url)` creates or migrates the database and returns a Store whose
repositories (`store.alarms`, `store.incidents`, `store.nodes`,
`store.commands`, `store.troubles`, `store.audit`, `store.auth`,
`store.history`) each make one transaction per call and return frozen
snapshots (`hub.store.snapshots`); `store.unit()` / `store.transaction()` put
several repositories' work in one transaction (hub.store.store). Safe to share
between threads; several hub replicas may share one PostgreSQL database.
"""

from __future__ import annotations

from .snapshots import (
    DRILL_KIND,
    AlarmInfo,
    AlarmOutcome,
    AreaInfo,
    AuditEntry,
    CancelOutcome,
    CommandInfo,
    IncidentInfo,
    IncidentState,
    NodeChange,
    NodeInfo,
    NodeStatus,
    Outcome,
    ResultInfo,
    ResultOutcome,
    TroubleInfo,
    TroubleKind,
    TroubleRef,
)
from .store import Repositories, Store

__all__ = [
    "DRILL_KIND", "AlarmInfo", "AlarmOutcome", "AreaInfo", "AuditEntry", "CancelOutcome",
    "CommandInfo", "IncidentInfo", "IncidentState", "NodeChange", "NodeInfo", "NodeStatus",
    "Outcome", "Repositories", "ResultInfo", "ResultOutcome", "Store", "TroubleInfo",
    "TroubleKind", "TroubleRef",
]
