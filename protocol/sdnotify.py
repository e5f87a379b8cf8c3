"""systemd's notify protocol (sd_notify(3)) in a few lines of the standard library.

A service with `Type=notify` says READY=1 when it has started; with `WatchdogSec=` it
must say WATCHDOG=1 more often than that, or systemd kills and restarts it. The node
agent and the hub both speak it, and neither should pull in a dependency for one
datagram, so it lives here, beside the other stdlib-only pieces every part shares.

The one rule that makes a watchdog mean something: ping only while the service's own
main loop makes progress (`WatchdogPinger(healthy=...)`), never from a thread that
would carry on pinging while the loop it vouches for is stuck.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger("tiengmo.sdnotify")


class SdNotify:
    """Sends notify messages to one socket; does nothing when there is none (not under systemd)."""

    def __init__(self, address: str | None) -> None:
        # A leading "@" is Linux's abstract namespace (systemd uses it for some units).
        self.address = address or None
        self.sent = 0
        self.failed = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SdNotify:
        return cls((os.environ if env is None else env).get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, state: str) -> bool:
        """Send `state` ("READY=1", "WATCHDOG=1", "STATUS=..."); True if it was sent."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.connect(target)
                s.sendall(state.encode("utf-8"))
        except OSError as exc:   # systemd restarting, a test's socket gone: never fatal
            self.failed += 1
            if self.failed == 1:
                log.warning("sd_notify to %s failed: %s", self.address, exc)
            return False
        self.sent += 1
        return True


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """Half the unit's WatchdogSec (systemd's advice), or None when no watchdog is asked.

    WATCHDOG_PID, when set, must be this process: a child does not ping for its parent.
    """
    e = os.environ if env is None else env
    usec, pid = e.get("WATCHDOG_USEC"), e.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2e6 if value > 0 else None


class WatchdogPinger:
    """A thread that sends WATCHDOG=1 every `interval_s` while `healthy()` says so.

    When `healthy()` turns false the pings stop, and systemd's WatchdogSec kills the
    service (then ExecStopPost and Restart= do the rest). Its waits are real time: it
    is the one part that must notice when everything else, injected clocks included,
    has stopped.
    """

    def __init__(self, notifier: SdNotify, interval_s: float,
                 healthy: Callable[[], bool]) -> None:
        if interval_s <= 0:
            raise ValueError("the watchdog interval must be positive")
        self._notifier = notifier
        self._interval = interval_s
        self._healthy = healthy
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
        self.withheld = 0
        self._withholding = False

    def start(self) -> WatchdogPinger:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                ok = self._healthy()
            except Exception:   # a broken health check is not health
                log.exception("watchdog health check failed")
                ok = False
            if ok:
                if self._withholding:
                    log.warning("main loop makes progress again: watchdog pings resume")
                self._withholding = False
                self._notifier.notify("WATCHDOG=1")
            else:
                self.withheld += 1
                if not self._withholding:
                    log.error("main loop made no progress: withholding the watchdog ping")
                self._withholding = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(2.0)


class ServiceTie:
    """What a service says to systemd over its life, for the node agent and the hub
    alike: READY=1 once started, WATCHDOG=1 every `interval_s` only while `alive()`
    (a WatchdogPinger), STOPPING=1 when the stop is its own (systemd then waits for
    it, rather than killing it)."""

    def __init__(self) -> None:
        self._pinger: WatchdogPinger | None = None
        self._notifier: SdNotify | None = None

    def ready(self, notifier: SdNotify | None, interval_s: float | None,
              alive: Callable[[], bool]) -> None:
        if notifier is None or not notifier.enabled:
            return
        self._notifier = notifier
        notifier.notify("READY=1")
        if interval_s is not None:
            self._pinger = WatchdogPinger(notifier, interval_s, alive).start()

    def stopping(self) -> None:
        if self._pinger is not None:
            self._pinger.stop()
            self._pinger = None
        if self._notifier is not None:
            self._notifier.notify("STOPPING=1")
            self._notifier = None
