"""What `tiengmo hub` runs around the Hub: HTTP from the first second, and plain words
while the broker or the database is not reached yet (hub.cli, docs/hub-config.md).

- `WaitingApp`: the ASGI app served from the start. Until the hub is up it answers
  /healthz with 503 `degraded` and the reason (say, the database not reached yet), and
  everything else with 503; then it hands every request to the real app.
- `wait_for_database`: tries the database with back-off until it answers (or the
  verdict is a misconfiguration), saying so once and then every `not_reached_log_s`.
- `BrokerWatch`: the same for the broker while the hub runs (hub.link retries by
  itself; this only speaks).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from protocol.timing import backoff_s

from . import preflight
from .settings import HubSettings

log = logging.getLogger("tiengmo.hub")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class WaitingApp:
    """503 with the reason until `ready(app)`; then `app` answers everything."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self._app: ASGIApp | None = None

    def ready(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is not None:
            await app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})   # try again later
            return
        if scope["type"] != "http":
            return
        body = {"status": "degraded", "started": False, "reason": self.reason}
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"application/json"),
                                (b"retry-after", b"5"), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def serve_http(app: Any, host: str, port: int, settings: HubSettings | None = None,
               *, name: str = "hub-http") -> Any:
    """uvicorn on a thread of its own, so the main thread owns the signals and can
    publish the hub's death before the process ends; with `settings`, bounded by its
    HTTP limits (hub.api.limits: header timeout, keep-alive, header size, connections)."""
    import uvicorn

    from .api.limits import server_options

    extra = server_options(settings) if settings is not None else {}
    # X-Forwarded-For/-Proto only from the proxies named in `trusted_proxies` (none by
    # default). uvicorn's own default trusts 127.0.0.1, which let anything on the hub's
    # machine spoof the client address that login throttling and the audit log use.
    proxies = list(settings.trusted_proxies) if settings is not None else []
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                            proxy_headers=bool(proxies), forwarded_allow_ips=proxies or [],
                            **extra)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            bound = [s.getsockname() for srv in (server.servers or []) for s in srv.sockets]
            where = ", ".join(f"{a[0]}:{a[1]}" for a in bound) or f"{host}:{port}"
            log.info("HTTP at http://%s", where)
            break
        threading.Event().wait(0.05)
    return server


class _Nagger:
    """Says a thing once, then again only every `every_s` seconds."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s, self.clock = every_s, clock
        self.since: float | None = None
        self._last = 0.0

    def due(self) -> bool:
        now = self.clock()
        if self.since is None:
            self.since = self._last = now
            return True
        if now - self._last >= self.every_s:
            self._last = now
            return True
        return False

    def waited_s(self) -> float:
        return 0.0 if self.since is None else self.clock() - self.since

    def reset(self) -> None:
        self.since = None


def wait_for_database(settings: Any, app: WaitingApp,
                      stop: threading.Event) -> preflight.Verdict | None:
    """The database's verdict once it answers or is misconfigured; None if stopped."""
    nag = _Nagger(settings.not_reached_log_s)
    attempt = 0
    while True:
        verdict = preflight.check_database(settings.db_url)
        if verdict.ok or verdict.fatal:
            if nag.since is not None and verdict.ok:
                log.info("database %s reached after %.0f s", preflight.safe_url(
                    settings.db_url), nag.waited_s())
            return verdict
        app.reason = verdict.why
        if nag.due():
            if attempt == 0:
                log.warning("%s; the hub waits and keeps trying (this message repeats "
                            "every %g s)", verdict.why, settings.not_reached_log_s)
            else:
                log.warning("%s (still waiting, %.0f s now)", verdict.why, nag.waited_s())
        attempt += 1
        if stop.wait(backoff_s(attempt, settings.reconnect_min_s, settings.reconnect_max_s)):
            return None


class BrokerWatch:
    """Logs plainly while the hub's broker link is down: once, then every `every_s`."""

    def __init__(self, hub: Any, url: str, every_s: float, first_why: str = "",
                 poll_s: float = 1.0) -> None:
        self.hub, self.url, self.poll_s = hub, url, poll_s
        self.first_why = first_why
        self._nag = _Nagger(every_s)
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hub-broker-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def check(self) -> None:
        """One look (the thread calls it every `poll_s`)."""
        link = self.hub.link
        if link is not None and link.connected.is_set():
            if self._nag.since is not None:
                log.info("broker %s reached after %.0f s", self.url, self._nag.waited_s())
            self._nag.reset()
            return
        if not self._nag.due():
            return
        never = link is None or link.connect_count == 0
        if self._nag.waited_s() == 0:
            why = self.first_why or (f"broker {self.url}: not reached yet" if never
                                     else f"broker {self.url}: connection lost")
            self.first_why = ""
            log.warning("%s; the hub keeps trying, and no alarm reaches it meanwhile (this "
                        "message repeats every %g s)", why, self.every_s)
        else:
            log.warning("broker %s still not reached (%.0f s now); the hub keeps trying",
                        self.url, self._nag.waited_s())

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.check()
            except Exception:   # speaking must never stop the hub
                log.debug("broker watch failed", exc_info=True)
