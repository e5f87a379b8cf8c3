"""hub.mqtt on a real Mosquitto: the hub's one MQTT client.

Two instances with their own ids and subscriptions each get only their own
messages (a second connection, e.g. an alarm-only lane, is one more instance);
a refused CONNACK is never a connection and is reported with the broker's
reason, by the client, the link, `connect` and the hub's health; reconnect
waits keep their fractions of a second (paho's setter is typed int) and double
up to the cap.
"""

from __future__ import annotations

import getpass
import queue
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hub.link import Link, LinkConfig
from hub.mqtt import (
    Inbound,
    MqttClient,
    MqttEvent,
    MqttOptions,
    MqttRefused,
    Outgoing,
    Ready,
    Refused,
)
from hub.runtime import Hub
from hub.settings import load_settings
from protocol import Topics
from tests.support.broker import Mosquitto, free_port
from tests.support.prod_mosquitto import write_mosquitto_passwd
from tests.support.wire import Wire

T = Topics()
USER, PASSWORD = "hub-test", "right-pass-4c1e"
HUB_ROOT = Path(__file__).resolve().parents[2] / "hub"


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker that wants a password: only USER/PASSWORD gets in."""
    write_mosquitto_passwd(tmp_path / "passwd", {USER: PASSWORD})
    # `user`: as root, Mosquitto would drop to `mosquitto`, who cannot read the test's files.
    m = Mosquitto(tmp_path, extra=f"allow_anonymous false\npassword_file {tmp_path / 'passwd'}\n"
                  f"user {getpass.getuser()}")
    m.start()
    yield m
    m.stop()


def options(m: Mosquitto, password: str | None = PASSWORD, **kw: Any) -> MqttOptions:
    return replace(MqttOptions(broker_url=m.url, username=USER, password=password), **kw)


def events(q: queue.Queue[MqttEvent], seconds: float) -> list[MqttEvent]:
    out: list[MqttEvent] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            out.append(q.get(timeout=left))
        except queue.Empty:
            break
    return out


def test_only_hub_mqtt_imports_paho() -> None:
    importers = sorted(str(p.relative_to(HUB_ROOT)) for p in HUB_ROOT.rglob("*.py")
                       if re.search(r"^\s*(import|from)\s+paho\b", p.read_text(encoding="utf-8"),
                                    re.MULTILINE))
    # paho stays inside hub/mqtt: the client, its PUBACK reader (hub.mqtt.puback) and the
    # one-shot knock of `tiengmo hub`.
    assert importers == ["mqtt/client.py", "mqtt/knock.py", "mqtt/puback.py"]


def test_two_clients_each_get_their_own_subscriptions_birth_and_farewell(
        broker: Mosquitto, wire: Wire) -> None:
    wire.subscribe("lane/#", 1)
    qa: queue.Queue[MqttEvent] = queue.Queue()
    qb: queue.Queue[MqttEvent] = queue.Queue()
    opts = MqttOptions(broker_url=broker.url)

    def lane(name: str, q: queue.Queue[MqttEvent]) -> MqttClient:
        state = f"lane/{name}/state"
        return MqttClient(opts, f"hub-{name}", subscriptions=[(f"in/{name}", 1)],
                          will=Outgoing(state, b"dead", 1, True),
                          birth=lambda: Outgoing(state, b"alive", 1, True), on_event=q.put)

    a, b = lane("a", qa), lane("b", qb)
    a.start()
    b.start()
    try:
        assert a.wait_connected(10) and b.wait_connected(10)
        assert [type(e) for e in events(qa, 0.2)] == [Ready]
        wire.wait_for(lambda m: m.topic == "lane/b/state" and m.payload == b"alive")
        wire.publish("in/a", b"for a")
        wire.publish("in/b", b"for b")
        got_a = [e for e in events(qa, 1.0) if isinstance(e, Inbound)]
        assert [(e.topic, e.payload) for e in got_a] == [("in/a", b"for a")]
        assert got_a[0].received_ms > 0
        assert [e.payload for e in events(qb, 0.2) if isinstance(e, Inbound)] == [b"for b"]
        assert a.publish("out/a", b"x", qos=1).wait(5)
    finally:
        assert a.stop(Outgoing("lane/a/state", b"stopped", 1, True))
        b.stop()
    wire.wait_for(lambda m: m.topic == "lane/a/state" and m.payload == b"stopped")
    assert not a.connected.is_set()


def test_a_refused_connack_is_not_a_connection_and_says_why(locked: Mosquitto) -> None:
    q: queue.Queue[MqttEvent] = queue.Queue()
    bad = MqttClient(options(locked, "wrong-pass"), "hub-test-bad",
                     subscriptions=[("x/#", 1)], on_event=q.put,
                     birth=lambda: Outgoing("x/birth", b"up", 1, True))
    bad.start()
    try:
        got = events(q, 1.5)
        assert got and all(isinstance(e, Refused) for e in got)
        assert not bad.connected.is_set() and bad.connects == 0
        assert bad.refused is not None and bad.refusals >= 1
        # Mosquitto answers a bad password on MQTT 3.1.1 with CONNACK 5, which paho
        # reports as MQTT 5's 0x87.
        assert (bad.refused.reason, bad.refused.code) == ("Not authorized", 0x87)
    finally:
        bad.stop()
    with pytest.raises(MqttRefused, match="Not authorized") as exc:
        MqttClient(options(locked, "wrong-pass"), "hub-test-bad2").connect(5)
    assert exc.value.code == 0x87
    # Positive control: the right password connects, and says so.
    good = MqttClient(options(locked), "hub-test-good")
    good.connect(5)
    try:
        assert good.connected.is_set() and good.refused is None and good.connects == 1
    finally:
        good.stop()


def test_the_link_refused_stays_down_and_reports_the_reason(locked: Mosquitto) -> None:
    link = Link(LinkConfig("hub-test", options(locked, "wrong-pass")), T,
                on_message=lambda m: None)
    link.start()
    try:
        assert not link.wait_connected(1.5)
        assert link.connect_count == 0
        assert link.refused is not None and link.refused.reason == "Not authorized"
    finally:
        link.stop()


def test_fractional_reconnect_waits_are_kept(locked: Mosquitto) -> None:
    q: queue.Queue[MqttEvent] = queue.Queue()
    c = MqttClient(options(locked, "wrong-pass", reconnect_min_s=0.25, reconnect_max_s=0.25,
                           reconnect_jitter=0.0), "hub-test-retry", on_event=q.put)
    t0 = time.monotonic()
    c.start()
    try:
        refusals = [e for e in events(q, 2.5) if isinstance(e, Refused)]
    finally:
        c.stop()
    elapsed = time.monotonic() - t0
    # Every 0.25 s plus a connect: truncated to whole seconds it would be 2 or 3.
    assert len(refusals) >= 6, f"{len(refusals)} refusals in {elapsed:.2f} s"
    assert set(c.retry_delays) == {0.25}


def test_reconnect_waits_double_up_to_the_cap_and_jitter_only_shortens(
        locked: Mosquitto) -> None:
    c = MqttClient(options(locked, "wrong-pass", reconnect_min_s=0.05, reconnect_max_s=0.3,
                           reconnect_jitter=0.0), "hub-test-double")
    c.start()
    try:
        deadline = time.monotonic() + 5
        while len(c.retry_delays) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        c.stop()
    assert c.retry_delays[:5] == [0.05, 0.1, 0.2, 0.3, 0.3]
    j = MqttClient(options(locked, "wrong-pass", reconnect_min_s=0.2, reconnect_max_s=0.2,
                           reconnect_jitter=0.5), "hub-test-jitter")
    j.start()
    try:
        time.sleep(1.0)
    finally:
        j.stop()
    assert j.retry_delays and all(0.1 <= d <= 0.2 for d in j.retry_delays)
    assert len(set(j.retry_delays)) > 1


def test_a_broker_that_is_down_is_retried_after_one_wait_from_the_first_try() -> None:
    # Nothing listens there: each try fails at once, so the tries are the waits apart.
    # paho alone waits twice before its second try (hub.mqtt.client's docstring).
    c = MqttClient(MqttOptions(broker_url=f"mqtt://127.0.0.1:{free_port()}",
                               reconnect_min_s=0.5, reconnect_max_s=0.5, reconnect_jitter=0.0),
                   "hub-test-down")
    t0 = time.monotonic()
    c.start()
    try:
        assert c.last_error is not None and "refused" in c.last_error.lower()
        while len(c.retry_delays) < 2 and time.monotonic() - t0 < 5:
            time.sleep(0.01)
        second_try_s = time.monotonic() - t0
    finally:
        c.stop()
    assert 0.45 <= second_try_s < 0.85, f"second try after {second_try_s:.2f} s"
    assert not c.connected.is_set()


def test_the_hub_health_says_the_broker_refused_it(locked: Mosquitto, tmp_path: Path) -> None:
    settings = load_settings(None, env={}, hub_id=USER, broker_url=locked.url,
                             password="wrong-pass", reconnect_min_s=0.2, reconnect_max_s=0.5,
                             db_url=f"sqlite:///{tmp_path / 'hub.db'}",
                             data_dir=str(tmp_path / "data"))
    hub = Hub(settings).start(wait_connected_s=None)
    try:
        deadline = time.monotonic() + 5
        while hub.health()["broker_refused"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        health = hub.health()
        assert health["broker_connected"] is False
        assert health["broker_refused"] == "Not authorized"
    finally:
        hub.stop()
