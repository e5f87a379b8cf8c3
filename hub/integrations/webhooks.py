"""Outgoing webhooks: every change in the event log, to each subscriber that wants its type,
signed, retried with capped exponential back-off, every delivery a row in the database.

Flow: the integrations' event thread hands each batch to `on_events`, which renders one
JSON body per event (hub.integrations.payloads) and queues one `webhook_deliveries` row
per subscriber and event (the row's unique key makes replicas queue it once). A sender
thread of its own posts what is due; alarm handling never waits for a subscriber.

Each POST carries
    Content-Type: application/json
    X-Tiengmo-Event: incident | alarm | node | trouble | command
    X-Tiengmo-Delivery: <delivery id>   (the same on every retry of it)
    X-Tiengmo-Timestamp: <unix seconds of this attempt>
    X-Tiengmo-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
A receiver recomputes the HMAC over the timestamp, a dot and the raw body with its
secret, compares in constant time, and refuses timestamps older than a few minutes
(a replayed request). Any 2xx is delivered; anything else (an error, a timeout, a
redirect) is retried after retry_min_s · 2^(attempts-1), at most retry_max_s, with
jitter, until max_attempts, then the row is `failed` and stays on record.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from protocol.timing import backoff_s

from .config import WebhookSettings
from .payloads import render
from .store import Delivery, Event, IntegrationStore

log = logging.getLogger("tiengmo.hub.integrations.webhooks")

USER_AGENT = "tiengmo-hub-webhooks/1"


def loggable_url(url: str) -> str:
    """`url` without what may be a credential: user:password@, the query, the fragment.

    Receivers often take their token in the query (`?token=...`) or as basic auth in
    the URL; a log line is read by more people than the hub's config.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    hidden = "?…" if parts.query or parts.fragment else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", "")) + hidden


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Tiengmo-Signature value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *,
           max_age_s: float = 300.0, now: float | None = None) -> bool:
    """What a receiver does: a fresh timestamp and a matching signature."""
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except ValueError:
        return False
    if abs(age) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could carry the signed body somewhere nobody configured: it is a failure.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    """POST and return the HTTP status (raises OSError for no answer)."""
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _opener.open(req, timeout=timeout_s) as resp:
            resp.read(65536)
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class Webhooks:
    def __init__(self, hub_id: str, settings: WebhookSettings,
                 store: Callable[[], IntegrationStore], ready: Callable[[], bool],
                 metrics: Any = None, *, clock_ms: Callable[[], int] | None = None) -> None:
        self.hub_id = hub_id
        self.settings = settings
        self.store = store
        self.ready = ready
        self.metrics = metrics
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._ids: dict[str, int] | None = None      # subscriber name -> id, once synced
        self._synced_engine: Any = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="hub-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.settings.timeout_s + 5)
        self._thread = None

    def _subscribers(self) -> dict[str, int]:
        store = self.store()
        if self._ids is None or self._synced_engine is not store.engine:
            self._ids = store.sync_subscribers(self.settings.subscribers)
            self._synced_engine = store.engine
        return self._ids

    # --- queueing (the event thread) -----------------------------------------------------------

    def on_events(self, events: Sequence[Event]) -> None:
        ids = self._subscribers()
        wanted = {t for s in self.settings.subscribers for t in s.events}
        relevant = [e for e in events if e.type in wanted]
        if not relevant:
            return
        bodies = render(self.store(), self.hub_id, relevant)
        items = [(ids[s.name], ev, bodies[ev.id]) for ev in relevant if ev.id in bodies
                 for s in self.settings.subscribers if ev.type in s.events and s.name in ids]
        if self.store().enqueue(items):
            self._wake.set()

    # --- sending (its own thread) --------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            busy = False
            if self.ready():
                try:
                    self._subscribers()
                    due = self.store().due_deliveries(20)
                    for d in due:
                        if self._stop.is_set():
                            return
                        self.attempt(d)
                    busy = len(due) == 20
                except Exception:   # the database may be restarting: try again shortly
                    log.exception("webhooks: sending failed; retrying")
            if not busy:
                self._wake.wait(self.settings.poll_s)
                self._wake.clear()

    def backoff_ms(self, attempts: int) -> int:
        """Delay before the next attempt after `attempts` failed ones, with 0-20 % jitter."""
        s = self.settings
        return int(backoff_s(attempts, s.retry_min_s, s.retry_max_s, 0.2, shorten=False) * 1000)

    def attempt(self, d: Delivery) -> bool:
        body = d.payload.encode("utf-8")
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   "X-Tiengmo-Event": d.event_type, "X-Tiengmo-Delivery": str(d.id),
                   "X-Tiengmo-Timestamp": ts, "X-Tiengmo-Signature": sign(d.secret, ts, body)}
        code: int | None = None
        error: str | None = None
        try:
            code = post(d.url, body, headers, self.settings.timeout_s)
        except (OSError, ValueError) as exc:   # refused, unreachable, timed out, bad URL
            # Some errors quote the URL (ValueError: unknown url type: '...'): never its token.
            error = f"{type(exc).__name__}: {exc}".replace(d.url, loggable_url(d.url))
        ok = code is not None and 200 <= code < 300
        attempts = d.attempts + 1
        next_ms = None
        if not ok:
            error = error or f"HTTP {code}"
            if attempts < self.settings.max_attempts:
                next_ms = self._clock_ms() + self.backoff_ms(attempts)
            log.warning("webhook %d (%s event %d) to %s failed (attempt %d): %s%s", d.id,
                        d.event_type, d.event_id, loggable_url(d.url), attempts, error,
                        "" if next_ms else "; giving up")
        self.store().record_attempt(d.id, ok=ok, code=code, error=error,
                                    next_attempt_ms=next_ms)
        return ok
