"""The demo's embedded broker does what the system relies on, seen by plain paho clients.

Every check is one behaviour a node, the hub or a third-party panel depends on
(PROTOCOL.md): QoS 1 delivery, retained births, Last Wills on a dead link,
`+` subscriptions, persistent sessions, password login, one session per
username. Nothing here imports the project's own MQTT wrappers.

Each fix of tiengmo/amqtt_fixes.py has a test that runs twice: with every fix
("fixed") and without that one ("amqtt"), where it shows amqtt 0.12's own
behaviour (the reproduction in deploy/mosquitto/README.md). The "amqtt" run
failing means amqtt fixed it upstream: the fix can go.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from amqtt.broker import Broker
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler

from protocol import Topics
from tests.support.paho_client import Client, Msg
from tiengmo import amqtt_fixes as fix
from tiengmo.amqtt_fixes import ALL_FIXES, SaferBroker
from tiengmo.broker import EmbeddedBroker, EmbeddedBrokerError

T = Topics()
USERS = {"hub-1": "hub-secret", "na-sang-01": "pw-a", "na-cha-01": "pw-b"}


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(users=USERS, keepalive_grace_s=1).start()
    yield b
    b.stop()


MakeBroker = Callable[..., EmbeddedBroker]


@pytest.fixture
def make_broker() -> Iterator[MakeBroker]:
    made: list[EmbeddedBroker] = []

    def make(*, without: str | frozenset[str] | None = None, **kw: Any) -> EmbeddedBroker:
        fixes = ALL_FIXES - ({without} if isinstance(without, str) else without or set())
        b = EmbeddedBroker(users=USERS, keepalive_grace_s=1, fixes=fixes, **kw).start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for c in made:
        c.c.disconnect()
        c.c.loop_stop()


def with_and_without(name: str) -> pytest.MarkDecorator:
    """Run a fix's test on the broker with every fix, then without this one."""
    return pytest.mark.parametrize("fixed", [True, False], ids=["fixed", f"amqtt-{name}"])


def arrivals(c: Client, count: int, timeout: float) -> list[Msg]:
    """Up to `count` messages arriving within `timeout` (fewer is not an error here)."""
    out: list[Msg] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and (left := deadline - time.monotonic()) > 0:
        try:
            out.append(c.messages.get(timeout=left))
        except queue.Empty:
            break
    return out


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


@with_and_without(fix.KEEPALIVE)
def test_last_will_goes_out_when_a_silent_link_outlives_its_keepalive(
        make_broker: MakeBroker, clients: list[Client], fixed: bool) -> None:
    # A half-open link (power cut at the node): the socket stays open, nothing
    # arrives. amqtt alone never notices; the embedded broker closes it after
    # keepalive + grace (here 2 s + 1 s).
    broker = make_broker(without=None if fixed else fix.KEEPALIVE)
    hub = connect(broker, clients, "hub-1")
    hub.subscribe(T.node_wildcard("state"))
    will = (T.node_state("na-sang-01"), b'{"online":false}', 1, True)
    node = connect(broker, clients, "na-sang-01", will=will, keepalive=2)
    started = time.monotonic()
    node.c.loop_stop()  # stop pinging, keep the socket open
    got = arrivals(hub, 1, timeout=10 if fixed else 8)
    assert [m.payload for m in got] == ([b'{"online":false}'] if fixed else [])
    if fixed:
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


def away_then_back(broker: EmbeddedBroker, clients: list[Client], count: int) -> tuple[
        bool, list[Msg]]:
    """na-sang-01 subscribes persistently, goes away, gets `count` commands meanwhile and
    comes back: (session_present, what it received)."""
    node = connect(broker, clients, "na-sang-01", clean_session=False)
    node.subscribe(T.node_cmd("na-sang-01"))
    node.close()
    hub = connect(broker, clients, "hub-1")
    for i in range(count):
        hub.publish(T.node_cmd("na-sang-01"), str(i).encode())
    again = Client(broker.port, "na-sang-01", USERS["na-sang-01"], clean_session=False)
    clients.append(again)
    accepted, session_present = again.connect()
    assert accepted
    return session_present, arrivals(again, count, timeout=5)


@with_and_without(fix.NO_ANONYMOUS)
def test_persistent_session_keeps_qos1_messages_while_the_subscriber_is_away(
        make_broker: MakeBroker, clients: list[Client], fixed: bool) -> None:
    # amqtt with anonymous access on marks this logged-in session anonymous and
    # queues nothing for it.
    broker = make_broker(without=None if fixed else fix.NO_ANONYMOUS)
    session_present, got = away_then_back(broker, clients, 20)
    assert session_present
    assert sorted(int(m.payload) for m in got) == (list(range(20)) if fixed else [])


@with_and_without(fix.QUEUED_NOT_RETAINED)
def test_queued_messages_arrive_as_ordinary_messages_not_retained_state(
        make_broker: MakeBroker, clients: list[Client], fixed: bool) -> None:
    broker = make_broker(without=None if fixed else fix.QUEUED_NOT_RETAINED)
    _, got = away_then_back(broker, clients, 5)
    assert len(got) == 5
    # As Mosquitto does; amqtt sets retain=1 on them.
    assert [m.retain for m in got] == [not fixed] * 5


def test_wrong_password_unknown_user_and_anonymous_are_refused(broker: EmbeddedBroker,
                                                               clients: list[Client]) -> None:
    for username, password in (("na-sang-01", "wrong"), ("stranger", "x"), (None, None)):
        c = Client(broker.port, username, password, client_id="someone")
        clients.append(c)
        accepted, _ = c.connect()
        assert not accepted, f"{username!r} with {password!r} was let in"


@with_and_without(fix.LOGIN_FIRST)
def test_a_refused_login_under_a_nodes_id_leaves_that_node_alone(
        make_broker: MakeBroker, clients: list[Client], fixed: bool) -> None:
    # Without its takeover fix too: that one, run before the login check, would
    # kick the node off instead (tiengmo runs it only after the login passed).
    broker = make_broker(without=None if fixed else frozenset({fix.LOGIN_FIRST, fix.TAKEOVER}))
    node = connect(broker, clients, "na-sang-01")
    node.subscribe(T.node_cmd("na-sang-01"))
    intruder = Client(broker.port, "na-sang-01", "wrong")
    clients.append(intruder)
    assert intruder.connect() == (False, False)
    hub = connect(broker, clients, "hub-1")
    hub.publish(T.node_cmd("na-sang-01"), b"still yours")
    # amqtt deleted the node's session (its subscription) before refusing the login.
    assert [m.payload for m in arrivals(node, 1, timeout=3)] == (
        [b"still yours"] if fixed else [])
    assert not node.disconnected.is_set()


@with_and_without(fix.CLIENT_ID_IS_USERNAME)
def test_client_id_is_the_username(make_broker: MakeBroker, clients: list[Client],
                                   fixed: bool) -> None:
    # Node B logs in as itself but claims node A's client id: it gets its own
    # session, so A stays connected and keeps receiving.
    broker = make_broker(without=None if fixed else fix.CLIENT_ID_IS_USERNAME)
    a = connect(broker, clients, "na-sang-01")
    a.subscribe(T.node_cmd("na-sang-01"))
    connect(broker, clients, "na-cha-01", client_id="na-sang-01")
    hub = connect(broker, clients, "hub-1")
    hub.publish(T.node_cmd("na-sang-01"), b"for a")
    got = arrivals(a, 1, timeout=3)
    # amqtt lets B take A's client id: A's session is gone (and A is kicked off).
    assert ([m.payload for m in got] == [b"for a"] and not a.disconnected.is_set()) is fixed


@with_and_without(fix.TAKEOVER)
def test_reconnecting_closes_the_old_link_and_its_will_goes_before_the_new_birth(
        make_broker: MakeBroker, clients: list[Client], fixed: bool) -> None:
    broker = make_broker(without=None if fixed else fix.TAKEOVER)
    hub = connect(broker, clients, "hub-1")
    hub.subscribe(T.node_wildcard("state"))
    will = (T.node_state("na-sang-01"), b"dead-1", 1, True)
    old = connect(broker, clients, "na-sang-01", will=will)
    new = connect(broker, clients, "na-sang-01",
                  will=(T.node_state("na-sang-01"), b"dead-2", 1, True))
    # amqtt leaves the old link open (it keeps pinging), so its Will comes whenever
    # it finally dies: after, and over, the new birth.
    assert old.disconnected.wait(10 if fixed else 3) is fixed
    new.publish(T.node_state("na-sang-01"), b"born-2", retain=True)
    got = arrivals(hub, 2, timeout=5 if fixed else 2)
    assert [m.payload for m in got] == ([b"dead-1", b"born-2"] if fixed else [b"born-2"])
    if fixed:
        late = connect(broker, clients, "na-cha-01")
        late.subscribe(T.node_state("na-sang-01"))
        assert [m.payload for m in late.take(1)] == [b"born-2"]


@with_and_without(fix.OWN_RETAINED)
def test_a_client_gets_retained_messages_only_for_its_own_subscriptions(
        make_broker: MakeBroker, clients: list[Client], fixed: bool) -> None:
    broker = make_broker(without=None if fixed else fix.OWN_RETAINED)
    hub = connect(broker, clients, "hub-1")
    hub.subscribe(T.node_wildcard("state"))
    b = connect(broker, clients, "na-cha-01")
    b.publish(T.node_state("na-cha-01"), b"born", retain=True)
    a = connect(broker, clients, "na-sang-01")
    a.subscribe(T.node_cmd("na-sang-01"))
    # amqtt sends A the retained state matching the hub's `nodes/+/state`.
    assert [m.payload for m in a.quiet(0.5)] == ([] if fixed else [b"born"])


def test_amqtt_itself_is_left_unpatched() -> None:
    # Every fix is a subclass hook: running a broker changes nothing of amqtt's own
    # classes, which other code in the process (or another broker) may use.
    before = (dict(vars(Broker)), dict(vars(BrokerProtocolHandler)))
    b = EmbeddedBroker(users=USERS).start()
    b.stop()
    assert (dict(vars(Broker)), dict(vars(BrokerProtocolHandler))) == before


def test_an_unknown_fix_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown amqtt fixes: typo"):
        SaferBroker({}, fixes={"typo", fix.KEEPALIVE})


def test_stop_disconnects_clients(broker: EmbeddedBroker, clients: list[Client]) -> None:
    c = connect(broker, clients, "hub-1")
    broker.stop()
    assert c.disconnected.wait(10)


def test_a_broker_without_users_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one user"):
        EmbeddedBroker(users={})
