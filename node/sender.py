"""The node's alarm sending: outbox to broker, again and again until the hub answers.

PROTOCOL.md rule 2: a pending alarm is sent when it is pressed and on every
connect, and while connected it is re-sent after a capped exponential back-off
with jitter until an ack settles it. Offline nothing is re-sent: the next
connect sends every pending alarm anyway. Runs on the agent's one thread only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

import protocol
from protocol import TopicKind
from protocol.timing import backoff_s

from .clock import HubClock
from .config import Timers
from .outbox import Entry, EntryState, Outbox

log = logging.getLogger("tiengmo.node.agent")   # the agent's logger: one story per node

Publish = Callable[[TopicKind, str, protocol.Message], None]


class AlarmSender:
    """Sends the outbox's pending alarms on `topic`; `outbox` is set when the agent starts."""

    def __init__(self, *, topic: str, timers: Timers, clock: HubClock,
                 mono: Callable[[], float], stats: Counter[str], publish: Publish,
                 connected: Callable[[], bool]) -> None:
        self.outbox: Outbox | None = None
        self._topic = topic
        self._timers = timers
        self._clock = clock
        self._mono = mono
        self._stats = stats
        self._publish = publish
        self._connected = connected
        self._resend: dict[str, tuple[float, int]] = {}   # alarm_id -> (due, attempt)

    def send(self, alarm_id: str) -> None:
        """Send a new alarm (if connected; otherwise the reconnect will)."""
        entry = self.outbox.get(alarm_id) if self.outbox else None
        if entry is not None:
            self._send(entry)

    def send_pending(self) -> None:
        """Just connected: send every pending alarm (rule 2)."""
        for entry in self.outbox.pending() if self.outbox else []:
            self._send(entry)

    def stop_resending(self, alarm_id: str) -> None:
        self._resend.pop(alarm_id, None)

    def next_due(self) -> float | None:
        """The monotonic time the next re-send is due, if any."""
        return min((due for due, _ in self._resend.values()), default=None)

    def tick(self, now: float) -> None:
        """Re-send what is due."""
        for alarm_id, (due, _) in list(self._resend.items()):
            if now >= due:
                entry = self.outbox.get(alarm_id) if self.outbox else None
                if entry is None or entry.state is not EntryState.PENDING \
                        or not self._connected():
                    # Offline: the reconnect re-sends every pending alarm anyway.
                    self._resend.pop(alarm_id, None)
                else:
                    self._send(entry)

    def _backoff_s(self, attempt: int) -> float:
        t = self._timers
        return backoff_s(attempt, t.resend_first_s, t.resend_max_s, t.resend_jitter)

    def _send(self, entry: Entry) -> None:
        if entry.state is not EntryState.PENDING or self.outbox is None:
            return
        if not self._connected():
            return   # the reconnect re-sends it
        attempt = entry.attempt + 1
        self._publish(TopicKind.ALARM, self._topic, entry.to_alarm(attempt))
        delay = self._backoff_s(attempt)
        self._resend[entry.alarm_id] = (self._mono() + delay, attempt)
        own_ms = self._clock.own_ms()
        self.outbox.mark_sent(entry.alarm_id, attempt, own_ms + int(delay * 1000), own_ms)
        self._stats["alarms_sent"] += 1
        log.info("alarm %s sent (attempt %d)", entry.alarm_id, attempt)
