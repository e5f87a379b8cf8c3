"""The hub's clock as the node estimates it, and whether a hub is available.

A node may have no real-time clock and no network time yet, so it judges a
command's expiry on the hub's clock (PROTOCOL.md rule 5). Samples come from
fresh hub messages only (`hub/time` beacons and `ack`s): never from a
command's own `ts_ms` (a replayed command would vouch for itself) and never
from a retained message (it may be hours old).

The estimate is anchored to the monotonic clock, not the node's wall clock,
so the node's wall clock stepping (NTP arriving late) does not move it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# How far behind the current estimate an ack's timestamp may be before it is
# taken for a queued (stale) ack rather than a fresh clock sample.
ACK_BEHIND_TOLERANCE_MS = 1000.0


class HubClock:
    """Hub time estimate plus hub availability (a hub online and beacons fresh)."""

    def __init__(self, *, stale_s: float = 30.0, wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self.stale_s = stale_s
        self._wall = wall
        self._mono = mono
        self._lock = threading.Lock()
        self._anchor: tuple[int, float] | None = None   # (hub ts_ms, monotonic at receipt)
        self._last_beacon: float | None = None
        self._hubs_online: dict[str, bool] = {}

    # -- samples -------------------------------------------------------------

    def sample(self, hub_ts_ms: int) -> None:
        """A hub timestamp from an `ack` received just now.

        An ack may not be fresh: QoS 1 acks queued by the broker while the node
        was away arrive right after it reconnects, minutes old and without the
        retain flag. A delayed message can only make the hub's time look
        earlier than it is, so an ack that would move the estimate back by more
        than ACK_BEHIND_TOLERANCE_MS is a stale one and is ignored. (Beacons
        are QoS 0 and never queued: they always count, so a hub whose clock
        was stepped back is followed.)
        """
        with self._lock:
            now = self._mono()
            if self._anchor is not None:
                estimate = self._anchor[0] + (now - self._anchor[1]) * 1000.0
                if hub_ts_ms < estimate - ACK_BEHIND_TOLERANCE_MS:
                    return
            self._anchor = (hub_ts_ms, now)

    def beacon(self, hub_id: str, hub_ts_ms: int) -> None:
        """A `hub/time` beacon: a clock sample and proof that a hub is alive."""
        with self._lock:
            now = self._mono()
            self._anchor = (hub_ts_ms, now)
            self._last_beacon = now

    def hub_state(self, hub_id: str, online: bool) -> None:
        """A hub's birth or death (retained or not: it tells presence, not time)."""
        with self._lock:
            self._hubs_online[hub_id] = online

    # -- reading -------------------------------------------------------------

    @property
    def has_sample(self) -> bool:
        return self._anchor is not None

    def own_ms(self) -> int:
        """The node's own wall clock, in ms (possibly wrong)."""
        return int(self._wall() * 1000)

    def hub_ms(self) -> int | None:
        """The hub's clock now, or None before the first sample."""
        with self._lock:
            if self._anchor is None:
                return None
            ts, at = self._anchor
            return ts + int((self._mono() - at) * 1000)

    def judge_ms(self) -> int:
        """The best time to judge expiry by: the hub's clock, else the node's own."""
        hub = self.hub_ms()
        return self.own_ms() if hub is None else hub

    def hubs_online(self) -> list[str]:
        with self._lock:
            return sorted(h for h, up in self._hubs_online.items() if up)

    def beacon_age_s(self) -> float | None:
        with self._lock:
            return None if self._last_beacon is None else self._mono() - self._last_beacon

    def hub_available(self) -> bool:
        """At least one hub state online and a time beacon within `stale_s`."""
        age = self.beacon_age_s()
        return bool(self.hubs_online()) and age is not None and age <= self.stale_s

    def forget_beacons(self) -> None:
        """Called when the link drops: beacons seen before do not prove a hub now."""
        with self._lock:
            self._last_beacon = None
            self._hubs_online.clear()
