"""Telling people: SMS through the sentinel's modem, and webhooks. On a thread of its own,
so a slow modem never keeps the sentinel from watching."""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from modem import Modem, ModemError
from protocol.timing import wall_ms

from .config import SentinelConfig
from .texts import sms_text, webhook_body
from .watch import Change

log = logging.getLogger("tiengmo.sentinel.notify")


def host_of(url: str) -> str:
    """What a log line may say of a webhook URL: its scheme and host, never a token."""
    try:
        parts = urllib.parse.urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or '?'}"
    except ValueError:
        return "<unparsable URL>"


class Notifier:
    """Sends each change once to every number and webhook; failures are retried a few
    times (`sms.attempts`) and logged, never raised into the watcher."""

    def __init__(self, cfg: SentinelConfig, *, modem_factory: Callable[[], Any] | None = None,
                 wall: Callable[[], int] = wall_ms) -> None:
        self.cfg = cfg
        self._wall = wall
        self._modem: Any = None
        if cfg.sms is not None:
            sms = cfg.sms
            self._modem = (modem_factory() if modem_factory is not None
                           else Modem(sms.port, sms.baudrate, sms.timeout_s))
        self._queue: queue.Queue[Change | None] = queue.Queue(maxsize=64)
        self._thread = threading.Thread(target=self._run, name="sentinel-notify", daemon=True)
        self.sent: list[tuple[str, str]] = []   # (channel, target) of every success

    def start(self) -> Notifier:
        self._thread.start()
        return self

    def tell(self, change: Change) -> None:
        try:
            self._queue.put_nowait(change)
        except queue.Full:   # cannot happen with one change per grace; never block the watcher
            log.error("notification queue full: %s dropped", change.alert.value)

    def stop(self, timeout: float = 30.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        if self._modem is not None:
            self._modem.close()

    def _run(self) -> None:
        while (change := self._queue.get()) is not None:
            try:
                self._send(change)
            except Exception:   # keep the thread for the next change
                log.exception("notifying %s failed", change.alert.value)

    def _send(self, change: Change) -> None:
        now = self._wall()
        text = sms_text(change, now / 1000)
        if self.cfg.sms is not None:
            for number in self.cfg.sms.numbers:
                self._sms(number, text)
        for hook in self.cfg.webhooks:
            body = json.dumps(webhook_body(change, self.cfg.sentinel_id, now),
                              ensure_ascii=False).encode("utf-8")
            self._post(hook.url, body, hook.timeout_s)

    def _sms(self, number: str, text: str) -> None:
        assert self.cfg.sms is not None and self._modem is not None
        for attempt in range(1, self.cfg.sms.attempts + 1):
            try:
                self._modem.send(number, text)
                self.sent.append(("sms", number))
                log.warning("SMS sent to %s: %s", number, text[:60])
                return
            except ModemError as exc:
                log.error("SMS to %s failed (attempt %d): %s", number, attempt, exc)
                self._modem.close()   # reopen and re-initialise on the next try

    def _post(self, url: str, body: bytes, timeout_s: float) -> None:
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "tiengmo-sentinel/1"})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                resp.read(65536)
                ok = 200 <= resp.status < 300
                code = resp.status
        except urllib.error.HTTPError as exc:
            ok, code = False, exc.code
        except (OSError, ValueError) as exc:
            log.error("webhook to %s failed: %s", host_of(url), type(exc).__name__)
            return
        if ok:
            self.sent.append(("webhook", host_of(url)))
        else:
            log.error("webhook to %s answered HTTP %d", host_of(url), code)
