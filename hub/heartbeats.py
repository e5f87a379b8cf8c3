"""Heartbeats coalesced: each node's latest one, written in bulk now and then.

The supervisor hears every heartbeat at once (in memory); the database gets
only each node's latest one, every `flush_s`, in one bulk UPDATE per
`HEARTBEAT_CHUNK` nodes. 5,000 nodes beating every 10 s would otherwise be 500
write transactions a second.
"""

from __future__ import annotations

import threading
import time

from protocol import Heartbeat

from .store import Store

# Heartbeats written per transaction when the coalesced ones are flushed.
HEARTBEAT_CHUNK = 50


class HeartbeatBuffer:
    """Each node's latest heartbeat not yet written (and when it came)."""

    def __init__(self, store: Store, flush_s: float) -> None:
        self.store = store
        self.flush_s = flush_s
        self._beats: dict[str, tuple[Heartbeat, int]] = {}
        self._lock = threading.Lock()
        self._flushed = time.monotonic()

    def add(self, node_id: str, hb: Heartbeat, now_ms: int) -> None:
        with self._lock:
            self._beats[node_id] = (hb, now_ms)

    def flush(self, force: bool = False) -> int:
        """Write each node's latest heartbeat if `flush_s` has passed; how many."""
        with self._lock:
            if not self._beats or (not force and time.monotonic() - self._flushed
                                   < self.flush_s):
                return 0
            beats, self._beats = self._beats, {}
            self._flushed = time.monotonic()
        items = [(n, hb, ms) for n, (hb, ms) in beats.items()]
        done = 0
        try:
            # Small transactions: SQLite has one writer, and an alarm waiting behind a
            # flush of thousands of heartbeats would wait for its fan-out and its ack.
            for i in range(0, len(items), HEARTBEAT_CHUNK):
                self.store.nodes.record_heartbeats(items[i:i + HEARTBEAT_CHUNK])
                done = i + HEARTBEAT_CHUNK
        except Exception:
            with self._lock:   # keep them for the next flush, unless newer ones came
                for n, hb, ms in items[done:]:
                    self._beats.setdefault(n, (hb, ms))
            raise
        return len(items)
