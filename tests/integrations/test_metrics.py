"""Prometheus /metrics end to end: a press on a node agent's mock button shows up as an
alarm by kind, an open incident and fan-out/ingest latency samples; a garbage message as a
rejection by reason; nodes by status and their outbox depths from heartbeats."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from hub.integrations.metrics import HubMetrics
from tests.e2e.harness import wait_for, wait_hub_ready
from tests.integrations.support import Stack, bearer
from tests.support.hub_harness import T
from tests.support.wire import Wire


def scrape(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, float]:
    r = client.get("/metrics", headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def test_a_press_counts_as_a_fire_alarm_an_open_incident_and_latency_samples(
        stack: Stack) -> None:
    stack.start()
    client = stack.client
    assert client is not None and stack.hub is not None
    village = stack.e2e.village()
    before = scrape(client)
    assert before.get("tiengmo_alarms_total{drill=false,kind=fire}", 0) == 0
    assert before["tiengmo_fanout_latency_seconds_count{}"] == 0

    origin = village["na-sang-01"]
    wait_hub_ready(origin)
    origin.press("fire")
    wait_for(lambda: stack.hub.store.incidents.active(), what="the incident")  # type: ignore[union-attr]

    def sampled() -> dict[str, float] | None:
        m = scrape(client)
        return m if m["tiengmo_fanout_latency_seconds_count{}"] >= 1 else None

    m = wait_for(sampled, what="a fan-out latency sample")
    assert m["tiengmo_alarms_total{drill=false,kind=fire}"] == 1
    assert m["tiengmo_incidents{drill=false,state=open}"] == 1
    assert m["tiengmo_ingest_latency_seconds_count{}"] >= 1
    # The sound went out within a second of the hub receiving the alarm.
    assert m["tiengmo_fanout_latency_seconds_bucket{le=1.0}"] == 1
    assert m["tiengmo_broker_connected{}"] == 1
    assert m["tiengmo_messages_handled_total{type=alarm}"] >= 1
    # Five enabled nodes of the registry are online (na-cha-02 is disabled, never started).
    nodes = wait_for(lambda: (lambda s: s if s["tiengmo_nodes{status=online}"] == 5 else None)(
        scrape(client)), what="five nodes online")
    assert nodes["tiengmo_nodes{status=unknown}"] == 1
    # Heartbeats carry the outbox depth: every node's alarm was acked, so 0.
    depths = wait_for(lambda: {k: v for k, v in scrape(client).items()
                               if k.startswith("tiengmo_node_outbox_depth")}, timeout=15,
                      what="outbox depths from heartbeats")
    assert depths.get("tiengmo_node_outbox_depth{node=na-sang-01}", 0) == 0


def test_garbage_is_a_rejection_by_reason(stack: Stack, wire: Wire) -> None:
    stack.start()
    assert stack.client is not None
    wire.publish(T.alarm("na-sang-01"), b"not json", qos=1)
    wire.publish(T.alarm("na-sang-01"), b'{"v":1,"alarm_id":"x"}', qos=1)

    def rejected() -> dict[str, float] | None:
        got = {k: v for k, v in scrape(stack.client).items()  # type: ignore[arg-type]
               if k.startswith("tiengmo_messages_rejected_total")}
        return got if sum(got.values()) >= 2 else None

    got = wait_for(rejected, what="two rejections")
    assert len(got) == 2, got   # two different reasons, each counted under its own label
    assert all("reason=" in k for k in got)


def test_a_metrics_token_closes_the_endpoint(stack: Stack) -> None:
    stack.start({"metrics": {"token": "scrape-me-please-0123"}})
    client = stack.client
    assert client is not None
    r = client.get("/metrics")
    assert r.status_code == 401 and r.json()["error"]["message_vi"]
    assert client.get("/metrics", headers=bearer("wrong")).status_code == 401
    assert client.get("/metrics", headers=bearer(stack.token("viewer"))).status_code == 403
    assert "tiengmo_nodes" in client.get("/metrics",
                                         headers=bearer("scrape-me-please-0123")).text
    assert client.get("/metrics", headers=bearer(stack.token("admin"))).status_code == 200


def test_two_hubs_in_one_process_keep_their_own_registries(stack: Stack) -> None:
    stack.start()
    assert stack.integrations is not None
    hub = stack.hub
    one, two = (HubMetrics(hub, stack.integrations.store) for _ in range(2))
    one.ingest_latency.observe(0.1)
    assert b"tiengmo_ingest_latency_seconds_count 1.0" in one.render()
    assert b"tiengmo_ingest_latency_seconds_count 0.0" in two.render()
