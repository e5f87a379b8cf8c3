"""Deterministic incident and sound ids, and the hub's memory of what it already sounded.

Why (PROTOCOL.md rules 2-4; docs/protocol-notes.md "Incident ids"): a `sound` is
published before its alarm's transaction commits, so the gongs never wait for
an fsync. If that commit fails and the transaction is retried, or the database
cannot be written at all for a while, the id the sound carried must still be
the id the database ends up holding. So:

- an incident's id is derived, not drawn: `uuid5(correlation key | window start |
  generation)`, where the window start is the correlation window's bucket on the
  hub's clock at receipt, `floor(received_ms / window_ms) * window_ms`. Any
  replica, a restarted hub, or a retry deciding the same alarm derives the same id;
- the first `sound` of an incident has a derived `cmd_id` too, so a copy
  published twice is the same command, which nodes treat idempotently;
- `Memory` (one per Store, in this process) pins every alarm whose incident was
  sounded before it was stored, with its first receipt time, so a retry or the
  node's re-send after an outage is stored under the incident that already
  sounded, and remembers the open incidents and nodes it has seen committed, so
  that while the database cannot be written a new alarm is decided in memory
  as correlation would decide it.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocol import Command

from .policy import Sound
from .store import AlarmOutcome, IncidentInfo, IncidentState
from .store.alarms import corr_key
from .store.ids import first_sound_id, incident_id, window_start

__all__ = ["MAX_PINS", "Memory", "Pin", "first_sound_id", "incident_id", "memory_for",
           "memory_incident", "window_start"]

if TYPE_CHECKING:
    from .store import Store

# How many alarms decided in memory (not yet stored) one hub keeps; nodes re-send
# until acked, so a pin dropped past this only costs the stored-under-same-id promise.
MAX_PINS = 20_000


@dataclass(frozen=True, slots=True)
class Pin:
    """An alarm whose incident was decided (and possibly sounded) before it was stored."""

    incident_id: str
    received_ms: int          # its first receipt: the window it was decided in
    opened_ms: int
    sound: tuple[Sound, Command] | None   # published for it before it was stored
    node_id: str              # the node that sent it first: the id is that node's alone


@dataclass(slots=True)
class _Open:
    incident_id: str
    opened_ms: int
    fanned_out: bool


class Memory:
    """What this hub process has decided or seen committed (thread-safe)."""

    def __init__(self, down_s: float = 30.0) -> None:
        self._lock = threading.Lock()
        self.pins: dict[str, Pin] = {}
        # incident -> its first sound, published before the incident was committed
        self._sounds: dict[str, tuple[Sound, Command]] = {}
        self._open: dict[str, _Open] = {}
        self._nodes: dict[str, tuple[str | None, bool, bool]] = {}
        self._failed_at: float | None = None
        self.down_s = down_s

    # ---- pins ------------------------------------------------------------

    def pin(self, alarm_id: str, p: Pin) -> None:
        with self._lock:
            self._pin(alarm_id, p)

    def _pin(self, alarm_id: str, p: Pin) -> None:
        held = self.pins.get(alarm_id)
        if held is not None and held.node_id != p.node_id:
            return   # bound to the node that sent it first, as a stored row is
        if alarm_id not in self.pins and len(self.pins) >= MAX_PINS:
            self.pins.pop(next(iter(self.pins)))
        self.pins[alarm_id] = p
        if p.sound is not None:
            if len(self._sounds) >= MAX_PINS:
                self._sounds.pop(next(iter(self._sounds)))
            self._sounds[p.incident_id] = p.sound

    def sound_of(self, incident: str) -> tuple[Sound, Command] | None:
        """The sound this hub published for `incident` before it was committed, if any:
        every alarm stored into it reuses that one, none publishes another."""
        with self._lock:
            return self._sounds.get(incident)

    def pinned(self, alarm_ids: list[str]) -> dict[str, Pin]:
        with self._lock:
            return {a: self.pins[a] for a in alarm_ids if a in self.pins}

    def pinned_to_another(self, node_id: str, alarm_id: str) -> Pin | None:
        """The pin of `alarm_id` if another node sent it first (while it was not stored,
        the database cannot tell: memory must, or that node would take the id over)."""
        with self._lock:
            p = self.pins.get(alarm_id)
        return p if p is not None and p.node_id != node_id else None

    # ---- what was committed ---------------------------------------------

    def stored(self, outcomes: list[AlarmOutcome]) -> None:
        """A batch committed: its alarms need no pin; learn its nodes and open incidents."""
        with self._lock:
            self._failed_at = None
            for out in outcomes:
                if out.foreign:
                    continue   # another node's alarm_id: nothing of it is this node's
                self.pins.pop(out.alarm_id, None)
                inc = out.incident
                # Committed, with its command row: alarms joining it now find it fanned out.
                self._sounds.pop(inc.incident_id, None)
                self._nodes[out.alarm.node_id] = (out.alarm.area, out.node_known,
                                                  out.node_enabled)
                key = self._key_of(out, inc)
                if inc.is_open:
                    self._open[key] = _Open(inc.incident_id, inc.opened_ms, inc.fanned_out)
                else:
                    self._open.pop(key, None)

    def sounded(self, out: AlarmOutcome, p: Pin) -> None:
        """`out` opened an incident whose sound went out before its commit: pin the alarm,
        and let the hamlet's next alarms join it in memory if the commit fails."""
        with self._lock:
            self._pin(out.alarm_id, p)
            self._open[self._key_of(out, out.incident)] = _Open(p.incident_id, p.opened_ms,
                                                                True)

    @staticmethod
    def _key_of(out: AlarmOutcome, inc: IncidentInfo) -> str:
        return corr_key(inc.kind, out.alarm.area, out.alarm.node_id,
                        not (out.node_known and out.node_enabled), inc.late)

    def failed(self) -> None:
        with self._lock:
            self._failed_at = time.monotonic()

    @property
    def db_down(self) -> bool:
        """The last write failed, recently: decide (and sound) before trying to store."""
        with self._lock:
            return (self._failed_at is not None
                    and time.monotonic() - self._failed_at < self.down_s)

    def node(self, node_id: str) -> tuple[str | None, bool, bool] | None:
        with self._lock:
            return self._nodes.get(node_id)

    def learn_node(self, node_id: str, area: str | None, known: bool, enabled: bool) -> None:
        with self._lock:
            self._nodes[node_id] = (area, known, enabled)

    # ---- deciding without the database ----------------------------------

    def decide(self, key: str, received_ms: int, window_ms: int,
               closed: Callable[[str], bool] = lambda _: False) -> tuple[str, int, bool]:
        """(incident id, opened_ms, new) for an alarm of `key` received at `received_ms`,
        as correlation would decide it: the open incident of the key if its window still
        runs, else a new one in this bucket (remembered, so the next alarm joins it).
        `closed(id)` says an incident is known closed (a read, while reads work): one
        that was resolved or cancelled takes no more alarms, and its bucket's next
        generation is the new incident's id."""
        with self._lock:
            cur = self._open.get(key)
        if (cur is not None and received_ms - cur.opened_ms <= window_ms
                and not closed(cur.incident_id)):
            return cur.incident_id, cur.opened_ms, False
        start, gen = window_start(received_ms, window_ms), 0
        while closed(new_id := incident_id(key, start, gen)) and gen < 100:
            gen += 1
        with self._lock:
            self._open[key] = _Open(new_id, received_ms, True)
        return new_id, received_ms, True


_memories: weakref.WeakKeyDictionary[Store, Memory] = weakref.WeakKeyDictionary()
_memories_lock = threading.Lock()


def memory_for(store: Store) -> Memory:
    """The one Memory of `store` in this process (made on first use)."""
    with _memories_lock:
        mem = _memories.get(store)
        if mem is None:
            mem = _memories[store] = Memory()
        return mem


def memory_incident(incident: str, kind: str, area: str, node_id: str,
                    opened_ms: int) -> IncidentInfo:
    """The snapshot of an incident decided in memory (what its sound needs)."""
    return IncidentInfo(
        incident_id=incident, kind=kind, area=area, origin_node=node_id,
        state=IncidentState.OPEN, opened_ms=opened_ms, last_alarm_ms=opened_ms,
        alarm_count=1, acknowledged_ms=None, acknowledged_by=None, resolved_ms=None,
        resolved_by=None, outcome=None, note=None, drill=False, escalation_level=0,
        escalated_ms=None, sounded_area=None, fanned_out=True, flagged=False,
        fanout_held=False)
