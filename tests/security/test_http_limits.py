"""Bounded at the HTTP edge: every route refuses a huge body unread, slow senders are dropped.

A real hub (real Mosquitto, SQLite) serves its app through uvicorn with the options the
`tiengmo hub` command uses (hub.api.limits.server_options), on a free loopback port. The
clients are raw sockets, so nothing between them and the server buffers or fixes a body.
Before these limits a 300 MB body to /api/v1/session or /api/v1/cap grew the hub's RSS
from 107 MiB to 587-930 MiB; here the process's RSS is measured around such bodies.
"""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.routing import Mount, Route

from hub.api.limits import server_options
from hub.app import create_app
from hub.runtime import Hub
from tests.support.broker import Mosquitto, free_port
from tests.support.hub_harness import hub_settings

LIMIT = 1_048_576
HUGE = 300 * 1024 * 1024
CHUNK = b"x" * (1 << 20)


@dataclass
class Served:
    hub: Hub
    app: object
    port: int


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    import uvicorn

    broker = Mosquitto(tmp_path).start()
    settings = hub_settings(broker, tmp_path, http_body_timeout_s=1.5,
                            http_header_timeout_s=1.5, http_keep_alive_s=1.0)
    assert settings.http_max_body_bytes == LIMIT
    hub = Hub(settings).start()
    app = create_app(hub, ping_s=0.5, gap_wait_s=0.2)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", **server_options(settings)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield Served(hub, app, port)
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.api.feed.stop()  # type: ignore[attr-defined]
        hub.stop()
        broker.stop()


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def request(port: int, method: str, path: str, headers: dict[str, str],
            body: Iterable[bytes] = (), timeout: float = 10.0) -> tuple[int, int]:
    """(status, body bytes sent) for a request whose body comes from `body`; 0 = no answer.

    Sending stops as soon as the server answers or hangs up, as a real client's would.
    """
    s = socket.create_connection(("127.0.0.1", port), timeout)
    sent = 0
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode())
        for chunk in body:
            if select.select([s], [], [], 0)[0]:
                break
            try:
                s.sendall(chunk)
            except OSError:   # the server answered and closed: read what it said
                break
            sent += len(chunk)
        data = b""
        s.settimeout(timeout)
        try:
            while b"\r\n" not in data:
                part = s.recv(4096)
                if not part:
                    break
                data += part
        except OSError:
            pass
        m = re.match(rb"HTTP/1\.1 (\d{3})", data)
        return (int(m.group(1)) if m else 0), sent
    finally:
        s.close()


def plain(total: int) -> Iterator[bytes]:
    for _ in range(total // len(CHUNK)):
        yield CHUNK


def chunked(total: int) -> Iterator[bytes]:
    for _ in range(total // len(CHUNK)):
        yield b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
    yield b"0\r\n\r\n"


def every_route(app: object) -> list[tuple[str, str]]:
    """(method, path) of every route, path parameters filled in, plus unknown ones.

    The API's routers from its OpenAPI description (FastAPI keeps included routers in a
    private wrapper), the rest (integrations, dashboard, health) from the app's own list.
    """
    out: list[tuple[str, str]] = []
    for path, ops in app.openapi()["paths"].items():  # type: ignore[attr-defined]
        out += [(m.upper(), re.sub(r"\{[^}]+\}", "x", path)) for m in ops]
    for r in app.routes:  # type: ignore[attr-defined]
        path = re.sub(r"\{[^}]+\}", "x", getattr(r, "path", ""))
        if isinstance(r, Route):
            out += [(m, path) for m in sorted(r.methods or {"GET"}) if m != "HEAD"]
        elif isinstance(r, Mount):
            out.append(("POST", path + "/x"))
    return [*dict.fromkeys(out), ("POST", "/no-such-route"), ("PUT", "/")]


def test_every_route_refuses_a_declared_huge_body_before_reading_it(served: Served) -> None:
    routes = every_route(served.app)
    assert ("POST", "/api/v1/session") in routes and len(routes) > 30
    for method, path in routes:
        t0 = time.monotonic()
        status, _ = request(served.port, method, path,
                            {"Content-Length": str(HUGE), "Content-Type": "application/json"},
                            plain(4 * len(CHUNK)))
        assert status == 413, f"{method} {path}: {status}"
        assert time.monotonic() - t0 < 5
    # Positive control: at the limit a body is read and judged by the route itself.
    status, _ = request(served.port, "POST", "/api/v1/session",
                        {"Content-Length": str(LIMIT), "Content-Type": "application/json"},
                        plain(LIMIT))
    assert status == 422
    wrong = b'{"username": "nobody", "password": "wrong"}'
    status, _ = request(served.port, "POST", "/api/v1/session",
                        {"Content-Length": str(len(wrong)), "Content-Type": "application/json"},
                        iter([wrong]))
    assert status == 401


def test_huge_bodies_get_413_and_the_hub_memory_stays_flat(served: Served) -> None:
    request(served.port, "GET", "/healthz", {})   # warm up the server's code paths
    before = rss_mib()
    results = []
    for path in ("/api/v1/session", "/api/v1/cap"):
        results.append((path, "length", *request(
            served.port, "POST", path, {"Content-Length": str(HUGE),
                                        "Content-Type": "application/json"}, plain(HUGE))))
        results.append((path, "chunked", *request(
            served.port, "POST", path, {"Transfer-Encoding": "chunked",
                                        "Content-Type": "application/json"}, chunked(HUGE))))
    after = rss_mib()
    print(f"\nRSS {before:.0f} MiB -> {after:.0f} MiB after four 300 MB bodies; "
          + "; ".join(f"{p} {how}: {st}, {sent / 2**20:.0f} MiB sent" for p, how, st, sent
                      in results))
    assert [r[2] for r in results] == [413, 413, 413, 413]
    # A chunked body is counted as it streams: the server stops well short of 300 MB.
    assert all(sent < 64 * 2**20 for *_x, sent in results)
    assert after - before < 60, f"RSS grew {after - before:.0f} MiB"


def test_a_slow_body_gets_408_and_a_slow_head_is_dropped(served: Served) -> None:
    # A body that stops half-way: 408 once http_body_timeout_s (1.5 s) has passed.
    with socket.create_connection(("127.0.0.1", served.port), 10) as s:
        s.sendall(b"POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"user")
        t0 = time.monotonic()
        s.settimeout(10)
        answer = s.recv(200)
        waited = time.monotonic() - t0
    assert answer.startswith(b"HTTP/1.1 408") and 1.0 < waited < 5.0, (answer, waited)

    # Headers that never finish, and a socket that never says anything: closed.
    for opening in (b"POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1", b""):
        s = socket.create_connection(("127.0.0.1", served.port), 10)
        try:
            s.sendall(opening)
            t0 = time.monotonic()
            s.settimeout(10)
            assert s.recv(100) == b"", "the server answered instead of hanging up"
            waited = time.monotonic() - t0
            assert 1.0 < waited < 5.0, waited
        finally:
            s.close()

    # A head still incomplete past http_max_header_bytes (16 KiB) is refused, not buffered.
    with socket.create_connection(("127.0.0.1", served.port), 10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"y" * 20_000)
        s.settimeout(5)
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    # Positive control: a prompt request on the same server is answered.
    assert request(served.port, "GET", "/healthz", {"X-Big": "y" * 8_000})[0] in (200, 503)


def test_the_limits_are_settings(tmp_path: Path) -> None:
    from hub.errors import SettingsError
    from hub.settings import load_settings

    s = load_settings(None, env={"TIENGMO_HTTP_MAX_BODY_BYTES": "2048",
                                 "TIENGMO_HTTP_KEEP_ALIVE_S": "2.5"}, data_dir=str(tmp_path))
    assert (s.http_max_body_bytes, s.http_keep_alive_s) == (2048, 2.5)
    opts = server_options(s)
    assert opts["timeout_keep_alive"] == 3 and opts["limit_concurrency"] == 500
    assert opts["h11_max_incomplete_event_size"] == 16_384
    for key in ("http_max_body_bytes", "http_body_timeout_s", "http_header_timeout_s",
                "http_max_connections"):
        with pytest.raises(SettingsError, match=key):
            load_settings(None, env={}, data_dir=str(tmp_path), **{key: 0})
