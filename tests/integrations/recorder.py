"""A local HTTP server that records every request (a webhook subscriber, a chat API),
answering with the statuses a test scripts; 127.0.0.1 only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Recorder:
    def __init__(self, statuses: list[int] | None = None, delay_s: float = 0.0,
                 fail_first: int = 0) -> None:
        self.requests: list[Request] = []
        self.statuses = list(statuses or [])    # answered in turn, then 200
        # 500 to the first `fail_first` attempts of each X-Tiengmo-Delivery
        self.fail_first = fail_first
        self._tries: dict[str, int] = {}
        self.delay_s = delay_s
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with rec._cond:
                    rec.requests.append(Request(self.path, {k.lower(): v for k, v in
                                                            self.headers.items()}, body,
                                                time.monotonic()))
                    status = rec.statuses.pop(0) if rec.statuses else 200
                    key = self.headers.get("X-Tiengmo-Delivery", "")
                    rec._tries[key] = rec._tries.get(key, 0) + 1
                    if rec._tries[key] <= rec.fail_first:
                        status = 500
                    rec._cond.notify_all()
                if rec.delay_s:
                    time.sleep(rec.delay_s)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:   # the client gave up waiting (a timeout under test)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait(self, pred: Callable[[list[Request]], bool], timeout: float = 15.0,
             what: str = "requests") -> list[Request]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}: got "
                                         f"{[r.path for r in self.requests]}")
                self._cond.wait(left)
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
