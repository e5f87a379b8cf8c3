"""The node agent: buttons to gong first, then outbox, then hub (PROTOCOL.md).

Threads: gpiozero calls `_on_press` on its own thread, which sounds the local
pattern and writes the outbox at once (local first, then durable) and hands
the send to the agent's queue. The transport's thread only enqueues (see
transport.py; on a Pi the transport is link.py's paho client).
Everything else (sends, acks, commands, heartbeats, the LED) runs on the
agent's one thread, so its state needs no locks beyond the outbox's.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import protocol
from protocol import (
    PRIORITY_ALARM,
    Heartbeat,
    Kind,
    NodeState,
    Power,
    Result,
    ResultStatus,
    Source,
    TopicKind,
    Topics,
)
from protocol import Cancel as CancelMsg
from protocol.sdnotify import SdNotify
from protocol.timing import SYSTEM_CLOCK, Clock

from .battery import BatteryGauge, BusFactory, smbus2_bus
from .clock import HubClock
from .commands import CommandRunner
from .config import NodeConfig
from .errors import OutboxError
from .hardware import NodeHardware
from .hwconfig import ButtonConfig, RemoteConfig
from .inbound import Inbound
from .led import LedState
from .link import Link
from .outbox import Outbox
from .player import Player
from .sender import AlarmSender
from .status import led_state
from .transport import (
    Connected,
    Disconnected,
    Incoming,
    LinkEvent,
    Outgoing,
    Refused,
    Transport,
    TransportFactory,
)
from .watchdog import LoopWatch

log = logging.getLogger("tiengmo.node.agent")


@functools.cache   # reading package metadata costs ~1 ms: a fleet of thousands starts once
def _version() -> str:
    try:
        return metadata.version("tiengmo")[:32]
    except metadata.PackageNotFoundError:
        return "0.0.0"


@dataclass(frozen=True, slots=True)
class _Send:
    alarm_id: str


@dataclass(frozen=True, slots=True)
class _Fault:
    output: str
    reason: str


class _CancelPressed:
    """The cancel input was held."""


class _Stop:
    """Leave the agent's loop."""


_Event = LinkEvent | _Send | _CancelPressed | _Fault | _Stop


class NodeAgent:
    """One node: `start()`, then `stop()` (graceful) or `halt()` (the simulator's kill -9).

    The receive side (acks, commands, hub state and time) is its `inbound` (inbound.py).
    `transport` builds its connection to the broker: paho's `Link` on a Pi.
    Its loop is watched (`watch`, watchdog.py): the enable line and systemd's pings
    (`notifier`, every `watchdog_interval_s`) go on only while it makes progress.
    """

    def __init__(self, config: NodeConfig, *, pin_factory: Any = None,
                 hardware: NodeHardware | None = None,
                 wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic,
                 sound_clock: Clock = SYSTEM_CLOCK,
                 transport: TransportFactory = Link,
                 notifier: SdNotify | None = None,
                 watchdog_interval_s: float | None = None,
                 battery_bus: BusFactory = smbus2_bus) -> None:
        self.config = config
        self._transport = transport
        self.topics = Topics(config.mqtt.prefix)
        self._mono = mono
        t = config.timers
        self.clock = HubClock(stale_s=t.hub_time_stale_s, wall=wall, mono=mono)
        # Hardware first: outputs claim their pins at the off level right away.
        self.hardware = hardware or NodeHardware(config.hardware, pin_factory,
                                                 clock=sound_clock)
        # One clock for the outputs' caps, the player's sound ends and the commands'
        # `done` deadlines.
        self.player = Player(list(self.hardware.outputs.values()), clock=sound_clock)
        # On the clock the outputs and the enable line run on.
        self.watch = LoopWatch(sound_clock, t.watchdog_s, running=self._loop_running)
        if self.hardware.enable is not None:
            self.hardware.enable.alive = self.watch.alive
        # The UPS HAT's gauge, when the config says one is fitted (the simulator's is fake).
        self.battery = (None if config.battery is None
                        else BatteryGauge(config.battery, battery_bus))
        self._notifier = notifier
        self._watchdog_interval_s = watchdog_interval_s
        self.stats: Counter[str] = Counter()
        self.boot_id = -1
        self.outbox: Outbox | None = None
        self.link: Transport | None = None
        self._queue: queue.Queue[_Event] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._started_at = mono()
        self._seq = 0
        self._next_heartbeat = 0.0
        self._next_prune = 0.0
        self._fault: str | None = None
        self._version = _version()
        self.commands = CommandRunner(
            player=self.player, clock=self.clock, publish_result=self._publish_result,
            silence_incident=self._silence_local_for_incident,
            drill=config.local_pattern("drill"), has_outputs=bool(self.hardware.outputs),
            clock_hold_s=t.clock_hold_s, test_duration_s=t.test_duration_s,
            memory=t.cmd_memory, mono=mono, player_clock=sound_clock.monotonic)
        self.sender = AlarmSender(
            topic=self.topics.alarm(config.node_id), timers=t, clock=self.clock, mono=mono,
            stats=self.stats, publish=self._publish, connected=lambda: self.connected)
        self.inbound = Inbound(topics=self.topics, clock=self.clock, player=self.player,
                               commands=self.commands, stats=self.stats, alarms=self)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Open the outbox, take the next boot_id, wire the inputs, connect."""
        cfg = self.config
        self.outbox = Outbox(cfg.data_dir / "outbox.sqlite")
        self.boot_id = self.outbox.next_boot_id()
        self.sender.outbox = self.outbox
        self._started_at = self._mono()
        self.hardware.on_press = self._on_press
        self.hardware.on_remote = self._on_remote
        self.hardware.on_cancel = lambda: self._queue.put(_CancelPressed())
        self.player.on_fault = lambda out, why: self._queue.put(_Fault(out, why))
        will = NodeState(online=False, boot_id=self.boot_id)
        self.link = self._transport(
            cfg.mqtt, cfg.node_id, will=self._out_state(will), birth=self._birth,
            subscriptions=self.topics.node_subscriptions(cfg.node_id, cfg.area),
            on_event=self._queue.put)
        self._next_heartbeat = self._mono() + cfg.timers.heartbeat_s
        self._thread = threading.Thread(target=self._loop, name=f"agent-{cfg.node_id}",
                                        daemon=True)
        self._thread.start()
        self.link.start()
        self.watch.tell_systemd(self._notifier, self._watchdog_interval_s)
        log.info("node %s (area %s) started, boot_id %d, %d alarm(s) waiting in the outbox",
                 cfg.node_id, cfg.area, self.boot_id, self.outbox.depth())

    def stop(self) -> None:
        """Graceful: publish the death, wait for it, outputs off, close everything."""
        self._halt()
        if self.link is not None:
            death = NodeState(online=False, boot_id=self.boot_id)
            if not self.link.stop(self._out_state(death), self.config.timers.stop_timeout_s):
                log.warning("death not confirmed by the broker; its Last Will covers us")
        self._close_local()
        log.info("node %s stopped", self.config.node_id)

    def halt(self) -> None:
        """For the simulator's kill -9: stop with no goodbye (no death, no DISCONNECT).

        The link is left as it is: its owner drops it, so the broker's Will fires.
        The outputs are switched off as the service manager's ExecStopPost would.
        """
        self._halt()
        self._close_local()

    def _halt(self) -> None:
        self.watch.stopping()
        if self._thread is not None:
            self._queue.put(_Stop())
            self._thread.join(10)
            self._thread = None

    def _close_local(self) -> None:
        self.player.close()
        self.hardware.close()
        if self.battery is not None:
            self.battery.close()
        if self.outbox is not None:
            self.outbox.close()

    # -- state readable by tests and the simulator ---------------------------

    def _loop_running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def connected(self) -> bool:
        return self.link is not None and self.link.connected

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self.link is not None and self.link.wait_connected(timeout)

    @property
    def led_state(self) -> LedState:
        return self.hardware.led.state

    # -- press: local first, then durable, then send --------------------------

    def _on_press(self, button: ButtonConfig) -> None:
        """gpiozero's thread: sound at once, write the outbox, queue the send."""
        self._raise(Kind(button.kind), Source.BUTTON, button.number)

    def _on_remote(self, remote: RemoteConfig) -> None:
        """A panel's or wireless receiver's input: the same path as a button, source remote."""
        self._raise(Kind(remote.kind), Source.REMOTE, remote.number)

    def _raise(self, kind: Kind, source: Source, number: int) -> None:
        alarm_id = protocol.new_id()
        local = self.config.local_pattern(kind.value)
        # Local first (rule 1): before any write or send, whatever the network.
        self.player.play(alarm_id, local.pattern, local.duration_s, PRIORITY_ALARM)
        self._wait_sounding()
        # On the hub's clock if a beacon or ack was ever heard since boot; else the node's
        # own (maybe 1970 after a power cut without an RTC), and the alarm says so.
        synced = self.clock.has_sample
        ts = self.clock.judge_ms()
        log.warning("ALARM %s from %s %d: %s", kind.value, source.value, number, alarm_id)
        self.stats["alarms_raised"] += 1
        self._fault = None   # a new alarm starts a new story on the LED
        try:
            assert self.outbox is not None
            self.outbox.add(alarm_id, kind, ts, source, number, self.clock.own_ms(),
                            clock_synced=synced)
        except (OutboxError, AssertionError) as exc:
            log.error("alarm %s could not be written to the outbox: %s", alarm_id, exc)
            self._fault = "outbox"
        self._queue.put(_Send(alarm_id))

    def _wait_sounding(self, limit_s: float = 0.05) -> None:
        """Let the player's thread, then the outputs', act on the sound before the outbox write.

        Player.play only schedules; without this the fsync could win the race
        and the gong would strike after the write. An output that rightly stays
        off (a louder sound in its gap, a spent total cap) settles all the same;
        bounded in case a worker is slow.
        """
        deadline = self._mono() + limit_s
        if self.player.settle(limit_s):
            for out in self.hardware.outputs.values():
                out.settle(max(0.0, deadline - self._mono()))

    # -- the agent's thread ----------------------------------------------------

    def _loop(self) -> None:
        while True:
            self.watch.begin()
            try:
                timeout = self._wait_s()
            except Exception:   # a dead agent thread would leave the node "online", deaf
                log.exception("agent error computing its next wake-up (carrying on)")
                self.stats["agent_errors"] += 1
                timeout = 0.1
            self.watch.end()   # waiting for the next event: not a hang
            try:
                event = self._queue.get(timeout=timeout)
            except queue.Empty:
                event = None
            self.watch.begin()
            if isinstance(event, _Stop):
                return
            try:
                if event is not None:
                    self._handle(event)
            except Exception:   # never let one bad event stop the node
                log.exception("agent error (carrying on)")
                self.stats["agent_errors"] += 1
            try:   # even after a failed event: commands it queued still get judged
                self._timers()
            except Exception:
                log.exception("agent error in timed duties (carrying on)")
                self.stats["agent_errors"] += 1

    def _wait_s(self) -> float:
        """Sleep until the next thing due; events (messages, presses) wake the loop anyway.

        Every timed duty has its deadline here, so `idle_tick_s` is only a
        safety net and can be long: a simulated fleet of thousands of nodes
        must not wake each one every second for nothing.
        """
        now = self._mono()
        t = self.config.timers
        resend = self.sender.next_due()
        due = [self._next_heartbeat, self._next_prune, *([] if resend is None else [resend])]
        age = self.clock.beacon_age_s()
        if age is not None and age <= self.clock.stale_s:
            # The LED leaves "hub available" when the last beacon goes stale.
            due.append(now + self.clock.stale_s - age + 0.01)
        wait = min(min(due) - now, t.idle_tick_s)
        # Held commands and sounding commands' `done`, asked afresh each time (never a
        # flag cached by the last tick, which a failed event may have skipped).
        commands = self.commands.next_due_s()
        if commands is not None:
            wait = min(wait, commands + 0.01)
        return max(0.01, wait)

    def _handle(self, event: _Event) -> None:
        if isinstance(event, Incoming):
            self.inbound.handle(event)
        elif isinstance(event, _Send):
            self.sender.send(event.alarm_id)
        elif isinstance(event, Connected):
            self.stats["connects"] += 1
            self.sender.send_pending()   # every reconnect re-sends every pending alarm
            self._next_heartbeat = self._mono()
        elif isinstance(event, Disconnected):
            self.clock.forget_beacons()
        elif isinstance(event, Refused):
            self.stats["refused"] += 1
            self.clock.forget_beacons()
        elif isinstance(event, _CancelPressed):
            self._cancel()
        elif isinstance(event, _Fault):
            log.error("sounder fault on %s: %s", event.output, event.reason)
            self._fault = f"{event.output}: {event.reason}"
            self.commands.on_fault(event.output, event.reason)

    def _timers(self) -> None:
        now = self._mono()
        t = self.config.timers
        self.sender.tick(now)
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + t.heartbeat_s
            self._heartbeat()
        if now >= self._next_prune and self.outbox is not None:
            self._next_prune = now + 3600
            keep_ms = int(self.config.log_keep_days * 86_400_000)
            self.outbox.prune(self.clock.own_ms() - keep_ms)
        self.commands.tick()
        self._update_led()

    # -- what the receive side asks of the agent (inbound.AlarmBook) -------------

    def stop_resending(self, alarm_id: str) -> None:
        self.sender.stop_resending(alarm_id)

    def show_fault(self, reason: str) -> None:
        self._fault = reason

    def _silence_local_for_incident(self, incident_id: str) -> None:
        for entry in self.outbox.by_incident(incident_id) if self.outbox else []:
            self.player.silence(entry.alarm_id)

    # -- sending ---------------------------------------------------------------

    def _publish(self, kind: TopicKind, topic: str, msg: protocol.Message) -> None:
        assert self.link is not None
        self.link.publish(topic, protocol.encode(msg), protocol.QOS[kind],
                          kind in protocol.RETAINED)

    def _out_state(self, msg: NodeState) -> Outgoing:
        return (self.topics.node_state(self.config.node_id), protocol.encode(msg), 1, True)

    def _birth(self) -> Outgoing:
        cfg = self.config
        return self._out_state(NodeState(
            online=True, boot_id=self.boot_id, ts_ms=self.clock.judge_ms(),
            version=self._version, area=cfg.area,
            outputs=tuple(o.name for o in cfg.hardware.outputs),
            buttons=tuple((b.number, Kind(b.kind)) for b in cfg.hardware.buttons)))

    def _heartbeat(self) -> None:
        if not self.connected or self.outbox is None:
            return
        self._seq += 1
        power = self.hardware.power_good()
        # A gauge that does not answer gives no battery_pct, never a failed heartbeat.
        pct = self.battery.percent() if self.battery is not None else None
        hb = Heartbeat(boot_id=self.boot_id, seq=self._seq, ts_ms=self.clock.judge_ms(),
                       uptime_s=int(self._mono() - self._started_at), outbox=self.outbox.depth(),
                       power=None if power is None else (Power.MAINS if power else Power.BATTERY),
                       battery_pct=pct)
        self._publish(TopicKind.HEARTBEAT, self.topics.heartbeat(self.config.node_id), hb)

    def _publish_result(self, cmd_id: str, status: ResultStatus, reason: str | None) -> None:
        self.stats[f"result_{status.value}"] += 1
        self._publish(TopicKind.RESULT, self.topics.result(self.config.node_id),
                      Result(cmd_id=cmd_id, status=status, ts_ms=self.clock.judge_ms(),
                             reason=reason))

    def _cancel(self) -> None:
        entry = self.outbox.latest_open() if self.outbox else None
        if entry is None:
            log.info("cancel input: no open alarm to cancel")
            return
        log.warning("cancel of alarm %s", entry.alarm_id)
        self.player.silence(entry.alarm_id)
        self._publish(TopicKind.CANCEL, self.topics.cancel(self.config.node_id),
                      CancelMsg(alarm_id=entry.alarm_id, ts_ms=self.clock.judge_ms()))

    # -- LED -------------------------------------------------------------------

    def _update_led(self) -> None:
        latest = self.outbox.latest_open() if self.outbox else None
        state = led_state(fault=self._fault is not None,
                          hub_available=self.clock.hub_available(), latest=latest)
        if self.hardware.led.state is not state:
            self.hardware.led.show(state)
