"""Prometheus metrics of one hub, on a registry of its own (two hubs in one process never
share a metric).

Most figures are read at scrape time from where they already live, so a restart
loses nothing and every replica reports the same truth: alarms by kind, incidents
by state, nodes by status, open troubles and outbox depths from the database; the
messages handled and rejected (by reason) from this process's ingest counters.

The two latency histograms are observed by the integrations' event thread from the
event log, measured on the hub's side only (a node's clock may be wrong):
- ingest: the hub's receipt of an alarm → its row committed (the event's database
  time stamp), i.e. how long an alarm waits before it is durable and can be acked;
- fan-out: the hub's receipt of an incident's first alarm → its `sound` command issued.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .store import Event, IntegrationStore

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
NODE_STATUSES = ("online", "offline", "missing", "unknown")
INCIDENT_STATES = ("open", "acknowledged", "resolved", "cancelled")
# Only a fresh change is a latency sample: an update of an old row (a cancel, a late
# result) says nothing about how fast the hub was.
FRESH_MS = 60_000


class _Seen:
    """A bounded set: ids already measured (an alarm's row changes again on a cancel)."""

    def __init__(self, size: int = 20_000) -> None:
        self._d: OrderedDict[str, None] = OrderedDict()
        self.size = size

    def add(self, key: str) -> bool:
        """True if `key` is new."""
        if key in self._d:
            return False
        self._d[key] = None
        if len(self._d) > self.size:
            self._d.popitem(last=False)
        return True


StoreFn = Callable[[], IntegrationStore]


class _HubCollector(Collector):
    def __init__(self, hub: Any, store: StoreFn) -> None:
        self.hub = hub
        self.store = store

    def collect(self) -> Iterator[Metric]:
        health = self.hub.health()
        g = GaugeMetricFamily("tiengmo_broker_connected",
                              "1 while the hub is connected and subscribed to its broker")
        g.add_metric([], 1.0 if health.get("broker_connected") else 0.0)
        yield g
        g = GaugeMetricFamily("tiengmo_ingest_backlog", "Messages queued for the ingest workers")
        g.add_metric([], float(health.get("backlog", 0)))
        yield g
        g = GaugeMetricFamily("tiengmo_alarm_backlog", "Alarms and cancels queued (alarm lane)")
        g.add_metric([], float(health.get("alarm_backlog", 0)))
        yield g
        g = GaugeMetricFamily("tiengmo_oldest_alarm_wait_seconds",
                              "How long the oldest alarm or cancel not yet handled has waited")
        g.add_metric([], float(health.get("oldest_alarm_s", 0.0)))
        yield g
        # The same rule as /healthz: 1 with the reason's code while degraded.
        g = GaugeMetricFamily("tiengmo_degraded", "1 while the hub is degraded, by reason",
                              labels=["reason"])
        for code in ("alarm_link", "alarm_wait", "backlog", "broker", "database",
                     "not_started"):
            g.add_metric([code], 1.0 if code in (health.get("reasons") or ()) else 0.0)
        yield g
        c = CounterMetricFamily("tiengmo_messages_dropped",
                                "Non-alarm messages dropped unparsed, by node and reason "
                                "(over_budget, queue_full)", labels=["node", "reason"])
        for key, n in sorted(dict(health.get("dropped") or {}).items()):
            node, _, reason = key.rpartition("/")
            c.add_metric([node, reason], float(n))
        yield c
        c = CounterMetricFamily("tiengmo_messages_rejected",
                                "Messages this hub process rejected, by reason",
                                labels=["reason"])
        for reason, n in sorted(dict(health.get("rejected") or {}).items()):
            c.add_metric([reason], float(n))
        yield c
        c = CounterMetricFamily("tiengmo_alarm_freshness",
                                "Stale or foreign input judged by this hub process, by "
                                "reason (retained, foreign_alarm_id, late_alarm, future_ts)",
                                labels=["reason"])
        for reason, n in sorted(dict(health.get("freshness") or {}).items()):
            c.add_metric([reason], float(n))
        yield c
        c = CounterMetricFamily("tiengmo_messages_handled",
                                "Messages this hub process handled, by topic kind",
                                labels=["type"])
        for kind, n in sorted(dict(health.get("handled") or {}).items()):
            c.add_metric([kind], float(n))
        yield c
        if not health.get("started"):
            return   # no database while the hub is stopped
        yield from self._from_db(self.store().metric_counts())

    @staticmethod
    def _from_db(counts: dict[str, list[tuple[Any, ...]]]) -> Iterator[Metric]:
        c = CounterMetricFamily("tiengmo_alarms", "Alarms stored, by kind (drills apart)",
                                labels=["kind", "drill"])
        for kind, drill, n in sorted(counts["alarms"], key=lambda r: (r[0], bool(r[1]))):
            c.add_metric([kind, "true" if drill else "false"], float(n))
        yield c
        g = GaugeMetricFamily("tiengmo_incidents", "Incidents by state (drills apart)",
                              labels=["state", "drill"])
        by_state = {(st, bool(d)): n for st, d, n in counts["incidents"]}
        for st in INCIDENT_STATES:
            for d in (False, True):
                g.add_metric([st, "true" if d else "false"], float(by_state.get((st, d), 0)))
        yield g
        g = GaugeMetricFamily("tiengmo_nodes", "Registered nodes by supervision status",
                              labels=["status"])
        by_status = dict(counts["nodes"])
        for st in NODE_STATUSES:
            g.add_metric([st], float(by_status.get(st, 0)))
        yield g
        g = GaugeMetricFamily("tiengmo_node_outbox_depth",
                              "Alarms waiting in a node's outbox (its last heartbeat)",
                              labels=["node"])
        for node_id, depth in sorted(counts["outbox"]):
            if isinstance(depth, int | float) and not isinstance(depth, bool):
                g.add_metric([node_id], float(depth))
        yield g
        g = GaugeMetricFamily("tiengmo_troubles_open", "Open troubles by kind", labels=["kind"])
        for kind, n in sorted(counts["troubles"]):
            g.add_metric([kind], float(n))
        yield g
        g = GaugeMetricFamily("tiengmo_webhook_deliveries", "Webhook deliveries by status",
                              labels=["status"])
        for status, n in sorted(counts["deliveries"]):
            g.add_metric([status], float(n))
        yield g


class HubMetrics:
    """The registry behind /metrics, and the histograms the event thread feeds."""

    def __init__(self, hub: Any, store: StoreFn) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_HubCollector(hub, store))
        self.store = store
        self.ingest_latency = Histogram(
            "tiengmo_ingest_latency_seconds",
            "Hub receipt of an alarm to its row committed", buckets=LATENCY_BUCKETS,
            registry=self.registry)
        self.fanout_latency = Histogram(
            "tiengmo_fanout_latency_seconds",
            "Hub receipt of an incident's first alarm to its sound command issued",
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.sms_sent = Counter("tiengmo_sms", "SMS messages by result", ["result"],
                                registry=self.registry)
        self._seen_alarms = _Seen()
        self._seen_cmds = _Seen()
        self._seen_incidents = _Seen()   # only an incident's first sound is its fan-out
        self._lock = threading.Lock()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def on_events(self, events: Sequence[Event]) -> None:
        alarm_evs = {e.subject: e for e in events if e.type == "alarm"}
        cmd_ids = [e.subject for e in events if e.type == "command"]
        with self._lock:
            fresh_alarms = [a for a in alarm_evs if self._seen_alarms.add(a)]
            fresh_cmds = [c for c in cmd_ids if self._seen_cmds.add(c)]
        store = self.store()
        if fresh_alarms:
            for alarm in store.alarms(fresh_alarms).values():
                ev = alarm_evs[alarm.alarm_id]
                lag = ev.ts_ms - alarm.received_ms
                if 0 <= lag < FRESH_MS:
                    self.ingest_latency.observe(lag / 1000)
        if fresh_cmds:
            cmds = [c for c in store.commands(fresh_cmds).values()
                    if c.action == "sound" and c.incident_id and not c.drill
                    and c.issued_by == "hub"]
            firsts = store.first_received(c.incident_id for c in cmds if c.incident_id)
            for c in sorted(cmds, key=lambda c: c.issued_ms):
                first = firsts.get(c.incident_id or "")
                with self._lock:
                    if not self._seen_incidents.add(c.incident_id or ""):
                        continue
                if first is not None and 0 <= c.issued_ms - first < FRESH_MS:
                    self.fanout_latency.observe((c.issued_ms - first) / 1000)
