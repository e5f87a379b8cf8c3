"""`tiengmo node` as a technician uses it: --check, --outputs-off, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.broker import Mosquitto
from tests.support.nodes import node_config_toml

ROOT = Path(__file__).resolve().parents[2]


def tiengmo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tiengmo.cli", "node", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "node.toml"
    f.write_text(text)
    return f


def test_check_passes_a_good_config(broker: Mosquitto, tmp_path: Path) -> None:
    f = write(tmp_path, node_config_toml(broker, tmp_path / "data"))
    r = tiengmo("--config", str(f), "--check")
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout


def test_check_refuses_an_output_on_a_boot_high_pin(broker: Mosquitto, tmp_path: Path) -> None:
    text = node_config_toml(broker, tmp_path / "data").replace("pin = 23", "pin = 4")
    f = write(tmp_path, text)
    r = tiengmo("--config", str(f), "--check")
    assert r.returncode == 1
    assert "GPIO 4" in r.stderr and "gong" in r.stderr and str(f) in r.stderr
    # The agent itself refuses to drive it too.
    r = tiengmo("--config", str(f), "--mock-pins")
    assert r.returncode == 1 and "GPIO 4" in r.stderr
    # The pin rules are rules of the file: an image build (--no-hardware) refuses them too.
    r = tiengmo("--config", str(f), "--check", "--no-hardware")
    assert r.returncode == 1 and "GPIO 4" in r.stderr


def test_a_config_error_names_file_and_key_and_exits_2(broker: Mosquitto, tmp_path: Path) -> None:
    text = node_config_toml(broker, tmp_path / "data").replace("hold_s = 0.1", "hold_s = 0.1\n"
                                                                "colour = 'red'")
    f = write(tmp_path, text)
    r = tiengmo("--config", str(f), "--check", "--no-hardware")
    assert r.returncode == 2
    assert f"{f}: buttons[0].colour: unknown key" in r.stderr


def test_check_reports_an_unreadable_password_file(broker: Mosquitto, tmp_path: Path) -> None:
    text = node_config_toml(broker, tmp_path / "data").replace(
        "reconnect_min_s", 'password_file = "missing-pw"\nreconnect_min_s')
    f = write(tmp_path, text)
    r = tiengmo("--config", str(f), "--check")
    assert r.returncode == 1 and "mqtt.password_file" in r.stderr


def test_outputs_off_drives_every_output_off(broker: Mosquitto, tmp_path: Path) -> None:
    f = write(tmp_path, node_config_toml(broker, tmp_path / "data"))
    r = tiengmo("--config", str(f), "--outputs-off", "--mock-pins")
    assert r.returncode == 0, r.stderr
    assert "gong: GPIO 23 off" in r.stdout
