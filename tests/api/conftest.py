"""Fixtures for the API tests: a real hub (real Mosquitto; SQLite, and again on
PostgreSQL for every test that starts one) with its HTTP app, and one logged-in
browser-like client per role."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dashboard import static_dir
from hub.api import security
from hub.app import create_app
from hub.runtime import Hub
from tests.support.broker import Mosquitto
from tests.support.hub_harness import hub_settings, running_hub
from tests.support.hubdb import (  # noqa: F401 - fixtures
    hub_database,
    parametrize_hub_database,
    pg_database,
)

PASSWORDS = {"viewer": "viewer-pass-123", "operator": "operator-pass-123",
             "admin": "admin-pass-1234"}


@dataclass
class Browser:
    """A TestClient holding one user's session cookie and CSRF token."""

    client: TestClient
    csrf: str
    role: str

    def request(self, method: str, url: str, **kw: Any) -> Any:
        headers = {"X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kw)


def add_user(hub: Hub, username: str, role: str, password: str | None = None) -> None:
    hub.store.auth.create_user(username, security.hash_password(
        password or PASSWORDS[role]), role, "test")


def login(app: FastAPI, username: str, password: str) -> Browser:
    client = TestClient(app)
    r = client.post("/api/v1/session", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    body = r.json()
    return Browser(client, body["csrf_token"], body["user"]["role"])


class OffsetClock:
    """The hub's clock: real time, moved forward at will (session expiry, lockouts)."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def advance(self, seconds: float) -> None:
        self.offset_ms += int(seconds * 1000)


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def hub_overrides() -> dict[str, Any]:
    """Settings a test module may override (e.g. short session expiry)."""
    return {}


@pytest.fixture
def hub(broker: Mosquitto, tmp_path: Path, clock: OffsetClock,
        hub_overrides: dict[str, Any]) -> Iterator[Hub]:
    settings = hub_settings(broker, tmp_path, **{"login_lockout_s": 30.0, **hub_overrides})
    with running_hub(settings, clock_ms=clock) as h:
        yield h


@pytest.fixture
def app(hub: Hub) -> Iterator[FastAPI]:
    app = create_app(hub, static_dir=static_dir(), ping_s=1.0, gap_wait_s=0.5)
    yield app
    app.state.api.feed.stop()


@pytest.fixture
def browsers(hub: Hub, app: FastAPI) -> dict[str, Browser]:
    """A logged-in client per role: viewer, operator, admin."""
    for role in PASSWORDS:
        add_user(hub, role, role)
    return {role: login(app, role, PASSWORDS[role]) for role in PASSWORDS}


@pytest.fixture
def anon(app: FastAPI) -> TestClient:
    return TestClient(app)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that starts a hub runs on SQLite and on PostgreSQL (issue 7).
    parametrize_hub_database(metafunc)
