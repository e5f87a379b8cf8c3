"""Alarms: local first, durable, re-sent until the hub says `received` (rules 1 and 2)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

from firmware_sim.virtual import VirtualNode
from node.led import LedState
from node.outbox import EntryState, Outbox
from protocol import AckStatus
from tests.support.broker import Mosquitto
from tests.support.nodes import BareHub, make_node, wait_until
from tests.support.wire import Wire


@pytest.fixture
def hub(wire: Wire) -> BareHub:
    return BareHub(wire)


@pytest.fixture
def node(broker: Mosquitto, tmp_path: Path) -> Iterator[VirtualNode]:
    n = make_node(broker, tmp_path / "n1")
    n.start()
    assert n.wait_connected(10)
    yield n
    n.stop()


def test_the_gong_sounds_before_the_outbox_is_written(
        node: VirtualNode, hub: BareHub, mocker: MockerFixture) -> None:
    assert node.agent is not None and node.agent.outbox is not None
    seen: dict[str, Any] = {}
    real_add = node.agent.outbox.add

    def spy_add(*args: Any, **kwargs: Any) -> None:
        # At the moment of the write the sound must already be playing.
        seen["sounding"] = node.is_sounding()
        seen["t"] = time.monotonic()
        real_add(*args, **kwargs)

    mocker.patch.object(node.agent.outbox, "add", side_effect=spy_add)
    node.press("fire")
    hub.wait_alarm("n1")
    assert seen["sounding"] is True
    on_times = [t for t, on in node.output_timeline("gong") if on]
    assert on_times and on_times[0] <= seen["t"]


def test_alarm_is_resent_with_rising_attempts_until_received(
        node: VirtualNode, hub: BareHub) -> None:
    node.press(2)
    [first] = hub.wait_alarm("n1")
    assert (first["kind"], first["button"], first["attempt"], first["source"]) == \
        ("fire", 2, 1, "button")
    hub.wait_alarm("n1", lambda a: a["attempt"] == 3)
    hub.ack("n1", first["alarm_id"])
    assert node.agent is not None and node.agent.outbox is not None
    assert wait_until(lambda: node.agent.outbox.depth() == 0)   # type: ignore[union-attr]
    time.sleep(1.5)   # longer than resend_max_s: no more copies may come
    count = len(hub.alarms("n1"))
    time.sleep(1.5)
    assert len(hub.alarms("n1")) == count
    assert {a["alarm_id"] for a in hub.alarms("n1")} == {first["alarm_id"]}


def test_duplicate_received_is_harmless_and_progress_drives_the_led(
        node: VirtualNode, hub: BareHub) -> None:
    hub.online()
    hub.beacon()
    node.press("theft")
    [alarm] = hub.wait_alarm("n1")
    incident = "0f6c9e5e-6a3b-4c1e-9a53-1f6f2c9d7b11"
    hub.ack("n1", alarm["alarm_id"], incident_id=incident)
    hub.ack("n1", alarm["alarm_id"], incident_id=incident)
    assert wait_until(lambda: node.led_state is LedState.RECEIVED)
    hub.ack("n1", alarm["alarm_id"], AckStatus.ACKNOWLEDGED, incident_id=incident)
    assert wait_until(lambda: node.led_state is LedState.ACKNOWLEDGED)
    hub.ack("n1", alarm["alarm_id"], incident_id=incident)   # a late duplicate
    time.sleep(0.3)
    assert node.led_state is LedState.ACKNOWLEDGED
    assert node.is_sounding()
    hub.ack("n1", alarm["alarm_id"], AckStatus.RESOLVED, incident_id=incident)
    assert wait_until(lambda: not node.is_sounding())   # resolved silences the local sound
    assert wait_until(lambda: node.led_state is LedState.IDLE)
    assert node.stats.get("agent_errors", 0) == 0


def test_rejected_stops_resends_and_shows_a_fault(node: VirtualNode, hub: BareHub) -> None:
    node.press("fire")
    [alarm] = hub.wait_alarm("n1")
    hub.ack("n1", alarm["alarm_id"], AckStatus.REJECTED, reason="unknown node")
    assert wait_until(lambda: node.led_state is LedState.FAULT)
    count = len(hub.alarms("n1"))
    time.sleep(2.5)
    assert len(hub.alarms("n1")) == count
    assert node.agent is not None and node.agent.outbox is not None
    entry = node.agent.outbox.get(alarm["alarm_id"])
    assert entry is not None and entry.state is EntryState.REJECTED
    assert entry.reason == "unknown node"


def test_an_alarm_survives_a_crash_and_is_resent_after_restart_until_acked(
        broker: Mosquitto, tmp_path: Path, hub: BareHub) -> None:
    node = make_node(broker, tmp_path / "n1")
    node.start()
    node.cut_network()   # the press happens with no network at all
    node.press("fire")
    assert node.is_sounding()   # local first: the gong does not wait for anybody
    node.kill()
    box = Outbox(tmp_path / "n1" / "outbox.sqlite")
    [pending] = box.pending()
    box.close()
    node.start()
    try:
        alarms = hub.wait_alarm("n1", lambda a: a["alarm_id"] == pending.alarm_id, count=2)
        assert alarms[0]["attempt"] == 1 and alarms[1]["attempt"] == 2
        hub.ack("n1", pending.alarm_id)
        assert node.agent is not None
        assert wait_until(lambda: node.agent.outbox.depth() == 0)   # type: ignore[union-attr]
        assert node.agent.boot_id == 1
    finally:
        node.stop()


def test_every_reconnect_resends_pending_alarms(
        broker: Mosquitto, tmp_path: Path, hub: BareHub) -> None:
    node = make_node(broker, tmp_path / "n1", timers={"resend_first_s": 30,
                                                       "resend_max_s": 30})
    node.start()
    try:
        assert node.wait_connected()
        node.press("fire")
        [first] = hub.wait_alarm("n1")
        node.cut_network()
        hub.wire.wait_for(lambda m: m.topic.endswith("n1/state") and not m.json()["online"])
        node.restore_network()
        [again] = hub.wait_alarm("n1", lambda a: a["attempt"] == 2, timeout=10)
        assert again["alarm_id"] == first["alarm_id"]
    finally:
        node.stop()


def test_no_hub_means_the_full_local_pattern_and_the_no_hub_led(node: VirtualNode) -> None:
    node.press("fire")
    assert wait_until(lambda: node.led_state is LedState.NO_HUB)
    assert node.agent is not None and node.agent.player.current is not None
    # The local pattern's full duration (default 120 s for an alarm kind).
    cur = node.agent.player.current
    assert cur.ends - cur.started == pytest.approx(120, abs=0.5)


def test_cancel_input_cancels_the_latest_open_alarm(
        broker: Mosquitto, tmp_path: Path, hub: BareHub) -> None:
    node = make_node(broker, tmp_path / "n1", hardware={"cancel": {"pin": 22, "hold_s": 0.1}})
    node.start()
    try:
        assert node.wait_connected()
        node.press("fire")
        [alarm] = hub.wait_alarm("n1")
        node.cancel()
        [c] = hub.wire.wait_for(lambda m: m.topic == "mo/v1/nodes/n1/cancel")
        assert c.json()["alarm_id"] == alarm["alarm_id"]
        assert wait_until(lambda: not node.is_sounding())
    finally:
        node.stop()


def test_an_alarm_stamped_before_any_hub_beacon_says_its_clock_is_not_synced(
        broker: Mosquitto, hub: BareHub, tmp_path: Path) -> None:
    # No RTC, after a power cut: the node's own clock says 1970 and no beacon came yet.
    n = make_node(broker, tmp_path / "n1", wall=lambda: 5.0)
    n.start()
    assert n.wait_connected(10) and n.agent is not None
    try:
        n.press("fire")
        [first] = hub.wait_alarm("n1")
        assert first["clock_synced"] is False and first["ts_ms"] == 5000
        hub.beacon()
        wait_until(lambda: n.agent is not None and n.agent.clock.has_sample)
        # Its re-sends still say so: the stamp was made on the node's own clock.
        [again] = hub.wait_alarm("n1", lambda a: a["alarm_id"] == first["alarm_id"]
                                 and a["attempt"] >= 2)
        assert again["clock_synced"] is False and again["ts_ms"] == 5000
        hub.ack("n1", first["alarm_id"])
        # On the hub's clock now: the field is left out (synced, as before it existed).
        n.press("theft")
        [second] = hub.wait_alarm("n1", lambda a: a["alarm_id"] != first["alarm_id"])
        assert "clock_synced" not in second and abs(second["ts_ms"] - hub.now()) < 5000
    finally:
        n.stop()
