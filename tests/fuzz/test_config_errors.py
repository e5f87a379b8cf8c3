"""Config files with mistakes, through the commands a technician runs: each refusal names
the file, the key (or the line, for TOML syntax) and the problem, and nothing starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiengmo.cli import main

NODE_OK = """[node]
id = "na-sang-01"
area = "bach-thong/vi-huong/na-sang"
data_dir = "{data}"

[mqtt]
url = "mqtt://127.0.0.1:1"

[[buttons]]
pin = 17
number = 1
kind = "fire"

[[outputs]]
name = "gong"
type = "gong"
pin = 23
"""

REGISTRY_OK = """[[areas]]
path = "bach-thong"
name = "Bạch Thông"

[[nodes]]
id = "na-sang-01"
area = "bach-thong"
"""

# (what is wrong, the text to append or the whole file, what the message must say)
NODE_CASES = [
    ("toml syntax", NODE_OK + "\n[timers\nheartbeat_s = 1\n", ["not valid TOML", "line 19"]),
    ("table twice", NODE_OK + "\n[node]\n", ["not valid TOML", "line 19"]),
    ("wrong type", NODE_OK + "\n[timers]\nheartbeat_s = \"ten\"\n", ["timers.heartbeat_s",
                                                                     "number"]),
    ("unknown key", NODE_OK + "\n[timers]\nheartbeet_s = 5\n", ["heartbeet_s", "unknown"]),
    ("bad kind", NODE_OK.replace('kind = "fire"', 'kind = "earthquake"'),
     ["kind", "earthquake"]),
    ("out of range", NODE_OK + "\n[timers]\nresend_first_s = -1\n", ["resend_first_s"]),
]


@pytest.mark.parametrize("what,text,says", NODE_CASES, ids=[c[0] for c in NODE_CASES])
def test_a_broken_node_config_is_refused_naming_file_key_and_problem(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str, text: str,
        says: list[str]) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text(text.format(data=tmp_path / "data"), encoding="utf-8")
    assert main(["node", "--config", str(cfg), "--check", "--no-hardware"]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err, err
    for part in says:
        assert part in err, (what, err)


HUB_CASES = [
    ("toml syntax", 'hub_id = "hub-1"\n\nheartbeat_s = = 3\n', ["not valid TOML", "line 3"]),
    ("wrong type", 'hub_id = "hub-1"\nheartbeat_s = "ten"\n', ["'heartbeat_s'", "float"]),
    ("unknown key", 'hub_id = "hub-1"\nheartbeet_s = 10\n', ["unknown key", "'heartbeet_s'"]),
    ("not positive", 'hub_id = "hub-1"\ncorrelation_window_s = 0\n',
     ["'correlation_window_s'", "greater than 0"]),
    ("bad hub id", 'hub_id = "Hub One"\n', ["'hub_id'", "must match"]),
    ("bad broker url", 'hub_id = "hub-1"\nbroker_url = "http://x"\n',
     ["'broker_url'", "mqtt://"]),
]


@pytest.mark.parametrize("what,text,says", HUB_CASES, ids=[c[0] for c in HUB_CASES])
def test_broken_hub_settings_are_refused_naming_file_key_and_problem(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str, text: str,
        says: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIENGMO_CONFIG", raising=False)
    cfg = tmp_path / "hub.toml"
    cfg.write_text(text + f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    assert main(["hub", "run", "--config", str(cfg), "--no-http"]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err, err
    for part in says:
        assert part in err, (what, err)


REGISTRY_CASES = [
    ("toml syntax", REGISTRY_OK + '\n[[nodes]\nid = "x"\n', ["not valid TOML", "line 9"]),
    ("wrong type", REGISTRY_OK + 'enabled = "yes"\n', ["[[nodes]] #1", "'enabled'",
                                                       "true or false"]),
    ("bad node id", REGISTRY_OK.replace('"na-sang-01"', '"Na Sang"'), ["'id'", "must match"]),
    ("unknown key", REGISTRY_OK + "colour = 1\n", ["unknown key 'colour'"]),
]


@pytest.mark.parametrize("what,text,says", REGISTRY_CASES, ids=[c[0] for c in REGISTRY_CASES])
def test_a_broken_registry_stops_the_hub_naming_file_key_and_problem(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str, text: str,
        says: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIENGMO_CONFIG", raising=False)
    reg = tmp_path / "registry.toml"
    reg.write_text(text, encoding="utf-8")
    db = tmp_path / "hub.db"
    code = main(["hub", "run", "--registry", str(reg), "--db", f"sqlite:///{db}",
                 "--broker", "mqtt://127.0.0.1:1", "--data-dir", str(tmp_path / "data"),
                 "--no-http", "--hub-id", "hub-1"])
    assert code != 0
    err = capsys.readouterr().err
    assert str(reg) in err, err
    for part in says:
        assert part in err, (what, err)
    assert not db.exists()    # refused before the database was opened
