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

from .errors import PolicyError
from .fanout import FanOut, kind_label
from .policy import Policy, Sound
from .store import IncidentInfo, Store

log = logging.getLogger("tiengmo.hub.escalation")


class Escalator:
    def __init__(self, store: Store, fanout: FanOut, policy: Policy, *,
                 escalate_after_s: float) -> None:
        self.store = store
        self.fanout = fanout
        self.policy = policy
        self.escalate_after_s = escalate_after_s

    def check(self, now_ms: int) -> list[str]:
        """Escalate every incident that is due; the cmd_ids sent."""
        sent: list[str] = []
        due = self.store.incidents_to_escalate(now_ms, self.escalate_after_s,
                                               max_level=self.policy.max_escalation)
        for inc in due:
            if inc.drill or inc.flagged or inc.fanout_held or inc.area is None:
                continue  # never counted as real, never sounded in the first place
            cmd_id = self._escalate(inc, now_ms)
            if cmd_id is not None:
                sent.append(cmd_id)
        return sent

    def _escalate(self, inc: IncidentInfo, now_ms: int) -> str | None:
        first = self.policy.sound_for(inc.kind, inc.area or "")
        current = inc.sounded_area or first.area
        wider = self.policy.widen(current) or current
        level = inc.escalation_level + 1
        if not self.store.mark_escalated(inc.incident_id, level, wider, now_ms):
            return None  # another replica won it, or an operator acknowledged meanwhile
        # Same pattern and priority as the first sound, but as agreed in the wider area.
        try:
            pattern = self.policy.pattern_for(first.pattern.name, wider)
        except PolicyError:  # a pattern agreed only below: keep the one that sounded
            pattern = first.pattern
        sound = Sound(wider, pattern, first.duration_s, first.priority)
        cmd = self.fanout.sound(inc, sound, now_ms, note=f"escalation level {level}")
        self.store.audit("hub", "incident.escalated", inc.incident_id,
                         {"level": level, "area": wider, "from_area": current,
                          "cmd_id": cmd.cmd_id, "after_s": self.escalate_after_s}, now_ms)
        log.warning("CHƯA TIẾP NHẬN / NOT ACKNOWLEDGED: incident %s (%s at %s) escalated to "
                    "level %d, sounding wider area %s", inc.incident_id, kind_label(inc.kind),
                    inc.area, level, wider)
        return cmd.cmd_id
