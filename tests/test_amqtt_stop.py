"""STOP_HANGS (tiengmo/amqtt_fixes.py): a broker handler whose reader ignores a cancel.

After the demo process (broker, hub and nodes) was frozen 23 s and resumed, every
client's keepalive timeout, its disconnect and its next packet came at once, and
Python 3.11's `asyncio.wait_for` swallowed the cancel amqtt's `stop()` sends its
reader (the demo log showed it for all 25 clients). amqtt then waits for that
reader forever: the Will went out, the socket stayed open, PINGREQ was still
answered, nothing was routed, and all nodes showed `no_hub` until a restart.
Here the reader swallows the first cancel as wait_for did; with the fix `stop()`
ends and closes the socket, without it `stop()` never returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib

import pytest

from tiengmo.amqtt_fixes import ALL_FIXES, STOP_HANGS, _Handler


class _Writer:
    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def close(self) -> None:
        self.closed.set()


async def _stop_with_a_deaf_reader(fixes: frozenset[str]) -> tuple[bool, bool]:
    """(stop returned within 2 s, the socket was closed)."""
    handler = _Handler(None, drop_silent=True, fixes=fixes)
    writer = _Writer()
    handler.writer = writer

    async def reader() -> None:
        # The first cancel is swallowed, as wait_for does when its read completed meanwhile.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        await writer.closed.wait()   # reads on until the socket closes

    handler._reader_task = asyncio.ensure_future(reader())
    await asyncio.sleep(0)
    try:
        await asyncio.wait_for(handler.stop(), 2.0)
        returned = True
    except TimeoutError:
        returned = False
    handler._reader_task.cancel()
    await asyncio.gather(handler._reader_task, return_exceptions=True)
    return returned, writer.closed.is_set()


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "amqtt"])
def test_stop_ends_a_reader_that_ignored_the_first_cancel(fixed: bool) -> None:
    fixes = ALL_FIXES if fixed else ALL_FIXES - {STOP_HANGS}
    # On a thread of its own: a browser test of the same xdist worker may hold a running
    # event loop on this one (Playwright's sync API), where asyncio.run() is refused.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        returned, closed = pool.submit(asyncio.run, _stop_with_a_deaf_reader(fixes)).result()
    assert (returned, closed) == ((True, True) if fixed else (False, False))
