"""The live stream (Server-Sent Events) of incidents, alarms, nodes, troubles, commands.

A client that reconnects with `Last-Event-ID` (EventSource sends it by itself) or
`?last_event_id=N` gets every event after N from the durable event log, then the live
ones: nothing missed, nothing twice (see hub.events). If N is older than the log
keeps (or unknown to it), it gets `event: reset` and must reload everything.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..deps import Ctx, Viewer
from ..errors import ApiError
from ..schemas import INT64_MAX
from ..serialize import Presenter

router = APIRouter(tags=["stream"])
REPLAY_PAGE = 500
RETRY_MS = 2000


def _frame(event: str, data: Mapping[str, object], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


def _last_id(request: Request, query: int | None) -> int | None:
    header = request.headers.get("last-event-id")
    if header is None or header.strip() == "":
        return query
    try:
        value = int(header)
    except ValueError:
        raise ApiError(422, "invalid_input", "Last-Event-ID must be an event id (a number).",
                       "Last-Event-ID phải là một số.") from None
    if value < 0:
        raise ApiError(422, "invalid_input", "Last-Event-ID must not be negative.",
                       "Last-Event-ID không được âm.")
    return value


@router.get("/stream", operation_id="stream_events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def stream_events(request: Request, who: Viewer, ctx: Ctx,
                        last_event_id: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
                        ) -> StreamingResponse:
    """Server-Sent Events: hello, then (replayed and) live events, a ping every 15 s; for
    an account limited to an area, only what belongs to it (event ids then have gaps)."""
    after = _last_id(request, last_event_id)
    return StreamingResponse(_events(ctx, after, who.area), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _events(ctx: Ctx, after: int | None, scope: str | None) -> AsyncIterator[str]:
    feed, history = ctx.feed, ctx.history
    presenter = Presenter(history, ctx.settings)
    sub, cursor = feed.subscribe(asyncio.get_running_loop(), scope)
    try:
        yield f"retry: {RETRY_MS}\n\n"
        resume = cursor if after is None else after
        reset = False
        if after is not None and after != cursor:
            first = await run_in_threadpool(history.first_event_id)
            # Ahead of the log (another database?) or behind what it still keeps.
            reset = after > cursor or (first > 0 and after < first - 1) or first == 0
        hello = {"server_time_ms": time.time_ns() // 1_000_000, "last_id": cursor,
                 "resumed_from": None if reset or after is None else after}
        if reset:
            yield _frame("hello", hello, cursor)
            yield _frame("reset", {"reason": "the events after your last id are no longer "
                                             "kept: reload everything", "last_id": cursor},
                         cursor)
            resume = cursor
        else:
            yield _frame("hello", hello, resume)
        while resume < cursor:
            refs = await run_in_threadpool(history.events_after, resume, REPLAY_PAGE)
            refs = [r for r in refs if r.id <= cursor]
            if not refs:
                break
            for ev in await run_in_threadpool(presenter.render, refs):
                if ev.visible_to(scope):
                    yield ev.sse()
            resume = refs[-1].id
        while True:
            try:
                batch = await asyncio.wait_for(sub.queue.get(), timeout=ctx.ping_s)
            except TimeoutError:
                yield _frame("ping", {"server_time_ms": time.time_ns() // 1_000_000})
                continue
            if batch is None:
                return
            yield "".join(ev.sse() for ev in batch)
    finally:
        feed.unsubscribe(sub)
