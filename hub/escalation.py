"""Escalation (PROTOCOL.md rule 9), with a ceiling: an incident nobody acknowledged
first reaches people, then sounds wider, but never wider than its kind allows.

Every `escalate_after_s` an incident stays unacknowledged it takes one step, at most
`policy.max_escalation` steps:

- step 1 notifies people and sounds nothing new: an `escalation` event in the event
  log (written with the step, in one transaction), which the integrations turn into the
  responders' SMS and webhooks (hub/integrations), and the board shows;
- each later step sounds again with a NEW cmd_id (so every node restarts it, rule 4),
  one area level wider (`policy.widen_within`), up to the kind's ceiling
  (`[policy.kinds.<kind>] max_level`, default the commune: one unacknowledged press,
  say a prank at night, never sounds the whole district); at the ceiling it re-sounds
  the same area, since the last sound has ended and nobody has taken it yet; each such
  step is an `escalation` event too.

It is flagged to operators by the incident's escalation level and its
`next_escalation_ms` (the board's countdown), an audit entry and a log line. Drills
never escalate (rule 10).

Safe with several replicas: `Store.mark_escalated` is a compare-and-set, so
only the replica that wins it sounds. Driven by the runtime's tick thread;
`check(now_ms)` is the whole rule, testable on any clock.
"""

from __future__ import annotations

import logging

from protocol import Command

from .fanout import FanOut, kind_label, sound_in_area
from .policy import Policy
from .store import IncidentInfo, IncidentState, Store

log = logging.getLogger("tiengmo.hub.escalation")


def next_escalation_ms(inc: IncidentInfo, after_s: float, max_steps: int) -> int | None:
    """When `inc` takes its next escalation step if nobody acknowledges it (the same
    rule as `Incidents.due_for_escalation`), or None if it never will."""
    if (inc.state is not IncidentState.OPEN or inc.drill or inc.flagged or inc.fanout_held
            or not inc.fanned_out or inc.area is None or inc.escalation_level >= max_steps):
        return None
    return (inc.escalated_ms or inc.opened_ms) + int(after_s * 1000)


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
        level = inc.escalation_level + 1
        # Step 1 reaches people first; later steps widen, never past the kind's ceiling.
        target = current if level == 1 else self.policy.widen_within(inc.kind, origin, current)
        if not self.store.incidents.mark_escalated(inc.incident_id, level, target, now_ms):
            return None  # another replica won it, or an operator acknowledged meanwhile
        cmd: Command | None = None
        if level > 1:
            # Same kind's pattern and priority as the first sound, as agreed in that area.
            sound = sound_in_area(self.policy, inc.kind, origin, target)
            cmd = self.fanout.sound(inc, sound, now_ms, note=f"escalation level {level}")
        self.store.audit.record("hub", "incident.escalated", inc.incident_id,
                                {"level": level, "area": target, "from_area": current,
                                 "step": "sound" if cmd else "notify",
                                 "ceiling": self.policy.ceiling_area(inc.kind, origin),
                                 "cmd_id": cmd.cmd_id if cmd else None,
                                 "after_s": self.escalate_after_s}, now_ms)
        log.warning("CHƯA TIẾP NHẬN / NOT ACKNOWLEDGED: incident %s (%s at %s) escalated to "
                    "level %d: %s", inc.incident_id, kind_label(inc.kind), inc.area, level,
                    f"sounding {target}" if cmd else "responders notified")
        return cmd
