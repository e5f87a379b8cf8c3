"""Alarms have their own lane (issue 12 points 1 and 7), on a real Mosquitto.

One registered node floods its own topics with valid results, states and heartbeats
(the ACL allows it); another hamlet's alarm still gets its `sound` and its `received`
ack within a second. The flood is dropped unparsed over the node's budget, counted by
node and reason in /metrics, and the node becomes a `noisy_node` trouble, cleared
once it is quiet. /healthz says degraded, with the reason, while an alarm waits
(the lane blocked on purpose) or the backlog passes its bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from hub.app import create_app
from hub.integrations.metrics import HubMetrics
from hub.integrations.store import IntegrationStore
from hub.runtime import Hub
from hub.store import TroubleKind
from protocol import Heartbeat, Result, ResultStatus, encode
from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    OTHER_HAMLET,
    T,
    alarm,
    birth,
    hub_settings,
    is_ack,
    is_area_cmd,
    now_ms,
    running_hub,
    send_alarm,
    wait_until,
)
from tests.support.wire import Wire

FLOODER = "na-sang-01"
VICTIM = "na-cha-01"          # another hamlet's node
FLOOD = 20_000
# Own alarm connection: within a second. One shared connection: the broker's queue to
# the hub is the bottleneck (docs/alarm-lane.md), 1.6 s seen in CI; today's main before
# the lane took over 90 s, so 3 s still tells them apart.
BOUND_S = {True: 1.0, False: 3.0}


def flood(broker: Mosquitto, node_id: str, n: int) -> int:
    """`n` valid messages on `node_id`'s own topics, as fast as paho sends them: mostly
    results, some states and heartbeats. Returns when the broker has them all."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{node_id}-flood")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    up = threading.Event()
    c.on_connect = lambda *a: up.set()
    c.connect(broker.host, broker.port, 30)
    c.loop_start()
    assert up.wait(10), "the flooder could not connect"
    state = encode(birth())
    beat = encode(Heartbeat(boot_id=1, seq=1, ts_ms=now_ms(), uptime_s=1, outbox=0))
    results = [encode(Result(cmd_id=f"00000000-0000-4000-8000-{i:012d}",
                             status=ResultStatus.DONE, ts_ms=now_ms())) for i in range(100)]
    topics = (T.node_state(node_id), T.heartbeat(node_id), T.result(node_id))
    last = None
    try:
        for i in range(n):
            if i % 10 == 0:
                last = c.publish(topics[0], state, qos=1)
            elif i % 10 == 1:
                last = c.publish(topics[1], beat, qos=0)
            else:
                last = c.publish(topics[2], results[i % 100], qos=1)
        assert last is not None
        last.wait_for_publish(60)
    finally:
        c.disconnect()
        c.loop_stop()
    return n


@contextmanager
def blocked(hub: Hub) -> Iterator[threading.Event]:
    """Every lane's handling waits until the event is set (a lane stuck on purpose)."""
    assert hub.lanes is not None
    release = threading.Event()
    real: Callable[[Sequence[Any]], None] = hub.lanes._handle_batch

    def held(batch: Sequence[Any]) -> None:
        release.wait(30)
        real(batch)

    hub.lanes._handle_batch = held
    try:
        yield release
    finally:
        release.set()
        hub.lanes._handle_batch = real


def scrape(hub: Hub) -> dict[str, float]:
    text = HubMetrics(hub, lambda: IntegrationStore(hub.store.db)).render().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


@pytest.mark.parametrize("own_connection", [True, False], ids=["own-connection", "one"])
def test_another_hamlets_alarm_sounds_and_is_acked_within_a_second_of_a_flood(
        broker: Mosquitto, wire: Wire, tmp_path: Path, own_connection: bool) -> None:
    wire.subscribe(T.ack(VICTIM))
    wire.subscribe(T.area_cmd(OTHER_HAMLET))
    settings = hub_settings(broker, tmp_path, alarm_connection=own_connection)
    with running_hub(settings) as hub:
        flood(broker, FLOODER, FLOOD)
        a = alarm("fire")
        t0 = time.monotonic()
        send_alarm(wire, VICTIM, a)
        wire.wait_for(is_area_cmd(OTHER_HAMLET), timeout=30)
        sound_s = time.monotonic() - t0
        wire.wait_for(is_ack(VICTIM, a.alarm_id), timeout=30)
        received_s = time.monotonic() - t0
        bound = BOUND_S[own_connection]
        assert sound_s < bound, f"sound after {sound_s:.2f} s behind {FLOOD} messages"
        assert received_s < bound, f"received after {received_s:.2f} s"
        # The flood was dropped unparsed over the node's budget, counted by node and reason.
        dropped = wait_until(lambda: hub.health()["dropped"].get(f"{FLOODER}/over_budget"),
                             timeout=60, what="the flood counted as dropped")
        assert dropped > 0
        assert hub.store.alarms.get(a.alarm_id) is not None
        m = scrape(hub)
        assert m[f"tiengmo_messages_dropped_total{{node={FLOODER},reason=over_budget}}"] > 0
        assert not [k for k in m if "messages_dropped" in k and VICTIM in k]


def test_a_node_over_its_budget_is_a_noisy_node_trouble_until_it_is_quiet(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    settings = hub_settings(broker, tmp_path, node_budget_per_s=2.0, node_budget_burst=5,
                            noisy_quiet_s=1.0)
    with running_hub(settings) as hub:
        def noisy() -> list[Any]:
            return [t for t in hub.store.troubles.find(True, kind=TroubleKind.NOISY_NODE.value)
                    if t.subject == FLOODER]

        for seq in range(3):   # within the budget: nothing
            wire.publish(T.heartbeat(FLOODER), encode(Heartbeat(
                boot_id=1, seq=seq, ts_ms=now_ms(), uptime_s=seq, outbox=0)), qos=0)
        time.sleep(0.6)
        assert not noisy()
        flood(broker, FLOODER, 200)
        troubles = wait_until(noisy, what="a noisy_node trouble")
        assert troubles[0].detail["reason"] == "over_budget"
        assert troubles[0].detail["dropped"] > 0
        # Quiet for noisy_quiet_s: cleared, and said so.
        wait_until(lambda: not noisy(), timeout=10, what="the trouble cleared")
        cleared = hub.store.troubles.find(False, kind=TroubleKind.NOISY_NODE.value)
        assert [t.subject for t in cleared] == [FLOODER]
        # Its alarms were never judged by the budget (PROTOCOL.md rule 3).
        flood(broker, FLOODER, 50)
        a = alarm("theft")
        send_alarm(wire, FLOODER, a)
        wire.subscribe(T.ack(FLOODER))
        wait_until(lambda: hub.store.alarms.get(a.alarm_id), what="the noisy node's alarm")


def test_healthz_is_degraded_while_an_alarm_waits_and_ok_once_handled(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    wire.subscribe(T.ack(VICTIM))
    settings = hub_settings(broker, tmp_path, health_alarm_wait_s=0.3)
    with running_hub(settings) as hub:
        http = TestClient(create_app(hub))
        assert http.get("/healthz").json()["status"] == "ok"
        a = alarm("fire")
        with blocked(hub) as release:
            send_alarm(wire, VICTIM, a)
            body = wait_until(lambda: (r := http.get("/healthz")).status_code == 503
                              and r.json(), what="/healthz degraded")
            assert body["reasons"] == ["alarm_wait"]
            assert "alarm has waited" in body["reason"]
            assert scrape(hub)["tiengmo_degraded{reason=alarm_wait}"] == 1
            release.set()
            wire.wait_for(is_ack(VICTIM, a.alarm_id), timeout=10)
        wait_until(lambda: http.get("/healthz").status_code == 200, what="/healthz ok again")
        assert scrape(hub)["tiengmo_degraded{reason=alarm_wait}"] == 0


def test_healthz_is_degraded_while_the_backlog_passes_its_bound(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    settings = hub_settings(broker, tmp_path, health_backlog_max=10)
    with running_hub(settings) as hub:
        http = TestClient(create_app(hub))
        with blocked(hub):
            for i in range(40):   # 40 nodes' births: within every node's budget
                wire.publish(T.node_state(f"n-{i:02d}"), encode(birth(OTHER_HAMLET)), qos=1)
            body = wait_until(lambda: (r := http.get("/healthz")).status_code == 503
                              and r.json(), what="/healthz degraded")
            assert "backlog" in body["reasons"]
            assert body["backlog"] > 10
        wait_until(lambda: http.get("/healthz").status_code == 200, what="/healthz ok again")
