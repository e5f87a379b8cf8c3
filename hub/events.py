"""The live event feed: the durable event log (table `events`) handed to live subscribers.

Database triggers append one `events` row per change of an incident, alarm, node,
trouble or command, in the change's own transaction (migration 0002). One
`EventFeed` per hub process follows that table and hands each new event, rendered
once, to every subscriber (the API's SSE streams). It wakes on this process's own
commits, so a new incident reaches the browsers within milliseconds, and polls every
`poll_s` for what other replicas wrote.

Ids are handed out in id order and without holes a client could fall into: on
PostgreSQL two transactions may commit out of id order, so a missing id is waited
for (up to `gap_wait_s`, after which it is taken as a rolled-back insert). The
feed's `cursor` is the id up to which everything has been delivered; a subscriber
registered at cursor W gets every event after W live, and replays up to W from the
table, so a resuming client misses nothing and gets nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from .store.history import EventRef, History
from .store.scope import covers

log = logging.getLogger("tiengmo.hub.events")

PAGE = 500
PRUNE_EVERY_S = 3600.0
# A subscriber this far behind is cut off; its client reconnects and replays from the table.
MAX_BACKLOG = 10_000


@dataclass(frozen=True, slots=True)
class StreamEvent:
    id: int
    type: str
    data: str            # JSON, rendered once for every subscriber
    # The areas the thing belongs to (hub/store/scope.py): a subscriber limited to an area
    # gets the event only if one lies in its subtree, or if it is `everyone`'s (hub-wide).
    areas: tuple[str, ...] = ()
    everyone: bool = False

    def visible_to(self, scope: str | None) -> bool:
        return scope is None or self.everyone or any(covers(scope, a) for a in self.areas)

    def sse(self) -> str:
        return f"id: {self.id}\nevent: {self.type}\ndata: {self.data}\n\n"


Renderer = Callable[[list[EventRef]], list[StreamEvent]]


class Subscription:
    """One live client's queue, filled from the feed's thread, read on its event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, scope: str | None = None) -> None:
        self.loop = loop
        self.scope = scope     # the client's area subtree: nothing outside it is queued
        self.queue: asyncio.Queue[list[StreamEvent] | None] = asyncio.Queue()
        self.closed = False
        self._pending = 0

    def push(self, items: list[StreamEvent]) -> bool:
        """False when this subscriber is gone or too far behind (then it is closed)."""
        if self.closed:
            return False
        if self.scope is not None:
            items = [e for e in items if e.visible_to(self.scope)]
            if not items:
                return True
        self._pending += len(items)
        batch: list[StreamEvent] | None = items
        if self._pending > MAX_BACKLOG:
            self.closed, batch = True, None
        try:
            self.loop.call_soon_threadsafe(self._put, batch)
        except RuntimeError:   # the loop has ended
            self.closed = True
        return not self.closed

    def close(self) -> None:
        """End the client's stream (its reader gets None)."""
        self.closed = True
        with contextlib.suppress(RuntimeError):   # its loop has ended already
            self.loop.call_soon_threadsafe(self.queue.put_nowait, None)

    def _put(self, items: list[StreamEvent] | None) -> None:
        if items is not None:
            self._pending -= len(items)
        self.queue.put_nowait(items)


class EventFeed:
    def __init__(self, history: History, render: Renderer, *, poll_s: float = 0.25,
                 gap_wait_s: float = 2.0, retention_s: float = 7 * 86400.0,
                 alive: Callable[[], bool] = lambda: True) -> None:
        self.history = history
        self.alive = alive
        self.render = render
        self.poll_s = poll_s
        self.gap_wait_s = gap_wait_s
        self.retention_s = retention_s
        self.cursor = 0
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gap_since: float | None = None
        self._next_prune = 0.0

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> EventFeed:
        if self._thread is not None:
            return self
        self.cursor = self.history.last_event_id()
        event.listen(Session, "after_commit", self._after_commit)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hub-events", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        event.remove(Session, "after_commit", self._after_commit)
        self._stop.set()
        self._wake.set()
        self._thread.join(5)
        self._thread = None
        with self._lock:
            for sub in self._subs:
                sub.close()
            self._subs.clear()

    def _after_commit(self, session: Session) -> None:
        # Any write of this process may have appended events (the triggers): look now.
        if session.bind is self.history.engine:
            self._wake.set()

    # --- subscribers ---------------------------------------------------------------------------

    def subscribe(self, loop: asyncio.AbstractEventLoop,
                  scope: str | None = None) -> tuple[Subscription, int]:
        """A new live subscriber (of the area subtree `scope`, None: everything) and the
        cursor W it starts after (replay up to W)."""
        sub = Subscription(loop, scope)
        with self._lock:
            self._subs.add(sub)
            return sub, self.cursor

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)
        sub.closed = True

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    # --- the follower thread -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            if not self.alive():
                # The hub stopped (its database is closed): end the streams, stop following.
                threading.Thread(target=self.stop, daemon=True).start()
                return
            try:
                again = self.poll()
                if time.monotonic() >= self._next_prune:
                    self._next_prune = time.monotonic() + PRUNE_EVERY_S
                    cutoff = self.history.now_ms() - int(self.retention_s * 1000)
                    self.history.prune_events(cutoff)
            except Exception:   # a database hiccup must not end the live stream for good
                log.exception("event feed: reading the event log failed; retrying")
                again = False
                self._stop.wait(1.0)
            if again:
                # More to read, or a hole to wait for: look again soon.
                self._stop.wait(0.02)
                self._wake.set()

    def poll(self) -> bool:
        """Deliver what is new; True if there is more to read or a hole is awaited."""
        refs = self.history.events_after(self.cursor, PAGE)
        ready: list[EventRef] = []
        expected = self.cursor + 1
        waiting = False
        for ref in refs:
            if ref.id != expected:
                now = time.monotonic()
                if self._gap_since is None:
                    self._gap_since = now
                if now - self._gap_since < self.gap_wait_s:
                    waiting = True
                    break
                log.debug("event ids %d..%d never committed; going on", expected, ref.id - 1)
            self._gap_since = None
            ready.append(ref)
            expected = ref.id + 1
        if ready:
            rendered = self.render(ready)
            with self._lock:
                self.cursor = ready[-1].id
                gone = [s for s in self._subs if not s.push(rendered)]
                for s in gone:
                    self._subs.discard(s)
        return waiting or len(refs) == PAGE

    def status(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "subscribers": self.subscribers}
