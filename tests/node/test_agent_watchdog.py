"""A hung main loop is a dead agent: the dead-man enable line stops toggling within
`watchdog_s`, so the driver's enable drops and the gong cannot sound whatever its GPIO
says, and the systemd watchdog pings (WATCHDOG=1 on $NOTIFY_SOCKET) stop.

Mock pins (gpiozero MockFactory), a fake clock for the outputs and the enable line, a
stand-in transport (no broker: the watchdog is about the node alone), and a real unix
datagram socket as systemd's notify socket.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPin
from pytest_mock import MockerFixture

from node.agent import NodeAgent
from node.config import MqttConfig, parse_config
from node.transport import Connected, LinkEvent, Outgoing
from protocol import PRIORITY_ALARM, Pattern
from protocol.sdnotify import SdNotify
from tests.support.fake_clock import FakeClock

WATCHDOG_S = 0.5
TOGGLE_S = 0.02
T_W = 0.21   # the reference monostable's output time (docs/wiring.md)
PING_S = 0.05


class _Done:
    def wait(self, timeout: float) -> bool:
        return True


class FakeLink:
    """Connected at once, publishes go nowhere."""

    def __init__(self, cfg: MqttConfig, client_id: str, *, will: Outgoing,
                 birth: Callable[[], Outgoing], subscriptions: list[tuple[str, int]],
                 on_event: Callable[[LinkEvent], None]) -> None:
        self._on_event = on_event
        self.connected = False

    def wait_connected(self, timeout: float) -> bool:
        return self.connected

    def start(self) -> None:
        self.connected = True
        self._on_event(Connected())

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> _Done:
        return _Done()

    def stop(self, death: Outgoing | None, timeout: float) -> bool:
        self.connected = False
        return True


class NotifySocket:
    """systemd's side of sd_notify: a unix datagram socket that keeps what it receives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.01)

    def drain(self) -> list[str]:
        got: list[str] = []
        while True:
            try:
                got.append(self.sock.recv(4096).decode())
            except TimeoutError:
                return got

    def collect(self, seconds: float) -> list[str]:
        deadline = time.monotonic() + seconds
        got: list[str] = []
        while time.monotonic() < deadline:
            got += self.drain()
        return got


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    s = NotifySocket(tmp_path / "notify.sock")
    yield s
    s.sock.close()


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


def config(tmp_path: Path, **timers: Any) -> Any:
    return parse_config({
        "node": {"id": "n1", "area": "a/b", "data_dir": str(tmp_path / "data")},
        "mqtt": {"url": "mqtt://127.0.0.1:1"},
        "outputs": [{"name": "gong", "type": "gong", "pin": 23}],
        "enable": {"pin": 25, "toggle_ms": int(TOGGLE_S * 1000)},
        # Nothing due for long, so the loop turns only when a test wakes it: the fake
        # clock can then run far past watchdog_s while the loop rightly waits.
        "timers": {"watchdog_s": WATCHDOG_S, "idle_tick_s": 600, "heartbeat_s": 600,
                   **timers},
    })


@pytest.fixture
def agent(tmp_path: Path, factory: MockFactory, notify: NotifySocket,
          mocker: MockerFixture) -> Iterator[tuple[NodeAgent, FakeClock, threading.Event]]:
    clock = FakeClock()
    a = NodeAgent(config(tmp_path), pin_factory=factory, sound_clock=clock,
                  transport=FakeLink, notifier=SdNotify(str(notify.path)),
                  watchdog_interval_s=PING_S)
    release = threading.Event()
    yield a, clock, release
    release.set()
    a.stop()


def pin(factory: MockFactory, n: int) -> MockPin:
    p: MockPin = factory.pin(n)
    return p


class Bench:
    """Moves the fake clock in toggle periods and reads the enable and gong pins."""

    def __init__(self, agent: NodeAgent, clock: FakeClock, factory: MockFactory) -> None:
        assert agent.hardware.enable is not None
        self.enable = agent.hardware.enable
        self.gong = agent.hardware.outputs["gong"]
        self.clock = clock
        self.en_pin, self.gong_pin = pin(factory, 25), pin(factory, 23)
        self.last_rise: float | None = None
        self.readings: list[tuple[float, bool, bool]] = []   # t, enable level, gong GPIO

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / TOGGLE_S)):
            self.clock.advance(TOGGLE_S)
            assert self.enable.settle() and self.gong.settle()
            now = self.clock.monotonic()
            level = bool(self.en_pin.state)
            if level and self.readings and not self.readings[-1][1]:
                self.last_rise = now
            self.readings.append((now, level, bool(self.gong_pin.state)))

    def rises_since(self, t: float) -> int:
        rs = self.readings
        return sum(1 for a, b in itertools.pairwise(rs) if b[0] > t and b[1] and not a[1])

    def driver_on_since(self, t: float) -> list[float]:
        """When the gong's driver (GPIO AND the monostable's enable) was on after `t`."""
        on: list[float] = []
        last_rise: float | None = None
        for (_, prev, _), (now, level, gong) in zip(self.readings, self.readings[1:],
                                                     strict=False):
            if level and not prev:
                last_rise = now
            enabled = last_rise is not None and now - last_rise < T_W
            if now > t and gong and enabled:
                on.append(now)
        return on


def block_the_loop(agent: NodeAgent, mocker: MockerFixture,
                   release: threading.Event) -> None:
    """The next turn of the agent's loop hangs (a handler stuck on a lock, say)."""
    entered = threading.Event()
    real = agent._timers

    def stuck() -> None:
        entered.set()
        release.wait(30)
        real()

    mocker.patch.object(agent, "_timers", side_effect=stuck)
    agent._queue.put(Connected())   # wake the loop now: its turn runs into the hang
    assert entered.wait(5), "the loop never reached its hang"


def test_a_hung_main_loop_drops_the_enable_and_stops_the_watchdog_pings(
        agent: tuple[NodeAgent, FakeClock, threading.Event], factory: MockFactory,
        notify: NotifySocket, mocker: MockerFixture) -> None:
    a, clock, release = agent
    bench = Bench(a, clock, factory)
    a.start()
    assert "READY=1" in notify.collect(0.3)
    deadline = time.monotonic() + 5   # the first turns (birth, heartbeat) are done
    while a.watch._busy_since is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    # Healthy, and idle far longer than watchdog_s: waiting is not hanging.
    bench.run(3 * WATCHDOG_S)
    assert bench.rises_since(0) >= round(3 * WATCHDOG_S / TOGGLE_S / 2) - 1
    assert notify.collect(0.3).count("WATCHDOG=1") >= 3

    block_the_loop(a, mocker, release)
    hung_at = clock.monotonic()
    bench.run(WATCHDOG_S + 2 * TOGGLE_S)
    dead_at = clock.monotonic()
    # No edge once the turn has outlasted watchdog_s: the monostable runs out.
    bench.run(1.0)
    assert bench.rises_since(dead_at - TOGGLE_S) == 0
    assert bench.last_rise is not None and bench.last_rise <= hung_at + WATCHDOG_S + TOGGLE_S
    # The gong cannot sound: the player still drives its GPIO, the driver stays off.
    a.player.play("alarm-1", Pattern("fire", [[200, 100]]), 10.0, PRIORITY_ALARM)
    bench.run(1.0)
    assert any(g for t, _, g in bench.readings if t > dead_at), "the GPIO was never driven"
    assert bench.driver_on_since(dead_at + T_W) == []
    # And systemd hears nothing more, so WatchdogSec kills and restarts the agent.
    notify.drain()
    assert notify.collect(5 * PING_S) == []

    release.set()   # the turn ends: progress again, enable and pings come back
    time.sleep(0.2)
    back = clock.monotonic()
    bench.run(0.2)
    assert bench.rises_since(back) >= 3
    assert "WATCHDOG=1" in notify.collect(0.3)
