"""The demo's embedded broker does what the system relies on, seen by plain paho clients.

Every check is one behaviour a node, the hub or a third-party panel depends on
(PROTOCOL.md): QoS 1 delivery, retained births, Last Wills on a dead link,
`+` subscriptions, persistent sessions, password login, one session per
username. Nothing here imports the project's own MQTT wrappers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from protocol import Topics
from tests.support.paho_client import Client
from tiengmo.broker import EmbeddedBroker, EmbeddedBrokerError

T = Topics()
USERS = {"hub-1": "hub-secret", "na-sang-01": "pw-a", "na-cha-01": "pw-b"}


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(users=USERS, keepalive_grace_s=1).start()
    yield b
    b.stop()


@pytest.fixture
def clients(broker: EmbeddedBroker) -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for c in made:
        c.c.disconnect()
        c.c.loop_stop()


def connect(broker: EmbeddedBroker, made: list[Client], username: str | None,
            password: str | None = None, **kw: Any) -> Client:
    c = Client(broker.port, username, password if password is not None else USERS.get(
        username or "", ""), **kw)
    made.append(c)
    accepted, _ = c.connect()
    assert accepted, f"{username} was refused"
    return c


def test_port_zero_picks_a_free_port_and_stop_frees_it() -> None:
    b = EmbeddedBroker(users=USERS).start()
    try:
        assert b.port > 0
        assert b.url == f"mqtt://127.0.0.1:{b.port}"
    finally:
        b.stop()
    with pytest.raises(EmbeddedBrokerError):
        _ = b.port


def test_qos1_messages_all_arrive_in_order(broker: EmbeddedBroker, clients: list[Client]) -> None:
    hub = connect(broker, clients, "hub-1")
    hub.subscribe(T.alarm("na-sang-01"))
    node = connect(broker, clients, "na-sang-01")
    for i in range(50):
        node.publish(T.alarm("na-sang-01"), str(i).encode())
    got = hub.take(50)
    assert [int(m.payload) for m in got] == list(range(50))
    assert all(m.qos == 1 for m in got)


def test_late_subscriber_gets_the_retained_birth(broker: EmbeddedBroker,
                                                 clients: list[Client]) -> None:
    node = connect(broker, clients, "na-sang-01")
    node.publish(T.node_state("na-sang-01"), b'{"online":true}', retain=True)
    hub = connect(broker, clients, "hub-1")
    hub.subscribe(T.node_wildcard("state"))
    [m] = hub.take(1)
    assert (m.topic, m.payload, m.retain) == (T.node_state("na-sang-01"), b'{"online":true}', True)


def test_last_will_goes_out_when_the_socket_closes_without_disconnect(
        broker: EmbeddedBroker, clients: list[Client]) -> None:
    hub = connect(broker, clients, "hub-1")
    hub.subscribe(T.node_wildcard("state"))
    will = (T.node_state("na-sang-01"), b'{"online":false}', 1, True)
    node = connect(broker, clients, "na-sang-01", will=will)
    node.drop()
    [m] = hub.take(1)
    assert (m.topic, m.payload) == (T.node_state("na-sang-01"), b'{"online":false}')
    # ...and it is retained, so a dashboard that starts later sees the node dead.
    late = connect(broker, clients, "na-cha-01")
    late.subscribe(T.node_state("na-sang-01"))
    [r] = late.take(1)
    assert (r.payload, r.retain) == (b'{"online":false}', True)


def test_last_will_goes_out_when_a_silent_link_outlives_its_keepalive(
        broker: EmbeddedBroker, clients: list[Client]) -> None:
    # A half-open link (power cut at the node): the socket stays open, nothing
    # arrives. amqtt alone never notices; the embedded broker closes it after
    # keepalive + grace (here 2 s + 1 s).
    hub = connect(broker, clients, "hub-1")
    hub.subscribe(T.node_wildcard("state"))
    will = (T.node_state("na-sang-01"), b'{"online":false}', 1, True)
    node = connect(broker, clients, "na-sang-01", will=will, keepalive=2)
    started = time.monotonic()
    node.c.loop_stop()  # stop pinging, keep the socket open
    [m] = hub.take(1, timeout=15)
    assert m.payload == b'{"online":false}'
    assert time.monotonic() - started >= 2


def test_plus_wildcard_matches_one_level_only(broker: EmbeddedBroker,
                                              clients: list[Client]) -> None:
    hub = connect(broker, clients, "hub-1")
    hub.subscribe(T.node_wildcard("alarm"))
    a = connect(broker, clients, "na-sang-01")
    b = connect(broker, clients, "na-cha-01")
    a.publish(T.alarm("na-sang-01"), b"a")
    b.publish(T.heartbeat("na-cha-01"), b"not an alarm", qos=0)
    b.publish(T.alarm("na-cha-01"), b"b")
    got = hub.take(2)
    assert sorted(m.topic for m in got) == [T.alarm("na-cha-01"), T.alarm("na-sang-01")]
    assert hub.quiet(0.3) == []


def test_persistent_session_keeps_qos1_messages_while_the_subscriber_is_away(
        broker: EmbeddedBroker, clients: list[Client]) -> None:
    node = connect(broker, clients, "na-sang-01", clean_session=False)
    node.subscribe(T.node_cmd("na-sang-01"))
    node.close()
    hub = connect(broker, clients, "hub-1")
    for i in range(20):
        hub.publish(T.node_cmd("na-sang-01"), str(i).encode())
    again = Client(broker.port, "na-sang-01", USERS["na-sang-01"], clean_session=False)
    clients.append(again)
    accepted, session_present = again.connect()
    assert accepted and session_present
    got = again.take(20)
    assert sorted(int(m.payload) for m in got) == list(range(20))
    # Delivered as ordinary messages, as Mosquitto does, not as retained state.
    assert not any(m.retain for m in got)


def test_wrong_password_unknown_user_and_anonymous_are_refused(broker: EmbeddedBroker,
                                                               clients: list[Client]) -> None:
    for username, password in (("na-sang-01", "wrong"), ("stranger", "x"), (None, None)):
        c = Client(broker.port, username, password, client_id="someone")
        clients.append(c)
        accepted, _ = c.connect()
        assert not accepted, f"{username!r} with {password!r} was let in"


def test_a_refused_login_under_a_nodes_id_leaves_that_node_alone(
        broker: EmbeddedBroker, clients: list[Client]) -> None:
    node = connect(broker, clients, "na-sang-01")
    node.subscribe(T.node_cmd("na-sang-01"))
    intruder = Client(broker.port, "na-sang-01", "wrong")
    clients.append(intruder)
    assert intruder.connect() == (False, False)
    hub = connect(broker, clients, "hub-1")
    hub.publish(T.node_cmd("na-sang-01"), b"still yours")
    [m] = node.take(1)
    assert m.payload == b"still yours"
    assert not node.disconnected.is_set()


def test_client_id_is_the_username(broker: EmbeddedBroker, clients: list[Client]) -> None:
    # Node B logs in as itself but claims node A's client id: it gets its own
    # session, so A stays connected and keeps receiving.
    a = connect(broker, clients, "na-sang-01")
    a.subscribe(T.node_cmd("na-sang-01"))
    connect(broker, clients, "na-cha-01", client_id="na-sang-01")
    hub = connect(broker, clients, "hub-1")
    hub.publish(T.node_cmd("na-sang-01"), b"for a")
    [m] = a.take(1)
    assert m.payload == b"for a"
    assert not a.disconnected.is_set()


def test_reconnecting_closes_the_old_link_and_its_will_goes_before_the_new_birth(
        broker: EmbeddedBroker, clients: list[Client]) -> None:
    hub = connect(broker, clients, "hub-1")
    hub.subscribe(T.node_wildcard("state"))
    will = (T.node_state("na-sang-01"), b"dead-1", 1, True)
    old = connect(broker, clients, "na-sang-01", will=will)
    new = connect(broker, clients, "na-sang-01",
                  will=(T.node_state("na-sang-01"), b"dead-2", 1, True))
    assert old.disconnected.wait(10)
    new.publish(T.node_state("na-sang-01"), b"born-2", retain=True)
    got = hub.take(2)
    assert [m.payload for m in got] == [b"dead-1", b"born-2"]
    late = connect(broker, clients, "na-cha-01")
    late.subscribe(T.node_state("na-sang-01"))
    assert [m.payload for m in late.take(1)] == [b"born-2"]


def test_a_client_gets_retained_messages_only_for_its_own_subscriptions(
        broker: EmbeddedBroker, clients: list[Client]) -> None:
    hub = connect(broker, clients, "hub-1")
    hub.subscribe(T.node_wildcard("state"))
    b = connect(broker, clients, "na-cha-01")
    b.publish(T.node_state("na-cha-01"), b"born", retain=True)
    a = connect(broker, clients, "na-sang-01")
    a.subscribe(T.node_cmd("na-sang-01"))
    assert a.quiet(0.5) == []


def test_stop_disconnects_clients(broker: EmbeddedBroker, clients: list[Client]) -> None:
    c = connect(broker, clients, "hub-1")
    broker.stop()
    assert c.disconnected.wait(10)


def test_a_broker_without_users_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one user"):
        EmbeddedBroker(users={})
