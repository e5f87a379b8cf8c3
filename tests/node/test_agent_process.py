"""The agent as a real process (`tiengmo node --mock-pins`): birth, Will, boot_id, SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import Mosquitto
from tests.support.nodes import node_config_toml
from tests.support.wire import Received, Wire

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config_file(broker: Mosquitto, tmp_path: Path) -> Path:
    f = tmp_path / "node.toml"
    f.write_text(node_config_toml(broker, tmp_path / "data", "pi-01"))
    return f


@pytest.fixture
def spawn(config_file: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def start(procs: list[subprocess.Popen[bytes]], config: Path) -> subprocess.Popen[bytes]:
    p = subprocess.Popen([sys.executable, "-m", "tiengmo.cli", "node", "--config", str(config),
                          "--mock-pins"], cwd=ROOT, stderr=subprocess.PIPE)
    procs.append(p)
    return p


def state(online: bool, boot_id: int) -> object:
    def pred(m: Received) -> bool:
        j = m.json()
        return bool(m.topic == "mo/v1/nodes/pi-01/state" and j["online"] is online
                    and j["boot_id"] == boot_id)
    return pred


def test_birth_is_retained_and_kill_9_brings_the_will_with_the_same_boot_id(
        broker: Mosquitto, wire: Wire, config_file: Path,
        spawn: list[subprocess.Popen[bytes]]) -> None:
    wire.subscribe("mo/v1/nodes/pi-01/#")
    p = start(spawn, config_file)
    [birth] = wire.wait_for(state(True, 0), timeout=15)
    assert birth.json()["outputs"] == ["gong"] and birth.json()["buttons"] == {"1": "fire"}
    # A client arriving later still learns the node is up: the birth is retained.
    late = Wire(broker.host, broker.port)
    late.subscribe("mo/v1/nodes/pi-01/state")
    [seen] = late.wait_for(lambda m: m.retain)
    assert seen.json()["online"] is True
    late.close()
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    [will] = wire.wait_for(state(False, 0), timeout=10)
    assert will.json() == {"v": 1, "online": False, "boot_id": 0}


def test_boot_id_rises_across_restarts_and_sigterm_publishes_the_death(
        wire: Wire, config_file: Path, spawn: list[subprocess.Popen[bytes]]) -> None:
    wire.subscribe("mo/v1/nodes/pi-01/state")
    for boot_id in (0, 1):
        p = start(spawn, config_file)
        wire.wait_for(state(True, boot_id), timeout=15)
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0
        wire.wait_for(state(False, boot_id), timeout=5)
    p = start(spawn, config_file)
    wire.wait_for(state(True, 2), timeout=15)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    wire.wait_for(state(False, 2), timeout=10)


def test_under_systemd_it_says_ready_and_pings_the_watchdog_until_stopped(
        broker: Mosquitto, config_file: Path, tmp_path: Path,
        spawn: list[subprocess.Popen[bytes]]) -> None:
    """Type=notify and WatchdogSec= as the node role installs them: READY=1, WATCHDOG=1
    every WatchdogSec/2; a stopped process (SIGSTOP) sends nothing, so systemd kills it."""
    import socket
    import time

    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)

    def collect(seconds: float) -> list[str]:
        got, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                got.append(sock.recv(4096).decode())
        return got

    env = {**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"}
    p = subprocess.Popen([sys.executable, "-m", "tiengmo.cli", "node", "--config",
                          str(config_file), "--mock-pins"], cwd=ROOT, env=env,
                         stderr=subprocess.PIPE)
    spawn.append(p)
    first = collect(4.0)
    assert first and first[0] == "READY=1"
    assert first.count("WATCHDOG=1") >= 5   # every 0.2 s
    p.send_signal(signal.SIGSTOP)
    collect(0.1)
    assert collect(1.0) == []
    p.send_signal(signal.SIGCONT)
    assert "WATCHDOG=1" in collect(1.0)
    p.terminate()
    assert p.wait(15) == 0
    assert "STOPPING=1" in collect(0.3)
    sock.close()
