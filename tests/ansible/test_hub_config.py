"""The hub role's hub.toml, rendered by Ansible from the role's own defaults and template
(no apply: a local play with the template module), then read by the hub's own settings
loader: the alarm lane's own connection is on, with its own login and password file
(docs/alarm-lane.md). The full apply (tests/ansible/test_hub_https.py) installs the same
file and the password with mode 0600."""

from __future__ import annotations

from pathlib import Path

from hub.settings import load_settings
from tests.ansible import support


def render(tmp_path: Path, **extra: object) -> str:
    return support.render_template(tmp_path, "tiengmo_hub", "hub.toml.j2",
                                   tiengmo_hub_id="hub-test-1", **extra)


def test_the_hub_role_turns_the_alarm_lanes_own_connection_on(tmp_path: Path) -> None:
    text = render(tmp_path)
    conf = tmp_path / "hub.toml"
    s = load_settings(conf, env={})
    assert s.alarm_connection is True
    assert s.alarm_username == "hub-test-1-alarms"
    assert s.alarm_password_file == Path("/etc/tiengmo/hub-alarms.password")
    assert s.username == "hub-test-1" and s.password_file == Path("/etc/tiengmo/hub.password")
    assert "password =" not in text   # only paths to the secrets, never one


def test_an_inventory_can_turn_it_off_once_without_a_duplicate_key(tmp_path: Path) -> None:
    render(tmp_path, tiengmo_hub_settings={"alarm_connection": False, "heartbeat_s": 12})
    s = load_settings(tmp_path / "hub.toml", env={})
    assert s.alarm_connection is False and s.heartbeat_s == 12
