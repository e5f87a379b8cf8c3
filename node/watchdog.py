"""The agent's main loop, watched: what the enable line and systemd's watchdog go by.

docs/wiring.md promises that the driver's enable drops when the agent crashed, was
killed *or hung*. A killed or stopped process stops the enable line's toggling thread
with it; a main loop stuck in a handler, a lock or a disk write does not, so the
toggling (and the systemd watchdog pings) must ask the loop itself: `alive()` is true
only while no turn of the loop has outlasted `limit_s`.
"""

from __future__ import annotations

from collections.abc import Callable

from protocol.sdnotify import SdNotify, ServiceTie
from protocol.timing import Clock


class LoopWatch:
    """Turns of one loop, timed on `clock`; `running()` says whether the loop exists at all.

    The loop calls `begin()` when it starts work and `end()` when it goes back to
    waiting for its next event. Waiting is not a hang: the wait is bounded (idle_tick_s)
    and any event ends it, so an idle node with a long idle tick stays alive.
    """

    def __init__(self, clock: Clock, limit_s: float, running: Callable[[], bool]) -> None:
        self._clock = clock
        self.limit_s = limit_s
        self._running = running
        self._busy_since: float | None = None
        self.progress_at = clock.monotonic()   # the loop's heartbeat, for logs and tests
        self._systemd = ServiceTie()   # READY, watchdog pings while alive(), STOPPING

    def begin(self) -> None:
        self.progress_at = self._clock.monotonic()
        self._busy_since = self.progress_at

    def end(self) -> None:
        self.progress_at = self._clock.monotonic()
        self._busy_since = None

    def alive(self) -> bool:
        if not self._running():
            return False
        since = self._busy_since
        return since is None or self._clock.monotonic() - since <= self.limit_s

    def tell_systemd(self, notifier: SdNotify | None, interval_s: float | None) -> None:
        """READY=1 now, then WATCHDOG=1 every `interval_s` only while `alive()`."""
        self._systemd.ready(notifier, interval_s, self.alive)

    def stopping(self) -> None:
        """No more pings; tell systemd the stop is ours (it then waits, not kills)."""
        self._systemd.stopping()
