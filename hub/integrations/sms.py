"""SMS to the people who must hear first, for those without mobile data: a new incident to
its area's responders (the commune police, the hamlet head: `[[integrations.sms.responders]]`,
kept in the table `responders`; an area's responders hear of every area below it too),
and the hub's own loss of its broker to the administrators.

Only the leading replica texts responders (one SMS per incident however many hubs run);
every hub texts about its own broker. The modem is driven by one worker thread from a
queue, so a slow or absent modem never holds anything else up; each message is tried
`send_attempts` times (the port reopened in between) and its outcome written to the
audit log (actor `hub:sms`), so who was told what, and when, is on record.

With `[integrations.sms.inbound]` on, the same worker, between sends, asks the modem
what came in (every `poll_s`) and hands each SMS and call to the phone alarms
(hub/integrations/phone.py): one thread owns the modem, so a reply never interleaves
its AT commands with a poll.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modem import Modem, ModemError, split_sms

from .config import SmsSettings
from .metrics import _Seen
from .phone import PhoneAlarms
from .store import Event, IntegrationStore
from .texts import (
    area_chain,
    broker_back_sms,
    broker_lost_sms,
    escalation_sms,
    incident_sms,
)

log = logging.getLogger("tiengmo.hub.integrations.sms")

ACTOR = "hub:sms"
# An incident older than this when first seen is history (a restart catching up): no SMS.
FRESH_MS = 300_000


@dataclass(frozen=True, slots=True)
class Sms:
    phone: str
    text: str
    reason: str          # "incident" | "escalation" | "broker_lost" | "broker_back" | "phone_…"
    subject: str | None = None


class SmsNotifier:
    def __init__(self, hub: Any, settings: SmsSettings, store: Callable[[], IntegrationStore],
                 ready: Callable[[], bool], metrics: Any = None, *,
                 modem_factory: Callable[[], Any] | None = None,
                 timezone: str = "Asia/Ho_Chi_Minh") -> None:
        self.hub = hub
        self.settings = settings
        self.store = store
        self.ready = ready
        self.metrics = metrics
        self.tz = timezone
        self._modem_factory = modem_factory or (lambda: Modem(
            settings.port, settings.baudrate, settings.timeout_s))
        self._modem: Any = None
        self._queue: queue.Queue[Sms | None] = queue.Queue()
        self._seen = _Seen()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._synced_engine: Any = None
        self._lost_since: float | None = None    # monotonic, while the broker is away
        self._lost_told = False
        self.sent: list[Sms] = []                # what went out, for status and tests
        self.phone: PhoneAlarms | None = None
        if settings.inbound.enabled:
            self.phone = PhoneAlarms(hub, settings.inbound, self._sync, self.text,
                                    timezone=timezone)
        self._listen_after = 0.0                 # monotonic: the modem failed, retry then

    def text(self, phone: str, text: str, reason: str) -> None:
        """Queue one SMS (the phone alarms' replies; any thread)."""
        self._queue.put(Sms(phone, text, reason))

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="hub-sms", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.settings.timeout_s + 5)
        self._thread = None
        if self._modem is not None:
            self._modem.close()

    # --- incidents (the event thread) ----------------------------------------------------------

    def _sync(self) -> IntegrationStore:
        store = self.store()
        if self._synced_engine is not store.engine:
            store.sync_responders(self.settings.responders)
            self._synced_engine = store.engine
        return store

    def on_events(self, events: Sequence[Event]) -> None:
        if self.phone is not None:
            self.phone.on_events(events)
        ids = [e.subject for e in events if e.type == "incident"]
        escalated = [e.subject for e in events if e.type == "escalation"]
        if not (ids or escalated) or not self.hub.leadership.is_leader():
            return
        store = self._sync()
        self._new_incidents(store, ids)
        self._escalations(store, escalated)

    def _new_incidents(self, store: IntegrationStore, ids: list[str]) -> None:
        if not ids:
            return
        now = store.now_ms()
        names: dict[str, str] | None = None
        for inc in store.incidents(ids).values():
            if inc.flagged or (inc.drill and not self.settings.drills) or inc.area is None:
                continue   # an unknown node's alarm is not sent to people's phones
            if now - inc.opened_ms > FRESH_MS or not self._seen.add(inc.incident_id):
                continue
            names = names if names is not None else store.area_names()
            text = incident_sms(inc.kind, area_chain(inc.area, names), inc.origin_node,
                                inc.opened_ms, self.tz, inc.incident_id, inc.drill)
            phones = dict.fromkeys(r.phone for r in store.responders_for(inc.area))
            if not phones:
                log.warning("incident %s in %s: no SMS responders for this area",
                            inc.incident_id, inc.area)
            for phone in phones:
                self._queue.put(Sms(phone, text, "incident", inc.incident_id))

    def _escalations(self, store: IntegrationStore, ids: list[str]) -> None:
        """Nobody acknowledged in time: the responders hear of it before the gongs widen
        (hub/escalation.py); one SMS per step."""
        if not ids:
            return
        names = store.area_names()
        for inc in store.incidents(ids).values():
            if inc.flagged or inc.drill or inc.area is None or not inc.is_open:
                continue
            if not self._seen.add(f"{inc.incident_id}#esc{inc.escalation_level}"):
                continue
            widened = inc.escalation_level > 1 and inc.sounded_area is not None
            text = escalation_sms(inc.kind, area_chain(inc.area, names), inc.opened_ms,
                                  self.tz, inc.incident_id, inc.escalation_level,
                                  area_chain(inc.sounded_area, names) if widened and
                                  inc.sounded_area else None)
            for phone in dict.fromkeys(r.phone for r in store.responders_for(inc.area)):
                self._queue.put(Sms(phone, text, "escalation", inc.incident_id))

    # --- the broker watch and the modem (its own thread) ---------------------------------------

    def check_broker(self, now: float | None = None) -> None:
        """Text the administrators once the broker has been away `broker_loss_after_s`,
        and again when it is back."""
        now = time.monotonic() if now is None else now
        link = self.hub.link
        up = bool(link is not None and link.connected.is_set())
        if up:
            if self._lost_told:
                for phone in self.settings.admins:
                    self._queue.put(Sms(phone, broker_back_sms(
                        self.hub.settings.hub_id, time.time_ns() // 1_000_000, self.tz),
                        "broker_back"))
            self._lost_since, self._lost_told = None, False
            return
        if self._lost_since is None:
            self._lost_since = now
        elif not self._lost_told and now - self._lost_since >= self.settings.broker_loss_after_s:
            self._lost_told = True
            since_ms = time.time_ns() // 1_000_000 - int((now - self._lost_since) * 1000)
            log.error("hub %s without its broker for %.0f s: texting %d administrators",
                      self.hub.settings.hub_id, now - self._lost_since,
                      len(self.settings.admins))
            for phone in self.settings.admins:
                self._queue.put(Sms(phone, broker_lost_sms(self.hub.settings.hub_id, since_ms,
                                                           self.tz), "broker_lost"))

    def _run(self) -> None:
        tick = min(1.0, self.settings.broker_loss_after_s / 4)
        if self.phone is not None:
            tick = min(tick, self.settings.inbound.poll_s)
        while not self._stop.is_set():
            if self.ready():
                try:
                    self.check_broker()
                except Exception:
                    log.exception("sms: broker check failed")
            try:
                item = self._queue.get(timeout=tick)
            except queue.Empty:
                item = None if self._stop.is_set() else Sms("", "", "")
            if item is None:
                return
            try:   # this thread is the SMS and phone-alarm lane: it must not end
                if item.phone:
                    self._deliver(item)
                if self.phone is not None and self.ready():
                    self._listen()
            except Exception:
                log.exception("sms: the modem worker failed; carrying on")
                if self._modem is not None:
                    with contextlib.suppress(Exception):
                        self._modem.close()
                self._modem = None

    def _open_modem(self) -> Any:
        if self._modem is None:
            self._modem = self._modem_factory()
            if self.phone is not None:
                self._modem.listen()
        return self._modem

    def _listen(self) -> None:
        """What came in on the modem, handed to the phone alarms (this thread)."""
        assert self.phone is not None
        now = time.monotonic()
        if now < self._listen_after:
            return
        try:
            got = self._open_modem().poll(0.05)
        except (ModemError, OSError) as exc:
            log.warning("sms: the modem cannot be polled (%s); retrying in 5 s", exc)
            if self._modem is not None:
                self._modem.close()
            self._modem, self._listen_after = None, now + 5.0
            return
        for item in got:
            self.phone.handle(item)   # never raises
        try:
            self.phone.tick()
        except Exception:   # the database away: expiry waits for the next poll
            log.exception("sms: expiring missed calls failed")

    def _deliver(self, sms: Sms) -> None:
        error = ""
        refs: list[int] = []
        for attempt in range(1, self.settings.send_attempts + 1):
            try:
                refs = self._open_modem().send(sms.phone, sms.text)
                error = ""
                break
            except (ModemError, OSError) as exc:
                error = str(exc)
                log.warning("SMS to %s failed (attempt %d): %s", sms.phone, attempt, exc)
                if self._modem is not None:
                    self._modem.close()
                self._modem = None
                if self._stop.wait(min(5.0, 0.5 * attempt)):
                    break
        ok = not error
        if ok:
            self.sent.append(sms)
        if self.metrics is not None:
            self.metrics.sms_sent.labels("sent" if ok else "failed").inc()
        try:
            if self.ready():
                self.hub.store.audit.record(ACTOR, "sms_sent" if ok else "sms_failed", sms.phone,
                                            {"reason": sms.reason, "incident_id": sms.subject,
                                             "parts": len(split_sms(sms.text)), "refs": refs,
                                             "error": error or None})
        except Exception:
            log.exception("sms: could not write the audit entry")
