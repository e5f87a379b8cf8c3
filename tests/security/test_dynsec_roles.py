"""Only the hubs get the alarm stream: a node cannot join the replicas' shared subscription.

With hub replicas (`--shared-group`) Mosquitto hands each member of `$share/<group>/...`
its round-robin share of the alarms. Mosquitto 2.0.11's ACL file grants any SUBSCRIBE
(it checks deliveries only), so a node subscribing to `$share/<group>/mo/v1/nodes/+/alarm`
takes its share and the ACL then drops every one at delivery: the hubs never see them and
the node must re-send (or, for cancels and results, they are lost). Production therefore
runs the dynamic-security store tiengmo.dynsec_config generates, which refuses such a
subscription outright.

The same scenario runs on both: production must store 20 of 20 alarms and cancels with
no re-send; the old ACL-file security (documented here as the reason for the change)
loses some of them even with a `topic deny $share/#` line for the node.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from hub.settings import load_settings
from protocol import Cancel, Registry, Topics, encode, load_registry
from tests.support.hub_harness import QUIET, alarm, running_hub, wait_until, write_registry
from tests.support.paho_client import Client
from tests.support.prod_mosquitto import ProductionMosquitto, dynsec_store
from tiengmo.acl import render_acl

T = Topics()
HUBS = ("hub-a", "hub-b")
GROUP = "tiengmo"
SENDER, THIEF = "na-sang-01", "na-sang-02"
USERS = {"hub-a": "hub-a-pass-61c0", "hub-b": "hub-b-pass-0d2e", SENDER: "sender-pass-4b1a",
         THIEF: "thief-pass-93aa"}
ALARMS = 20


def shared_forms(hub_ids: list[str]) -> list[str]:
    """Every shared subscription a node could form, guessing the group from what it may
    read (the hub ids on hubs/+/state), from habit, or knowing it outright."""
    guesses = [*hub_ids, GROUP, "hubs", "g"]
    return [*(f"$share/{g}/{T.node_wildcard(leaf)}" for g in guesses
              for leaf in ("alarm", "cancel", "result", "state", "heartbeat")),
            f"$share/{GROUP}/{T.prefix}/nodes/#", f"$share/{GROUP}/{T.prefix}/#",
            f"$share/{GROUP}/#", f"$share/g/{T.all_hub_states()}", f"$share/g/{T.hub_time()}",
            f"$share/{GROUP}/{T.alarm(SENDER)}",
            f"$share/+/{T.node_wildcard('alarm')}", "$share/#", "$share/+/#"]


def subscribe_codes(port: int, user: str, topics: list[str]) -> list[int] | None:
    """The SUBACK reason codes for `topics` (MQTT 5), or None if the broker hung up."""
    done = threading.Event()
    codes: list[int] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user,
                    protocol=MQTTProtocolVersion.MQTTv5)
    c.username_pw_set(user, USERS[user])
    c.on_connect = lambda *a: done.set()
    c.on_subscribe = lambda cl, ud, mid, rcs, props: (codes.extend(r.value for r in rcs),
                                                     done.set())
    c.on_disconnect = lambda *a: done.set()
    c.connect("127.0.0.1", port, 15)
    c.loop_start()
    try:
        assert done.wait(10) and c.is_connected(), f"{user} could not log in"
        done.clear()
        c.subscribe([(t, 1) for t in topics])
        done.wait(10)
        return codes if codes else None
    finally:
        c.disconnect()
        c.loop_stop()


def legacy_acl(reg: Registry) -> str:
    """The old ACL file, with the line one would add to stop shared subscriptions."""
    return render_acl(reg, HUBS) + f"\nuser {THIEF}\ntopic deny $share/#\n"


def broker(tmp_path: Path, production: bool) -> ProductionMosquitto:
    reg = load_registry(write_registry(tmp_path))
    acl: Any = dynsec_store(reg, HUBS, USERS) if production else legacy_acl(reg)
    (tmp_path / "broker").mkdir(exist_ok=True)
    return ProductionMosquitto(tmp_path / "broker", USERS, acl)


@pytest.fixture
def mosq(tmp_path: Path) -> Iterator[ProductionMosquitto]:
    m = broker(tmp_path, production=True).start()
    yield m
    m.stop()


def hub_ids_seen_by(port: int, user: str) -> list[str]:
    """What a node learns from the hubs' retained births on hubs/+/state."""
    for hub_id in HUBS:
        hub = Client(port, hub_id, USERS[hub_id])
        try:
            assert hub.connect()[0]
            hub.publish(T.hub_state(hub_id), b'{"v":1,"online":true}', retain=True)
        finally:
            hub.close()
    node = Client(port, user, USERS[user])
    try:
        assert node.connect()[0]
        node.subscribe(T.all_hub_states())
        return sorted(m.topic.split("/")[-2] for m in node.take(len(HUBS)))
    finally:
        node.close()


def test_a_node_is_refused_every_shared_subscription(mosq: ProductionMosquitto) -> None:
    hub_ids = hub_ids_seen_by(mosq.port, THIEF)
    assert hub_ids == sorted(HUBS)
    forms = shared_forms(hub_ids)
    refused_by_suback = hung_up = 0
    for topic in forms:
        codes = subscribe_codes(mosq.port, THIEF, [topic])
        if codes is None:
            hung_up += 1   # a malformed share name ("+", "#"): the broker drops the client
        else:
            assert codes == [0x87], f"{topic}: SUBACK {codes}"   # MQTT 5 "not authorised"
            refused_by_suback += 1
    print(f"\n{len(forms)} shared subscriptions tried by a node: "
          f"{refused_by_suback} refused in the SUBACK, {hung_up} dropped as malformed")
    assert refused_by_suback + hung_up == len(forms) and hung_up <= 3
    # Positive control: the same login gets what PROTOCOL.md rule 8 gives it, at once.
    own = [t for t, _q in T.node_subscriptions(THIEF, "bach-thong/vi-huong/na-sang")]
    assert subscribe_codes(mosq.port, THIEF, own) == [1, 1, 1, 1, 1, 1, 1][:len(own)]
    # And a hub may share: what the replicas need still works.
    hub_subs = [f"$share/{GROUP}/{T.node_wildcard(x)}" for x in ("alarm", "cancel", "result")]
    assert subscribe_codes(mosq.port, "hub-a", hub_subs) == [1, 1, 1]


def test_a_node_is_refused_over_mqtt_311_too(mosq: ProductionMosquitto) -> None:
    c = Client(mosq.port, THIEF, USERS[THIEF])
    granted: list[int] = []
    done = threading.Event()
    c.c.on_subscribe = lambda cl, ud, mid, rcs, props: (granted.extend(r.value for r in rcs),
                                                       done.set())
    try:
        assert c.connect()[0]
        c.c.subscribe(f"$share/{GROUP}/{T.node_wildcard('alarm')}", 1)
        assert done.wait(10)
        assert granted == [0x80]   # MQTT 3.1.1 SUBACK "failure"
    finally:
        c.close()


def replicas_keep(tmp_path: Path, production: bool) -> dict[str, int]:
    """Two hub replicas share the stream; a node tries to join; 20 alarms, 20 cancels."""
    m = broker(tmp_path, production).start()
    (tmp_path / "data").mkdir(exist_ok=True)
    with ExitStack() as stack:
        stack.callback(m.stop)
        hubs = []
        for hub_id in HUBS:
            (tmp_path / f"{hub_id}.pass").write_text(USERS[hub_id] + "\n")
            settings = load_settings(None, env={}, **{
                **QUIET, "hub_id": hub_id, "broker_url": f"mqtt://127.0.0.1:{m.port}",
                "password_file": str(tmp_path / f"{hub_id}.pass"),
                "db_url": f"sqlite:///{tmp_path / 'hub.db'}",
                "data_dir": str(tmp_path / "data" / hub_id),
                "registry_file": str(tmp_path / "registry.toml")})
            hubs.append(stack.enter_context(running_hub(settings, shared_group=GROUP)))
        thief = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=THIEF,
                            protocol=MQTTProtocolVersion.MQTTv5)
        thief.username_pw_set(THIEF, USERS[THIEF])
        suback = threading.Event()
        thief.on_subscribe = lambda *a: suback.set()
        thief.connect("127.0.0.1", m.port, 15)
        thief.loop_start()
        stack.callback(thief.loop_stop)
        stack.callback(thief.disconnect)
        wait_until(thief.is_connected, 10, "the node logged in")
        thief.subscribe([(f"$share/{GROUP}/{T.node_wildcard(x)}", 1)
                         for x in ("alarm", "cancel", "result")])
        assert suback.wait(10)

        sender = stack.enter_context(_closing(Client(m.port, SENDER, USERS[SENDER])))
        assert sender.connect()[0]
        sender.subscribe(T.ack(SENDER))
        sent = [alarm("fire") for _ in range(ALARMS)]
        for a in sent:                      # each once: attempt 1, never re-sent
            sender.publish(T.alarm(SENDER), encode(a))
        acked = acks(sender, ALARMS, 8.0 if production else 4.0)
        store = hubs[0].store
        stored = [a for a in sent if store.alarms.get(a.alarm_id) is not None]
        for a in stored:
            sender.publish(T.cancel(SENDER), encode(Cancel(alarm_id=a.alarm_id,
                                                           ts_ms=time.time_ns() // 10**6)))

        def cancelled() -> int:
            return sum(1 for a in stored
                       if (info := store.alarms.get(a.alarm_id)) and info.cancelled)
        if production:
            wait_until(lambda: cancelled() == len(stored), 10, "every cancel stored")
        else:
            time.sleep(3.0)
        return {"sent": ALARMS, "acked": len(acked), "stored": len(stored),
                "cancels_sent": len(stored), "cancels_stored": cancelled(),
                "least_by_one_hub": min(h.ingest.handled["alarm"] if h.ingest else 0
                                        for h in hubs)}
    raise AssertionError("unreachable")


def acks(c: Client, count: int, timeout: float) -> set[str]:
    """The alarm ids acked to `c` until `count` arrived or `timeout` passed."""
    out: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(out) < count and (left := deadline - time.monotonic()) > 0:
        with suppress(queue.Empty):
            out.add(str(json.loads(c.messages.get(timeout=left).payload)["alarm_id"]))
    return out


class _closing:
    def __init__(self, c: Client) -> None:
        self.c = c

    def __enter__(self) -> Client:
        return self.c

    def __exit__(self, *exc: object) -> None:
        self.c.close()


def test_two_replicas_store_every_alarm_and_cancel_while_a_node_tries_to_share(
        tmp_path: Path) -> None:
    got = replicas_keep(tmp_path, production=True)
    print(f"\ndynamic security (production): {got}")
    assert got["stored"] == got["acked"] == ALARMS       # 0 re-sends needed
    assert got["cancels_stored"] == got["cancels_sent"] == ALARMS   # 0 cancels lost
    assert got["least_by_one_hub"] > 0                  # the two replicas truly shared


def test_the_old_acl_file_lets_a_node_steal_its_share_of_the_alarms(tmp_path: Path) -> None:
    """Why production left the ACL file: documented, and checked to still be true."""
    (tmp_path / "probe").mkdir()
    m = broker(tmp_path / "probe", production=False).start()
    try:
        codes = subscribe_codes(m.port, THIEF, [f"$share/{GROUP}/{T.node_wildcard('alarm')}"])
    finally:
        m.stop()
    assert codes == [1], "the ACL file granted the shared subscription (despite topic deny)"
    got = replicas_keep(tmp_path, production=False)
    print(f"\nACL file (old): {got}")
    assert got["stored"] < ALARMS and got["acked"] < ALARMS
    assert got["cancels_stored"] < got["cancels_sent"]



def test_the_store_is_deterministic_and_refuses_unsafe_input(tmp_path: Path) -> None:
    from tiengmo.dynsec_config import DynsecConfigError, main, render_dynsec

    reg = load_registry(write_registry(tmp_path))
    pw = {**USERS, "hub-admin": "admin-pass"}.get
    one = render_dynsec(reg, HUBS, lambda u: pw(u) or u + "-pass", admin="hub-admin")
    assert one == render_dynsec(reg, HUBS, lambda u: pw(u) or u + "-pass", admin="hub-admin")
    assert set(one["defaultACLAccess"].values()) == {False}
    with pytest.raises(DynsecConfigError, match="both a hub login and a node"):
        render_dynsec(reg, ["na-sang-01"], lambda u: "x")
    with pytest.raises(DynsecConfigError, match="empty password"):
        render_dynsec(reg, HUBS, lambda u: "")
    with pytest.raises(DynsecConfigError, match="admin login"):
        render_dynsec(reg, HUBS, lambda u: "x", admin="hub-a")
    # The command line reads one password file per login and names a missing one.
    folder = tmp_path / "mqtt"
    folder.mkdir()
    (folder / "hub-a").write_text("only-the-hub\n")
    assert main([str(tmp_path / "registry.toml"), "--hub", "hub-a",
                 "--passwords", str(folder)]) == 2
