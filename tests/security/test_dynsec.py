"""Disabling a node in the hub makes the real broker refuse it, with no file edited by hand.

Mosquitto 2.0.11 runs the production config: the dynamic-security plugin alone, on the
store tiengmo.dynsec_config generates from the registry (what Ansible's broker role
installs): every node, the hub and the plugin's admin are clients there with roles. The
hub holds the admin login (`dynsec_username`/`dynsec_password_file`) and nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.dynsec import DynsecConfig, DynsecControl, plan
from hub.settings import HubSettings, load_settings
from protocol import Topics, load_registry
from tests.support.client_pool import closing_clients
from tests.support.hub_harness import QUIET, running_hub, wait_until, write_registry
from tests.support.paho_client import Client
from tests.support.prod_mosquitto import dynsec_store
from tests.support.secure_broker import SecureMosquitto

T = Topics()
HUB, ADMIN = "hub-1", "hub-admin"
A, OTHER, OFF = "na-sang-01", "na-cha-01", "na-cha-02"   # na-cha-02: enabled = false
USERS = {HUB: "hub-pass-d41c", A: "a-pass-0b7e", OTHER: "other-pass-2f9a",
         OFF: "off-pass-77aa"}
ADMIN_PASSWORD = "dynsec-admin-pass-93ef"


@pytest.fixture
def mosq(tmp_path: Path) -> Iterator[SecureMosquitto]:
    reg = load_registry(write_registry(tmp_path))
    store = dynsec_store(reg, [HUB], {**USERS, ADMIN: ADMIN_PASSWORD}, admin=ADMIN)
    m = SecureMosquitto(tmp_path / "broker", USERS, store)
    m.start()
    yield m
    m.stop()


@pytest.fixture
def made() -> Iterator[list[Client]]:
    with closing_clients() as clients:
        yield clients


def attempt(m: SecureMosquitto, made: list[Client], user: str) -> Client | None:
    """A connection as `user`, or None if the broker refused it."""
    c = Client(m.port, user, USERS[user])
    made.append(c)
    accepted, _ = c.connect()
    return c if accepted else None


def dynsec_settings(m: SecureMosquitto, tmp_path: Path, **extra: Any) -> HubSettings:
    (tmp_path / "hub.pass").write_text(USERS[HUB] + "\n")
    (tmp_path / "admin.pass").write_text(ADMIN_PASSWORD + "\n")
    return load_settings(None, env={}, **{
        **QUIET, "hub_id": HUB, "broker_url": f"mqtt://127.0.0.1:{m.port}",
        "password_file": str(tmp_path / "hub.pass"),
        "dynsec_username": ADMIN, "dynsec_password_file": str(tmp_path / "admin.pass"),
        "db_url": f"sqlite:///{tmp_path / 'hub.db'}", "data_dir": str(tmp_path / "data"),
        "registry_file": str(tmp_path / "registry.toml"), **extra})


def broker_clients(m: SecureMosquitto) -> dict[str, bool]:
    """username -> disabled, as the plugin itself reports them."""
    ctl = DynsecControl(DynsecConfig(f"mqtt://127.0.0.1:{m.port}", ADMIN, ADMIN_PASSWORD))
    [resp] = ctl.request([{"command": "listClients", "verbose": True}])
    return {c["username"]: bool(c.get("disabled", False)) for c in resp["data"]["clients"]}


def test_plan_touches_only_what_differs() -> None:
    assert plan({}, [("a", True)]) == []
    assert [c["command"] for c in plan({}, [("a", False)])] == ["createClient", "disableClient"]
    assert [c["command"] for c in plan({"a": False}, [("a", False)])] == ["disableClient"]
    assert plan({"a": True}, [("a", False)]) == []
    assert [c["command"] for c in plan({"a": True}, [("a", True)])] == ["enableClient"]
    assert plan({"a": False, "hub-admin": False}, [("a", True)]) == []


def test_disabling_a_node_in_the_hub_makes_the_broker_refuse_it(
        mosq: SecureMosquitto, made: list[Client], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    node = attempt(mosq, made, A)
    assert node is not None, "positive control: the node's password works"
    with running_hub(dynsec_settings(mosq, tmp_path)) as hub:
        assert hub.broker_access is not None
        # Reconciled at start: the registry's disabled node is refused, the rest let in.
        wait_until(lambda: broker_clients(mosq).get(OFF) is True, 15,
                   "the registry's disabled node disabled at the broker")
        assert attempt(mosq, made, OFF) is None
        assert attempt(mosq, made, OTHER) is not None
        assert not node.disconnected.is_set()

        t0 = time.monotonic()
        hub.services().disable_node(A, "admin")
        assert node.disconnected.wait(60), "the broker kept the disabled node connected"
        dropped_s = time.monotonic() - t0
        assert attempt(mosq, made, A) is None, "a disabled node reconnected"
        refused_s = time.monotonic() - t0
        print(f"\ndisable_node -> connection dropped in {dropped_s * 1000:.0f} ms, "
              f"reconnect refused by {refused_s * 1000:.0f} ms")
        assert refused_s < 60

        t0 = time.monotonic()
        hub.services().enable_node(A, "admin")
        back = wait_until(lambda: attempt(mosq, made, A), 60, "the enabled node let in again")
        print(f"enable_node -> connection accepted again after {time.monotonic() - t0:.2f} s")
        # Enabled again, the node still gets only what its role allows, and the hub's
        # sync (every default ACL answer "deny") took nothing it needs away.
        back.subscribe(T.node_cmd(OTHER))
        back.subscribe(T.node_cmd(A))
        hub.link.publish_raw(T.node_cmd(OTHER), b"for other", 1)  # type: ignore[union-attr]
        hub.link.publish_raw(T.node_cmd(A), b"for a", 1)  # type: ignore[union-attr]
        got = [(m.topic, m.payload) for m in back.quiet(1.0) if "/nodes/" in m.topic]
        assert got == [(T.node_cmd(A), b"for a")]
    # Nothing but nodes was touched: the admin is still there, enabled.
    clients = broker_clients(mosq)
    assert clients[ADMIN] is False and clients[A] is False and clients[OFF] is True
    # Neither the hub's nor the broker's log holds a password (the broker logs every
    # dynamic-security command it runs).
    logs = caplog.text + mosq.log.read_text()
    assert "dynsec: hub-admin" in logs and "disableClient" in logs
    assert [p for p in [*USERS.values(), ADMIN_PASSWORD] if p in logs] == []


def test_the_api_disable_reaches_the_broker(mosq: SecureMosquitto, made: list[Client],
                                            tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from hub.api import security
    from hub.app import create_app

    node = attempt(mosq, made, OTHER)
    assert node is not None
    with running_hub(dynsec_settings(mosq, tmp_path)) as hub:
        hub.store.auth.create_user("root", security.hash_password("root-pass-1234"),
                                   "admin", "test")
        with TestClient(create_app(hub)) as client:
            r = client.post("/api/v1/session", json={"username": "root",
                                                     "password": "root-pass-1234"})
            assert r.status_code == 200, r.text
            csrf = r.json()["csrf_token"]
            t0 = time.monotonic()
            r = client.patch(f"/api/v1/nodes/{OTHER}", json={"enabled": False},
                             headers={"X-CSRF-Token": csrf})
            assert r.status_code == 200, r.text
            assert node.disconnected.wait(60)
            print(f"\nPATCH enabled=false -> connection dropped in "
                  f"{(time.monotonic() - t0) * 1000:.0f} ms")
            assert attempt(mosq, made, OTHER) is None


def test_dynsec_login_needs_both_keys(tmp_path: Path) -> None:
    from hub.errors import SettingsError

    with pytest.raises(SettingsError, match=r"dynsec_username.*dynsec_password_file"):
        load_settings(None, env={}, data_dir=str(tmp_path), dynsec_username=ADMIN)
    off = load_settings(None, env={}, data_dir=str(tmp_path))
    assert off.dynsec_username is None and off.dynsec_password() is None
