"""Is the hub there? The sentinel's judgement, on an injected clock, free of MQTT and modems.

The hub is *there* while at least one hub's retained state says online and a `hub/time`
beacon arrived within `beacon_stale_s` (the same test a node makes, PROTOCOL.md rule 1).
It is *gone* from the moment either fails: a SIGKILL brings the Will at once, a hung or
cut-off hub stops its beacons (and its Will follows when its keepalive runs out), and a
sentinel that lost the broker hears neither, which it must also treat as gone, since
then no alarm reaches the hub either.

After `grace_s` of being gone, one DOWN; when it is there again after a DOWN, one BACK.
A hub that comes back within the grace (a restart, a blip) is never reported.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Alert(enum.Enum):
    DOWN = "down"
    BACK = "back"


@dataclass(frozen=True, slots=True)
class Change:
    alert: Alert
    gone_s: float          # how long the hub had been gone (at DOWN) or was gone (at BACK)
    hubs: tuple[str, ...]  # the hub ids last seen online (at DOWN) or online now (at BACK)


class HubWatch:
    """Feed it what arrives (`hub_state`, `beacon`, `broker`), ask `tick(now)` for changes.

    Every method takes `now` (monotonic seconds) so a test drives it without waiting.
    At start the hub counts as gone since `now`: a sentinel that starts while the hub
    is down must say so after the grace, as it would had it been watching.
    """

    def __init__(self, grace_s: float, beacon_stale_s: float, now: float) -> None:
        self.grace_s = grace_s
        self.beacon_stale_s = beacon_stale_s
        self._online: dict[str, bool] = {}
        self._last_seen_online: tuple[str, ...] = ()
        self._beacon_at: float | None = None
        self._broker_up = False
        self._gone_since: float | None = now
        self._reported_down = False

    def hub_state(self, hub_id: str, online: bool, now: float) -> None:
        self._online[hub_id] = online
        if online:
            self._last_seen_online = self.online_hubs()

    def beacon(self, hub_id: str, now: float) -> None:
        self._beacon_at = now

    def broker(self, up: bool, now: float) -> None:
        self._broker_up = up
        if not up:
            # What we knew is stale: the retained states come again on reconnect.
            self._online.clear()
            self._beacon_at = None

    def there(self, now: float) -> bool:
        return (self._broker_up and any(self._online.values())
                and self._beacon_at is not None and now - self._beacon_at <= self.beacon_stale_s)

    def online_hubs(self) -> tuple[str, ...]:
        return tuple(sorted(h for h, up in self._online.items() if up))

    @property
    def reported_down(self) -> bool:
        return self._reported_down

    def next_due_s(self, now: float) -> float | None:
        """Seconds until `tick` may next have something to say without new input."""
        if self._gone_since is None:
            assert self._beacon_at is not None
            return max(0.0, self._beacon_at + self.beacon_stale_s - now) + 0.01
        if not self._reported_down:
            return max(0.0, self._gone_since + self.grace_s - now) + 0.01
        return None

    def tick(self, now: float) -> Change | None:
        there = self.there(now)
        if there:
            gone_since, self._gone_since = self._gone_since, None
            if self._reported_down and gone_since is not None:
                self._reported_down = False
                return Change(Alert.BACK, now - gone_since, self.online_hubs())
            return None
        if self._gone_since is None:
            # Gone since the last sign of life we can date: the stale beacon's time, or now.
            b = self._beacon_at
            self._gone_since = b + self.beacon_stale_s if b is not None and now - b > \
                self.beacon_stale_s else now
        if not self._reported_down and now - self._gone_since >= self.grace_s:
            self._reported_down = True
            return Change(Alert.DOWN, now - self._gone_since, self._last_seen_online)
        return None
