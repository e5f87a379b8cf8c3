"""Households alarm by phone: an SMS keyword or a missed call to the hub's modem.

The modem's owner (the SMS worker, hub/integrations/sms.py) polls it and hands each SMS
or call here, on its thread. A registered household's number (the registry's
`[[households]]`, protocol/households.py) raises an alarm of its hamlet, stored by the
hub's own alarm transaction (Ingest.store_phone_alarm → hub/alarm_batch.py: the same
correlation, fan-out and escalation as a button, source `sms` or `call`, origin
`tel:<number>`), and the household is texted back when it is received and when an
officer acknowledges it.

A missed call can be a pocket dial and a caller id can be spoofed, so a call alone
sounds nothing: it opens a `phone_call` trouble on the board, texts the hamlet's
responders at once and asks the household to confirm (reply "1", or call again at
least `second_call_after_s` later, within `confirm_s`); then the gongs sound. A keyword
SMS is a deliberate act and sounds at once (docs/security.md weighs this). Unknown
numbers are logged (audit, `unknown_caller` trouble) and sound nothing unless
`unknown_area` is set; every number is rate limited (`rate_max` per `rate_window_s`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modem.inbound import Inbound, InboundSms, IncomingCall
from protocol import Kind, new_id
from protocol.phones import normalise_phone

from ..store import TroubleKind
from ..store.phone import PhoneAlarm, PhoneSource, origin_number, phone_origin
from . import phone_texts as texts
from .config import PhoneSettings
from .keywords import is_confirmation, kind_for
from .store import Event, IntegrationStore
from .texts import area_chain

log = logging.getLogger("tiengmo.hub.integrations.phone")

ACTOR = "hub:phone"
WITHHELD = "withheld"


@dataclass(slots=True)
class _Pending:
    at: float               # monotonic, the first call
    household: str
    area: str


class PhoneAlarms:
    def __init__(self, hub: Any, settings: PhoneSettings,
                 store: Callable[[], IntegrationStore], text: Callable[[str, str, str], None],
                 *, timezone: str = "Asia/Ho_Chi_Minh",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.hub = hub
        self.settings = settings
        self.store = store
        self.text = text            # text(number, message, reason): queued on the SMS worker
        self.tz = timezone
        self.clock = clock
        self.pending: dict[str, _Pending] = {}
        self._seen: dict[str, deque[float]] = {}
        self._flooding: set[str] = set()
        self._acked: set[str] = set()
        self.handled: list[tuple[str, str, str]] = []   # (number, what, outcome): tests, status

    # --- what the modem hands in (the SMS worker's thread) -------------------------------------

    def handle(self, item: Inbound) -> None:
        try:
            if isinstance(item, InboundSms):
                self._sms(item)
            else:
                self._call(item)
        except Exception:   # one bad message must not stop the modem's loop
            log.exception("phone: could not handle %r", item)

    def tick(self) -> None:
        """Missed calls nobody confirmed in time: the board's item is cleared (audited)."""
        now = self.clock()
        for number, p in list(self.pending.items()):
            if now - p.at > self.settings.confirm_s:
                del self.pending[number]
                self.hub.store.troubles.clear(TroubleKind.PHONE_CALL.value, number)
                self._audit("phone_call_unconfirmed", number, {"household": p.household})
                log.warning("missed-call alarm from %s (%s) not confirmed within %.0f s: no "
                            "gongs", number, p.household, self.settings.confirm_s)

    def _number(self, raw: str) -> str:
        try:
            return normalise_phone(raw)
        except ValueError:
            return raw or WITHHELD

    def _allowed(self, number: str, what: str) -> bool:
        """Per-number rate limit; the first refusal of a flood opens a trouble."""
        now, window = self.clock(), self.settings.rate_window_s
        seen = self._seen.setdefault(number, deque())
        while seen and seen[0] <= now - window:
            seen.popleft()
        if len(seen) < self.settings.rate_max:
            seen.append(now)
            self._flooding.discard(number)
            return True
        self.handled.append((number, what, "rate_limited"))
        if number not in self._flooding:
            self._flooding.add(number)
            log.warning("phone: %s is over %d per %.0f s; ignoring it for now", number,
                        self.settings.rate_max, window)
            self.hub.store.troubles.open(TroubleKind.PHONE_FLOOD.value, number,
                                         {"limit": self.settings.rate_max, "via": what})
            self._audit("phone_rate_limited", number, {"via": what})
        return False

    def _sms(self, sms: InboundSms) -> None:
        number = self._number(sms.number)
        if not self._allowed(number, "sms"):
            return
        household = self._household(number)
        kind = kind_for(sms.text)
        if household is None:
            self._unknown(number, "sms", kind, sms.text)
            return
        late = (sms.sent_ms is not None and
                time.time() * 1000 - sms.sent_ms > self.settings.max_age_s * 1000)
        if number in self.pending and is_confirmation(sms.text) and not late:
            self._alarm(household, number, PhoneSource.CALL, Kind(self.settings.call_kind))
            return
        if kind is None:
            self.handled.append((number, "sms", "no_keyword"))
            self._audit("phone_sms_no_keyword", number, {"text": sms.text[:160]})
            self.text(number, texts.help_sms(), "phone_help")
            return
        if late:
            self.handled.append((number, "sms", "late"))
            self._audit("phone_sms_late", number, {"text": sms.text[:160],
                                                   "sent_ms": sms.sent_ms})
            self.hub.store.troubles.open(TroubleKind.UNKNOWN_CALLER.value, number,
                                         {"via": "sms", "late": True, "kind": kind.value,
                                          "household": household.id, "text": sms.text[:160]})
            self.text(number, texts.late_sms(), "phone_late")
            return
        self._alarm(household, number, PhoneSource.SMS, kind)

    def _call(self, call: IncomingCall) -> None:
        number = self._number(call.number)
        if not self._allowed(number, "call"):
            return
        household = self._household(number) if number != WITHHELD else None
        if household is None:
            self._unknown(number, "call", None, None)
            return
        now = self.clock()
        p = self.pending.get(number)
        if p is not None and now - p.at >= self.settings.second_call_after_s:
            self._alarm(household, number, PhoneSource.CALL, Kind(self.settings.call_kind))
            return
        if p is not None:
            self.handled.append((number, "call", "same_call"))
            return   # the same call still ringing, or redialled at once: not a confirmation
        self.pending[number] = _Pending(now, household.id, household.area)
        place = self._place(household.area)
        name = household.name or household.id
        self.handled.append((number, "call", "pending"))
        log.warning("missed-call alarm from %s (%s, %s): waiting for its confirmation",
                    number, name, household.area)
        self.hub.store.troubles.open(TroubleKind.PHONE_CALL.value, number,
                                     {"household": household.id, "name": name,
                                      "area": household.area})
        self._audit("phone_call", number, {"household": household.id, "area": household.area})
        self.text(number, texts.confirm_call_sms(self._hamlet(household.area), max(1, round(
            self.settings.confirm_s / 60))), "phone_confirm")
        for r in dict.fromkeys(r.phone for r in self.store().responders_for(household.area)):
            self.text(r, texts.responders_call_sms(name, number, place, self.hub.clock_ms(),
                                                   self.tz), "phone_call")

    def _household(self, number: str) -> Any:
        reg = self.hub.registry
        return None if reg is None else reg.household_of(number)

    def _place(self, area: str) -> str:
        """The hamlet and its commune (for responders)."""
        return ", ".join(area_chain(area, self.store().area_names())[:2])

    def _hamlet(self, area: str) -> str:
        """The hamlet's name alone (for the household: shorter SMS)."""
        return area_chain(area, self.store().area_names())[0]

    def _unknown(self, number: str, via: str, kind: Kind | None, text: str | None) -> None:
        """A number no household holds: shown to the officer; sounds only `unknown_area`."""
        area = self.settings.unknown_area
        detail = {"via": via, "kind": kind.value if kind else None,
                  "text": (text or "")[:160] or None}
        self.hub.store.troubles.open(TroubleKind.UNKNOWN_CALLER.value, number, detail)
        self._audit("phone_unknown", number, detail)
        if area is not None and kind is not None and via == "sms":
            self.handled.append((number, via, "unknown_sounded"))
            self._store(number, PhoneSource.SMS, kind, area, None)
            return
        self.handled.append((number, via, "unknown"))
        log.warning("phone: %s from unknown number %s (%s): not sounded", via, number,
                    kind.value if kind else "no keyword")

    def _alarm(self, household: Any, number: str, source: PhoneSource, kind: Kind) -> None:
        self.pending.pop(number, None)
        self.hub.store.troubles.clear(TroubleKind.PHONE_CALL.value, number)
        self.handled.append((number, source.value, "alarm"))
        self._store(number, source, kind, household.area, household.id)

    def _store(self, number: str, source: PhoneSource, kind: Kind, area: str,
               household: str | None) -> None:
        now = self.hub.clock_ms()
        alarm = PhoneAlarm(new_id(), kind, now, source, area)
        try:
            out = self.hub.ingest.store_phone_alarm((phone_origin(number), alarm, now))
        except Exception:
            log.exception("phone: could not store the alarm from %s", number)
            self.text(number, texts.failed_sms(), "phone_failed")
            return
        self._audit("phone_alarm", number, {"household": household, "via": source.value,
                                            "kind": kind.value, "area": area,
                                            "incident_id": out.incident_id})
        if household is not None:
            self.text(number, texts.received_sms(kind.value, self._hamlet(area), now, self.tz,
                                                 out.fan_out), "phone_received")

    def _audit(self, action: str, number: str, detail: dict[str, Any]) -> None:
        try:
            self.hub.store.audit.record(ACTOR, action, number, detail)
        except Exception:
            log.exception("phone: could not write the audit entry %s", action)

    # --- an officer took it (the integrations' event thread) -----------------------------------

    def on_events(self, events: Sequence[Event]) -> None:
        ids = {e.subject for e in events if e.type == "incident"} - self._acked
        if not ids:
            return
        for inc in self.store().incidents(ids).values():
            if inc.acknowledged_ms is None or inc.incident_id in self._acked:
                continue
            self._acked.add(inc.incident_id)
            numbers = {n for a in self.hub.store.alarms.find(incident_id=inc.incident_id,
                                                              limit=200)
                       if a.source in ("sms", "call") and (n := origin_number(a.node_id))
                       and self._household(n) is not None}
            if not numbers or inc.area is None:
                continue
            text = texts.acknowledged_sms(inc.kind, self._hamlet(inc.area),
                                          inc.acknowledged_ms, self.tz)
            for n in sorted(numbers):
                self.text(n, text, "phone_acknowledged")
