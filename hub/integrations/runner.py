"""The integrations of one hub: built from its settings, fed by the event log.

One thread follows the event log (table `events`: every change of an incident,
alarm, node, trouble or command, written by database triggers in the change's own
transaction) from where it stood when the integrations started, and hands each
batch to the metrics, the webhooks, the SMS notifier and Home Assistant. None of
them runs on an ingest thread, so nothing here can slow the alarm path; each
consumer's failure is logged and the next batch still goes to all of them.

The HTTP app is built on a started hub with lifespan off (hub.cli), so the threads
are daemons; they end with `stop()`, or by themselves once the hub has stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from ..services import Services
from .config import IntegrationSettings
from .metrics import HubMetrics
from .store import Event, IntegrationStore

log = logging.getLogger("tiengmo.hub.integrations")


class Consumer(Protocol):
    def on_events(self, events: Sequence[Event]) -> None: ...


class Integrations:
    def __init__(self, hub: Any, settings: IntegrationSettings | None = None, *,
                 poll_s: float = 0.25, modem_factory: Callable[[], Any] | None = None) -> None:
        self.hub = hub
        self.settings: IntegrationSettings = settings or hub.settings.integrations
        self.poll_s = poll_s
        self._store: IntegrationStore | None = None
        self._store_engine: Any = None
        self.metrics = HubMetrics(hub, self.store)
        self.consumers: list[Consumer] = [self.metrics]
        self.webhooks: Any = None
        self.sms: Any = None
        self.homeassistant: Any = None
        self.cursor: int | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._modem_factory = modem_factory

    # --- what the parts share ------------------------------------------------------------------

    def store(self) -> IntegrationStore:
        """The integrations' queries on the hub's current database (rebuilt after a restart)."""
        engine = self.hub.store.engine   # raises while the hub is stopped
        if self._store is None or self._store_engine is not engine:
            self._store, self._store_engine = IntegrationStore(self.hub.store.db), engine
        return self._store

    def services(self) -> Services:
        if self.hub.link is None:
            raise RuntimeError("the hub is not started")
        return Services(self.hub.store, self.hub.link, self.hub.settings)

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> Integrations:
        if self._thread is not None:
            return self
        s = self.settings
        if s.webhooks.subscribers:
            from .webhooks import Webhooks
            self.webhooks = Webhooks(self.hub.settings.hub_id, s.webhooks, self.store,
                                     self._ready, self.metrics)
            self.consumers.append(self.webhooks)
        if s.sms.enabled:
            from .sms import SmsNotifier
            self.sms = SmsNotifier(self.hub, s.sms, self.store, self._ready, self.metrics,
                                   modem_factory=self._modem_factory, timezone=s.cap.timezone)
            self.consumers.append(self.sms)
        if s.homeassistant.enabled:
            from .homeassistant import HomeAssistant
            self.homeassistant = HomeAssistant(self.hub, s.homeassistant, self.store,
                                               self.services)
            self.consumers.append(self.homeassistant)
        self._stop.clear()
        if self._ready():
            self.cursor = self.store().last_event_id()
        sa_event.listen(Session, "after_commit", self._after_commit)
        for part in (self.webhooks, self.sms, self.homeassistant):
            if part is not None:
                part.start()
        self._thread = threading.Thread(target=self._run, name="hub-integrations", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        if sa_event.contains(Session, "after_commit", self._after_commit):
            sa_event.remove(Session, "after_commit", self._after_commit)
        if self._thread is not threading.current_thread():
            self._thread.join(5)
        self._thread = None
        for part in (self.webhooks, self.sms, self.homeassistant):
            if part is not None:
                part.stop()

    def _ready(self) -> bool:
        return bool(self.hub.started)

    def _after_commit(self, session: Session) -> None:
        # A write of this process may have appended events: look now, not at the next poll.
        if self._store_engine is not None and session.bind is self._store_engine:
            self._wake.set()

    # --- the event thread ----------------------------------------------------------------------

    def _run(self) -> None:
        was_ready = False
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            if not self._ready():
                if was_ready:   # the hub stopped: so do its integrations
                    threading.Thread(target=self.stop, daemon=True).start()
                    return
                continue
            was_ready = True
            try:
                while self.poll() and not self._stop.is_set():
                    pass
            except Exception:   # a database hiccup (or a restart) must not end the thread
                log.exception("integrations: reading the event log failed; retrying")
                self._stop.wait(1.0)

    def poll(self) -> bool:
        """Hand the next batch of events to every consumer; True if there may be more."""
        store = self.store()
        if self.cursor is None:
            # From now on: the integrations report what happens, not the past.
            self.cursor = store.last_event_id()
            return False
        events = store.events_after(self.cursor, 500)
        if not events:
            return False
        self.cursor = events[-1].id
        for consumer in self.consumers:
            try:
                consumer.on_events(events)
            except Exception:
                log.exception("integration %s failed on %d events; carrying on",
                              type(consumer).__name__, len(events))
        return len(events) == 500


def start_integrations(hub: Any, app: Any) -> Integrations:
    """Build the integrations of `hub` from its settings, mount their routes, start them."""
    from .routes import install

    integrations = Integrations(hub)
    install(app, integrations)
    app.state.integrations = integrations
    return integrations.start()
