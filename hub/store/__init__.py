"""The hub's durable state: alarms, incidents, nodes, commands, troubles, audit.

`Store.open(url)` creates or migrates the database and returns a Store whose
methods are each one transaction and return frozen snapshots
(`hub.store.snapshots`). Safe to share between threads; several hub
replicas may share one PostgreSQL database.
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
from .store import Store

__all__ = [
    "DRILL_KIND", "AlarmInfo", "AlarmOutcome", "AreaInfo", "AuditEntry", "CancelOutcome",
    "CommandInfo", "IncidentInfo", "IncidentState", "NodeChange", "NodeInfo", "NodeStatus",
    "Outcome", "ResultInfo", "ResultOutcome", "Store", "TroubleInfo", "TroubleKind", "TroubleRef",
]
