"""`tiengmo hub` as an operator runs it: a real process, a real broker, SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    HAMLET,
    T,
    alarm,
    is_ack,
    send_alarm,
    watch_all,
    write_registry,
)
from tests.support.wire import Wire


def hub_cmd(broker: Mosquitto, tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tiengmo.cli", "hub", *extra, "--broker", broker.url,
            "--db", f"sqlite:///{tmp_path / 'hub.db'}",
            "--registry", str(write_registry(tmp_path)), "--data-dir", str(tmp_path / "data"),
            "--hub-id", "hub-cli", "--http", "127.0.0.1:0"]


def wait_log(log: Path, pattern: str, timeout: float = 20) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, log.read_text(encoding="utf-8", errors="replace"))
        if m:
            return m
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} in the hub's log:\n{log.read_text()[-3000:]}")


def test_hub_command_runs_acks_serves_health_and_stops_cleanly_on_sigterm(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    watch_all(wire)
    log = tmp_path / "hub.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(hub_cmd(broker, tmp_path, "run"), stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        birth = wire.wait_for(lambda m: m.topic == T.hub_state("hub-cli"), timeout=20)[0]
        assert birth.json()["online"] is True  # (retained: see test_ingest)
        a = alarm("fire")
        send_alarm(wire, "na-sang-01", a)
        ack = wire.wait_for(is_ack("na-sang-01", a.alarm_id), timeout=10)[0].json()
        line = wait_log(log, r"BÁO ĐỘNG / ALARM cháy / fire at (\S+) from na-sang-01 → "
                             r"incident ([0-9a-f-]+), sounding area (\S+)")
        assert line.group(1) == HAMLET and line.group(2) == ack["incident_id"]
        assert line.group(3) == HAMLET
        port = wait_log(log, r"HTTP at http://127\.0\.0\.1:(\d+)").group(1)
        # HTTP answers from the first second (503 "degraded" with a reason while the
        # hub starts), so a watchdog sees a starting hub too: wait for the 200.
        deadline = time.monotonic() + 10
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        while health.status_code != 200 and time.monotonic() < deadline:
            assert health.json()["status"] == "degraded" and health.json()["reason"]
            time.sleep(0.1)
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        # The dashboard, whose folder the `tiengmo` command gives the hub.
        assert "<html" in httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text.lower()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        death = wire.wait_for(lambda m: m.topic == T.hub_state("hub-cli")
                              and m.json()["online"] is False)[0]
        assert death.json()["hub_id"] == "hub-cli"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_bad_registry_is_refused_with_the_file_and_key_named(broker: Mosquitto,
                                                             tmp_path: Path) -> None:
    cmd = hub_cmd(broker, tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[nodes]]\nid = "Na Sang"\narea = "x"\n', encoding="utf-8")
    cmd[cmd.index("--registry") + 1] = str(bad)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert str(bad) in done.stderr and "'id'" in done.stderr


def test_missing_registry_option_is_a_usage_error(broker: Mosquitto, tmp_path: Path) -> None:
    cmd = hub_cmd(broker, tmp_path)
    i = cmd.index("--registry")
    del cmd[i:i + 2]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "registry" in done.stderr
