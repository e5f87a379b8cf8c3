"""Escalation (PROTOCOL.md rule 9): an incident nobody acknowledged sounds wider.

An incident still unacknowledged `escalate_after_s` after it last sounded is
sounded again with a NEW cmd_id (so every node restarts it, rule 4), one area
level wider (`policy.widen`; at the top it re-sounds the same area), at most
`policy.max_escalation` times. It is flagged to operators by the incident's
escalation level, an audit entry and a log line. Drills never escalate
(rule 10).

Safe with several replicas: `Store.mark_escalated` is a compare-and-set, so
only the replica that wins it sounds. Driven by the runtime's tick thread;
`check(now_ms)` is the whole rule, testable on any clock.
"""

from __future__ import annotations

import logging

from protocol import Command

from .fanout import FanOut, kind_label, sound_in_area
from .policy import Policy
from .store import IncidentInfo, Store

log = logging.getLogger("tiengmo.hub.escalation")


class Escalator:
    def __init__(self, store: Store, fanout: FanOut, policy: Policy, *,
                 escalate_after_s: float) -> None:
        self.store = store
        self.fanout = fanout
        self.policy = policy
        self.escalate_after_s = escalate_after_s

    def check(self, now_ms: int) -> list[Command]:
        """Escalate every incident that is due; the commands sent."""
        sent: list[Command] = []
        due = self.store.incidents.due_for_escalation(now_ms, self.escalate_after_s,
                                                      max_level=self.policy.max_escalation)
        for inc in due:
            if inc.drill or inc.flagged or inc.fanout_held or inc.area is None:
                continue  # never counted as real, never sounded in the first place
            cmd = self._escalate(inc, now_ms)
            if cmd is not None:
                sent.append(cmd)
        return sent

    def _escalate(self, inc: IncidentInfo, now_ms: int) -> Command | None:
        origin = inc.area or ""
        current = inc.sounded_area or self.policy.sound_for(inc.kind, origin).area
        # At the top there is nothing wider: sound the same area again, since the first
        # sound has ended and nobody has taken the incident yet.
        wider = self.policy.widen(current) or current
        level = inc.escalation_level + 1
        if not self.store.incidents.mark_escalated(inc.incident_id, level, wider, now_ms):
            return None  # another replica won it, or an operator acknowledged meanwhile
        # Same kind's pattern and priority as the first sound, as agreed in the wider area.
        sound = sound_in_area(self.policy, inc.kind, origin, wider)
        cmd = self.fanout.sound(inc, sound, now_ms, note=f"escalation level {level}")
        self.store.audit.record("hub", "incident.escalated", inc.incident_id,
                                {"level": level, "area": wider, "from_area": current,
                                 "cmd_id": cmd.cmd_id, "after_s": self.escalate_after_s}, now_ms)
        log.warning("CHƯA TIẾP NHẬN / NOT ACKNOWLEDGED: incident %s (%s at %s) escalated to "
                    "level %d, sounding wider area %s", inc.incident_id, kind_label(inc.kind),
                    inc.area, level, wider)
        return cmd
