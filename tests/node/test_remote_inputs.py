"""Remote inputs (`[[remotes]]`): a panel's or a 433 MHz receiver's output pins on mock pins
raise alarms with source `remote` through the same outbox and sender as a button."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_sim.virtual import VirtualNode
from node.config import parse_config
from node.errors import ConfigError
from node.outbox import EntryState
from tests.support.broker import Mosquitto
from tests.support.nodes import BareHub, make_node, wait_until
from tests.support.wire import Wire

REMOTES = [
    # A receiver's relay channel A: contact to ground, internal pull-up (the default).
    {"pin": 5, "number": 1, "kind": "robbery", "hold_s": 0.2},
    # A decoder board's push-pull output through a divider: high while the key is held.
    {"pin": 6, "number": 2, "kind": "fire", "hold_s": 0.2, "active_low": False},
]


@pytest.fixture
def hub(wire: Wire) -> BareHub:
    return BareHub(wire)


@pytest.fixture
def node(broker: Mosquitto, tmp_path: Path) -> Iterator[VirtualNode]:
    n = make_node(broker, tmp_path / "n1", hardware={"remotes": REMOTES})
    n.start()
    assert n.wait_connected(10)
    yield n
    n.stop()


def test_a_remote_press_sounds_locally_and_is_sent_as_source_remote(
        node: VirtualNode, hub: BareHub) -> None:
    node.remote("robbery")
    [alarm] = hub.wait_alarm("n1", lambda a: a["attempt"] == 1)   # re-sends may follow
    assert (alarm["kind"], alarm["source"], alarm["button"]) == ("robbery", "remote", 1)
    assert node.is_sounding()   # local first, as for a button (rule 1)
    assert node.agent is not None and node.agent.outbox is not None
    entry = node.agent.outbox.get(alarm["alarm_id"])
    assert entry is not None and entry.source.value == "remote"
    # Re-sent until received, like any alarm.
    hub.wait_alarm("n1", lambda a: a["alarm_id"] == alarm["alarm_id"] and a["attempt"] == 2)
    hub.ack("n1", alarm["alarm_id"])
    assert wait_until(lambda: node.agent.outbox.get(  # type: ignore[union-attr]
        alarm["alarm_id"]).state is EntryState.RECEIVED)


def test_an_active_high_receiver_output_and_a_burst_of_noise(
        node: VirtualNode, hub: BareHub) -> None:
    node.remote(2, hold_s=0.05)   # 433 MHz noise: shorter than hold_s, nothing
    time.sleep(0.5)
    assert hub.alarms("n1") == []
    node.remote(2)
    [alarm] = hub.wait_alarm("n1", lambda a: a["attempt"] == 1)
    assert (alarm["kind"], alarm["source"], alarm["button"]) == ("fire", "remote", 2)


def _doc(remotes: list[dict[str, object]]) -> dict[str, object]:
    return {"node": {"id": "n1", "area": "a/b"}, "mqtt": {"url": "mqtt://h:1883"},
            "buttons": [{"pin": 17, "number": 1, "kind": "theft"}], "remotes": remotes}


def test_remote_inputs_are_validated() -> None:
    cfg = parse_config(_doc(REMOTES))
    assert [(r.pin, r.number, r.kind, r.active_low) for r in cfg.hardware.remotes] == [
        (5, 1, "robbery", True), (6, 2, "fire", False)]
    with pytest.raises(ConfigError, match=r"remotes\[0\].kind"):
        parse_config(_doc([{"pin": 5, "number": 1, "kind": "party"}]))
    with pytest.raises(ConfigError, match="remote input number 1 is used twice"):
        parse_config(_doc([{"pin": 5, "number": 1, "kind": "fire"},
                           {"pin": 6, "number": 1, "kind": "sos"}]))
    with pytest.raises(ConfigError, match="GPIO 17 is already used by buttons"):
        parse_config(_doc([{"pin": 17, "number": 1, "kind": "fire"}]))
