"""The agent's receive side: what the node does with a message from the hub (PROTOCOL.md).

Acks settle the outbox and stop re-sends, commands go to the CommandRunner,
hub state and time beacons feed the HubClock; anything else is counted and
ignored. The agent owns one `Inbound` and hands it each `Incoming` on the
agent's one thread (paho's thread merely enqueues it), so nothing here needs a
lock. What it needs of the agent beyond the parts it is given is `AlarmBook`.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Protocol

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
from .outbox import Outbox
from .player import Player
from .transport import Incoming

log = logging.getLogger("tiengmo.node.agent")   # the agent's logger: one story per node


class AlarmBook(Protocol):
    """What an ack needs of the agent: its outbox, and its re-send and fault bookkeeping."""

    @property
    def outbox(self) -> Outbox | None: ...

    def stop_resending(self, alarm_id: str) -> None:
        """The hub has answered for `alarm_id`: no more re-sends."""

    def show_fault(self, reason: str) -> None:
        """Show a fault on the LED (a rejected alarm)."""


class Inbound:
    """The node's receive side: `handle(msg)` for every `Incoming` from the link."""

    def __init__(self, *, topics: Topics, clock: HubClock, player: Player,
                 commands: CommandRunner, stats: Counter[str], alarms: AlarmBook) -> None:
        self.topics = topics
        self.clock = clock
        self.player = player
        self.commands = commands
        self.stats = stats   # the agent's counters, shared: one per-node report
        self._alarms = alarms

    def _reject(self, topic: str, exc: ProtocolError) -> None:
        self.stats["invalid"] += 1
        self.stats[f"invalid_{exc.reason}"] += 1
        log.warning("ignored message on %s: %s (%s)", topic[:120], exc, exc.reason)

    def handle(self, msg: Incoming) -> None:
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
        outbox = self._alarms.outbox
        assert outbox is not None
        now = self.clock.own_ms()
        entry = outbox.get(ack.alarm_id)
        if entry is None:
            self.stats["ack_unknown"] += 1
            log.info("ack for an alarm this node does not hold: %s", ack.alarm_id)
            return
        self.stats["acks_received"] += 1   # read by the simulator's per-node report
        if ack.status is AckStatus.REJECTED:
            if outbox.mark_rejected(ack.alarm_id, ack.reason or "rejected", now):
                log.error("hub rejected alarm %s: %s; not re-sending it",
                          ack.alarm_id, ack.reason)
                self._alarms.show_fault(f"rejected: {ack.reason}")
            self._alarms.stop_resending(ack.alarm_id)
            return
        if ack.status is AckStatus.RECEIVED:
            if outbox.mark_received(ack.alarm_id, ack.incident_id, now):
                log.info("alarm %s received by the hub (incident %s)",
                         ack.alarm_id, ack.incident_id)
        else:
            outbox.set_progress(ack.alarm_id, ack.status.value, ack.incident_id, now)
            log.info("alarm %s %s", ack.alarm_id, ack.status.value)
            if ack.status in (AckStatus.RESOLVED, AckStatus.CANCELLED):
                self.player.silence(ack.alarm_id)
        self._alarms.stop_resending(ack.alarm_id)
