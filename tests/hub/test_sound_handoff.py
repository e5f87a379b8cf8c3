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


@pytest.mark.parametrize("handoff_s", [0.01, 0.0])
def test_sound_early_waits_for_the_broker_at_most_the_setting(
        mocker: MockerFixture, handoff_s: float) -> None:
    publisher = mocker.Mock()
    fan = FanOut(mocker.Mock(), publisher, sound_expiry_s=60, failed_to_sound_s=15,
                 sound_handoff_s=handoff_s)
    cmd = fan.sound_early(incident(), SOUND, 1_700_000_000_000)
    publisher.publish_area_cmd.assert_called_once_with(HAMLET, cmd)
    handoff = publisher.publish_area_cmd.return_value
    if handoff_s:
        handoff.wait.assert_called_once_with(handoff_s)
    else:
        handoff.wait.assert_not_called()


def test_a_publisher_that_cannot_say_when_sent_is_not_waited_for(mocker: MockerFixture) -> None:
    publisher = mocker.Mock()
    publisher.publish_area_cmd.return_value = None   # test doubles, hub.services' users
    fan = FanOut(mocker.Mock(), publisher, sound_expiry_s=60, failed_to_sound_s=15,
                 sound_handoff_s=0.01)
    assert fan.sound_early(incident(), SOUND, 1_700_000_000_000).incident_id == INC


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
    settings = hub_settings(broker, tmp_path, alarm_connection=True, sound_handoff_s=1.0,
                            noisy_max_fanouts=10)
    with running_hub(settings):
        for i, kind in enumerate(KINDS):   # each kind its own incident: its own sound
            a = alarm(kind)
            send_alarm(wire, "na-sang-01", a)
            wire.wait_for(is_ack("na-sang-01", a.alarm_id))
            wire.wait_for(is_area_cmd(HAMLET), count=i + 1)
    assert handoffs.call_count == 5
    assert at_write == [True] * 5
