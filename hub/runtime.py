"""The Hub: link + store + ingest + supervision + fan-out + escalation + beacon.

Built by `Hub(settings, ...)`; nothing connects or opens until `start()`.

Threads: paho's network thread only enqueues (hub.link, hub.mqtt), except heartbeats,
which only touch memory and are handled right there; `workers` ingest
threads handle the other messages, sharded by node id so one node's messages stay in
order (a birth before its death, an alarm before its cancel); one tick thread
runs the beacon and, on the leading replica, supervision, failed-to-sound
checks and escalation.

Several replicas: everything that must survive or be shared lives in the
database (incidents, noisy-node counts, escalation compare-and-set,
troubles). Supervision keeps a live view in memory, fed by node states and
heartbeats that every replica receives unshared (see hub.link), and only the
replica for which `Leadership.is_leader()` is true acts on it. By default
the leadership comes from the database (hub.leadership: a PostgreSQL advisory
lock, or a file lock beside a SQLite file), safe with one hub and with many;
a replica that takes over first reloads which troubles are open.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import protocol
from protocol import Topics
from protocol.sdnotify import SdNotify, ServiceTie
from protocol.timing import wall_ms

from .budget import NodeBudget, NoisyTroubles
from .correlation import memory_for
from .dynsec import BrokerAccess, broker_access_for
from .escalation import Escalator
from .fanout import FanOut
from .freshness import AgePolicy, Freshness
from .ingest import Ingest
from .lanes import Lanes, describe
from .leadership import AlwaysLeader, Leadership, leadership_for
from .link import Inbound, Link, LinkConfig
from .mqtt import MqttOptions
from .power import POWER_CUT, PowerTimers, PowerWatch, record_power
from .retention import Retention
from .services import Publisher, Services
from .settings import HubSettings
from .store import NodeStatus, Store, TroubleInfo, TroubleKind
from .supervision import (
    Event,
    StatusChanged,
    SupervisionTimers,
    Supervisor,
    TroubleCleared,
    TroubleRaised,
)
from .supervision import NodeStatus as SupStatus

log = logging.getLogger("tiengmo.hub")

NODE_REFRESH_MS = 10_000
# Births within this delay share one prompt time beacon (see Hub._beacon_soon).
BIRTH_BEACON_DELAY_S = 0.3
# Group commit: a worker takes what is queued, up to this many messages, and stores
# the alarms among them in one transaction. Nothing waits for a batch to fill.
BATCH_MAX = 200

class Hub:
    def __init__(self, settings: HubSettings, store: Store | None = None,
                 publisher: Publisher | None = None, *, shared_group: str | None = None,
                 leadership: Leadership | None = None, workers: int | None = None,
                 clock_ms: Callable[[], int] = wall_ms,
                 cert_file: str | None = None, key_file: str | None = None,
                 batch_max: int = BATCH_MAX, heartbeat_flush_s: float = 2.0) -> None:
        self.settings = settings
        self.topics = Topics(settings.prefix)
        self._store = store
        self._own_store = store is None
        self._publisher = publisher
        # Arguments win over settings (tests); the settings are what a deployment sets.
        self.shared_group = shared_group or settings.shared_group
        # None: chosen from the database at start() (hub.leadership.leadership_for).
        self._own_leadership = leadership is None
        self.leadership: Leadership = leadership or AlwaysLeader()
        self._leading = False
        self.clock_ms = clock_ms
        self._n_workers = max(1, workers if workers is not None else settings.ingest_workers)
        self._batch_max = max(1, batch_max)
        self._heartbeat_flush_s = heartbeat_flush_s
        self._tls = (cert_file or (str(settings.cert_file) if settings.cert_file else None),
                     key_file or (str(settings.key_file) if settings.key_file else None))
        self.link: Link | None = None
        self.registry: protocol.Registry | None = None
        self.ingest: Ingest | None = None
        self.supervisor: Supervisor | None = None
        self.power: PowerWatch | None = None
        self.fanout: FanOut | None = None
        self.escalator: Escalator | None = None
        self.lanes: Lanes | None = None       # hub.lanes: the alarm lane and the bulk lane
        self.budget = NodeBudget(settings.node_budget_per_s, settings.node_budget_burst,
                                 quiet_s=settings.noisy_quiet_s)
        self._noisy: NoisyTroubles | None = None
        self._threads: list[threading.Thread] = []
        self._tick_at = time.monotonic()      # the tick loop's last turn (the watchdog's)
        self._tick_s = 1.0
        self._systemd = ServiceTie()   # READY, watchdog pings while alive(), STOPPING
        self._stop = threading.Event()
        self._nodes_synced_ms = 0
        self._orphans_checked_ms = 0
        self._beacon_lock = threading.Lock()
        self._beacon_timer: threading.Timer | None = None
        self.retention = Retention(settings.retention_days, settings.audit_retention_days)
        self.broker_access: BrokerAccess | None = None   # hub.dynsec, when configured
        self.started = False

    # ---- composition -------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the hub is not started")
        return self._store

    def mqtt_options(self) -> MqttOptions:
        """How this hub reaches its broker (hub.mqtt): its own login, the TLS files and
        the timers. The Home Assistant bridge and dynamic security use the same transport
        with their own login."""
        s = self.settings
        return MqttOptions(
            broker_url=s.broker_url, username=s.mqtt_username(),
            password=s.mqtt_password(), ca_file=str(s.ca_file) if s.ca_file else None,
            cert_file=self._tls[0], key_file=self._tls[1], keepalive_s=int(s.keepalive_s),
            reconnect_min_s=s.reconnect_min_s, reconnect_max_s=s.reconnect_max_s)

    def _link_config(self) -> LinkConfig:
        s = self.settings
        own = self.mqtt_options()   # reads the password file: once
        alarm_mqtt = None
        if s.alarm_connection:
            alarm_mqtt = replace(own, username=s.alarm_login(),
                                 password=s.alarm_password())
            if alarm_mqtt.username == own.username:
                # Fine on a broker that keeps client ids (the lane's is `<hub_id>-alarms`);
                # with `use_username_as_clientid` the two would take each other's session.
                log.warning("alarm_connection with the hub's own login %s: the broker must "
                            "not set use_username_as_clientid (set alarm_username, "
                            "docs/hub-config.md)", own.username)
        return LinkConfig(hub_id=s.hub_id, mqtt=own,
                          shared_group=self.shared_group, alarm_mqtt=alarm_mqtt)

    def start(self, wait_connected_s: float | None = 10.0) -> Hub:
        """Open the store, sync the registry, recover, connect; returns self."""
        if self.started:
            return self
        s = self.settings
        now = self.clock_ms()
        # The registry first: a bad file is refused before anything is opened.
        reg = protocol.load_registry(s.registry_file) if s.registry_file is not None else None
        self.registry = reg   # its households: who may alarm by phone (integrations/phone.py)
        if self._store is None:
            self._store = Store.open(s.db_url, clock=self.clock_ms,
                                     lock_timeout_s=s.db_lock_timeout_s,
                                     statement_timeout_s=s.db_statement_timeout_s)
        self._store.heal_with(reg)   # the database dropped and created again (store.py)
        if reg is not None:
            self._store.nodes.sync_registry(reg)
            log.info("registry %s: %d areas, %d nodes", s.registry_file, len(reg.areas),
                     len(reg.nodes))
        # Known before any alarm: a database that fails from the first second must not
        # leave the in-memory decision (hub.alarm_batch, issue 12.5) without its nodes.
        mem = memory_for(self._store)
        for info in self._store.nodes.find():
            mem.learn_node(info.id, info.area, info.registered,
                           info.registered and info.enabled)
        self.link = Link(self._link_config(), self.topics, on_message=self.submit)
        out: Publisher = self._publisher or self.link
        self.fanout = FanOut(self._store, out, sound_expiry_s=s.sound_expiry_s,
                             failed_to_sound_s=s.failed_to_sound_s,
                             sound_handoff_s=s.sound_handoff_s)
        self.supervisor = Supervisor(SupervisionTimers(
            heartbeat_s=s.heartbeat_s, missing_after_heartbeats=s.missing_after_heartbeats,
            loss_debounce_s=s.loss_debounce_s, report_within_s=s.report_within_s,
            area_min_nodes=s.area_trouble_min_nodes, area_fraction=s.area_trouble_fraction),
            started_ms=now, linked=False)   # nothing is judged before the first connect
        self.ingest = Ingest(
            topics=self.topics, store=self._store, publisher=out, fanout=self.fanout,
            policy=s.policy, supervisor=self.supervisor, hub_id=s.hub_id,
            correlation_window_s=s.correlation_window_s,
            noisy_max_fanouts=s.noisy_max_fanouts, noisy_window_s=s.noisy_window_s,
            noisy_max_alarms=s.noisy_max_alarms,
            observer=s.observer, clock_ms=self.clock_ms,
            heartbeat_flush_s=self._heartbeat_flush_s,
            freshness=Freshness(AgePolicy(s.alarm_max_age_s, s.alarm_future_tolerance_s)))
        self.power = PowerWatch(PowerTimers(
            low_battery_pct=s.low_battery_pct, low_battery_margin_pct=s.low_battery_margin_pct,
            cut_min_nodes=s.power_cut_min_nodes, cut_fraction=s.power_cut_fraction,
            cut_window_s=s.power_cut_window_s))
        self.ingest.power = self.power
        self.escalator = Escalator(self._store, self.fanout, s.policy,
                                   escalate_after_s=s.escalate_after_s)
        self.ingest.on_birth = self._beacon_soon
        self._recover(now)
        self._nodes_synced_ms = now
        if self._own_leadership:
            self.leadership = leadership_for(self._store.engine, s.hub_id)
        _call(self.leadership, "start")
        self._leading = self.leadership.is_leader()  # _recover loaded the troubles already
        self._stop.clear()
        self._noisy = NoisyTroubles(self.budget, self._store.troubles,
                                    TroubleKind.NOISY_NODE.value)
        self.lanes = Lanes(handle_batch=self.ingest.handle_batch,
                           handle_heartbeat=self.ingest.handle_heartbeat, budget=self.budget,
                           batch_max=self._batch_max, bulk_workers=self._n_workers,
                           bulk_queue_max=s.bulk_queue_max, alarm_queue_max=s.alarm_queue_max,
                           bulk_read_max_per_s=(s.bulk_read_max_per_s if s.alarm_connection
                                                else None),
                           alarm_workers=s.alarm_workers or (
                               1 if self._store.engine.dialect.name == "sqlite" else 2))
        self.lanes.start()
        self._tick_at = time.monotonic()
        self._threads = [threading.Thread(target=self._tick_loop, daemon=True,
                                          name="hub-tick")]
        for t in self._threads:
            t.start()
        self.link.start()
        self.broker_access = broker_access_for(s, self._store, self.mqtt_options())
        if self.broker_access is not None:
            self.broker_access.start(s.dynsec_sync_s)   # and reconciles at once
        self.started = True
        if wait_connected_s and not self.link.wait_connected(wait_connected_s):
            log.warning("broker %s not reachable yet; the hub keeps trying", s.broker_url)
        log.info("hub %s started (db %s)", s.hub_id, _safe_url(s.db_url))
        return self

    def stop(self) -> None:
        """Publish the hub's death, drain the queues, close what the hub opened."""
        if not self.started:
            return
        self.started = False
        if self.broker_access is not None:
            self.broker_access.stop()
        if self.link is not None:
            self.link.stop()  # no new messages from here; the death is published
        self._stop.set()
        self.stopping_systemd()
        if self.lanes is not None:
            self.lanes.stop()   # what is queued is handled first
        for t in self._threads:
            t.join(10)
        if self.ingest is not None:
            try:
                self.ingest.flush_heartbeats(force=True)
            except Exception:
                log.exception("could not write the last heartbeats")
        _call(self.leadership, "stop")   # at once: a peer or a restart need not wait
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None
        log.info("hub %s stopped", self.settings.hub_id)

    def services(self) -> Services:
        """Operator actions on this hub's store, link, fan-out and escalation: an operator's
        sound is watched by the same failed-to-sound check as the hub's own."""
        if not self.started or self.link is None:
            raise RuntimeError("the hub is not started")
        return Services(self.store, self._publisher or self.link, self.settings,
                        clock=self.clock_ms, fanout=self.fanout, escalator=self.escalator,
                        broker_access=self.broker_access)

    # ---- recovery --------------------------------------------------------

    def _recover(self, now_ms: int) -> None:
        """Carry on after a restart: node liveness, open troubles, unsounded incidents."""
        assert self.supervisor is not None and self.fanout is not None
        store = self.store
        nodes = [n for n in store.nodes.find() if n.registered and n.area]
        self.supervisor.set_nodes([(n.id, n.area or "", n.enabled) for n in nodes])
        open_troubles = store.troubles.find(open_only=True)
        self._restore_power(open_troubles)
        lost_kinds = {TroubleKind.NODE_OFFLINE.value, TroubleKind.NODE_MISSING.value}
        lost = {t.subject for t in open_troubles if t.kind in lost_kinds}
        for t in open_troubles:
            if t.kind == TroubleKind.AREA_LOSS.value:
                self.supervisor.restore_area_trouble(t.subject)
        for n in nodes:
            # A node's last message before the hub was down says nothing about
            # now: liveness gets a fresh grace from the hub's start. A death
            # does carry over (the retained Will re-arrives anyway).
            self.supervisor.restore(
                n.id, online=None if n.status is not NodeStatus.OFFLINE else False,
                boot_id=n.boot_id, last_seen_ms=None,
                offline_since_ms=n.status_since_ms, trouble_open=n.id in lost)
        self._sound_orphans(now_ms, min_age_ms=0, why="hub restart")
        log.info("recovered: %d nodes, %d open troubles, %d open incidents", len(nodes),
                 len(open_troubles), len(store.incidents.active()))

    def _beacon_soon(self) -> None:
        """A time beacon shortly after node births, coalesced.

        A node holds hub commands until its first hub-clock sample (PROTOCOL.md
        rule 5, up to 15 s). Without this, a node that has just come online
        would hold the first `sound` of an incident until the next regular
        beacon; one beacon shortly after a burst of births spares every one of
        them that wait.
        """
        with self._beacon_lock:
            if self._beacon_timer is not None or self._stop.is_set():
                return
            timer = threading.Timer(BIRTH_BEACON_DELAY_S, self._birth_beacon)
            timer.daemon = True
            self._beacon_timer = timer
        timer.start()

    def _birth_beacon(self) -> None:
        with self._beacon_lock:
            self._beacon_timer = None
        link = self.link
        if link is not None and link.connected.is_set() and not self._stop.is_set():
            try:
                link.publish_time()
            except Exception:  # a beacon is best effort; the regular one follows
                log.debug("birth beacon not sent", exc_info=True)

    def _sound_orphans(self, now_ms: int, *, min_age_ms: int, why: str) -> None:
        """Sound every open incident that was meant to fan out but has no `sound` recorded.

        The `sound` goes out around the incident's commit and is recorded right
        after it, so a hub (or replica) that dies in between leaves an incident
        nobody sounds. Better a gong twice than a gong never.
        """
        assert self.fanout is not None
        if self.settings.observer:
            return
        window_ms = int(self.settings.correlation_window_s * 1000)
        for inc in self.store.incidents.active(include_drills=False,
                                               opened_after_ms=now_ms - window_ms,
                                               opened_until_ms=now_ms - min_age_ms):
            age = now_ms - inc.opened_ms
            if (inc.flagged or inc.fanout_held or inc.late or not inc.area or age < min_age_ms
                    or age >= window_ms):
                continue
            if any(c.action == "sound" for c in self.store.commands.for_incident(
                    inc.incident_id)):
                continue
            sound = self.settings.policy.sound_for(inc.kind, inc.area)
            self.fanout.sound(inc, sound, now_ms, note=f"never sounded ({why})")
            log.warning("incident %s was never sounded (%s): sounding %s now",
                        inc.incident_id, why, sound.area)

    # ---- ingest workers ----------------------------------------------------

    def submit(self, msg: Inbound) -> None:
        """One inbound message, on paho's thread: sorted into its lane (hub.lanes)."""
        if self.lanes is not None:
            self.lanes.submit(msg)

    @property
    def backlog(self) -> int:
        return self.lanes.backlog if self.lanes is not None else 0

    # ---- the tick thread -------------------------------------------------

    def _tick_loop(self) -> None:
        assert self.supervisor is not None and self.link is not None
        s = self.settings
        tick_s = self._tick_s = min(self.supervisor.timers.tick_s, s.time_beacon_s,
                                    s.failed_to_sound_s / 3, s.escalate_after_s / 10)
        next_beacon = 0.0
        while not self._stop.wait(tick_s):
            self._tick_at = time.monotonic()
            try:
                if time.monotonic() >= next_beacon and self.link.connected.is_set():
                    self.link.publish_time()
                    next_beacon = time.monotonic() + s.time_beacon_s
                now = self.clock_ms()
                # Node-loss clocks run only while the hub's own link is up (supervision.py).
                self.supervisor.link_state(self.link.connected.is_set(), now,
                                           self.link.connect_count)
                if self.ingest is not None:
                    self.ingest.flush_heartbeats()   # coalesced: each node's latest only
                if self.fanout is not None:
                    # The commands this replica issued: checked here, leader or not.
                    self.fanout.check(now)
                self._check_noisy(now)
                leading = self.leadership.is_leader()
                if leading and not self._leading:
                    self._take_over()
                self._leading = leading
                if leading:
                    self.tick(now)
            except Exception:  # a database hiccup must not stop supervision for good
                log.exception("hub tick failed; retrying at the next tick")

    def _check_noisy(self, now_ms: int) -> None:
        """Open or clear the noisy-node troubles of nodes over their budget (hub.budget)."""
        if self._noisy is None:
            return
        try:
            self._noisy.check(now_ms)
        except Exception:   # the database: the next tick tries again, the rest goes on
            log.warning("noisy-node troubles not written; retrying at the next tick",
                        exc_info=True)

    def _take_over(self) -> None:
        """Newly leading: which troubles are open is the old leader's news, in the database."""
        assert self.supervisor is not None
        open_troubles = self.store.troubles.find(open_only=True)
        lost = {t.subject for t in open_troubles
                if t.kind in (TroubleKind.NODE_OFFLINE.value, TroubleKind.NODE_MISSING.value)}
        for n in self.store.nodes.find():
            self.supervisor.restore(n.id, online=None, boot_id=None, last_seen_ms=None,
                                    trouble_open=n.id in lost)
        for t in open_troubles:
            if t.kind == TroubleKind.AREA_LOSS.value:
                self.supervisor.restore_area_trouble(t.subject)
        self._restore_power(open_troubles)
        log.warning("hub %s leads supervision and escalation now (%d open troubles)",
                    self.settings.hub_id, len(open_troubles))

    def _restore_power(self, open_troubles: list[TroubleInfo]) -> None:
        """Power troubles open in the database are still true until heartbeats say not."""
        assert self.power is not None and self.supervisor is not None
        self.power.set_nodes(self.store.nodes.roster())
        kinds = {TroubleKind.ON_BATTERY.value, TroubleKind.LOW_BATTERY.value, POWER_CUT}
        for t in open_troubles:
            if t.kind in kinds:
                self.power.restore(t.kind, t.subject, dict(t.detail), t.opened_ms)

    def tick(self, now_ms: int) -> None:
        """One round of the hub-wide timers (the leader's job)."""
        assert self.supervisor and self.escalator and self.power
        if now_ms - self._nodes_synced_ms >= NODE_REFRESH_MS:
            # Operators may register, move or disable nodes while the hub runs.
            self._nodes_synced_ms = now_ms
            roster = self.store.nodes.roster()
            self.supervisor.set_nodes(roster)
            self.power.set_nodes(roster)
        self._apply(self.supervisor.tick(now_ms), now_ms)
        record_power(self.store.troubles, self.power.tick(now_ms), now_ms)
        if now_ms - self._orphans_checked_ms >= self.settings.orphan_check_s * 1000:
            # Another replica may have died between storing an incident and
            # sounding it; its nodes' re-sends are acked but never fan out again.
            self._orphans_checked_ms = now_ms
            self._sound_orphans(now_ms, min_age_ms=int(self.settings.orphan_grace_s * 1000),
                                why="replica lost")
        if not self.settings.observer:
            self.escalator.check(now_ms)
        self.retention.tick(self.store.db, now_ms)   # old events, if the settings say so

    def _apply(self, events: list[Event], now_ms: int) -> None:
        store = self.store
        for ev in events:
            if isinstance(ev, StatusChanged):
                if ev.status is SupStatus.MISSING:
                    store.nodes.set_status(ev.node_id, NodeStatus.MISSING, now_ms)
            elif isinstance(ev, TroubleRaised) and ev.node_id is not None:
                kind = (TroubleKind.NODE_OFFLINE if ev.status is SupStatus.OFFLINE
                        else TroubleKind.NODE_MISSING)
                store.troubles.open(kind.value, ev.node_id,
                                    {"area": ev.area, "since_ms": ev.since_ms}, now_ms)
                log.warning("MẤT KẾT NỐI / NODE LOST: %s in %s is %s since %.0f s ago",
                            ev.node_id, ev.area, (ev.status or SupStatus.MISSING).value,
                            (now_ms - ev.since_ms) / 1000)
            elif isinstance(ev, TroubleRaised):
                store.troubles.open(TroubleKind.AREA_LOSS.value, ev.area,
                                    {"nodes": list(ev.nodes), "since_ms": ev.since_ms}, now_ms)
                log.warning("MẤT KẾT NỐI CẢ KHU VỰC / AREA LOST: %d nodes of %s (%s) lost at "
                            "once: power cut or jamming?", len(ev.nodes), ev.area,
                            ", ".join(ev.nodes))
            elif isinstance(ev, TroubleCleared) and ev.node_id is not None:
                store.troubles.clear(TroubleKind.NODE_OFFLINE.value, ev.node_id, now_ms)
                store.troubles.clear(TroubleKind.NODE_MISSING.value, ev.node_id, now_ms)
                if not ev.folded:
                    log.info("KẾT NỐI LẠI / NODE BACK: %s in %s", ev.node_id, ev.area)
            elif isinstance(ev, TroubleCleared):
                store.troubles.clear(TroubleKind.AREA_LOSS.value, ev.area, now_ms)
                log.info("KẾT NỐI LẠI / AREA BACK: %s", ev.area)

    # ---- for metrics and /healthz -----------------------------------------

    def health(self) -> dict[str, Any]:
        """What /healthz, /metrics and /api/v1/system say: `reason` is None when all is
        well, else why the hub is degraded, in plain words (`reasons`: short codes)."""
        ing = self.ingest
        link = self.link
        s = self.settings
        main_up = bool(link and link.connected.is_set())
        alarm_up = link is None or link.alarm_lane_connected
        alarm_refused = link.alarm_refused if link is not None else None
        connected = main_up and alarm_up
        # Any write's failure (hub/store/health.py), not only an alarm's: healed, it clears.
        store_error = (self._store.db.health.error if self._store is not None else None) or (
            ing.store_error if ing is not None else None)
        lanes = describe(self.lanes)
        why: dict[str, str] = {}
        if not self.started:
            why["not_started"] = "the hub is not started"
        if self.started and store_error:
            why["database"] = f"the database cannot be written: {store_error}"
        if self.started and not main_up:
            why["broker"] = (f"broker {s.broker_url} not reached yet"
                             if link is None or link.connect_count == 0
                             else f"broker {s.broker_url} lost; reconnecting")
        # Alarms and cancels are subscribed on that connection only: while it is down
        # they wait at the broker (a whole broker down is said once, as `broker`).
        if self.started and not alarm_up and (main_up or alarm_refused is not None):
            login = s.alarm_login()   # no password file read
            why["alarm_link"] = (
                f"the alarm lane's own connection (login {login}) is down: "
                + (f"the broker refused it ({alarm_refused.reason})" if alarm_refused
                   else "reconnecting") + "; alarms wait at the broker")
        if lanes["oldest_alarm_s"] > s.health_alarm_wait_s:
            why["alarm_wait"] = (f"an alarm has waited {lanes['oldest_alarm_s']:.1f} s to be "
                                 f"handled (more than {s.health_alarm_wait_s:g} s)")
        if lanes["backlog"] > s.health_backlog_max:
            why["backlog"] = (f"{lanes['backlog']} messages queued (more than "
                              f"{s.health_backlog_max})")
        return {
            "status": "degraded" if why else "ok",
            "reason": "; ".join(why.values()) or None,   # why degraded, in plain words
            "reasons": sorted(why),
            "hub_id": s.hub_id,
            "started": self.started,
            "broker_connected": connected,
            # Why not, when the broker says so (bad password, not authorised).
            "broker_refused": link.refused.reason if link and link.refused else None,
            "alarm_link_refused": alarm_refused.reason if alarm_refused else None,
            "leader": self.leadership.is_leader(),
            **lanes,
            "handled": dict(ing.handled) if ing else {},
            "rejected": dict(ing.rejects) if ing else {},
            # retained / foreign refused, late stored unsounded, future stamps (hub.freshness)
            "freshness": dict(ing.freshness.counts) if ing else {},
            "dropped": {f"{node}/{reason}": n
                        for (node, reason), n in sorted(self.budget.counts().items())},
            "store_error": store_error,
        }

    # ---- systemd's watchdog ------------------------------------------------

    def alive(self) -> bool:
        """The alarm lane and the tick loop make progress (what the watchdog vouches for).

        A database outage is not death: the alarm lane still sounds from memory
        (hub.alarm_batch) and every write fails fast or within the database timeouts,
        so both keep turning; only a lane or loop stuck past `watchdog_stall_s` is."""
        if not self.started or self.lanes is None:
            return False
        stall = self.settings.watchdog_stall_s
        return (self.lanes.alarm_lane_alive(stall)
                and time.monotonic() - self._tick_at <= stall + self._tick_s)

    def tell_systemd(self, notifier: SdNotify | None, interval_s: float | None) -> None:
        """READY=1 now, then WATCHDOG=1 every `interval_s` only while `alive()`."""
        self._systemd.ready(notifier, interval_s, self.alive)

    def stopping_systemd(self) -> None:
        """No more pings; tell systemd the stop is ours."""
        self._systemd.stopping()


def _call(obj: object, method: str) -> None:
    """Start or stop a leadership that has such a method (a bare is_leader() one has not)."""
    fn = getattr(obj, method, None)
    if callable(fn):
        fn()


def _safe_url(url: str) -> str:
    """A database URL without its password, for logs."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, cred = head.partition("://")
    user = cred.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"
