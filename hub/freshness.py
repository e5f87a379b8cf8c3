"""Stale and foreign input is never live (issue 12, point 2).

Three guards on what reaches the alarm path, all judged on the hub's clock:

- **Retained is never live.** A message that arrives with the MQTT retain flag on
  an `alarm`, `cancel` or `result` topic was stored by the broker some time ago
  (a broker delivers the flag only for a message it kept, on a new subscription:
  MQTT 3.1.1 §3.3.1.3, MQTT 5 §3.3.1.3 without retain-as-published, which the hub
  never asks for). It is refused with reason `retained`, whatever its age: a
  30-day-old alarm left on a node's topic must not sound a hamlet when a hub
  starts on a fresh database. The node, if it still waits for an ack, re-sends the
  alarm live and that copy is judged as usual.
- **Age.** An alarm's `ts_ms` is the node's estimate of the hub's clock at the
  press (`node/clock.py`, from `hub/time` beacons and acks). Its age is the hub's
  receipt time minus `ts_ms`. Older than `alarm_max_age_s` (15 min by default:
  docs/hub-config.md) it is *late*: stored, acked, shown with a late badge, but it
  sounds nothing and never escalates. An alarm saying `clock_synced: false` was
  stamped on the node's own clock (no beacon heard since it booted), so its
  `ts_ms` says nothing about its age: it is never late, its age is the hub's
  receipt. A stamp in the future (more than `alarm_future_tolerance_s`) is a node
  clock that is wrong, not an old alarm: it sounds, and is counted and logged as
  `future_ts` so someone looks at that node's clock.
- **Foreign ids.** An `alarm_id` belongs to the node that sent it first
  (hub.store.alarms): the same id from another node is no copy of it. It is
  refused with `foreign_alarm_id` (ack `rejected`, never the owner's incident).

Every refusal and verdict is counted by reason (`counts`, in /metrics with the
ingest rejects) and logged once per node and reason, so a node repeating itself
cannot drown the log.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from protocol import Alarm, TopicKind

from .store.phone import PhoneAlarm

log = logging.getLogger("tiengmo.hub.freshness")

# Topics whose retained copies are refused: what they say only ever matters live.
NEVER_RETAINED = frozenset({TopicKind.ALARM, TopicKind.CANCEL, TopicKind.RESULT})

RETAINED = "retained"
FOREIGN = "foreign_alarm_id"
LATE = "late_alarm"
FUTURE = "future_ts"

# How many (node, reason) pairs are remembered as logged; past it the memory starts
# again (a node is then logged once more, nothing else changes).
MAX_LOGGED = 10_000


@dataclass(frozen=True, slots=True)
class AgePolicy:
    """How old an alarm may be and still sound (settings `alarm_max_age_s`,
    `alarm_future_tolerance_s`)."""

    max_age_s: float = 900.0
    future_tolerance_s: float = 60.0


class Freshness:
    """The three guards above; thread-safe (ingest workers share one)."""

    def __init__(self, policy: AgePolicy | None = None) -> None:
        self.policy = policy or AgePolicy()
        self.counts: Counter[str] = Counter()
        self._logged: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    # ---- retained ------------------------------------------------------------

    def refuse_retained(self, kind: TopicKind, node_id: str | None, retain: bool,
                        topic: str) -> str | None:
        """`retained` for a retained message on an alarm, cancel or result topic (counted,
        logged once per node), else None: the caller drops the message."""
        if not retain or kind not in NEVER_RETAINED:
            return None
        self._note(RETAINED, node_id or "?", "refused a retained %s on %s: stale broker "
                   "copy, never live (logged once per node)", kind.value, topic[:160])
        return RETAINED

    # ---- age -----------------------------------------------------------------

    def is_late(self, node_id: str, alarm: Alarm, received_ms: int) -> bool:
        """True when `alarm` is too old to sound (see the module). A stamp too far in
        the future is counted and logged (`future_ts`) but is not late."""
        if alarm.clock_synced is False:
            return False   # the node's own clock: its age is its receipt, never late
        age_ms = received_ms - alarm.ts_ms
        if -age_ms > self.policy.future_tolerance_s * 1000:
            self._note(FUTURE, node_id, "alarm %s from %s is stamped %.0f s in the future: "
                       "its clock is wrong; sounded all the same", alarm.alarm_id, node_id,
                       -age_ms / 1000)
        return age_ms > self.policy.max_age_s * 1000

    def late_ids(self, items: Sequence[tuple[str, Alarm | PhoneAlarm, int]]) -> frozenset[str]:
        """The alarm ids of `items` (node, alarm, received_ms) that are late. An alarm by
        phone is judged by the phone path itself (hub.integrations.phone: max_age_s)."""
        return frozenset(a.alarm_id for n, a, r in items
                         if isinstance(a, Alarm) and self.is_late(n, a, r))

    def stored_late(self, node_id: str, alarm: Alarm | PhoneAlarm, received_ms: int,
                    incident_id: str) -> None:
        """Count and log (once per node) a late alarm that was stored, not sounded."""
        self._note(LATE, node_id, "MUỘN / LATE alarm %s (%s) from %s is %.0f s old (limit "
                   "%.0f s): stored in incident %s, NOT sounded", alarm.alarm_id,
                   alarm.kind.value, node_id, (received_ms - alarm.ts_ms) / 1000,
                   self.policy.max_age_s, incident_id)

    # ---- foreign ids ---------------------------------------------------------

    def foreign(self, node_id: str, alarm_id: str) -> str:
        """Count and log an alarm_id another node sent first; the reason to refuse it."""
        self._note(FOREIGN, node_id, "alarm %s from %s: that id belongs to another node; "
                   "refused, not a copy", alarm_id, node_id)
        return FOREIGN

    # ---- counting and logging --------------------------------------------------

    def _note(self, reason: str, node_id: str, fmt: str, *args: object) -> None:
        key = (reason, node_id)
        with self._lock:
            self.counts[reason] += 1
            first = key not in self._logged
            if first:
                if len(self._logged) >= MAX_LOGGED:
                    self._logged.clear()
                self._logged.add(key)
        if first:
            log.warning(fmt, *args)
