"""What the simulator's link relies on in paho 2.x, pinned: the network-cut gate (the public
on_pre_connect, whose exception must leave reconnect()) and paho's private `_sock_close`,
which a shared loop calls to drop a socket it could not watch. A paho release that changes
either fails here, not as a hung fleet."""

from __future__ import annotations

from typing import Any

import paho.mqtt
import paho.mqtt.client as mqtt
import pytest
from pytest_mock import MockerFixture

from firmware_sim.simlink import SimLink
from node.config import MqttConfig
from tests.support.broker import Mosquitto

STATE = ("mo/v1/nodes/t1/state", b"{}", 1, True)


def _link(broker: Mosquitto, net_loop: Any = None) -> SimLink:
    cfg = MqttConfig(host=broker.host, port=broker.port, tls=False, username="")
    return SimLink(cfg, "t1", will=STATE, birth=lambda: STATE,
                   subscriptions=[("mo/v1/nodes/t1/cmd", 1)], on_event=lambda e: None,
                   net_loop=net_loop)


def test_paho_is_the_major_version_the_simulator_was_written_for() -> None:
    assert paho.mqtt.__version__.split(".")[0] == "2"
    # io_abort calls it (see SimLink.io_abort for why no public call will do).
    assert callable(getattr(mqtt.Client, "_sock_close", None))


def test_a_cut_refuses_the_connect_before_any_socket_opens(
        broker: Mosquitto, mocker: MockerFixture) -> None:
    link = _link(broker)
    opened = mocker.spy(link._client, "_create_socket")
    link._client.connect_async(broker.host, broker.port)
    link.cut()
    with pytest.raises(ConnectionRefusedError):
        link._client.reconnect()
    assert opened.call_count == 0
    link.restore()
    assert link._client.reconnect() == mqtt.MQTT_ERR_SUCCESS
    assert link._client.socket() is not None
    link._client.disconnect()


def test_io_abort_closes_through_paho_so_the_loop_hears_of_it(
        broker: Mosquitto, mocker: MockerFixture) -> None:
    loop = mocker.Mock(connect_timeout_s=1.0)
    link = _link(broker, loop)
    link._client.connect_async(broker.host, broker.port)
    link._started = True
    link._run_network()
    loop.attach.assert_called_once_with(link)
    assert link.io_connect()
    sock = link._client.socket()
    loop.watch.assert_called_once_with(link, sock)
    assert link.io_abort() is True
    loop.unwatch.assert_called_once_with(link, sock)   # paho's on_socket_close fired
    assert link._client.socket() is None
    assert link.io_abort() is False
