"""Bounds at the HTTP edge: body size, slow senders, header size, connections.

Every route of the hub (the API, the integrations, the dashboard's files, and
anything mounted later such as the demo's simulator panel) sits behind
`BodyLimit`, a plain ASGI middleware, so no route can read more than it allows:

- a `Content-Length` over `http_max_body_bytes` gets 413 before one byte of the
  body is read (nothing is buffered: a 300 MB upload once grew the hub's memory
  by 500-800 MiB);
- a chunked body (no length) is counted as it streams and cut off with 413 at
  the same limit;
- a body that has not finished within `http_body_timeout_s` of the request's
  start gets 408 (a slow sender holds a connection, not the hub).

uvicorn bounds the rest (`server_options`): `timeout_keep_alive`, the h11
header size, and `limit_concurrency`. It has no timer for a connection whose
request line and headers never finish, so `header_timeout_protocol` adds one.
The responses are JSON in the API's error shape, in Vietnamese and English.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..settings import HubSettings


def _error(status: int, code: str, en: str, vi: str) -> tuple[int, bytes]:
    body = {"error": {"code": code, "message": en, "message_vi": vi}}
    return status, json.dumps(body, ensure_ascii=False).encode()


def too_large(limit: int) -> tuple[int, bytes]:
    return _error(413, "body_too_large", f"Request body over {limit} bytes.",
                  f"Nội dung yêu cầu vượt quá {limit} byte.")


def too_slow(seconds: float) -> tuple[int, bytes]:
    return _error(408, "body_timeout", f"Request body not received within {seconds:g} s.",
                  f"Không nhận đủ nội dung yêu cầu trong {seconds:g} giây.")


def bad_length() -> tuple[int, bytes]:
    return _error(400, "bad_content_length", "Content-Length is not a number.",
                  "Content-Length không hợp lệ.")


async def _respond(send: Send, status_body: tuple[int, bytes]) -> None:
    status, body = status_body
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: refuse or cut off request bodies over `max_bytes` or `timeout_s`."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _respond(send, bad_length())
                return
            if declared > self.max_bytes:
                await _respond(send, too_large(self.max_bytes))
                return
        deadline = time.monotonic() + self.timeout_s
        seen = 0
        body_done = started = False
        refused: tuple[int, bytes] | None = None

        # Past a limit the route is told the client went away (the ASGI way to end a
        # body), whatever it answers to that is dropped, and the refusal goes out instead.
        # Not an exception: FastAPI turns errors while reading a body into its own 400.
        async def bounded_receive() -> Message:
            nonlocal seen, body_done, refused
            if body_done:  # after the body: disconnect waits (a live stream) are not bounded
                return await receive()
            if refused is not None:
                return {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0))
            except TimeoutError:
                refused = too_slow(self.timeout_s)
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = too_large(self.max_bytes)
                    return {"type": "http.disconnect"}
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if refused is not None and not started:
                return   # the route's answer to a body it never got
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, watched_send)
        except Exception:
            if refused is None or started:
                raise
        if refused is not None and not started:
            await _respond(send, refused)


def install(app: Any, settings: HubSettings) -> None:
    """Put BodyLimit in front of every route of `app` (a FastAPI/Starlette app)."""
    app.add_middleware(BodyLimit, max_bytes=settings.http_max_body_bytes,
                       timeout_s=settings.http_body_timeout_s)


def header_timeout_protocol(timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request head is not in by `timeout_s`.

    uvicorn arms no timer until a first response is complete, and disarms its keep-alive
    timer at the first byte of the next request: a client sending nothing, or one byte of
    headers now and then, would hold its socket for ever.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def _waiting_for_head(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if self._head_timer is None and self._waiting_for_head():
                self._head_timer = self.loop.call_later(timeout_s, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self._waiting_for_head() and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._waiting_for_head():
                self._arm()      # a partial head: the clock keeps running
            else:
                self._disarm()   # a request is being handled: BodyLimit times its body

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm()       # uvicorn's keep-alive timer takes over until the next byte

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutH11


def server_options(settings: HubSettings) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for the hub's HTTP limits."""
    return {"http": header_timeout_protocol(settings.http_header_timeout_s),
            "timeout_keep_alive": max(1, math.ceil(settings.http_keep_alive_s)),
            "h11_max_incomplete_event_size": settings.http_max_header_bytes,
            "limit_concurrency": settings.http_max_connections}
