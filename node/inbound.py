"""The agent's receive side: what the node does with a message from the hub (PROTOCOL.md).

Acks settle the outbox and stop re-sends, commands go to the CommandRunner,
hub state and time beacons feed the HubClock; anything else is counted and
ignored. Mixed into `NodeAgent`, and like the rest of the agent it runs only
on the agent's one thread (paho's thread merely enqueues the `Incoming`), so
it touches the agent's state without locks.
"""

from __future__ import annotations

import logging
from collections import Counter

import protocol
from protocol import Ack as AckMsg
from protocol import (
    AckStatus,
    Command,
    HubState,
    HubTime,
    PayloadError,
    ProtocolError,
    TopicKind,
    Topics,
)

from .clock import HubClock
from .commands import CommandRunner
from .link import Incoming
from .outbox import Outbox
from .player import Player

log = logging.getLogger("tiengmo.node.agent")   # the agent's logger: one story per node


class Inbound:
    """Receive-side methods of `NodeAgent`; the attributes below are the agent's."""

    topics: Topics
    clock: HubClock
    player: Player
    commands: CommandRunner
    outbox: Outbox | None
    stats: Counter[str]
    _fault: str | None
    _resend: dict[str, tuple[float, int]]   # alarm_id -> (due, attempt)

    def _reject(self, topic: str, exc: ProtocolError) -> None:
        self.stats["invalid"] += 1
        self.stats[f"invalid_{exc.reason}"] += 1
        log.warning("ignored message on %s: %s (%s)", topic[:120], exc, exc.reason)

    def _incoming(self, msg: Incoming) -> None:
        try:
            match = self.topics.parse(msg.topic)
            if match.kind is TopicKind.ACK:
                ack = protocol.decode(AckMsg, msg.payload)
                if not msg.retain:
                    self.clock.sample(ack.ts_ms)
                self._ack(ack)
            elif match.kind in (TopicKind.NODE_CMD, TopicKind.AREA_CMD):
                self._command(msg)
            elif match.kind is TopicKind.HUB_STATE:
                hs = protocol.decode(HubState, msg.payload)
                self.clock.hub_state(match.hub_id or hs.hub_id, hs.online)
            elif match.kind is TopicKind.HUB_TIME:
                ht = protocol.decode(HubTime, msg.payload)
                if msg.retain:   # possibly hours old: never a clock sample
                    raise PayloadError("retained_time", "a retained time beacon is not fresh")
                self.clock.beacon(ht.hub_id, ht.ts_ms)
            else:
                raise PayloadError("bad_topic", "not a topic a node listens to")
        except ProtocolError as exc:
            self._reject(msg.topic, exc)

    def _command(self, msg: Incoming) -> None:
        try:
            cmd = protocol.decode(Command, msg.payload)
        except PayloadError as exc:
            self._reject(msg.topic, exc)
            try:   # answer a command we can name, so the hub is not left waiting
                cmd_id = protocol.parse_object(msg.payload).get("cmd_id")
            except ProtocolError:
                return
            if protocol.is_uuid(cmd_id):
                self.commands.invalid(str(cmd_id).lower(), f"invalid: {exc}"[:200])
            return
        self.stats["commands"] += 1
        self.commands.receive(cmd)

    def _ack(self, ack: AckMsg) -> None:
        assert self.outbox is not None
        now = self.clock.own_ms()
        entry = self.outbox.get(ack.alarm_id)
        if entry is None:
            self.stats["ack_unknown"] += 1
            log.info("ack for an alarm this node does not hold: %s", ack.alarm_id)
            return
        self.stats["acks_received"] += 1   # read by the simulator's per-node report
        if ack.status is AckStatus.REJECTED:
            if self.outbox.mark_rejected(ack.alarm_id, ack.reason or "rejected", now):
                log.error("hub rejected alarm %s: %s; not re-sending it",
                          ack.alarm_id, ack.reason)
                self._fault = f"rejected: {ack.reason}"
            self._resend.pop(ack.alarm_id, None)
            return
        if ack.status is AckStatus.RECEIVED:
            if self.outbox.mark_received(ack.alarm_id, ack.incident_id, now):
                log.info("alarm %s received by the hub (incident %s)",
                         ack.alarm_id, ack.incident_id)
        else:
            self.outbox.set_progress(ack.alarm_id, ack.status.value, ack.incident_id, now)
            log.info("alarm %s %s", ack.alarm_id, ack.status.value)
            if ack.status in (AckStatus.RESOLVED, AckStatus.CANCELLED):
                self.player.silence(ack.alarm_id)
        self._resend.pop(ack.alarm_id, None)

    def _silence_local_for_incident(self, incident_id: str) -> None:
        for entry in self.outbox.by_incident(incident_id) if self.outbox else []:
            self.player.silence(entry.alarm_id)
