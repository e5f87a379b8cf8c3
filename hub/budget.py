"""Each node's budget for non-alarm messages, judged on the topic alone (issue 12 point 1).

A registered node sends a heartbeat every `heartbeat_s`, a birth when it connects and a
`started`/`done` result per command: a few messages a minute. A stuck loop or a stolen
credential can send thousands a second of perfectly valid ones on its own topics,
which the broker's ACL allows. Every message that is not an alarm or a cancel costs a
token of its node's bucket (`node_budget_per_s`, `node_budget_burst`); a message
without a token is dropped on paho's thread before its JSON is even parsed, and counted
by node and reason (`dropped`, shown in /metrics). Alarms and cancels are never judged
here (PROTOCOL.md rule 3: a noisy node's alarms are still stored and acked).

A node that had a message dropped is noisy until it has had none dropped for
`quiet_s`: the runtime opens a `noisy_node` trouble for it and clears it then
(`NoisyTroubles`). Memory is bounded: at most `max_nodes` buckets (the oldest
forgotten first; a forgotten node starts again with a full bucket).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

log = logging.getLogger("tiengmo.hub.budget")

OVER_BUDGET = "over_budget"     # the node's bucket was empty
QUEUE_FULL = "queue_full"       # the non-alarm lane was full (hub/lanes.py)
# Detail that marks a noisy_node trouble as this module's (an alarm flood's one is
# hub/ingest.py's and is not cleared here).
REASON_KEY = "reason"


class NodeBudget:
    """Token buckets per node, refilled on a monotonic clock; thread-safe, O(1) per message."""

    def __init__(self, rate_per_s: float, burst: float, *, quiet_s: float = 60.0,
                 max_nodes: int = 100_000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate_per_s)
        self.burst = float(burst)
        self.quiet_s = quiet_s
        self.max_nodes = max_nodes
        self._now = monotonic
        self._lock = threading.Lock()
        # node -> [tokens, last refill]; ordered by last use (least recent first)
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()
        self._last_drop: dict[str, float] = {}
        self.dropped: Counter[tuple[str, str]] = Counter()   # (node, reason) -> count

    def take(self, node_id: str) -> bool:
        """One token of `node_id`'s bucket: True if it had one (the message goes on)."""
        now = self._now()
        with self._lock:
            b = self._buckets.get(node_id)
            if b is None:
                b = [self.burst, now]
                self._buckets[node_id] = b
                if len(self._buckets) > self.max_nodes:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(node_id)
                b[0] = min(self.burst, b[0] + (now - b[1]) * self.rate)
                b[1] = now
            if b[0] >= 1.0:
                b[0] -= 1.0
                return True
        self.drop(node_id, OVER_BUDGET)
        return False

    def drop(self, node_id: str, reason: str) -> None:
        """Count one message of `node_id` dropped for `reason`."""
        now = self._now()
        with self._lock:
            self.dropped[(node_id, reason)] += 1
            self._last_drop[node_id] = now
            if len(self._last_drop) > self.max_nodes:
                oldest = min(self._last_drop, key=self._last_drop.__getitem__)
                del self._last_drop[oldest]

    def noisy(self) -> dict[str, int]:
        """The nodes that had a message dropped within `quiet_s`, with their drop totals."""
        now = self._now()
        with self._lock:
            quiet = [n for n, t in self._last_drop.items() if now - t >= self.quiet_s]
            for n in quiet:
                del self._last_drop[n]
            totals: Counter[str] = Counter()
            for (n, _), c in self.dropped.items():
                if n in self._last_drop:
                    totals[n] += c
            return dict(totals)

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.dropped)


class NoisyTroubles:
    """Opens and clears the `noisy_node` troubles of over-budget nodes (the tick thread).

    A trouble is taken as open only once its write succeeded: during a database outage
    the next tick tries again. Each replica does this for what it receives; the
    trouble is one per node in the database whichever replica opens it.
    """

    def __init__(self, budget: NodeBudget, troubles: Any, kind: str) -> None:
        self.budget = budget
        self.troubles = troubles
        self.kind = kind
        self.open: set[str] = set()

    def check(self, now_ms: int) -> None:
        noisy = self.budget.noisy()
        for node_id, dropped in sorted(noisy.items()):
            if node_id in self.open:
                continue
            self.troubles.open(self.kind, node_id, {REASON_KEY: OVER_BUDGET,
                                                    "dropped": dropped,
                                                    "rate_per_s": self.budget.rate}, now_ms)
            self.open.add(node_id)
            log.warning("NÚT GỬI QUÁ NHIỀU / NOISY NODE %s: over its budget of %g messages/s "
                        "(%d dropped); its alarms are still handled", node_id,
                        self.budget.rate, dropped)
        for node_id in sorted(self.open - set(noisy)):
            mine = [t for t in self.troubles.find(True, kind=self.kind, subject=node_id)
                    if (t.detail or {}).get(REASON_KEY) == OVER_BUDGET]
            if mine:
                self.troubles.clear(self.kind, node_id, now_ms)
            self.open.discard(node_id)
            log.info("NÚT ĐÃ YÊN / NODE QUIET AGAIN: %s within its budget for %g s", node_id,
                     self.budget.quiet_s)
