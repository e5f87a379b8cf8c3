"""Hub settings and policy: TOML, environment, secret, production refusals, policy tables."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

import protocol
from hub.errors import PolicyError, SettingsError
from hub.settings import load_settings


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "hub.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_follow_protocol_rule_9(tmp_path: Path) -> None:
    s = load_settings(env={}, data_dir=tmp_path)
    assert (s.keepalive_s, s.heartbeat_s, s.missing_after_heartbeats) == (15, 10, 3)
    assert (s.loss_debounce_s, s.report_within_s, s.time_beacon_s) == (20, 60, 10)
    assert (s.correlation_window_s, s.escalate_after_s, s.sound_expiry_s) == (600, 120, 60)
    assert s.prefix == "mo/v1" and (s.http_host, s.http_port) == ("127.0.0.1", 8080)
    assert s.db_url == f"sqlite:///{tmp_path.resolve()}/hub.db"
    assert protocol.is_hub_id(s.hub_id)


def test_unknown_key_is_refused_naming_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'corelation_window_s = 60\n')
    with pytest.raises(SettingsError) as err:
        load_settings(path, env={})
    assert str(path) in str(err.value) and "corelation_window_s" in str(err.value)


def test_wrong_type_is_refused_naming_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, f'data_dir = "{tmp_path}"\nheartbeat_s = "ten"\n')
    with pytest.raises(SettingsError, match=r"hub\.toml.*heartbeat_s"):
        load_settings(path, env={})


def test_file_then_environment_then_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, f'data_dir = "{tmp_path}"\nhub_id = "hub-a"\n'
                           'correlation_window_s = 300\nhttp_port = 8081\n')
    env = {"TIENGMO_CORRELATION_WINDOW_S": "120", "TIENGMO_OBSERVER": "true",
           "TIENGMO_NODE_ID": "ignored: another component's variable"}
    s = load_settings(path, env=env, http_port=9000)
    assert s.hub_id == "hub-a"
    assert s.correlation_window_s == 120.0 and s.observer is True
    assert s.http_port == 9000


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="TIENGMO_HTTP_PORT"):
        load_settings(env={"TIENGMO_HTTP_PORT": "eighty"}, data_dir=tmp_path)


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, f'data_dir = "{tmp_path}"\nescalate_after_s = 30\n')
    assert load_settings(env={"TIENGMO_CONFIG": str(path)}).escalate_after_s == 30


def test_secret_is_generated_once_kept_0600_and_reused(tmp_path: Path) -> None:
    first = load_settings(env={}, data_dir=tmp_path / "data")
    secret_file = tmp_path / "data" / "secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(first.secret) >= 32
    assert load_settings(env={}, data_dir=tmp_path / "data").secret == first.secret
    assert first.secret not in repr(first)  # never printed in logs


def test_production_refuses_a_default_or_empty_secret(tmp_path: Path) -> None:
    for weak in ("changeme", "short"):
        with pytest.raises(SettingsError, match=r"secret.*production"):
            load_settings(env={}, data_dir=tmp_path, environment="production", secret=weak)
    path = write(tmp_path, 'environment = "production"\nsecret = ""\n'
                           f'data_dir = "{tmp_path / "d"}"\n')
    # an empty secret in production falls back to the generated one, which is strong
    assert len(load_settings(path, env={}).secret) >= 32
    (tmp_path / "weak").mkdir()
    (tmp_path / "weak" / "secret").write_text("secret\n")
    with pytest.raises(SettingsError, match="production"):
        load_settings(env={}, data_dir=tmp_path / "weak", environment="production")


def test_bad_environment_name_and_timer_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="environment"):
        load_settings(env={}, data_dir=tmp_path, environment="staging")
    with pytest.raises(SettingsError, match="escalate_after_s"):
        load_settings(env={}, data_dir=tmp_path, escalate_after_s=0)


def test_password_file_first_line(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\nignored\n")
    s = load_settings(env={}, data_dir=tmp_path, password_file=str(tmp_path / "pw"))
    assert s.mqtt_password() == "s3cret"


POLICY = """
data_dir = "{d}"

[policy.kinds.fire]
level = "commune"
duration_s = 180

[policy.kinds.flood]
level = "district"
pattern = "flood"

[[policy.patterns]]
area = "bach-thong/vi-huong"
name = "fire"
steps = [[120, 150], [120, 800]]
"""


def test_policy_from_settings_file(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, POLICY.format(d=tmp_path)), env={})
    p = s.policy
    fire = p.sound_for("fire", "bach-thong/vi-huong/na-sang")
    assert fire.area == "bach-thong/vi-huong" and fire.duration_s == 180
    assert fire.pattern.steps == ((120, 150), (120, 800))     # the commune's own signal
    assert fire.priority == protocol.PRIORITY_ALARM
    elsewhere = p.sound_for("fire", "bach-thong/phu-thong/nga-ba")
    assert elsewhere.pattern == protocol.default_pattern("fire")
    # district level from a node two levels deep is clamped at the top
    assert p.sound_for("flood", "bach-thong/vi-huong").area == "bach-thong"
    theft = p.sound_for("theft", "bach-thong/vi-huong/na-sang")
    assert theft.area == "bach-thong/vi-huong/na-sang"       # default: the hamlet
    assert p.widen("bach-thong/vi-huong/na-sang") == "bach-thong/vi-huong"
    assert p.widen("bach-thong") is None
    assert p.drill("bach-thong").priority == protocol.PRIORITY_DRILL


@pytest.mark.parametrize(("snippet", "key"), [
    ('[policy.kinds.fire]\nlevel = "province"\n', "policy.kinds.fire.level"),
    ('[policy.kinds.volcano]\nlevel = "hamlet"\n', "policy.kinds.volcano"),
    ('[policy.kinds.fire]\nlouder = true\n', "policy.kinds.fire.louder"),
    ('[[policy.patterns]]\narea = "a"\nname = "fire"\nsteps = [[0, 10]]\n',
     "policy.patterns[0]"),
    ('[policy.kinds.fire]\npattern = "nope"\n', "policy.kinds.fire.pattern"),
])
def test_policy_errors_name_file_and_key(tmp_path: Path, snippet: str, key: str) -> None:
    path = write(tmp_path, f'data_dir = "{tmp_path}"\n' + snippet)
    with pytest.raises(PolicyError) as err:
        load_settings(path, env={})
    assert str(path) in str(err.value) and key in str(err.value)


def test_the_annotated_example_loads(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "hub" / "examples" / "hub.toml"
    s = load_settings(example, env={}, data_dir=tmp_path, environment="development")
    assert s.hub_id == "hub-vi-huong" and s.broker_url.startswith("mqtts://")
    assert s.policy.sound_for("flood", "bach-thong/vi-huong/na-sang").area == \
        "bach-thong/vi-huong"
    assert s.policy.sound_for("theft", "bach-thong/vi-huong/na-sang").pattern.steps == (
        (120, 150), (120, 800))


def test_replica_and_tls_settings_from_file_and_environment(tmp_path: Path) -> None:
    s = load_settings(env={}, data_dir=tmp_path)
    assert (s.shared_group, s.cert_file, s.key_file, s.ingest_workers) == (None, None, None, 2)
    path = write(tmp_path, f'data_dir = "{tmp_path}"\nbroker_url = "mqtts://127.0.0.1:8883"\n'
                           'shared_group = "vi-huong_hubs"\ncert_file = "/etc/tiengmo/hub.crt"\n'
                           'key_file = "/etc/tiengmo/hub.key"\ningest_workers = 4\n')
    s = load_settings(path, env={"TIENGMO_INGEST_WORKERS": "8"})
    assert s.shared_group == "vi-huong_hubs" and s.ingest_workers == 8
    assert (s.cert_file, s.key_file) == (Path("/etc/tiengmo/hub.crt"), Path("/etc/tiengmo/hub.key"))
    # A certificate file that also holds its key is enough; an empty variable clears a key.
    s = load_settings(path, env={"TIENGMO_KEY_FILE": "", "TIENGMO_SHARED_GROUP": ""})
    assert s.key_file is None and s.shared_group is None and s.cert_file is not None


@pytest.mark.parametrize(("overrides", "message"), [
    ({"shared_group": "hubs/a"}, "shared_group"),
    ({"shared_group": "hubs+"}, "shared_group"),
    ({"shared_group": ""}, "shared_group"),
    ({"ingest_workers": 0}, "ingest_workers"),
    ({"ingest_workers": 1000}, "ingest_workers"),
    ({"ingest_workers": 2.5}, "ingest_workers"),
    ({"broker_url": "mqtts://h:8883", "key_file": "/k.pem"}, "key_file.*cert_file"),
    ({"cert_file": "/c.pem"}, "cert_file.*mqtts://"),
])
def test_bad_replica_and_tls_settings_are_refused(tmp_path: Path, overrides: dict[str, Any],
                                                  message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env={}, data_dir=tmp_path, **overrides)


def test_nested_tables_take_variables_with_the_delimiter_merged_key_by_key(
        tmp_path: Path) -> None:
    path = write(tmp_path, POLICY.format(d=tmp_path))
    env = {"TIENGMO_POLICY__MAX_ESCALATION": "3", "TIENGMO_INTEGRATIONS__SMS__ENABLED": "true",
           "TIENGMO_POLICY__KINDS__FIRE__DURATION_S": "200"}
    s = load_settings(path, env=env)
    assert s.policy.max_escalation == 3 and s.integrations.sms.enabled is True
    fire = s.policy.sound_for("fire", "bach-thong/vi-huong/na-sang")
    assert fire.duration_s == 200 and fire.area == "bach-thong/vi-huong"   # file's level kept
    with pytest.raises(PolicyError) as err:
        load_settings(path, env={"TIENGMO_POLICY__MAX_ESCALATION": "9"})
    assert str(path) in str(err.value) and "TIENGMO_POLICY__MAX_ESCALATION" in str(err.value)
    assert "policy.max_escalation: must be in 0..4, got 9" in str(err.value)


@pytest.mark.parametrize(("text", "env", "overrides", "says"), [
    ('heartbeat_s = -1\n', {}, {}, "{file}: key 'heartbeat_s' must be a number (float) "
                                   "greater than 0, got -1"),
    ('', {"TIENGMO_HTTP_PORT": "70000"}, {}, "environment variable TIENGMO_HTTP_PORT: key "
                                             "'http_port' must be an integer from 1 to 65535, "
                                             "got '70000'"),
    ('', {}, {"environment": "staging"}, "<overrides>: key 'environment' must be one of "
                                         "development, production, got 'staging'"),
    ('broker_url = "mqtt://h:0"\n', {}, {}, "{file}: key 'broker_url' = 'mqtt://h:0' must be "
                                             "mqtt://HOST[:PORT]"),
    ('db_url = "mysql://u@h/d"\n', {}, {}, "{file}: key 'db_url' = 'mysql://u@h/d' must be "
                                            "sqlite:///"),
    ('heartbeat_s = nan\n', {}, {}, "{file}: key 'heartbeat_s' must be a number"),
    ('reconnect_min_s = 5\nreconnect_max_s = 2\n', {}, {},
     "{file}: key 'reconnect_max_s' must not be less than 'reconnect_min_s'"),
])
def test_a_refusal_names_where_the_key_the_value_and_what_is_allowed(
        tmp_path: Path, text: str, env: dict[str, str], overrides: dict[str, Any],
        says: str) -> None:
    path = write(tmp_path, f'data_dir = "{tmp_path}"\n' + text)
    with pytest.raises(SettingsError) as err:
        load_settings(path, env=env, **overrides)
    assert str(err.value).startswith(says.format(file=path)), str(err.value)
    assert "pydantic" not in str(err.value) and "validation error" not in str(err.value)
