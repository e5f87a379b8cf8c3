"""Home Assistant MQTT discovery end to end, on a real Mosquitto: node agents appear as
sirens with their buttons as event entities (retained configs); a press on a mock button
is an HA event; the hamlet's sirens report ON while they sound; HA's "siren on" for one
node becomes a protocol `sound` to that node (it strikes), "off" a `silence`. Off by
default: nothing is published unless enabled."""

from __future__ import annotations

import json
import time

from tests.e2e.harness import ever_sounded, wait_for, wait_hub_ready, wait_strikes
from tests.integrations.support import Stack
from tests.support.hub_harness import T
from tests.support.wire import Received, Wire

HA = {"homeassistant": {"enabled": True}}


def last(wire: Wire, topic: str) -> Received | None:
    got = [m for m in wire.messages if m.topic == topic]
    return got[-1] if got else None


def payload(wire: Wire, topic: str) -> str | None:
    m = last(wire, topic)
    return m.payload.decode() if m is not None else None


def test_nodes_appear_as_sirens_and_buttons_a_press_is_an_event(stack: Stack,
                                                                 wire: Wire) -> None:
    stack.start(HA)
    hub = stack.hub
    assert hub is not None
    village = stack.e2e.village()
    wait_hub_ready(village["na-sang-01"])
    wire.subscribe("homeassistant/#", 1)
    wire.subscribe("tiengmo/ha/#", 1)

    cfg_topic = "homeassistant/siren/na-sang-01/config"
    cfg = json.loads(wait_for(lambda: payload(wire, cfg_topic), what="the siren's config"))
    assert cfg["command_topic"] == "tiengmo/ha/na-sang-01/siren/set"
    assert cfg["device"]["identifiers"] == ["tiengmo_na-sang-01"]
    assert cfg["device"]["suggested_area"] == "Thôn Nà Sang"
    assert "fire" in cfg["available_tones"]
    assert last(wire, cfg_topic).retain  # type: ignore[union-attr]
    fire_cfg = json.loads(wait_for(lambda: payload(
        wire, "homeassistant/event/na-sang-01/button_2/config"), what="button 2's config"))
    assert fire_cfg["event_types"] == ["fire"]
    assert fire_cfg["state_topic"] == "tiengmo/ha/na-sang-01/button/2"
    wait_for(lambda: payload(wire, "tiengmo/ha/na-sang-01/availability") == "online",
             what="the node available")
    assert payload(wire, "tiengmo/ha/bridge/availability") == "online"
    # A disabled node is offline to Home Assistant.
    assert wait_for(lambda: payload(wire, "tiengmo/ha/na-cha-02/availability")) == "offline"

    village["na-sang-01"].press("fire")
    ev = wait_for(lambda: payload(wire, "tiengmo/ha/na-sang-01/button/2"), what="the event")
    inc = hub.store.incidents.active()[0]
    assert json.loads(ev) == {"event_type": "fire", "alarm_id": json.loads(ev)["alarm_id"],
                              "incident_id": inc.incident_id}
    # The fan-out sounds the hamlet: its sirens report ON, the other hamlet's stay OFF.
    wait_for(lambda: payload(wire, "tiengmo/ha/na-sang-03/siren/state") == "ON",
             what="na-sang-03's siren ON")
    assert payload(wire, "tiengmo/ha/na-cha-01/siren/state") == "OFF"


def test_siren_on_from_home_assistant_sounds_that_node_and_off_silences_it(
        stack: Stack, wire: Wire) -> None:
    stack.start(HA)
    hub = stack.hub
    assert hub is not None
    village = stack.e2e.village()
    node = village["na-cha-01"]
    wait_hub_ready(node)
    wire.subscribe("tiengmo/ha/#", 1)
    wire.subscribe(T.node_cmd("na-cha-01"), 1)
    wait_for(lambda: payload(wire, "tiengmo/ha/na-cha-01/availability") == "online",
             what="the bridge up")
    t0 = time.monotonic()
    wire.publish("tiengmo/ha/na-cha-01/siren/set",
                 json.dumps({"state": "ON", "tone": "fire", "duration": 30}).encode(), qos=1)
    wait_strikes(node, 3, since=t0, timeout=15)
    cmd = json.loads(wait_for(lambda: last(wire, T.node_cmd("na-cha-01"))).payload)
    assert cmd["action"] == "sound" and cmd["pattern"]["name"] == "fire"
    assert cmd["priority"] == 3 and cmd["duration_s"] == 30
    [audit] = hub.store.audit.entries(action="sound_node")
    assert audit.actor == "homeassistant" and audit.subject == "na-cha-01"
    assert not ever_sounded(village["na-sang-01"], since=t0)   # that node only
    wait_for(lambda: payload(wire, "tiengmo/ha/na-cha-01/siren/state") == "ON",
             what="the siren ON")

    wire.publish("tiengmo/ha/na-cha-01/siren/set", b"OFF", qos=1)
    wait_for(lambda: not node.is_sounding(), what="the node silenced")
    assert hub.store.audit.entries(action="silence_node")[0].actor == "homeassistant"
    # Junk and unknown nodes are refused without harm.
    wire.publish("tiengmo/ha/no-such-node/siren/set", b"ON", qos=1)
    wire.publish("tiengmo/ha/na-cha-01/siren/set", b"{not json", qos=1)
    time.sleep(0.5)
    assert len(hub.store.audit.entries(action="sound_node")) == 1


def test_off_by_default(stack: Stack, wire: Wire) -> None:
    stack.start()
    assert stack.integrations is not None and stack.integrations.homeassistant is None
    wire.subscribe("homeassistant/#", 1)
    wire.subscribe("tiengmo/ha/#", 1)
    stack.e2e.village()
    time.sleep(1.0)
    assert [m.topic for m in wire.messages if not m.topic.startswith("mo/")] == []
