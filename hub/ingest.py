"""Ingest: every message from the broker, parsed once, handled, never fatal.

Runs on the hub's worker threads (the link's callbacks only enqueue), except
heartbeats, which only touch memory and are handled on the link's thread
(`handle_heartbeat`). For each
message: `Topics.parse` + `decode` once, at the edge; the node id is the
topic's (the broker's ACL binds a node to its own topics, so identity comes
from the topic, never from the payload). Rejects are counted by reason
(`rejects`, for metrics) and logged with the reason; the next message is
handled whatever happened to this one.

Alarm path (PROTOCOL.md rules 2-4, 8), in batches (group commit): a worker
hands `handle_batch` whatever is queued; consecutive alarms are stored in ONE
transaction (hub.alarm_batch: idempotent on alarm_id, correlated on the
hub's clock at receipt, each new incident's one `sound` published and recorded
within it), then every copy is acked `received` with its incident id. The
acks only ever follow the commit.
A lone alarm is a batch of one and is stored at once: nothing waits for a
batch to fill. Any other message of the batch first flushes the alarms
before it, so a node's alarm is always stored before its cancel.

Heartbeats are coalesced (hub.heartbeats): the supervisor hears each one at
once, the database gets each node's latest one every `heartbeat_flush_s`
(`flush_heartbeats`, driven by the runtime).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

import protocol
from protocol import (
    Ack,
    AckStatus,
    Alarm,
    Cancel,
    Command,
    Heartbeat,
    HubState,
    NodeState,
    ProtocolError,
    Result,
    TopicKind,
    TopicMatch,
    Topics,
    decode,
)

from .alarm_batch import store_alarm_batch
from .fanout import FanOut, kind_label
from .freshness import FOREIGN, Freshness
from .heartbeats import HeartbeatBuffer
from .link import Inbound
from .policy import Policy, Sound
from .power import PowerWatch
from .ratelog import RateLimitedLog
from .services import Publisher
from .store import AlarmOutcome, IncidentInfo, Store, TroubleKind
from .store.alarms import AlarmItem
from .store.phone import PhoneAlarm
from .supervision import Supervisor

log = logging.getLogger("tiengmo.hub.ingest")

# Reasons a well-formed alarm will never be accepted: the node should stop
# re-sending it (ack `rejected`) rather than retry forever.
NEVER_ACCEPTED = frozenset({"unknown_kind", "unsupported_version"})


class Ingest:
    def __init__(self, *, topics: Topics, store: Store, publisher: Publisher, fanout: FanOut,
                 policy: Policy, supervisor: Supervisor | None, hub_id: str,
                 correlation_window_s: float, noisy_max_fanouts: int | None,
                 noisy_window_s: float, observer: bool = False,
                 noisy_max_alarms: int | None = None,
                 clock_ms: Callable[[], int] | None = None,
                 heartbeat_flush_s: float = 2.0,
                 freshness: Freshness | None = None) -> None:
        self.topics = topics
        self.store = store
        # Called on every node birth (the runtime answers with a prompt time beacon).
        self.on_birth: Callable[[], None] | None = None
        self.publisher = publisher
        self.fanout = fanout
        self.policy = policy
        self.supervisor = supervisor
        # Power supervision (hub/power.py): hears each heartbeat's power and battery.
        self.power: PowerWatch | None = None
        self.hub_id = hub_id
        self.window_s = correlation_window_s
        self.noisy_max_fanouts = noisy_max_fanouts
        self.noisy_window_s = noisy_window_s
        self.noisy_max_alarms = noisy_max_alarms
        # Alarms that joined an open incident, per node, in the noisy window; counted in
        # memory on the hot path (each replica counts what it receives; the trouble
        # itself is one per node in the database, whichever replica opens it).
        self._flood_lock = threading.Lock()
        self._joined: dict[str, list[int]] = {}
        self._flagged_ms: dict[str, int] = {}
        # An observer (a provincial hub over bridged brokers) stores and shows,
        # never acks or fans out what a local hub owns.
        self.observer = observer
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.rejects: Counter[str] = Counter()
        # Why the last write failed (disk full, database gone), until one succeeds again;
        # /healthz reports it, since alarms are then neither stored nor acked.
        self.store_error: str | None = None
        self.handled: Counter[str] = Counter()
        self.largest_batch = 0   # most alarms stored in one transaction (metrics, tests)
        self._lock = threading.Lock()
        self._log_limit = RateLimitedLog()
        self._beats = HeartbeatBuffer(store, heartbeat_flush_s)
        # Retained, late and foreign input is never live (hub.freshness).
        self.freshness = freshness or Freshness()

    # ---- entry point -----------------------------------------------------

    def handle(self, msg: Inbound) -> None:
        """Handle one message; never raises."""
        self.handle_batch((msg,))

    def handle_heartbeat(self, msg: Inbound) -> None:
        """Handle a heartbeat at once, on the caller's thread (the link's); never raises.

        A heartbeat only touches memory (supervision's last seen, the coalesced beat
        for the next flush), so it skips the worker queues: at 500 a second the
        hand-over to a worker thread cost more than the heartbeat itself.
        """
        try:
            match = self.topics.parse(msg.topic)
        except Exception as err:  # the next message must still be handled
            self._failed(msg, err)
            return
        self._guarded(msg, match)

    def _failed(self, msg: Inbound, err: Exception) -> None:
        """Count and log a message that could not be handled (called inside `except`)."""
        if isinstance(err, ProtocolError):
            self._reject(err.reason, msg.topic, str(err))
        else:
            self._count(self.rejects, "internal_error")
            log.exception("error handling a message on %s; carrying on", msg.topic)

    def handle_batch(self, msgs: Sequence[Inbound]) -> None:
        """Handle messages in order, storing runs of alarms in one transaction; never raises."""
        alarms: list[tuple[AlarmItem, Inbound]] = []
        for msg in msgs:
            try:
                match = self.topics.parse(msg.topic)
                if (stale := self.freshness.refuse_retained(match.kind, match.node_id,
                                                            msg.retain, msg.topic)):
                    self._count(self.rejects, stale)
                    continue
                if match.kind is TopicKind.ALARM:
                    item = self._decode_alarm(match.node_id or "", msg)
                    if item is not None:
                        alarms.append((item, msg))
                    continue
                if match.kind is not TopicKind.HEARTBEAT and alarms:
                    self._store_alarms(alarms)   # a node's alarm before its cancel
                    alarms = []
            except Exception as err:  # the next message must still be handled
                self._failed(msg, err)
                continue
            self._guarded(msg, match)
        if alarms:
            try:
                self._store_alarms(alarms)
            except Exception:  # publishing the acks failed: the nodes will re-send
                self._count(self.rejects, "internal_error")
                log.exception("error acking %d alarms; carrying on", len(alarms))

    def _guarded(self, msg: Inbound, match: TopicMatch) -> None:
        try:
            self._dispatch(msg, match)
        except ProtocolError as err:
            self._reject(err.reason, msg.topic, str(err))
        except Exception:  # the next message must still be handled
            self._count(self.rejects, "internal_error")
            log.exception("error handling a message on %s; carrying on", msg.topic)

    def _dispatch(self, msg: Inbound, match: TopicMatch) -> None:
        kind = match.kind
        node_id = match.node_id or ""
        if kind is TopicKind.ALARM:
            item = self._decode_alarm(node_id, msg)
            if item is not None:
                self._store_alarms([(item, msg)])
            return   # counted once stored
        if kind is TopicKind.NODE_STATE:
            self._state(node_id, decode(NodeState, msg.payload), msg.received_ms)
        elif kind is TopicKind.HEARTBEAT:
            self._heartbeat(node_id, decode(Heartbeat, msg.payload), msg.received_ms)
        elif kind is TopicKind.CANCEL:
            self._cancel(node_id, decode(Cancel, msg.payload), msg.received_ms)
        elif kind is TopicKind.RESULT:
            self._result(node_id, decode(Result, msg.payload), msg.received_ms)
        elif kind is TopicKind.HUB_STATE:
            state = decode(HubState, msg.payload)
            if match.hub_id != self.hub_id:
                log.info("hub %s is %s", match.hub_id, "online" if state.online else "offline")
        else:
            raise ProtocolError("not_for_hub", f"the hub does not handle {kind.value} messages")
        self._count(self.handled, kind.value)

    def _count(self, counter: Counter[str], key: str) -> None:
        with self._lock:
            counter[key] += 1

    def _reject(self, reason: str, topic: str, why: str) -> None:
        self._count(self.rejects, reason)
        ok, suppressed = self._log_limit.allow(reason)
        if suppressed:
            log.warning("rejected %d more message(s) for %s (not logged)", suppressed, reason)
        if ok:
            log.warning("rejected message on %s: %s (%s)", topic[:160], reason, why)

    # ---- alarms ------------------------------------------------------------

    def _decode_alarm(self, node_id: str, msg: Inbound) -> AlarmItem | None:
        """The alarm to store, or None after rejecting it (acked `rejected` if never valid)."""
        try:
            alarm = decode(Alarm, msg.payload)
        except ProtocolError as err:
            self._reject(err.reason, msg.topic, str(err))
            if err.alarm_id and err.reason in NEVER_ACCEPTED and not self.observer:
                # Well-formed but never acceptable: stop the node re-sending it.
                self._ack(node_id, Ack(alarm_id=err.alarm_id, status=AckStatus.REJECTED,
                                       ts_ms=self._clock_ms(), reason=f"{err.reason}: {err}"[:200]))
            return None
        return node_id, alarm, msg.received_ms

    def _publish_sound(self, inc: IncidentInfo) -> tuple[Sound, Command]:
        """A new incident's sound, published from inside the alarm transaction."""
        assert inc.area is not None
        sound = self.policy.sound_for(inc.kind, inc.area)
        return sound, self.fanout.sound_early(inc, sound, self._clock_ms())

    def _store_alarms(self, batch: Sequence[tuple[AlarmItem, Inbound]]) -> None:
        """Store the batch in one transaction (`store_alarm_batch`: a new incident's
        `sound` is published, and recorded, inside it), then watch the sounds and log,
        then ack every copy: the acks only after the commit."""
        items = [item for item, _ in batch]
        try:
            outcomes, early = store_alarm_batch(
                self.store, items, window_s=self.window_s,
                noisy_max_fanouts=self.noisy_max_fanouts, noisy_window_s=self.noisy_window_s,
                publish=None if self.observer else self._publish_sound,
                late=self.freshness.late_ids(items), settle=self.fanout.settle)
        except Exception as exc:
            self.store_error = f"{type(exc).__name__}: {exc}"[:300]
            if len(batch) == 1:
                self._count(self.rejects, "internal_error")
                log.exception("could not store alarm %s from %s; not acked, the node will "
                              "re-send it", batch[0][0][1].alarm_id, batch[0][0][0])
                return
            # One bad alarm must not hold back the others: store them one by one.
            log.exception("could not store a batch of %d alarms; storing them one by one",
                          len(batch))
            for one in batch:
                self._store_alarms([one])
            return
        # Committed: every alarm of the batch is durable from here on.
        self.store_error = None
        with self._lock:
            # Another node's alarm_id is counted once, as its rejection (_after_store).
            self.handled[TopicKind.ALARM.value] += sum(1 for o in outcomes if not o.foreign)
            self.largest_batch = max(self.largest_batch, len(outcomes))
        if self.observer:
            return
        for ((node_id, alarm, received_ms), _), out in zip(batch, outcomes, strict=True):
            try:   # gongs first: a sound to the hamlet matters more than the ack
                self._after_store(node_id, alarm, out, received_ms, early.get(alarm.alarm_id))
            except Exception:
                self._count(self.rejects, "internal_error")
                log.exception("fan-out for alarm %s failed; it is stored and acked",
                              alarm.alarm_id)
        now = self._clock_ms()
        for ((node_id, alarm, _), _), out in zip(batch, outcomes, strict=True):
            if out.foreign:   # never the owner's incident: it is not this node's alarm
                self._ack(node_id, Ack(alarm_id=alarm.alarm_id, status=AckStatus.REJECTED,
                                       ts_ms=now, reason=FOREIGN))
                continue
            self._ack(node_id, Ack(alarm_id=alarm.alarm_id, status=AckStatus.RECEIVED,
                                   ts_ms=now, incident_id=out.incident_id))

    def store_phone_alarm(self, item: AlarmItem) -> AlarmOutcome:
        """An alarm that reached this hub by phone (hub/integrations/phone.py): stored,
        correlated and sounded exactly as a node's, but no MQTT ack (the household is
        answered by SMS). Raises if it could not be stored."""
        outcomes, early = store_alarm_batch(
            self.store, [item], window_s=self.window_s,
            noisy_max_fanouts=self.noisy_max_fanouts, noisy_window_s=self.noisy_window_s,
            publish=None if self.observer else self._publish_sound,
            settle=self.fanout.settle)
        if not self.observer:
            self._after_store(item[0], item[1], outcomes[0], item[2],
                              early.get(item[1].alarm_id))
        return outcomes[0]

    def _after_store(self, node_id: str, alarm: Alarm | PhoneAlarm, out: AlarmOutcome,
                     now_ms: int,
                     early: tuple[Sound, Command] | None = None) -> None:
        if out.foreign:
            self._count(self.rejects, self.freshness.foreign(node_id, alarm.alarm_id))
            return
        inc = out.incident
        where = inc.area or out.alarm.area or "?"
        if not out.new_alarm:
            log.info("alarm %s from %s again (attempt %d): already stored in incident %s",
                     alarm.alarm_id, node_id, alarm.attempt, out.incident_id)
            return
        if not out.node_known or not out.node_enabled:
            what = "UNKNOWN" if not out.node_known else "DISABLED"
            trouble = TroubleKind.UNKNOWN_NODE if not out.node_known else TroubleKind.DISABLED_NODE
            self.store.troubles.open(trouble.value, node_id,
                                     {"alarm_id": alarm.alarm_id, "kind": alarm.kind.value},
                                     now_ms)
            log.warning("BÁO ĐỘNG TỪ NÚT LẠ / ALARM FROM %s NODE %s: %s at %s; stored as "
                        "incident %s, flagged, NOT sounded", what, node_id,
                        kind_label(alarm.kind), where, out.incident_id)
            return
        if out.alarm.late:   # too old to sound: stored and shown as late (hub.freshness)
            self.freshness.stored_late(node_id, alarm, now_ms, out.incident_id)
            return
        if out.fan_out and inc.area is not None:
            if early is not None:   # published and recorded in the alarm transaction
                sound = early[0]
                self.fanout.watch(early[1].cmd_id, inc.incident_id, sound.area, now_ms)
            else:
                sound = self.policy.sound_for(alarm.kind.value, inc.area)
                self.fanout.sound(inc, sound, now_ms)
            log.warning("BÁO ĐỘNG / ALARM %s at %s from %s → incident %s, sounding area %s",
                        kind_label(alarm.kind), where, node_id, out.incident_id, sound.area)
        elif out.new_incident and out.alarm.fanout_held:
            self.fanout.hold_noisy(node_id, inc, now_ms)
            log.warning("BÁO ĐỘNG / ALARM %s at %s from noisy node %s → incident %s, "
                        "NOT sounded (noisy-node limit)", kind_label(alarm.kind), where,
                        node_id, out.incident_id)
        else:
            if log.isEnabledFor(logging.INFO):   # one per joining alarm: not built for nothing
                log.info("BÁO ĐỘNG / ALARM %s at %s from %s joins incident %s (%d alarms)",
                         kind_label(alarm.kind), where, node_id, out.incident_id,
                         inc.alarm_count)
            self._check_flood(node_id, inc, now_ms)

    def _check_flood(self, node_id: str, inc: IncidentInfo, now_ms: int) -> None:
        """Many alarms from one node, all joining open incidents: a stuck or pranked button.

        Only alarms that join an incident are counted, in memory, so the first
        alarm of an incident pays nothing and a flood costs one write, not one
        per alarm.
        """
        if self.noisy_max_alarms is None:
            return
        window_ms = int(self.noisy_window_s * 1000)
        with self._flood_lock:
            if now_ms - self._flagged_ms.get(node_id, -window_ms) < window_ms:
                return   # already a trouble: no query, no write per alarm of a flood
            seen = self._joined.setdefault(node_id, [])
            seen.append(now_ms)
            while seen and seen[0] <= now_ms - window_ms:
                seen.pop(0)
            if len(seen) <= self.noisy_max_alarms:
                return
            self._flagged_ms[node_id] = now_ms
            del self._joined[node_id]
        count = self.store.alarms.count(node_id=node_id, since_ms=now_ms - window_ms)
        self.fanout.flag_noisy(node_id, inc, now_ms, count)

    def _ack(self, node_id: str, ack: Ack) -> None:
        self.publisher.publish_ack(node_id, ack)

    # ---- cancel, state, heartbeat, result ----------------------------------

    def _cancel(self, node_id: str, cancel: Cancel, now_ms: int) -> None:
        out = self.store.alarms.cancel(node_id, cancel, now_ms)
        if out.alarm is None or out.incident is None:
            log.warning("cancel from %s for alarm %s that it never sent; ignored", node_id,
                        cancel.alarm_id)
            return
        if self.observer:
            return
        inc = out.incident
        if out.incident_cancelled and out.new_cancel:
            log.warning("HỦY / CANCELLED by %s: incident %s (every alarm of it cancelled)",
                        node_id, inc.incident_id)
            if inc.fanned_out and inc.sounded_area:
                self.fanout.silence(inc, inc.sounded_area, now_ms, note="cancelled by node")
        self._ack(node_id, Ack(alarm_id=cancel.alarm_id, status=AckStatus.CANCELLED,
                               ts_ms=self._clock_ms(), incident_id=inc.incident_id))

    def _state(self, node_id: str, state: NodeState, now_ms: int) -> None:
        change = self.store.nodes.record_state(node_id, state, now_ms)
        if not change.applied:
            log.info("stale death of %s (boot %d) ignored", node_id, state.boot_id)
            return
        if state.online and self.on_birth is not None:
            self.on_birth()
        if self.supervisor is not None:
            if state.online:
                self.supervisor.birth(node_id, state.boot_id, now_ms)
            else:
                self.supervisor.death(node_id, state.boot_id, now_ms)
        if not change.known:
            log.warning("node %s is not registered (state %s)", node_id,
                        "online" if state.online else "offline")
        elif state.online and state.area and change.node.area and state.area != change.node.area:
            log.warning("node %s says it is in %s but the registry puts it in %s", node_id,
                        state.area, change.node.area)

    def _heartbeat(self, node_id: str, hb: Heartbeat, now_ms: int) -> None:
        if self.supervisor is not None:
            self.supervisor.heartbeat(node_id, hb.boot_id, now_ms)
        if self.power is not None and (hb.power is not None or hb.battery_pct is not None):
            self.power.heartbeat(node_id, None if hb.power is None else hb.power.value,
                                 hb.battery_pct, now_ms)
        self._beats.add(node_id, hb, now_ms)

    def flush_heartbeats(self, force: bool = False) -> int:
        """Write each node's latest heartbeat if `heartbeat_flush_s` has passed; how many."""
        return self._beats.flush(force)

    def _result(self, node_id: str, result: Result, now_ms: int) -> None:
        out = self.store.commands.record_result(node_id, result, now_ms)
        if not out.new:
            return
        status = result.status
        if status in (protocol.ResultStatus.STARTED, protocol.ResultStatus.DONE):
            self.fanout.sounded(node_id, now_ms)
        elif status is protocol.ResultStatus.FAILED:
            self.store.troubles.open(TroubleKind.SOUNDER_FAULT.value, node_id,
                                     {"cmd_id": result.cmd_id, "reason": result.reason}, now_ms)
            log.warning("LỖI CÒI / SOUNDER FAULT on %s: %s (command %s)", node_id,
                        result.reason, result.cmd_id)
        elif status is protocol.ResultStatus.REJECTED:
            log.warning("node %s rejected command %s: %s", node_id, result.cmd_id,
                        result.reason)
