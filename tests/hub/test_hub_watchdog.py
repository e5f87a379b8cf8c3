"""systemd's watchdog vouches for the hub's alarm lane and tick loop (issue 12 point 7).

A real unix datagram socket stands for systemd's NOTIFY_SOCKET. The hub says
READY=1, then WATCHDOG=1 while its alarm lane and tick loop make progress: pings go
on through a database outage (the hamlet is still sounded from memory, point 5: no
reason to be killed) and stop while the alarm lane is stuck, so systemd restarts a
hub that would otherwise sit on alarms while looking alive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.sdnotify import SdNotify
from tests.hub.outage import outage
from tests.hub.test_alarm_lane import VICTIM, blocked
from tests.node.test_agent_watchdog import NotifySocket
from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    OTHER_HAMLET,
    alarm,
    hub_settings,
    is_area_cmd,
    running_hub,
    send_alarm,
    wait_until,
)
from tests.support.wire import Wire

PING_S = 0.05
STALL_S = 1.5   # well above a batch under a loaded CI machine, far below a real stall


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    s = NotifySocket(tmp_path / "notify.sock")
    yield s
    s.sock.close()


def pings(notify: NotifySocket, seconds: float) -> int:
    return notify.collect(seconds).count("WATCHDOG=1")


def test_pings_go_on_through_a_database_outage_and_stop_while_the_alarm_lane_is_stuck(
        broker: Mosquitto, wire: Wire, tmp_path: Path, notify: NotifySocket) -> None:
    wire.subscribe("#")
    settings = hub_settings(broker, tmp_path, watchdog_stall_s=STALL_S)
    with running_hub(settings) as hub:
        hub.tell_systemd(SdNotify(str(notify.path)), PING_S)
        first = notify.collect(0.5)
        assert first[0] == "READY=1"
        assert first.count("WATCHDOG=1") >= 3

        # The database refuses every write: the alarm still sounds, the pings go on.
        with outage(hub.store.db.engine, at="write"):
            send_alarm(wire, VICTIM, alarm("fire"))
            wire.wait_for(is_area_cmd(OTHER_HAMLET), timeout=10)
            assert pings(notify, 1.5) >= 3   # 30 if nothing else ran (a loaded CI: fewer)
            assert hub.alive()

        # The alarm lane stuck on one batch past watchdog_stall_s: no more pings.
        with blocked(hub) as release:
            send_alarm(wire, VICTIM, alarm("theft"))
            wait_until(lambda: not hub.alive(), timeout=10, what="the lane judged stuck")
            time.sleep(2 * PING_S)
            notify.drain()
            assert pings(notify, 0.6) == 0
            release.set()
            # Unstuck: the pings resume.
            wait_until(lambda: pings(notify, 0.2) > 0, what="pings again")
        assert hub.alive()
    assert "STOPPING=1" in notify.collect(0.2)
