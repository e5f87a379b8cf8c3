"""The hub's inbound lanes: alarms and cancels never wait behind anything else (issue 12).

Before, every message went to two ingest shards (crc32 of the node id) with
unbounded queues; a node flooding valid results, states and heartbeats on its own
topics put tens of thousands of messages ahead of other hamlets' alarms (press ->
sound 13.5 s, 20,000 queued results -> ~90 s). Now, on paho's thread, each message
is sorted by its topic alone (no JSON is parsed there):

- `alarm` and `cancel` go to the ALARM LANE: queues and workers (`hub-alarms-{i}`,
  `alarm_workers`, sharded by node id) that do nothing else. One FIFO per node keeps
  its alarm before its cancel; a worker takes whatever is queued (group commit,
  hub.alarm_batch). No budget applies here (PROTOCOL.md rule 3: a noisy node's alarms
  are still stored and acked). The queues are bounded (`alarm_queue_max`) only so
  that memory is: an alarm dropped there is counted and never acked, so its node
  re-sends it.
- everything else costs a token of its node's budget first (hub.budget: a token
  bucket per node); without one it is dropped and counted, before any parsing.
  Heartbeats are then handled at once on paho's thread (memory only); the rest goes
  to the BULK LANE: `bulk_workers` workers sharded by node id (so a node's birth stays
  before its death), each with a bounded queue (`bulk_queue_max` in all); a full
  queue drops the message and counts it (`queue_full`), never blocking paho's thread.

So a flood costs paho's parsing of the packet plus a dict lookup per message, and
its memory is bounded by the queues; the alarm worker competes only for the GIL.
`oldest_alarm_age_s` (for /healthz) and `alarm_lane_alive` (for systemd's watchdog)
watch the alarm lane from outside.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from .budget import QUEUE_FULL, NodeBudget
from .mqtt import Inbound

log = logging.getLogger("tiengmo.hub.lanes")

ALARM_LEAVES = frozenset({"alarm", "cancel"})
HEARTBEAT_LEAF = "heartbeat"
ALARM_QUEUE_FULL = "alarm_queue_full"
# How long an idle worker waits before it looks at the stop flag again.
IDLE_WAIT_S = 0.5

Item = tuple[float, Inbound]   # (monotonic time queued, the message)


def node_topic(topic: str) -> tuple[str, str] | None:
    """(node id, leaf) of `…/nodes/{id}/{leaf}`, else None: the topic only, no checks
    (hub.ingest parses it properly later)."""
    parts = topic.rsplit("/", 3)
    if len(parts) == 4 and parts[1] == "nodes":
        return parts[2], parts[3]
    return None


class ReadPace:
    """At most `rate` non-alarm messages a second read from the broker (burst: one
    second's worth); the reading thread sleeps for the rest, so the broker holds them.

    Parsing a packet is paho's work in Python: a flood read at full speed holds the GIL
    most of the time, and on a busy machine the alarm lane then waits for it (the
    thread holding it must be scheduled to let go). Paced, a flood costs at most
    `rate` packets' parsing a second; what it sends beyond waits in the broker's queue
    for the hub (`max_queued_messages`, then dropped by the broker). Called from one
    thread only (the hub's main connection's).
    """

    def __init__(self, rate: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rate = max(1.0, rate)
        self._now = monotonic
        self._tokens = self.rate
        self._last = monotonic()
        self.waited_s = 0.0

    def wait(self) -> None:
        now = self._now()
        self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1.0:
            pause = (1.0 - self._tokens) / self.rate
            self.waited_s += pause
            time.sleep(pause)
            self._last = self._now()
            self._tokens = 1.0
        self._tokens -= 1.0


class Lanes:
    """The alarm lane and the bulk lane (see the module docstring)."""

    def __init__(self, *, handle_batch: Callable[[Sequence[Inbound]], None],
                 handle_heartbeat: Callable[[Inbound], None], budget: NodeBudget,
                 batch_max: int = 200, bulk_workers: int = 2, bulk_queue_max: int = 10_000,
                 alarm_queue_max: int = 50_000, bulk_read_max_per_s: float | None = None,
                 alarm_workers: int = 2,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._handle_batch = handle_batch
        self._handle_heartbeat = handle_heartbeat
        self.budget = budget
        self._batch_max = max(1, batch_max)
        self._now = monotonic
        # Only when alarms arrive on a connection of their own (hub.link): then the
        # other connection's thread may wait, and nothing the alarm path needs waits on it.
        self._pace = (ReadPace(bulk_read_max_per_s) if bulk_read_max_per_s is not None
                      else None)
        n = max(1, bulk_workers)
        # Alarm shards by node id, as the old ingest shards were: a batch that fails slowly
        # (a database going down: the first failure is retried) holds only its shard.
        k = max(1, alarm_workers)
        self.alarm_queues: list[queue.Queue[Item]] = [
            queue.Queue(maxsize=max(1, alarm_queue_max // k)) for _ in range(k)]
        self.bulk: list[queue.Queue[Item]] = [
            queue.Queue(maxsize=max(1, bulk_queue_max // n)) for _ in range(n)]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # The alarm worker's current batch: since when, and its oldest message's queueing.
        self._busy_since: list[float | None] = [None] * k
        self._busy_oldest: list[float | None] = [None] * k
        self.alarm_batches = 0

    # ---- lifecycle -------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._work, args=(q, i), daemon=True,
                                          name=f"hub-alarms-{i}")
                         for i, q in enumerate(self.alarm_queues)]
        self._threads += [threading.Thread(target=self._work, args=(q, None), daemon=True,
                                           name=f"hub-ingest-{i}")
                          for i, q in enumerate(self.bulk)]
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Handle what is queued, then end the workers."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self._threads = []

    # ---- paho's thread -----------------------------------------------------

    def submit(self, msg: Inbound) -> None:
        """Sort one message by its topic (called on paho's thread: never blocks)."""
        if self._stop.is_set():
            return
        where = node_topic(msg.topic)
        if where is None:   # a hub's state: no node, no budget
            self._put(self.bulk[0], msg, msg.topic)
            return
        node_id, leaf = where
        if leaf in ALARM_LEAVES:
            q = self.alarm_queues[zlib.crc32(node_id.encode()) % len(self.alarm_queues)]
            try:
                q.put_nowait((self._now(), msg))
            except queue.Full:   # never acked: the node re-sends it
                self.budget.drop(node_id, ALARM_QUEUE_FULL)
            return
        if self._pace is not None:
            self._pace.wait()   # the bulk connection's thread only (see ReadPace)
        if not self.budget.take(node_id):
            return   # dropped and counted, unparsed
        if leaf == HEARTBEAT_LEAF:
            # Memory only (Ingest.handle_heartbeat): no hand-over. Supervision never lets a
            # heartbeat older than a node's death undo it, so overtaking is harmless.
            self._handle_heartbeat(msg)
            return
        self._put(self.bulk[zlib.crc32(node_id.encode()) % len(self.bulk)], msg, node_id)

    def _put(self, q: queue.Queue[Item], msg: Inbound, who: str) -> None:
        try:
            q.put_nowait((self._now(), msg))
        except queue.Full:
            self.budget.drop(who, QUEUE_FULL)

    # ---- workers -----------------------------------------------------------

    def _work(self, q: queue.Queue[Item], alarm_lane: int | None) -> None:
        """Take what is queued (up to `batch_max`) and handle it as one batch.

        A lone message is handled at once; under load, what piled up during one
        commit becomes the next batch, so commits get fewer as the rate rises.
        """
        while True:
            try:
                first = q.get(timeout=IDLE_WAIT_S)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            batch = [first]
            while len(batch) < self._batch_max:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            if alarm_lane is not None:
                self._busy_oldest[alarm_lane] = batch[0][0]
                self._busy_since[alarm_lane] = self._now()
            try:
                self._handle_batch([m for _, m in batch])
            except Exception:   # handle_batch never raises; a bug must not end the lane
                log.exception("inbound batch failed; carrying on")
            finally:
                if alarm_lane is not None:
                    self._busy_since[alarm_lane] = self._busy_oldest[alarm_lane] = None
                    self.alarm_batches += 1

    # ---- watched from outside -------------------------------------------------

    @property
    def backlog(self) -> int:
        return self.alarm_backlog + sum(q.qsize() for q in self.bulk)

    @property
    def alarm_backlog(self) -> int:
        return sum(q.qsize() for q in self.alarm_queues)

    def oldest_alarm_age_s(self) -> float:
        """How long the oldest alarm or cancel not yet handled has waited (0: none)."""
        now = self._now()
        times = [t for t in self._busy_oldest if t is not None]
        for q in self.alarm_queues:
            with q.mutex:
                if q.queue:
                    times.append(q.queue[0][0])
        return max(0.0, now - min(times)) if times else 0.0

    def alarm_lane_alive(self, stall_s: float) -> bool:
        """The alarm workers exist and no batch of theirs has taken longer than `stall_s`."""
        k = len(self.alarm_queues)
        if len(self._threads) < k or not all(t.is_alive() for t in self._threads[:k]):
            return False
        now = self._now()
        return all(since is None or now - since <= stall_s for since in self._busy_since)

    def drops(self) -> dict[tuple[str, str], int]:
        return self.budget.counts()


def describe(lanes: Lanes | None) -> dict[str, Any]:
    """What health() shows of the lanes."""
    if lanes is None:
        return {"backlog": 0, "alarm_backlog": 0, "oldest_alarm_s": 0.0}
    return {"backlog": lanes.backlog, "alarm_backlog": lanes.alarm_backlog,
            "oldest_alarm_s": round(lanes.oldest_alarm_age_s(), 3)}
