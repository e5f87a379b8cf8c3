"""The shared network loop when things go wrong: a node stopped or crashed while its
connect is in flight stays down (no retained "online" from a node that is gone), a
socket the selector refuses is retried rather than forgotten, and a broker that drops
SYNs holds the loop for `connect_timeout_s`, not paho's 5 s. Plus process planning
for headless nodes that do not share a loop."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from firmware_sim.fleet import (
    DEFAULT_PER_PROCESS,
    MOCK_PINS_PER_PROCESS,
    default_processes,
    processes_for,
)
from firmware_sim.fleet_shard import ShardSpec
from firmware_sim.headless import HeadlessNode
from firmware_sim.netloop import SharedNetLoop
from firmware_sim.village import node_config
from tests.sim.test_fleet import FAST_BUTTONS
from tests.support.broker import Mosquitto
from tests.support.nodes import wait_until
from tests.support.wire import Wire

SLOW_CONNECT_S = 0.5


def _node(url: str, tmp_path: Path, loop: SharedNetLoop | None,
          node_id: str = "z1") -> HeadlessNode:
    return HeadlessNode(node_config(
        node_id, "a/b", broker_url=url, data_dir=tmp_path / node_id, buttons=FAST_BUTTONS,
        timers={"idle_tick_s": 60, "stop_timeout_s": 3.0},
        mqtt={"reconnect_min_s": 0.2, "reconnect_max_s": 1.0}), net_loop=loop)


def _online(wire: Wire, node_id: str) -> list[Any]:
    return [m.json() for m in wire.on_topic(f"/{node_id}/state") if m.json().get("online")]


@pytest.fixture
def loop() -> Iterator[SharedNetLoop]:
    lp = SharedNetLoop()
    yield lp
    lp.close()


def _while_connecting(monkeypatch: pytest.MonkeyPatch, n: HeadlessNode,
                      action: Callable[[HeadlessNode], None], *,
                      hold_after_open: bool) -> None:
    """Start `n` and run `action(n)` on its own thread while the node's connect is held
    in flight inside paho's `_create_socket_connection` (before the TCP open, like a slow
    connect or TLS handshake, or after it; both past the network-cut gate, paho's
    on_pre_connect).

    Events, not sleeps: on a loaded machine a fixed sleep may act before the connect
    began or after it finished, which tests nothing.
    """
    real = mqtt.Client._create_socket_connection
    entered, release = threading.Event(), threading.Event()

    def slow(self: Any) -> socket.socket:
        sock: socket.socket | None = real(self) if hold_after_open else None
        entered.set()
        release.wait(SLOW_CONNECT_S * 10)
        return sock if sock is not None else real(self)

    monkeypatch.setattr(mqtt.Client, "_create_socket_connection", slow)
    n.start()
    assert entered.wait(10), "the connect never started"
    actor = threading.Thread(target=action, args=(n,))
    actor.start()                # runs while the connect is in flight
    time.sleep(SLOW_CONNECT_S)
    release.set()
    actor.join(15)
    assert not actor.is_alive()
    time.sleep(1.0)   # ample for a CONNACK and a birth on localhost


@pytest.mark.parametrize("shared", [True, False], ids=["shared_loop", "paho_thread"])
def test_a_node_stopped_mid_connect_never_comes_online(
        broker: Mosquitto, wire: Wire, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        shared: bool) -> None:
    wire.subscribe("mo/v1/nodes/+/state")
    loop = SharedNetLoop() if shared else None
    n = _node(broker.url, tmp_path, loop)
    try:
        _while_connecting(monkeypatch, n, HeadlessNode.stop,
                          hold_after_open=False)
        assert _online(wire, "z1") == []
        if loop is not None:
            assert loop.link_count == 0   # nothing left keeping a connection alive
    finally:
        if loop is not None:
            loop.close()


def test_a_node_crashed_mid_connect_never_comes_online(
        broker: Mosquitto, wire: Wire, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        loop: SharedNetLoop) -> None:
    wire.subscribe("mo/v1/nodes/+/state")
    n = _node(broker.url, tmp_path, loop)
    _while_connecting(monkeypatch, n, HeadlessNode.kill, hold_after_open=True)
    assert _online(wire, "z1") == []
    assert wait_until(lambda: loop.link_count == 0, timeout=2)


def test_a_socket_the_selector_refuses_is_retried(broker: Mosquitto, tmp_path: Path,
                                                  loop: SharedNetLoop) -> None:
    register = loop._sel.register
    refused = threading.Event()

    def flaky(fileobj: Any, events: int, data: Any = None) -> Any:
        if data is not None and not refused.is_set():   # a link's socket, once
            refused.set()
            raise KeyError("fd already registered (stale entry)")
        return register(fileobj, events, data)

    loop._sel.register = flaky   # type: ignore[method-assign]
    n = _node(broker.url, tmp_path, loop)
    try:
        n.start()
        assert n.wait_connected(5)
        assert refused.is_set()
        assert loop.stats["connect_failures"] >= 1
    finally:
        n.stop()


def test_a_broker_dropping_syns_holds_the_loop_for_the_connect_timeout_only(
        tmp_path: Path) -> None:
    # A listener whose accept queue is full: Linux drops further SYNs, so a connect
    # hangs until its timeout, as against a firewalled or vanished broker.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    filler = socket.create_connection(hole.getsockname(), timeout=1)
    loop = SharedNetLoop(connect_timeout_s=0.3)
    n = _node(f"mqtt://127.0.0.1:{hole.getsockname()[1]}", tmp_path, loop)
    try:
        t0 = time.monotonic()
        n.start()
        assert wait_until(lambda: loop.stats["connect_failures"] >= 1, timeout=2)
        assert time.monotonic() - t0 < 1.5   # paho's own default would hold it 5 s
    finally:
        n.stop()
        loop.close()
        filler.close()
        hole.close()


def test_headless_nodes_without_the_shared_loop_are_planned_like_mock_pin_ones() -> None:
    nodes = [(f"n{i}", "a") for i in range(1000)]
    shared = ShardSpec(nodes=nodes, broker_url="mqtt://x", data_root="/tmp", headless=True)
    own = ShardSpec(nodes=nodes, broker_url="mqtt://x", data_root="/tmp", headless=True,
                    shared_loop=False)
    assert processes_for(shared) == 1000 // DEFAULT_PER_PROCESS
    # paho's own select() loop per node: descriptors past 1023 break it.
    assert processes_for(own) == 1000 // MOCK_PINS_PER_PROCESS
    assert default_processes(1000, headless=True, shared_loop=False) == processes_for(own)
    assert default_processes(1000, headless=False) == processes_for(own)
