"""`tiengmo hub` at start: misconfiguration stops it at once (exit 2, plain words); a
broker or database not reached yet is waited for, said plainly, and shown on /healthz."""

from __future__ import annotations

import getpass
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.broker import Mosquitto, free_port
from tests.support.hub_harness import write_registry
from tests.support.prod_mosquitto import write_mosquitto_passwd

CLI = [sys.executable, "-m", "tiengmo.cli", "hub"]


def hub_args(tmp_path: Path, broker: str, db: str | None = None, *extra: str) -> list[str]:
    return [*CLI, "--broker", broker, "--db", db or f"sqlite:///{tmp_path / 'hub.db'}",
            "--registry", str(write_registry(tmp_path)), "--data-dir", str(tmp_path / "data"),
            "--hub-id", "hub-cli", *extra]


def refused(args: list[str]) -> str:
    """Run to completion: it must stop at once with exit 2; returns what it said."""
    t0 = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TIENGMO_CONFIG": ""})
    assert done.returncode == 2, done.stdout + done.stderr
    assert time.monotonic() - t0 < 30
    assert "Traceback" not in done.stderr and "sqlalche.me" not in done.stderr
    return done.stderr


def test_help_shows_every_default() -> None:
    out = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=60).stdout
    flat = " ".join(out.split())
    for default in ("mqtt://127.0.0.1:1883", "sqlite:///DATA_DIR/hub.db", "127.0.0.1:8080",
                    "/var/lib/tiengmo", ".local/share/tiengmo"):
        assert default in flat, default


@pytest.mark.parametrize(("option", "value", "says"), [
    ("--broker", "mqtt//127.0.0.1", "broker_url"),
    ("--broker", "mqtt://127.0.0.1:99999", "broker_url"),
    ("--db", "mysql://root@127.0.0.1/tiengmo", "db_url"),
    ("--db", "postgresql://", "db_url"),
])
def test_a_malformed_url_is_refused_at_once(tmp_path: Path, option: str, value: str,
                                            says: str) -> None:
    args = hub_args(tmp_path, "mqtt://127.0.0.1:1", None, "--no-http")
    args[args.index(option) + 1] = value
    err = refused(args)
    assert f"command line: key '{says}'" in err and value in err


def test_an_unknown_broker_or_database_host_is_refused_at_once(tmp_path: Path) -> None:
    err = refused(hub_args(tmp_path, "mqtt://no-such-host.invalid:1883", None, "--no-http"))
    assert "unknown host 'no-such-host.invalid'" in err and "broker" in err
    err = refused(hub_args(tmp_path, f"mqtt://127.0.0.1:{free_port()}",
                           "postgresql://postgres@no-such-host.invalid/tiengmo", "--no-http"))
    assert "unknown host 'no-such-host.invalid'" in err and "database" in err


def test_credentials_the_broker_refuses_are_refused_at_once(tmp_path: Path) -> None:
    write_mosquitto_passwd(tmp_path / "passwd", {"hub-cli": "right-password"})
    broker = Mosquitto(tmp_path, extra=f"allow_anonymous false\nuser {getpass.getuser()}\n"
                                       f"password_file {tmp_path / 'passwd'}").start()
    try:
        config = tmp_path / "hub.toml"
        (tmp_path / "pw").write_text("wrong-password\n")
        config.write_text(f'password_file = "{tmp_path / "pw"}"\n')
        err = refused(hub_args(tmp_path, broker.url, None, "--config", str(config),
                               "--no-http"))
        assert "refused the hub" in err and "'hub-cli'" in err
        assert re.search(r"not authori[sz]ed|bad user name or password", err)
    finally:
        broker.stop()


def test_a_database_that_does_not_exist_is_refused_in_plain_words(tmp_path: Path) -> None:
    err = refused(hub_args(tmp_path, f"mqtt://127.0.0.1:{free_port()}",
                           "postgresql://postgres@127.0.0.1:5432/tiengmo_no_such_db",
                           "--no-http"))
    assert 'database "tiengmo_no_such_db" does not exist' in err


def wait_health(port: int, want: int, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            last = r.json()
            if r.status_code == want:
                return dict(r.json())
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"/healthz never answered {want}: {last}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_unreachable_database_and_broker_are_waited_for_and_shown_on_healthz(
        tmp_path: Path) -> None:
    """After a power cut the hub may boot before PostgreSQL and Mosquitto."""
    http, pg_port = free_port(), free_port()
    broker = Mosquitto(tmp_path)              # its port is chosen; nothing listens yet
    log = tmp_path / "hub.log"
    env = {**os.environ, "TIENGMO_CONFIG": "", "TIENGMO_NOT_REACHED_LOG_S": "1",
           "TIENGMO_RECONNECT_MAX_S": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(hub_args(tmp_path, broker.url,
                                         f"postgresql://postgres@127.0.0.1:{pg_port}/x",
                                         "--http", f"127.0.0.1:{http}"),
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        body = wait_health(http, 503)
        deadline = time.monotonic() + 20
        while body["reason"] == "starting" and time.monotonic() < deadline:
            body = wait_health(http, 503)
        assert body["status"] == "degraded"
        assert f"127.0.0.1:{pg_port}/x: not reached yet (Connection refused)" in \
            str(body["reason"])
        time.sleep(2.5)
        assert proc.poll() is None, "a database not up yet is not a misconfiguration"
        text = log.read_text()
        assert text.count("the hub waits and keeps trying") == 1      # said once...
        assert "still waiting" in text                               # ...then every 1 s
        assert "sqlalche.me" not in text and "migrate the database" not in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        # The database is there now (SQLite), the broker still is not.
        with log.open("wb") as out:
            proc = subprocess.Popen(hub_args(tmp_path, broker.url, None,
                                             "--http", f"127.0.0.1:{http}"),
                                    stdout=out, stderr=subprocess.STDOUT, env=env)
        body = wait_health(http, 503)
        deadline = time.monotonic() + 20
        while "broker" not in str(body.get("reason")) and time.monotonic() < deadline:
            body = wait_health(http, 503)
        assert body["reason"] == f"broker {broker.url} not reached yet"
        assert body["started"] is True and body["broker_connected"] is False
        time.sleep(2.5)
        assert "still not reached" in log.read_text()
        broker.start()
        assert wait_health(http, 200)["status"] == "ok"
        deadline = time.monotonic() + 10
        while "reached after" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f"broker {broker.url} reached after" in log.read_text()
    finally:
        stop(proc)
        broker.stop()
