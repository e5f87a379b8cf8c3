"""The player: pattern timelines on the pins, and the priority stack of PROTOCOL.md."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPin

from node.hwconfig import OutputConfig
from node.outputs import FAULT_NO_CURRENT, SafeOutput
from node.player import Player
from protocol import Pattern
from tests.node.pins import groups, high_periods, wait_for

SLACK = 0.12
FAST = Pattern("fire", ((50, 50),))        # 10 blasts a second
SLOW = Pattern("theft", ((400, 400),))      # easy to tell apart from FAST on the pin


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


def make(factory: MockFactory, cfg: OutputConfig) -> tuple[Player, SafeOutput, MockPin]:
    out = SafeOutput(cfg, factory)
    pin: MockPin = factory.pin(cfg.pin)
    pin.clear_states()
    return Player([out]), out, pin


def siren_cfg(**kw: object) -> OutputConfig:
    return OutputConfig(name="siren", type="siren", pin=23, **kw)  # type: ignore[arg-type]


def test_plays_steps_for_the_duration_then_stops(factory: MockFactory) -> None:
    player, out, pin = make(factory, siren_cfg())
    player.play("a", Pattern("p", ((100, 100),)), 1.0, 5)
    assert player.current is not None and player.current.key == "a"
    assert wait_for(lambda: player.current is None, 3)
    time.sleep(0.2)
    blasts = high_periods(pin)
    assert 4 <= len(blasts) <= 6
    assert all(0.06 <= length <= 0.1 + SLACK for _, length in blasts)
    assert not pin.state
    player.close()
    out.close()


def test_play_returns_at_once(factory: MockFactory) -> None:
    player, out, _ = make(factory, siren_cfg())
    t0 = time.monotonic()
    player.play("a", FAST, 60, 5)
    assert time.monotonic() - t0 < 0.5  # non-blocking: the sound plays on the worker
    player.close()
    out.close()


def test_gong_pattern_rolls_each_long_step(factory: MockFactory) -> None:
    cfg = OutputConfig(name="gong", type="gong", pin=23, pulse_ms=50, roll_gap_ms=50)
    player, out, pin = make(factory, cfg)
    player.play("flood", Pattern("flood", ((300, 400),)), 1.2, 5)
    assert wait_for(lambda: player.current is None, 4)
    time.sleep(0.1)
    rolls = groups(high_periods(pin), 0.2)
    # Two on-steps of 300 ms, each a roll of about three 50 ms strikes.
    assert len(rolls) == 2
    assert all(2 <= len(roll) <= 4 for roll in rolls)
    assert all(length <= 0.05 + SLACK for roll in rolls for _, length in roll)
    player.close()
    out.close()


def test_hostile_hour_long_step_is_capped(factory: MockFactory) -> None:
    player, out, pin = make(factory, siren_cfg(max_on_s=0.3))
    player.play("evil", Pattern("evil", ((3_600_000, 0),)), 3600, 9)
    time.sleep(1.0)
    blasts = high_periods(pin)
    assert len(blasts) == 1
    assert blasts[0][1] <= 0.3 + SLACK
    assert not pin.state
    player.close()
    out.close()


def blast_lengths_after(pin: MockPin, t: float) -> list[float]:
    return [length for start, length in high_periods(pin) if start >= t]


def since_clear(pin: MockPin) -> float:
    return float(sum(s.timestamp for s in pin.states) + (time.monotonic() - pin._last_change))


def test_priority_stack_newest_among_equals_and_silence_by_key(factory: MockFactory) -> None:
    player, out, pin = make(factory, siren_cfg())
    player.play("fire-incident", FAST, 60, 5)
    time.sleep(0.05)
    player.play("theft-incident", SLOW, 60, 5)      # same priority, newer: plays
    assert player.current is not None and player.current.key == "theft-incident"
    t = since_clear(pin)
    time.sleep(1.0)
    assert all(length >= 0.3 for length in blast_lengths_after(pin, t + 0.05)[:-1])

    assert player.silence("theft-incident") is True  # silencing the theft ...
    assert player.current is not None and player.current.key == "fire-incident"  # ... not fire
    t = since_clear(pin)
    time.sleep(0.6)
    fast = blast_lengths_after(pin, t + 0.05)
    assert len(fast) >= 3 and all(length <= 0.05 + SLACK for length in fast[:-1])

    assert [s.key for s in player.active()] == ["fire-incident"]
    assert player.silence() is True
    assert player.current is None
    assert wait_for(lambda: not pin.state, 1)
    t = since_clear(pin)
    time.sleep(0.3)
    assert blast_lengths_after(pin, t) == []
    assert player.silence() is False
    player.close()
    out.close()


def test_lower_priority_waits_and_resumes_when_higher_ends(factory: MockFactory) -> None:
    player, out, _ = make(factory, siren_cfg())
    player.play("drill", SLOW, 60, 1, drill=True)
    player.play("fire", FAST, 0.5, 5)
    player.play("warning", SLOW, 60, 3)   # newer, but lower than the fire
    assert [s.key for s in player.active()] == ["fire", "warning", "drill"]
    assert wait_for(lambda: player.current is not None and player.current.key == "warning", 3)
    assert player.silence("warning")
    current = player.current
    assert current is not None and current.key == "drill" and current.drill
    player.close()
    out.close()


def test_play_again_restarts_the_same_key(factory: MockFactory) -> None:
    player, out, _ = make(factory, siren_cfg())
    player.play("k", FAST, 0.3, 5)
    time.sleep(0.2)
    player.play("k", FAST, 0.6, 5)
    assert len(player.active()) == 1
    time.sleep(0.3)   # past the first end: the restart keeps it going
    assert player.current is not None
    assert wait_for(lambda: player.current is None, 3)
    player.close()
    out.close()


def test_close_switches_everything_off(factory: MockFactory) -> None:
    player, out, pin = make(factory, siren_cfg())
    player.play("k", Pattern("long", ((5000, 100),)), 60, 5)
    assert wait_for(lambda: bool(pin.state), 2)
    player.close()
    assert wait_for(lambda: not pin.state, 1)
    player.play("k", FAST, 60, 5)  # ignored after close
    time.sleep(0.2)
    assert not pin.state
    out.close()


def test_feedback_fault_is_passed_on(factory: MockFactory) -> None:
    seen: list[tuple[str, str]] = []
    got = threading.Event()
    player, out, _ = make(factory, siren_cfg(feedback_pin=24, feedback_grace_ms=100))

    def on_fault(name: str, reason: str) -> None:
        seen.append((name, reason))
        got.set()

    player.on_fault = on_fault
    player.play("fire", FAST, 5, 5)
    assert got.wait(3)
    assert seen == [("siren", FAULT_NO_CURRENT)]  # once, not once per blast
    time.sleep(0.3)
    assert len(seen) == 1
    player.close()
    out.close()
