"""Test helpers for the live stream: the app on a real uvicorn, and an SSE reader thread
(what a browser's EventSource does: parse frames, remember the last id)."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from tests.support.broker import free_port


@dataclass
class Sse:
    id: int | None
    event: str
    data: Any
    at: float          # time.time() when it arrived


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """The app on a real uvicorn on a free port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class Reader:
    """Reads one SSE connection on a thread into a queue of events."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: queue.Queue[Sse] = queue.Queue()
        self.status: int | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("no answer from the stream")

    def _run(self, url: str, headers: dict[str, str]) -> None:
        with httpx.Client(timeout=httpx.Timeout(30, read=60)) as client, \
                client.stream("GET", url, headers=headers) as r:
            self.status = r.status_code
            self._ready.set()
            fields: dict[str, str] = {}
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if line == "":
                    if "event" in fields or "data" in fields:
                        self.events.put(Sse(int(fields["id"]) if "id" in fields else None,
                                            fields.get("event", "message"),
                                            json.loads(fields.get("data", "null")),
                                            time.time()))
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value

    def next(self, timeout: float = 10.0, skip: tuple[str, ...] = ("ping",)) -> Sse:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no event from the stream in time")
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if ev.event not in skip:
                return ev

    def until(self, pred: Any, timeout: float = 10.0) -> list[Sse]:
        """Every event up to and including the first matching `pred`."""
        seen: list[Sse] = []
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next(max(0.01, deadline - time.monotonic()))
            seen.append(ev)
            if pred(ev):
                return seen

    def close(self) -> None:
        self._stop.set()
