"""The sentinel against a real hub process and a real Mosquitto, texting through a simulated
modem (tests/integrations/fake_modem.py, a pty the sentinel opens with pyserial):

- the hub SIGKILLed: exactly one "hub down" SMS per number after the grace, and one
  "hub back" SMS per number when it runs again;
- the hub restarted inside the grace: no SMS at all;
- the hub cut off from the broker (SIGSTOP: its keepalive runs out and the broker
  sends its Will): the "hub down" SMS, then "back" once it runs on.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.rig import ROOT, HubProcess, registry_text
from tests.integrations.fake_modem import FakeModem, Received
from tests.integrations.recorder import Recorder
from tests.support.broker import Mosquitto

pytestmark = pytest.mark.timeout(240)

ADMIN, POLICE = "+84912345678", "+84987654321"
DOWN, BACK = "MẤT LIÊN LẠC", "HOẠT ĐỘNG LẠI"


def texts(messages: list[Received], marker: str) -> list[Received]:
    """Whole texts (an SMS split in "(i/n) " parts counts once, by its first part)."""
    firsts = [m for m in messages if not m.text.startswith("(") or m.text.startswith("(1/")]
    return [m for m in firsts if marker in m.text]


def per_number(messages: list[Received], marker: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in texts(messages, marker):
        out[m.number] = out.get(m.number, 0) + 1
    return out


@pytest.fixture
def hub(broker: Mosquitto, tmp_path: Path) -> Iterator[HubProcess]:
    registry = tmp_path / "registry.toml"
    registry.write_text(registry_text(2, 1))
    h = HubProcess(tmp_path, broker.url, registry, tmp_path / "hub.db", keepalive_s=2.0)
    h.start()
    yield h
    h.stop()


class SentinelProcess:
    def __init__(self, tmp_path: Path, broker: Mosquitto, modem: FakeModem, *,
                 grace_s: float, beacon_stale_s: float, webhook: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.config = tmp_path / "sentinel.toml"
        self.config.write_text(f"""
[sentinel]
id = "sentinel-1"
grace_s = {grace_s}
beacon_stale_s = {beacon_stale_s}
tick_s = 0.2

[mqtt]
url = "{broker.url}"

[sms]
port = "{modem.port}"
admins = ["{ADMIN}"]
police = ["{POLICE}"]
timeout_s = 5
""" + (f'\n[[webhooks]]\nurl = "{webhook}"\n' if webhook else ""))
        self.log = tmp_path / "sentinel.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tiengmo.cli", "sentinel", "--config", str(self.config)],
            cwd=str(tmp_path), env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def wait_watching(self, timeout: float = 30.0) -> None:
        """Until the sentinel has seen the hub (its state online and a beacon)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "hub there: hub-faults" in self.log.read_text(errors="replace"):
                return
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.05)
        raise AssertionError(f"the sentinel did not connect:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            assert self.proc.wait(20) == 0
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def sentinel(started: list[SentinelProcess], tmp_path: Path, broker: Mosquitto,
             modem: FakeModem, **kw: Any) -> SentinelProcess:
    s = SentinelProcess(tmp_path, broker, modem, **kw)
    started.append(s)
    s.wait_watching()
    return s


def test_a_killed_hub_is_texted_once_after_the_grace_and_once_when_back(
        hub: HubProcess, broker: Mosquitto, modem: FakeModem, tmp_path: Path,
        start_sentinel: list[SentinelProcess]) -> None:
    grace = 3.0
    hook = Recorder()
    token = "tok-9b1e0c"
    sentinel(start_sentinel, tmp_path, broker, modem, grace_s=grace, beacon_stale_s=2.0,
             webhook=f"{hook.url}/sentinel?token={token}")
    time.sleep(grace + 1)
    assert modem.messages == []   # the hub is there: nothing to say
    killed = time.monotonic()
    hub.kill()
    got = modem.wait(lambda ms: len(texts(ms, DOWN)) >= 2, timeout=grace + 15,
                     what="the hub-down texts")
    first = min(m.at for m in texts(got, DOWN))
    assert first - killed >= grace - 0.1, "told before the grace was over"
    time.sleep(grace + 1)   # a second grace: still once
    assert per_number(modem.messages, DOWN) == {ADMIN: 1, POLICE: 1}
    down = texts(modem.messages, DOWN)[0].text
    assert "Alarm hub DOWN" in "".join(m.text for m in modem.messages)
    assert down.startswith("(1/")   # Vietnamese and English: more than one part
    hub.start()
    modem.wait(lambda ms: len(texts(ms, BACK)) >= 2, timeout=30, what="the hub-back texts")
    time.sleep(1.0)
    assert per_number(modem.messages, BACK) == {ADMIN: 1, POLICE: 1}
    assert per_number(modem.messages, DOWN) == {ADMIN: 1, POLICE: 1}
    # The webhook was called once for each, with the same words.
    events = [json.loads(r.body)["event"] for r in hook.requests]
    hook.close()
    assert events == ["hub_down", "hub_back"]
    assert token not in (tmp_path / "sentinel.log").read_text()


def test_under_systemd_it_says_ready_and_pings_its_watchdog(
        broker: Mosquitto, modem: FakeModem, tmp_path: Path,
        start_sentinel: list[SentinelProcess]) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(3)
    try:
        start_sentinel.append(SentinelProcess(
            tmp_path, broker, modem, grace_s=60, beacon_stale_s=30,
            env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"}))
        got = [sock.recv(100).decode() for _ in range(4)]
        assert got[0] == "READY=1" and got[1:] == ["WATCHDOG=1"] * 3
    finally:
        sock.close()


def test_a_hub_restarted_inside_the_grace_sends_nothing(
        hub: HubProcess, broker: Mosquitto, modem: FakeModem, tmp_path: Path,
        start_sentinel: list[SentinelProcess]) -> None:
    grace = 20.0
    sentinel(start_sentinel, tmp_path, broker, modem, grace_s=grace, beacon_stale_s=5.0)
    killed = time.monotonic()
    hub.kill()
    hub.start()
    restart_s = time.monotonic() - killed
    print(f"hub restart took {restart_s:.1f} s")
    assert restart_s < grace - 3, "the hub restart is too slow for this test's grace"
    time.sleep(max(0.0, killed + grace + 2 - time.monotonic()))
    assert modem.messages == []


def test_a_hub_cut_off_from_the_broker_is_texted_when_its_will_fires(
        hub: HubProcess, broker: Mosquitto, modem: FakeModem, tmp_path: Path,
        start_sentinel: list[SentinelProcess]) -> None:
    # Beacons alone would not trip it within this test: the Will must.
    grace = 1.0
    sentinel(start_sentinel, tmp_path, broker, modem, grace_s=grace, beacon_stale_s=60.0)
    stopped = time.monotonic()
    hub.signal(signal.SIGSTOP)   # alive but silent: the broker ends it after 1.5 keepalives
    try:
        got = modem.wait(lambda ms: len(texts(ms, DOWN)) >= 2, timeout=30,
                         what="the hub-down texts")
        took = min(m.at for m in texts(got, DOWN)) - stopped
        print(f"hub-down text {took:.1f} s after SIGSTOP (grace {grace} s)")
        assert took >= 1.5 * 2.0 + grace - 0.5
        assert per_number(modem.messages, DOWN) == {ADMIN: 1, POLICE: 1}
    finally:
        hub.signal(signal.SIGCONT)
    modem.wait(lambda ms: len(texts(ms, BACK)) >= 2, timeout=30, what="the hub-back texts")
    assert per_number(modem.messages, BACK) == {ADMIN: 1, POLICE: 1}
