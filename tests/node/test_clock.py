"""The node's estimate of the hub's clock takes fresh samples only (PROTOCOL.md rule 5)."""

from __future__ import annotations

from node.clock import HubClock


class FakeMono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_queued_stale_ack_does_not_move_the_hub_clock_back() -> None:
    mono = FakeMono()
    clock = HubClock(mono=mono, wall=lambda: 0.0)
    clock.beacon("hub-1", 10_000_000)
    mono.t += 5.0
    # An ack the broker queued while the node was away: stamped 4 minutes ago.
    clock.sample(10_000_000 + 5_000 - 240_000)
    assert clock.hub_ms() == 10_005_000
    # A fresh ack (a few ms of transit) still counts.
    clock.sample(10_005_000 + 20)
    assert clock.hub_ms() == 10_005_020


def test_a_beacon_always_counts_so_a_stepped_back_hub_clock_is_followed() -> None:
    mono = FakeMono()
    clock = HubClock(mono=mono, wall=lambda: 0.0)
    clock.beacon("hub-1", 10_000_000)
    mono.t += 1.0
    clock.beacon("hub-1", 9_000_000)   # the hub's NTP stepped its clock back
    assert clock.hub_ms() == 9_000_000


def test_the_first_ack_is_a_sample() -> None:
    clock = HubClock(mono=FakeMono(), wall=lambda: 0.0)
    assert not clock.has_sample
    clock.sample(123_456)
    assert clock.has_sample and clock.hub_ms() == 123_456
