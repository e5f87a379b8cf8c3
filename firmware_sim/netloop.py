"""One network thread for every node link of a fleet process (simlink.py's `NetLoop`).

With paho's own loop each simulated node keeps a network thread that wakes
every second (loop_forever's select timeout) plus a wake-up socket pair, and
select() cannot watch descriptors past 1023. Here one thread drives all the
process's paho clients through their external-loop API on epoll: it reads and
writes when a socket is ready, runs paho's keepalive check every `misc_s`,
and does every (re)connect itself, at most `connect_rate` per second so that
thousands of nodes starting (or a broker coming back) do not storm the broker.

A connect is a blocking TCP connect (and TLS handshake) on this thread: fine
against a broker on the same network, which is where fleets run. Each may block
for at most `connect_timeout_s` (paho's own default is 5 s): a broker that
silently drops SYNs then stalls every node of the process for that long per
attempt, so keep it short. Connects are still back-to-back in that case (one per
link per back-off period); a non-blocking connect would remove the stall.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from .simlink import SimLink

log = logging.getLogger("tiengmo.sim.netloop")

DEFAULT_CONNECT_RATE = 200.0   # connects per second per process
DEFAULT_MISC_S = 1.0           # keepalive check period (paho's own loop: ~1 s)
# One connect (TCP, then TLS) may block the shared thread this long. A broker on the
# same network answers in milliseconds, even loaded; a broker that drops SYNs would
# otherwise stall every node of the process for paho's 5 s per attempt.
DEFAULT_CONNECT_TIMEOUT_S = 1.0


class SharedNetLoop:
    """Drives many `SimLink`s from one thread; `close()` ends it (links should be stopped first)."""

    def __init__(self, *, connect_rate: float = DEFAULT_CONNECT_RATE,
                 misc_s: float = DEFAULT_MISC_S,
                 connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
                 name: str = "netloop") -> None:
        if connect_rate <= 0 or misc_s <= 0 or connect_timeout_s <= 0:
            raise ValueError("connect_rate, misc_s and connect_timeout_s must be positive")
        self.connect_rate = connect_rate
        self.misc_s = misc_s
        self._connect_timeout_s = connect_timeout_s
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._calls: collections.deque[Callable[[], None]] = collections.deque()
        self._socks: dict[SimLink, Any] = {}           # link -> its watched socket
        self._writing: set[SimLink] = set()
        self._links: set[SimLink] = set()              # attached, for the keepalive pass
        self._timers: list[tuple[float, int, SimLink]] = []   # (due, seq, link): a connect
        self._seq = itertools.count()
        self._ready: collections.deque[SimLink] = collections.deque()   # connects due, FIFO
        self._tokens = 1.0
        self._closed = False
        self.stats: collections.Counter[str] = collections.Counter()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- simlink.py's NetLoop protocol (any thread) ------------------------

    def attach(self, link: SimLink) -> None:
        self._call(lambda: self._attach(link))

    def watch(self, link: SimLink, sock: Any) -> None:
        self._call(lambda: self._watch(link, sock), inline=True)

    def unwatch(self, link: SimLink, sock: Any) -> None:
        self._call(lambda: self._unwatch(link, sock), inline=True)

    def want_write(self, link: SimLink) -> None:
        self._call(lambda: self._want_write(link))

    def close(self) -> None:
        self._closed = True
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(10)

    @property
    def connect_timeout_s(self) -> float:
        return self._connect_timeout_s

    @property
    def link_count(self) -> int:
        return len(self._links)

    # -- plumbing --------------------------------------------------------------

    def _call(self, fn: Callable[[], None], *, inline: bool = False) -> None:
        # watch/unwatch happen inside paho calls this thread makes (connect, read,
        # write): run them at once, before the socket closes or its fd is reused.
        if inline and threading.current_thread() is self._thread:
            fn()
            return
        self._calls.append(fn)
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"x")

    def _attach(self, link: SimLink) -> None:
        self._links.add(link)
        self._ready.append(link)

    def _watch(self, link: SimLink, sock: Any) -> None:
        old = self._socks.pop(link, None)
        self._writing.discard(link)
        if old is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._sel.unregister(old)
        # Registered first, recorded after: if the selector refuses the socket it is
        # not ours, the error ends the connect, and _connect closes it and retries.
        # (Recorded first, the link would look connected and never be tried again.)
        self._sel.register(sock, selectors.EVENT_READ, link)
        self._socks[link] = sock

    def _unwatch(self, link: SimLink, sock: Any) -> None:
        watched = self._socks.get(link)
        if watched is not None and watched is sock:
            del self._socks[link]
            self._writing.discard(link)
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._sel.unregister(watched)
        if link.io_wanted:
            self._schedule(link, link.io_retry_delay())
        else:
            self._links.discard(link)

    def _want_write(self, link: SimLink) -> None:
        sock = self._socks.get(link)
        if sock is None or link in self._writing:
            return
        self._writing.add(link)
        self._sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, link)

    def _done_writing(self, link: SimLink) -> None:
        sock = self._socks.get(link)
        if sock is not None and link in self._writing:
            self._writing.discard(link)
            self._sel.modify(sock, selectors.EVENT_READ, link)

    def _schedule(self, link: SimLink, delay: float) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), link))

    # -- the thread --------------------------------------------------------------

    def _run(self) -> None:
        next_misc = time.monotonic() + self.misc_s
        last = time.monotonic()
        while not self._closed:
            now = time.monotonic()
            # Token bucket: connect_rate per second, bursts of up to one second's worth.
            self._tokens = min(self.connect_rate, self._tokens + (now - last) * self.connect_rate)
            last = now
            timeout = next_misc - now
            if self._timers:
                timeout = min(timeout, self._timers[0][0] - now)
            if self._ready:
                timeout = min(timeout, max(0.0, (1 - self._tokens) / self.connect_rate))
            try:
                events = self._sel.select(max(0.0, timeout))
            except OSError:
                log.exception("select failed")
                continue
            for key, mask in events:
                if key.data is None:
                    with contextlib.suppress(BlockingIOError, OSError):
                        self._wake_r.recv(4096)
                    continue
                self._io(key.data, key.fileobj, mask)
            while self._calls:
                self._guard(self._calls.popleft())
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                self._ready.append(heapq.heappop(self._timers)[2])
            while self._ready and self._tokens >= 1:
                self._tokens -= 1
                self._connect(self._ready.popleft())
            if now >= next_misc:
                next_misc = now + self.misc_s
                self._misc()
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:   # one client's trouble must not stop every other node's network
            log.exception("shared network loop: error (carrying on)")
            self.stats["errors"] += 1

    def _io(self, link: SimLink, sock: Any, mask: int) -> None:
        if mask & selectors.EVENT_READ and self._socks.get(link) is sock:
            self._guard(link.io_read)
        if mask & selectors.EVENT_WRITE and self._socks.get(link) is sock:
            self._guard(lambda: self._write(link))

    def _write(self, link: SimLink) -> None:
        if not link.io_write():
            self._done_writing(link)

    def _connect(self, link: SimLink) -> None:
        if not link.io_wanted or link in self._socks:
            if not link.io_wanted:
                self._links.discard(link)
            return
        self.stats["connects"] += 1
        ok = False
        try:
            ok = link.io_connect()
        except Exception:
            log.exception("connect failed")
        if ok and link in self._socks:
            # CONNECT is queued; paho asked for a write through want_write (queued call).
            self._guard(lambda: self._write_now(link))
            return
        # Failed, or the socket is already gone again (its close scheduled the retry).
        # A socket left open but not watched (the selector refused it) is closed:
        # its close goes through unwatch, which schedules the retry.
        closed = False
        try:
            closed = link.io_abort()
        except Exception:
            log.exception("closing an unwatched socket failed")
        if not ok:
            self.stats["connect_failures"] += 1
        if closed:
            return
        if not link.io_wanted:
            self._links.discard(link)   # stopped or crashed meanwhile
        elif not ok:
            self._schedule(link, link.io_retry_delay())

    def _write_now(self, link: SimLink) -> None:
        if link.io_write():
            self._want_write(link)

    def _misc(self) -> None:
        for link in list(self._socks):
            self._guard(link.io_misc)
            # A write request can slip between paho's flag and its queue (two threads):
            # anything still queued gets the socket watched for writing.
            if link in self._socks and link not in self._writing and link.io_wants_write():
                self._guard(lambda lk=link: self._want_write(lk))  # type: ignore[misc]
