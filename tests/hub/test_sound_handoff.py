"""The gongs first: the alarm transaction lets the `sound` reach the broker before its
bookkeeping (hub.fanout.FanOut.sound_early, `sound_handoff_s`).

Why it is needed: paho writes on its own thread, and the bookkeeping after the sound
is Python that holds the GIL; measured, the sound then waited p90 1.8 ms more on
press -> sound (docs/alarm-lane.md, "Against a bare relay").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

from hub.correlation import memory_incident
from hub.fanout import FanOut
from hub.link import Link
from hub.mqtt import Published
from hub.policy import Sound
from hub.store import alarms as store_alarms
from hub.store.snapshots import IncidentInfo
from protocol import Pattern
from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    HAMLET,
    alarm,
    hub_settings,
    is_ack,
    is_area_cmd,
    running_hub,
    send_alarm,
    watch_all,
)
from tests.support.wire import Wire

INC = "0b7c3c1e-6f1e-4c36-9a55-3b1f0f6c8e11"
KINDS = ("fire", "theft", "robbery", "fight", "flood")
SOUND = Sound(HAMLET, Pattern("fire", ((500, 500),)), 30, 5)


def incident() -> IncidentInfo:
    return memory_incident(INC, "fire", HAMLET, "na-sang-01", 1_700_000_000_000)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def fanout(mocker: MockerFixture, handoff_s: float, *handoffs: Any,
           clock: Clock | None = None) -> FanOut:
    publisher = mocker.Mock()
    publisher.publish_area_cmd.side_effect = list(handoffs)
    return FanOut(mocker.Mock(), publisher, sound_expiry_s=60, failed_to_sound_s=15,
                  sound_handoff_s=handoff_s, monotonic=clock or Clock())


def handoff(mocker: MockerFixture, had: bool = True, clock: Clock | None = None,
            takes_s: float = 0.0) -> Any:
    """A publish handed to the client: its wait takes `takes_s` on `clock`."""
    h = mocker.Mock()

    def wait(timeout: float) -> bool:
        if clock is not None:
            clock.t += min(takes_s, timeout)
        return had and takes_s <= timeout

    h.wait.side_effect = wait
    return h


def test_settle_waits_for_every_sound_of_the_batch_within_one_bound(
        mocker: MockerFixture) -> None:
    """Four new incidents in one batch cost the alarm lane at most the bound once, not
    four times (a slow broker must not hold the last hamlet's gongs 40 ms)."""
    clock = Clock()
    hs = [handoff(mocker, clock=clock, takes_s=0.004) for _ in range(4)]
    fan = fanout(mocker, 0.01, *hs, clock=clock)
    for _ in hs:
        fan.sound_early(incident(), SOUND, 1_700_000_000_000)
    fan.settle()
    waits = [h.wait.call_args.args[0] if h.wait.called else None for h in hs]
    assert waits == [pytest.approx(0.01), pytest.approx(0.006), pytest.approx(0.002), None]
    assert clock.t - 100.0 == pytest.approx(0.01)
    fan.settle()   # settled: nothing is waited for twice
    assert [h.wait.call_count for h in hs] == [1, 1, 1, 0]


def test_a_sound_not_had_in_time_ends_the_wait(mocker: MockerFixture) -> None:
    hs = [handoff(mocker, had=False), handoff(mocker)]
    fan = fanout(mocker, 0.01, *hs)
    for _ in hs:
        fan.sound_early(incident(), SOUND, 1_700_000_000_000)
    fan.settle()
    assert (hs[0].wait.call_count, hs[1].wait.call_count) == (1, 0)


def test_no_wait_when_the_setting_is_zero_or_the_publisher_cannot_say(
        mocker: MockerFixture) -> None:
    h = handoff(mocker)
    fan = fanout(mocker, 0.0, h, None)   # None: test doubles, hub.services' users
    fan.sound_early(incident(), SOUND, 1_700_000_000_000)
    assert fan.sound_early(incident(), SOUND, 1_700_000_000_000).incident_id == INC
    fan.settle()
    h.wait.assert_not_called()


def test_the_broker_has_the_sound_before_the_alarm_rows_are_written(
        broker: Mosquitto, wire: Wire, tmp_path: Path, mocker: MockerFixture) -> None:
    """On a real Mosquitto: when the alarm transaction goes on to write its rows, the
    sound's PUBACK has come. (With `sound_handoff_s = 0` it had not, in nearly every
    press: paho's thread had not even sent it.)"""
    watch_all(wire)
    handoffs = mocker.spy(Link, "publish_area_cmd")
    at_write: list[bool] = []
    write = store_alarms._Batch.write

    def watched(self: Any) -> None:
        last = handoffs.spy_return
        at_write.append(isinstance(last, Published) and last.done)
        write(self)

    mocker.patch.object(store_alarms._Batch, "write", watched)
    settings = hub_settings(broker, tmp_path, alarm_connection=True, sound_handoff_s=0.1,
                            noisy_max_fanouts=10)
    with running_hub(settings):
        for i, kind in enumerate(KINDS):   # each kind its own incident: its own sound
            a = alarm(kind)
            send_alarm(wire, "na-sang-01", a)
            wire.wait_for(is_ack("na-sang-01", a.alarm_id))
            wire.wait_for(is_area_cmd(HAMLET), count=i + 1)
    assert handoffs.call_count == 5
    assert at_write == [True] * 5
