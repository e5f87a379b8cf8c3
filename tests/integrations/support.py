"""One test's stack for the integrations: real Mosquitto, the real hub on SQLite, its HTTP
app (with the integrations mounted, as `tiengmo hub` serves it), and real node agents
(firmware_sim VirtualNodes on gpiozero mock pins) to press buttons on."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from fastapi.testclient import TestClient

from hub.app import create_app
from hub.integrations.runner import Integrations
from hub.runtime import Hub
from tests.e2e.harness import E2E


class Stack:
    def __init__(self, e2e: E2E) -> None:
        self.e2e = e2e
        self.hub: Hub | None = None
        self.client: TestClient | None = None
        self.integrations: Integrations | None = None

    def start(self, integrations: dict[str, Any] | None = None, **settings: Any) -> Stack:
        s = self.e2e.hub_settings(integrations=integrations or {}, **settings)
        self.hub = self.e2e.start_hub(s)
        app = create_app(self.hub, ping_s=1.0, gap_wait_s=0.5)
        self._app = app
        self.integrations = app.state.integrations
        self.client = TestClient(app)
        return self

    def token(self, role: str, name: str | None = None) -> str:
        """A new API token of `role` (stored as the API stores them: its SHA-256)."""
        assert self.hub is not None
        token = "tgm_" + secrets.token_urlsafe(24)
        self.hub.store.auth.create_token(
            name or f"test-{role}", role, hashlib.sha256(token.encode()).hexdigest(),
            token[:8], "test")
        return token

    def close(self) -> None:
        if self.integrations is not None:
            self.integrations.stop()
        app = getattr(self, "_app", None)
        if app is not None:
            app.state.api.feed.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
