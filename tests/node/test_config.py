"""The node's TOML config: the example parses, and every mistake names its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.config import load_config, parse_config
from node.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "node" / "examples" / "node.toml"


def minimal(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"node": {"id": "na-sang-01", "area": "bach-thong/vi-huong/na-sang"},
                           "mqtt": {"url": "mqtt://127.0.0.1:1883"}}
    doc.update(extra)
    return doc


def error_of(doc: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(doc, "node.toml")
    return str(info.value)


def test_the_shipped_example_is_a_valid_config() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.node_id == "na-sang-01"
    assert cfg.mqtt.tls and cfg.mqtt.port == 8883
    assert [b.kind for b in cfg.hardware.buttons] == ["theft", "fire"]
    assert cfg.hardware.outputs[0].feedback_pin == 24
    assert cfg.timers.heartbeat_s == 10


def test_defaults_follow_the_protocol() -> None:
    cfg = parse_config(minimal())
    assert cfg.mqtt.username == "na-sang-01"
    assert cfg.mqtt.prefix == "mo/v1" and cfg.mqtt.keepalive_s == 15
    assert cfg.mqtt.reconnect_max_s == 10
    t = cfg.timers
    assert (t.heartbeat_s, t.resend_first_s, t.resend_max_s, t.hub_time_stale_s,
            t.clock_hold_s) == (10, 5, 30, 30, 15)
    assert cfg.local_pattern("fire").pattern.name == "fire"


def test_a_local_pattern_overrides_the_default() -> None:
    cfg = parse_config(minimal(patterns={"theft": {"steps": [[100, 200]], "duration_s": 30}}))
    lp = cfg.local_pattern("theft")
    assert lp.pattern.steps == ((100, 200),) and lp.duration_s == 30


@pytest.mark.parametrize(("doc", "key", "words"), [
    (minimal(extra=1), "extra", "unknown key"),
    (minimal(timers={"heartbeat": 5}), "timers.heartbeat", "unknown key"),
    (minimal(outputs=[{"name": "gong", "type": "gong", "pin": 23},
                      {"name": "siren", "type": "siren", "pin": "x"}]),
     "outputs[1].pin", "integer"),
    (minimal(outputs=[{"name": "gong", "type": "gong", "pin": 23, "colour": "red"}]),
     "outputs[0].colour", "unknown key"),
    (minimal(buttons=[{"pin": 17, "number": 1, "kind": "tiger"}]), "buttons[0].kind", "tiger"),
    (minimal(buttons=[{"pin": 17, "number": 1, "kind": "fire"},
                      {"pin": 27, "number": 1, "kind": "theft"}]), "buttons[1].number", "twice"),
    (minimal(buttons=[{"pin": 17, "number": 1, "kind": "fire"}],
             outputs=[{"name": "gong", "type": "gong", "pin": 17}]),
     "outputs[0].pin", "already used"),
    ({"node": {"id": "Bad_Id", "area": "a"}, "mqtt": {"url": "mqtt://h"}}, "node.id", "must"),
    ({"node": {"id": "n", "area": "a//b"}, "mqtt": {"url": "mqtt://h"}}, "node.area", "slugs"),
    ({"node": {"id": "n", "area": "a"}, "mqtt": {"url": "http://h"}}, "mqtt.url", "mqtt://"),
    ({"node": {"id": "n", "area": "a"}}, "mqtt", "required"),
    (minimal(mqtt={"url": "mqtt://h", "reconnect_max_s": 60}), "mqtt.reconnect_max_s", "0.05..10"),
    (minimal(mqtt={"url": "mqtt://h", "ca_file": "ca.crt"}), "mqtt.ca_file", "mqtts"),
    (minimal(patterns={"fire": {"steps": [[0, 100]]}}), "patterns.fire.steps", "on"),
    (minimal(patterns={"curfew": {"steps": [[1, 1]]}}), "patterns.curfew", "unknown pattern"),
    (minimal(timers={"resend_first_s": 10, "resend_max_s": 5}), "timers.resend_max_s", "less"),
    (minimal(led={"pin": 40}), "led.pin", "0..27"),
])
def test_errors_name_the_file_and_the_key(doc: dict[str, Any], key: str, words: str) -> None:
    msg = error_of(doc)
    assert msg.startswith(f"node.toml: {key}: "), msg
    assert words in msg


def test_a_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "node.toml"
    bad.write_text("[node]\nid = \n")
    with pytest.raises(ConfigError, match=str(bad)) as info:
        load_config(bad)
    assert "not valid TOML" in str(info.value)


def test_relative_paths_resolve_next_to_the_file(tmp_path: Path) -> None:
    f = tmp_path / "node.toml"
    f.write_text('[node]\nid="n"\narea="a"\ndata_dir="data"\n'
                 '[mqtt]\nurl="mqtts://h"\npassword_file="pw"\n')
    cfg = load_config(f)
    assert cfg.data_dir == tmp_path / "data"
    assert cfg.mqtt.password_file == tmp_path / "pw"
