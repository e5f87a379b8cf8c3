"""The sentinel's loop: events from the link into the watch, changes to the notifier."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable

import protocol
from protocol import HubState, HubTime, PayloadError, TopicKind, Topics
from protocol.sdnotify import SdNotify, WatchdogPinger

from .config import SentinelConfig
from .link import BrokerDown, BrokerUp, LinkEvent, Message, SentinelLink
from .notify import Notifier
from .watch import Change, HubWatch

log = logging.getLogger("tiengmo.sentinel")


class _Stop:
    """Leave the loop."""


class Sentinel:
    def __init__(self, cfg: SentinelConfig, notifier: Notifier, *,
                 mono: Callable[[], float] = time.monotonic,
                 sd: SdNotify | None = None, watchdog_interval_s: float | None = None) -> None:
        self.cfg = cfg
        self.notifier = notifier
        self._mono = mono
        self.topics = Topics(cfg.mqtt.prefix)
        self.watch = HubWatch(cfg.grace_s, cfg.beacon_stale_s, mono())
        self._queue: queue.Queue[LinkEvent | _Stop] = queue.Queue(maxsize=10_000)
        self.link = SentinelLink(cfg.mqtt, cfg.sentinel_id, self._enqueue)
        self.changes: list[Change] = []
        self.rejected = 0
        self._thread = threading.Thread(target=self._loop, name="sentinel", daemon=True)
        self._sd = sd
        self._interval = watchdog_interval_s
        self._pinger: WatchdogPinger | None = None
        self._turn_at = mono()
        self._there = False

    def _enqueue(self, event: LinkEvent) -> None:
        # Bounded: a flood of beacons is dropped rather than eating the memory.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(event)

    def start(self) -> None:
        self.notifier.start()
        self._thread.start()
        self.link.start()
        if self._sd is not None and self._sd.enabled:
            self._sd.notify("READY=1")
            if self._interval is not None:
                self._pinger = WatchdogPinger(self._sd, self._interval, self._healthy).start()
        log.info("sentinel %s watching %s (grace %.0f s)", self.cfg.sentinel_id,
                 self.topics.all_hub_states(), self.cfg.grace_s)

    def _healthy(self) -> bool:
        return self._thread.is_alive() and self._mono() - self._turn_at < 3 * self.cfg.tick_s + 5

    def stop(self) -> None:
        if self._pinger is not None:
            self._pinger.stop()
        self.link.stop()
        self._queue.put(_Stop())
        self._thread.join(10)
        self.notifier.stop()

    def _loop(self) -> None:
        while True:
            now = self._mono()
            self._turn_at = now
            due = self.watch.next_due_s(now)
            timeout = self.cfg.tick_s if due is None else min(self.cfg.tick_s, due)
            try:
                event = self._queue.get(timeout=max(0.01, timeout))
            except queue.Empty:
                event = None
            if isinstance(event, _Stop):
                return
            try:
                if event is not None:
                    self._handle(event)
                now = self._mono()
                change = self.watch.tick(now)
                self._log_sight(now)
            except Exception:   # never let one bad message stop the watching
                log.exception("sentinel error (carrying on)")
                continue
            if change is not None:
                self.changes.append(change)
                log.warning("hub %s (gone %.1f s): telling people", change.alert.value,
                            change.gone_s)
                self.notifier.tell(change)

    def _log_sight(self, now: float) -> None:
        there = self.watch.there(now)
        if there != self._there:
            self._there = there
            log.info("hub there: %s" if there else "hub not seen (%s)",
                     ", ".join(self.watch.online_hubs()) or "no hub online")

    def _handle(self, event: LinkEvent) -> None:
        now = self._mono()
        if isinstance(event, BrokerUp):
            self.watch.broker(True, now)
        elif isinstance(event, BrokerDown):
            self.watch.broker(False, now)
        elif isinstance(event, Message):
            self._message(event, now)

    def _message(self, m: Message, now: float) -> None:
        try:
            match = self.topics.parse(m.topic)
        except protocol.TopicError:
            return
        try:
            if match.kind is TopicKind.HUB_STATE:
                st = protocol.decode(HubState, m.payload)
                if st.hub_id != match.hub_id:   # one hub's Will must not speak for another
                    log.warning("rejected %s: it names hub %s", m.topic, st.hub_id)
                    self.rejected += 1
                    return
                self.watch.hub_state(st.hub_id, st.online, now)
            elif match.kind is TopicKind.HUB_TIME and not m.retain:
                beacon = protocol.decode(HubTime, m.payload)
                self.watch.beacon(beacon.hub_id, now)
        except PayloadError as exc:
            self.rejected += 1
            log.warning("rejected %s: %s", m.topic, exc)
