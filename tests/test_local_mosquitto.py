"""The demo's Mosquitto (tiengmo/local_mosquitto.py): production's logins and ACL, on
loopback, from files the demo writes itself, seen by plain paho clients."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol import Topics
from tests.support.paho_client import Client
from tiengmo.acl import render_acl
from tiengmo.local_mosquitto import (
    LocalMosquitto,
    LocalMosquittoError,
    hash_password,
    render_demo_conf,
)
from tiengmo.village import load_demo_registry

T = Topics()
USERS = {"demo-hub": "hub-pw", "na-sang-01": "pw-a", "na-cha-01": "pw-b"}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalMosquitto]:
    acl = render_acl(load_demo_registry(), ["demo-hub"])
    b = LocalMosquitto(tmp_path / "broker", USERS, acl).start()
    yield b
    b.stop()


def test_the_password_hash_is_mosquittos_pbkdf2_format() -> None:
    # $7$: PBKDF2-HMAC-SHA512, 101 rounds, 12-byte salt, as mosquitto_passwd writes it
    # (that Mosquitto accepts it is shown by the login tests below).
    h = hash_password("secret", salt=b"0123456789ab")
    _, kind, rounds, salt, digest = h.split("$")
    assert (kind, rounds, base64.b64decode(salt)) == ("7", "101", b"0123456789ab")
    assert len(base64.b64decode(digest)) == 64
    assert hash_password("secret") != hash_password("secret")   # a new salt each time


def test_logins_are_per_node_and_wrong_ones_are_refused(broker: LocalMosquitto) -> None:
    made = []
    for user, password, ok in (("na-sang-01", "pw-a", True), ("na-sang-01", "pw-b", False),
                               ("stranger", "x", False), (None, None, False)):
        c = Client(broker.port, user, password, client_id="someone")
        made.append(c)
        assert c.connect()[0] is ok, (user, password)
    for c in made:
        c.close()


def test_a_node_cannot_write_another_nodes_topics(broker: LocalMosquitto) -> None:
    hub = Client(broker.port, "demo-hub", "hub-pw")
    a = Client(broker.port, "na-sang-01", "pw-a")
    try:
        assert hub.connect()[0] and a.connect()[0]
        hub.subscribe(T.node_wildcard("alarm"))
        a.publish(T.alarm("na-cha-01"), b"forged")      # PUBACKed, and dropped
        a.publish(T.alarm("na-sang-01"), b"mine")
        [m] = hub.take(1)
        assert m.payload == b"mine"
        assert hub.quiet(0.3) == []
    finally:
        hub.close()
        a.close()


def test_the_config_binds_loopback_and_the_user_it_runs_as(tmp_path: Path) -> None:
    conf = render_demo_conf(port=1884, password_file=tmp_path / "p", acl_file=tmp_path / "a",
                            user="someone")
    assert "listener 1884 127.0.0.1" in conf.splitlines()
    assert "allow_anonymous false" in conf and "user someone" in conf
    # A per-listener option: after the listener line, or it makes a second listener.
    lines = conf.splitlines()
    assert lines.index("use_username_as_clientid true") > lines.index("listener 1884 127.0.0.1")


def test_a_missing_program_is_a_clear_error(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tiengmo.local_mosquitto.find_mosquitto", lambda: None)
    with pytest.raises(LocalMosquittoError, match="--broker-backend amqtt"):
        LocalMosquitto(tmp_path, USERS, "")


def test_it_outlives_a_ctrl_c_to_its_group_and_not_a_killed_parent(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the terminal's foreground group) must leave the broker to the demo,
    which stops it after the nodes' goodbyes; a parent killed outright takes it along."""
    code = ("import sys, time\n"
            "from pathlib import Path\n"
            "from tiengmo.local_mosquitto import LocalMosquitto\n"
            "b = LocalMosquitto(Path(sys.argv[1]), {'u': 'p'}, '').start()\n"
            "try:\n"                     # the pid's print inside: Ctrl-C may land during it
            "    print(b._proc.pid, flush=True)\n"
            "    time.sleep(60)\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted', flush=True)\n"
            "    time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "broker")],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    pid = 0
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        os.killpg(parent.pid, signal.SIGINT)          # as the terminal does on Ctrl-C
        assert parent.stdout.readline().strip() == "interrupted"
        time.sleep(0.5)
        assert _alive(pid), "the broker died with the demo's Ctrl-C"
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), "the broker outlived its killed parent"
    finally:
        parent.kill()
        if pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running (not a zombie: an orphan is reaped by init, but not at once)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
