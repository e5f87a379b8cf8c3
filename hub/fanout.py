"""Fan-out: sounding an incident's area, and knowing which gongs did not sound.

- `FanOut.sound(...)` builds one `sound` command (new cmd_id, expiry after
  `sound_expiry_s` on the hub's clock, pattern/priority/duration from the
  policy), records it, then publishes it once to the area's cmd topic: the
  broker copies it to every node of the area and below (PROTOCOL.md rule 4).
- The noisy-node limit (a stuck or pranked button) is counted in the database
  by `store.alarms.record_batch(noisy_max_fanouts=…)` so every replica agrees; it only
  ever holds back fan-out (`fanout_held`), never storing or acking. Here a held
  incident becomes a `noisy_node` trouble that operators see.
- Failed to sound: every enabled node of a fanned-out area that has reported
  no `started` (or `done`) within `failed_to_sound_s` becomes a trouble. The
  check reads results from the database, so it holds whichever replica the
  results reached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import protocol
from protocol import Ack, Action, Command, Kind

from .commands import build_command, sound_command
from .errors import PolicyError
from .policy import Policy, Sound
from .store import IncidentInfo, Store, TroubleKind
from .store.ids import first_sound_id

log = logging.getLogger("tiengmo.hub.fanout")

_SOUNDED = {protocol.ResultStatus.STARTED.value, protocol.ResultStatus.DONE.value}


class Handoff(Protocol):
    """A publish handed to the MQTT client (hub.mqtt.client.Published)."""

    def wait(self, timeout: float) -> bool: ...


class Publisher(Protocol):
    """Where commands and acks go out (the runtime's MQTT link)."""

    # A Handoff where the publisher can say when the broker has it (the link can).
    def publish_area_cmd(self, area: str, cmd: Command) -> Handoff | None: ...

    def publish_node_cmd(self, node_id: str, cmd: Command) -> None: ...

    def publish_ack(self, node_id: str, ack: Ack) -> None: ...


@dataclass(frozen=True, slots=True)
class _Pending:
    cmd_id: str
    incident_id: str | None
    area: str
    deadline_ms: int
    nodes: tuple[str, ...]


def sound_in_area(policy: Policy, kind: str, origin_area: str, area: str | None) -> Sound:
    """How an incident of `kind` from `origin_area` sounds in `area` (None: where the policy
    says). Another area (an escalation, an operator's choice) plays the kind's pattern as
    agreed THERE, with the kind's duration and priority; a pattern agreed only elsewhere
    falls back to the one the first sound used."""
    first = policy.sound_for(kind, origin_area)
    if area is None or area == first.area:
        return first
    try:
        pattern = policy.pattern_for(policy.kind_policy(kind).pattern or kind, area)
    except PolicyError:
        pattern = first.pattern
    return Sound(area, pattern, first.duration_s, first.priority)


_KIND_NAMES = {Kind.FIRE: "cháy / fire", Kind.THEFT: "trộm cắp / theft",
               Kind.ROBBERY: "cướp / robbery", Kind.FIGHT: "đánh nhau / fight",
               Kind.FLOOD: "lũ lụt / flood", Kind.MEDICAL: "cấp cứu / medical",
               Kind.SOS: "khẩn cấp / SOS"}


def kind_label(kind: str) -> str:
    """Vietnamese / English name of a kind, for operators' log lines."""
    try:
        return _KIND_NAMES[Kind(kind)]
    except ValueError:
        return kind


class FanOut:
    def __init__(self, store: Store, publisher: Publisher, *, sound_expiry_s: float,
                 failed_to_sound_s: float, sound_handoff_s: float = 0.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.publisher = publisher
        self.sound_expiry_s = sound_expiry_s
        self.failed_to_sound_s = failed_to_sound_s
        self.sound_handoff_s = sound_handoff_s
        self._handoffs = threading.local()   # each alarm worker's sounds not yet settled
        self._monotonic = monotonic
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def sound(self, incident: IncidentInfo, sound: Sound, now_ms: int, *,
              issued_by: str = "hub", note: str | None = None) -> Command:
        """Record, then publish, one `sound` for the incident; watch who starts it."""
        cmd = sound_command(sound, now_ms, self.sound_expiry_s,
                            incident_id=incident.incident_id, drill=incident.drill)
        # Recorded first: a result that races the publish always finds its command.
        self.store.commands.record(cmd, "area", sound.area, issued_by=issued_by, note=note)
        self.publisher.publish_area_cmd(sound.area, cmd)
        self.watch(cmd.cmd_id, incident.incident_id, sound.area, now_ms)
        return cmd

    def sound_early(self, incident: IncidentInfo, sound: Sound, now_ms: int) -> Command:
        """Publish a new incident's `sound` BEFORE its alarm's transaction commits (the
        gongs may sound first, the ack may not); the alarm transaction records it
        (hub.alarm_batch) and, after the commit, `watch` follows who starts it. A
        node's result that races the commit is stored anyway (results need no command
        row). Its cmd_id is derived from the incident's: a second replica or a retry
        sounding the same incident publishes the same command, which nodes play once.
        The caller then `settle`s, once for all the sounds of its batch."""
        cmd = sound_command(sound, now_ms, self.sound_expiry_s,
                            incident_id=incident.incident_id, drill=incident.drill,
                            cmd_id=first_sound_id(incident.incident_id))
        sent = self.publisher.publish_area_cmd(sound.area, cmd)
        if sent is not None:
            pending: list[Handoff] = self._handoffs.__dict__.setdefault("pending", [])
            pending.append(sent)
        return cmd

    def settle(self) -> None:
        """Wait, at most `sound_handoff_s` in all, for the broker to have the sounds this
        thread published with `sound_early` (their PUBACKs: Mosquitto has written them to
        the subscribers by then). The alarm transaction's bookkeeping after its sounds is
        Python that holds the GIL, and paho writes on its own thread, which otherwise
        waited behind it (measured: press -> sound p90 +1.8 ms). A broker that is down
        answers at once (not sent: nothing to wait for); a slow one, or a dead connection
        paho has not noticed yet, costs a batch this bound once, however many sounds."""
        pending: list[Handoff] = self._handoffs.__dict__.pop("pending", [])
        if self.sound_handoff_s <= 0:
            return
        deadline = self._monotonic() + self.sound_handoff_s
        for sent in pending:
            left = deadline - self._monotonic()
            if left <= 0 or not sent.wait(left):
                return   # not had in time: the rest is not waited for either

    def silence(self, incident: IncidentInfo, area: str, now_ms: int, *,
                issued_by: str = "hub", note: str | None = None) -> Command:
        cmd = build_command(Action.SILENCE, now_ms, self.sound_expiry_s,
                            incident_id=incident.incident_id)
        self.store.commands.record(cmd, "area", area, issued_by=issued_by, note=note)
        self.publisher.publish_area_cmd(area, cmd)
        return cmd

    def hold_noisy(self, node_id: str, incident: IncidentInfo, now_ms: int) -> None:
        """A noisy node's new incident was stored and acked but not sounded: tell operators."""
        ref = self.store.troubles.open(TroubleKind.NOISY_NODE.value, node_id,
                                       {"incident_id": incident.incident_id,
                                        "kind": incident.kind}, now_ms)
        if ref.new:
            log.warning("NÚT BẤM BẤT THƯỜNG / NOISY NODE %s: too many alarms; incident %s "
                        "stored and acked, gongs NOT sounded", node_id, incident.incident_id)

    def flag_noisy(self, node_id: str, incident: IncidentInfo, now_ms: int,
                   alarms: int) -> None:
        """A node sent more alarms in the window than anyone presses on purpose."""
        ref = self.store.troubles.open(TroubleKind.NOISY_NODE.value, node_id,
                                       {"incident_id": incident.incident_id,
                                        "kind": incident.kind, "alarms": alarms}, now_ms)
        if ref.new:
            log.warning("NÚT BẤM BẤT THƯỜNG / NOISY NODE %s: %d alarms in the window (stuck "
                        "or pranked button?); all stored and acked", node_id, alarms)

    # ---- failed to sound ------------------------------------------------

    def watch(self, cmd_id: str, incident_id: str | None, area: str, now_ms: int) -> None:
        nodes = tuple(i for i, _, enabled in self.store.nodes.roster(area=area) if enabled)
        deadline = now_ms + int(self.failed_to_sound_s * 1000)
        with self._lock:
            self._pending[cmd_id] = _Pending(cmd_id, incident_id, area, deadline, nodes)

    def check(self, now_ms: int) -> list[str]:
        """Open a trouble for each node that did not start a due command; their ids."""
        with self._lock:
            due = [p for p in self._pending.values() if p.deadline_ms <= now_ms]
            for p in due:
                del self._pending[p.cmd_id]
        silent: list[str] = []
        for p in due:
            sounded = {r.node_id for r in self.store.commands.results_for(p.cmd_id)
                       if r.status in _SOUNDED}
            for node_id in p.nodes:
                if node_id in sounded:
                    continue
                silent.append(node_id)
                ref = self.store.troubles.open(
                    TroubleKind.FAILED_TO_SOUND.value, node_id,
                    {"cmd_id": p.cmd_id, "incident_id": p.incident_id, "area": p.area}, now_ms)
                if ref.new:
                    log.warning("KHÔNG KÊU / FAILED TO SOUND: node %s did not start command "
                                "%s (incident %s) within %.0f s", node_id, p.cmd_id,
                                p.incident_id, self.failed_to_sound_s)
        return silent

    def sounded(self, node_id: str, now_ms: int) -> None:
        """A node started a sound: any earlier failed-to-sound trouble of it is over."""
        self.store.troubles.clear(TroubleKind.FAILED_TO_SOUND.value, node_id, now_ms)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)
