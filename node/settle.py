"""The settle handshake every clocked worker of the node offers (outputs, player, enable
line, LED): a caller asks, and waits until the worker has finished a whole pass that
began after the asking, so it has acted on the clock's reading and every earlier change.

Tests advance a fake clock and settle instead of sleeping; the agent settles the player
to know the gong is on before it writes the outbox (PROTOCOL.md rule 1).
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Settle:
    """Counts asked and answered passes under the worker's own condition variable."""

    def __init__(self, cond: threading.Condition) -> None:
        self._cond = cond
        self._asked = 0
        self._done = 0

    def ask(self, timeout: float, finished: Callable[[], bool]) -> bool:
        """Wake the worker and wait for its answer (or `finished()`: closed, gone).

        False if the worker did not get there within `timeout` real seconds.
        """
        with self._cond:
            self._asked += 1
            asked = self._asked
            self._cond.notify_all()
            return self._cond.wait_for(lambda: finished() or self._done >= asked, timeout)

    def begin(self) -> int:
        """The worker, holding the condition, at the start of a pass: what it will answer."""
        return self._asked

    def answer(self, asked: int) -> None:
        """The worker, holding the condition, after the pass that began with `asked`."""
        self._done = asked
