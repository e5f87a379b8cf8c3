"""Store: the public face of the hub's database (API stub; implementation follows)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import protocol

from .snapshots import (
    AlarmInfo,
    AlarmOutcome,
    AreaInfo,
    AuditEntry,
    CancelOutcome,
    CommandInfo,
    IncidentInfo,
    NodeChange,
    NodeInfo,
    NodeStatus,
    Outcome,
    ResultInfo,
    ResultOutcome,
    TroubleInfo,
    TroubleRef,
)


class Store:
    """One database, many threads. Every method is one transaction."""

    @classmethod
    def open(cls, url: str, *, migrate: bool = True,
             clock: Callable[[], int] | None = None) -> Store:
        """Connect to `url` (sqlite:///rel, sqlite:////abs, postgresql://...), bring the schema
        to head (locked, so replicas starting together migrate once) and return a Store.
        `clock` gives the hub's time in ms (for audit rows and defaults)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the connection pool."""
        raise NotImplementedError

    # --- registry and nodes -------------------------------------------------------------------

    def sync_registry(self, reg: protocol.Registry) -> None:
        """Make areas and registry nodes match the registry file; nodes that left the file
        become unregistered (their history stays); operator-registered nodes are untouched."""
        raise NotImplementedError

    def register_node(self, node_id: str, area: str, *, name: str | None = None,
                      households: int | None = None, lat: float | None = None,
                      lon: float | None = None, enabled: bool = True) -> NodeInfo:
        """Register (or re-register) a node by operator action; creates missing areas."""
        raise NotImplementedError

    def set_node_enabled(self, node_id: str, enabled: bool) -> NodeInfo:
        """Enable or disable a known node. Raises NotFound."""
        raise NotImplementedError

    def move_node(self, node_id: str, area: str) -> NodeInfo:
        """Put a node in another area (creates missing areas). Raises NotFound."""
        raise NotImplementedError

    def record_node_state(self, node_id: str, state: protocol.NodeState,
                          received_ms: int) -> NodeChange:
        """A birth or death. A death whose boot_id is below the latest birth's is stale and
        ignored (`applied` False). Unknown nodes are kept as unregistered rows."""
        raise NotImplementedError

    def record_heartbeat(self, node_id: str, hb: protocol.Heartbeat,
                         received_ms: int) -> NodeChange:
        """Keep the last heartbeat; a missing node that beats again is online."""
        raise NotImplementedError

    def set_node_status(self, node_id: str, status: NodeStatus, now_ms: int) -> NodeChange:
        """Supervision's verdict (e.g. missing after silent heartbeats)."""
        raise NotImplementedError

    def node(self, node_id: str) -> NodeInfo | None:
        raise NotImplementedError

    def nodes(self, *, area: str | None = None) -> list[NodeInfo]:
        """Every node (in `area` and below when given), registered or not, by id."""
        raise NotImplementedError

    def areas(self) -> list[AreaInfo]:
        raise NotImplementedError

    # --- alarms and incidents ------------------------------------------------------------------

    def record_alarm(self, node_id: str, alarm: protocol.Alarm, received_ms: int, *,
                     window_s: float, hamlet_area: str | None = None,
                     noisy_max_fanouts: int | None = None,
                     noisy_window_s: float = 600.0) -> AlarmOutcome:
        """Store one copy of an alarm and correlate it, in ONE transaction.

        Idempotent on alarm_id: a repeated copy returns the same incident with new_alarm
        False and fan_out False. Alarms of the same kind from the same hamlet (the node's
        area, or `hamlet_area`) within `window_s` of the incident's opening, on the hub's
        clock (`received_ms`), join that open incident; a database constraint, not timing,
        keeps concurrent replicas to one incident. Unknown or disabled nodes' alarms are
        stored in flagged incidents of their own and never fan out. A node whose fanned-out
        incidents within `noisy_window_s` reach `noisy_max_fanouts` has its new incident
        stored with fanout_held and not fanned out."""
        raise NotImplementedError

    def record_cancel(self, node_id: str, cancel: protocol.Cancel,
                      received_ms: int) -> CancelOutcome:
        """A node cancels its own alarm; the incident is cancelled once all of its alarms
        are (unless already resolved)."""
        raise NotImplementedError

    def open_drill(self, area: str, actor: str, now_ms: int) -> IncidentInfo:
        """An incident that records an operator's drill (drill=True, never counted)."""
        raise NotImplementedError

    def acknowledge(self, incident_id: str, actor: str, now_ms: int) -> tuple[IncidentInfo, bool]:
        """open -> acknowledged; returns (incident, changed). Raises NotFound/InvalidAction."""
        raise NotImplementedError

    def resolve(self, incident_id: str, actor: str, outcome: Outcome, note: str | None,
                now_ms: int) -> tuple[IncidentInfo, bool]:
        """open/acknowledged -> resolved; it stops correlating. Returns (incident, changed)."""
        raise NotImplementedError

    def incident(self, incident_id: str) -> IncidentInfo | None:
        raise NotImplementedError

    def open_incidents(self, *, include_drills: bool = True) -> list[IncidentInfo]:
        """Open and acknowledged incidents, newest first (drills included, marked)."""
        raise NotImplementedError

    def incidents(self, *, state: str | None = None, kind: str | None = None,
                  area: str | None = None, since_ms: int | None = None,
                  until_ms: int | None = None, include_drills: bool = True,
                  limit: int = 100, offset: int = 0) -> list[IncidentInfo]:
        raise NotImplementedError

    def count_incidents(self, *, state: str | None = None, kind: str | None = None,
                        area: str | None = None, since_ms: int | None = None,
                        until_ms: int | None = None, include_drills: bool = False) -> int:
        """Counts real incidents: drills are excluded unless asked (PROTOCOL.md rule 10)."""
        raise NotImplementedError

    def incidents_to_escalate(self, now_ms: int, after_s: float, *,
                              max_level: int | None = None) -> list[IncidentInfo]:
        """Fanned-out, real, still unacknowledged incidents whose last sounding (opening or
        last escalation) is at least `after_s` old."""
        raise NotImplementedError

    def mark_escalated(self, incident_id: str, level: int, area: str, now_ms: int) -> bool:
        """Compare-and-set the escalation to `level` (from level-1) with its sounded area.
        True for the one caller (of many replicas) that won and should sound it."""
        raise NotImplementedError

    def mark_fanned_out(self, incident_id: str, area: str) -> None:
        """Note where an incident was sounded (record_command does this for `sound`)."""
        raise NotImplementedError

    def alarms(self, *, node_id: str | None = None, incident_id: str | None = None,
               kind: str | None = None, since_ms: int | None = None,
               until_ms: int | None = None, flagged: bool | None = None,
               limit: int = 100, offset: int = 0) -> list[AlarmInfo]:
        """Alarms newest first (by hub receipt time)."""
        raise NotImplementedError

    def count_alarms(self, *, node_id: str | None = None, incident_id: str | None = None,
                     kind: str | None = None, since_ms: int | None = None,
                     until_ms: int | None = None, flagged: bool | None = None) -> int:
        raise NotImplementedError

    def alarm(self, alarm_id: str) -> AlarmInfo | None:
        raise NotImplementedError

    # --- commands and results ------------------------------------------------------------------

    def record_command(self, cmd: protocol.Command, target_kind: str, target: str, *,
                       issued_by: str = "hub", note: str | None = None) -> CommandInfo:
        """Keep a command before it is published (idempotent on cmd_id). A `sound` for an
        incident also records the incident's sounded area."""
        raise NotImplementedError

    def record_result(self, node_id: str, result: protocol.Result,
                      received_ms: int) -> ResultOutcome:
        """One node's outcome of a command; one row per cmd+node+status."""
        raise NotImplementedError

    def command(self, cmd_id: str) -> CommandInfo | None:
        raise NotImplementedError

    def commands_for_incident(self, incident_id: str) -> list[CommandInfo]:
        raise NotImplementedError

    def results_for(self, cmd_id: str) -> list[ResultInfo]:
        raise NotImplementedError

    # --- troubles and audit --------------------------------------------------------------------

    def open_trouble(self, kind: str, subject: str, detail: dict[str, Any] | None = None,
                     now_ms: int | None = None) -> TroubleRef:
        """Open a trouble; idempotent: one open trouble per kind+subject (constraint)."""
        raise NotImplementedError

    def clear_trouble(self, kind: str, subject: str, now_ms: int | None = None) -> bool:
        """Clear the open trouble of kind+subject; False when none was open."""
        raise NotImplementedError

    def troubles(self, open_only: bool = True, *, kind: str | None = None,
                 subject: str | None = None, limit: int = 500) -> list[TroubleInfo]:
        raise NotImplementedError

    def audit(self, actor: str, action: str, subject: str | None = None,
              detail: dict[str, Any] | None = None, now_ms: int | None = None) -> AuditEntry:
        """Append to the audit log (append-only)."""
        raise NotImplementedError

    def audit_log(self, *, subject: str | None = None, actor: str | None = None,
                  limit: int = 200, offset: int = 0) -> list[AuditEntry]:
        raise NotImplementedError
