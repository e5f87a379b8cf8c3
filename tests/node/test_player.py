"""The player: pattern timelines on the pins, and the priority stack of PROTOCOL.md.

The player and its output share a fake clock; each test moves it and lets both workers
catch up (`settle`), so a pattern's steps are measured to a trace's 10 ms resolution.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory
from pytest_mock import MockerFixture

from node.hwconfig import OutputConfig
from node.outputs import FAULT_NO_CURRENT, SafeOutput
from node.player import Player
from protocol import Pattern
from tests.node.pins import Trace, groups
from tests.support.fake_clock import FakeClock

TICK = 0.01
TOL = 1.5 * TICK   # one reading late at most (plus the float rounding of summed steps)
FAST = Pattern("fire", ((50, 50),))        # 10 blasts a second
SLOW = Pattern("theft", ((400, 400),))      # easy to tell apart from FAST on the pin


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


class Rig:
    """A player driving one output on a mock pin, both on one fake clock."""

    def __init__(self, factory: MockFactory, cfg: OutputConfig) -> None:
        self.clock = FakeClock()
        self.out = SafeOutput(cfg, factory, clock=self.clock)
        self.player = Player([self.out], clock=self.clock)
        self.trace = Trace(self.clock, factory.pin(cfg.pin), self.settle, TICK)

    def settle(self) -> bool:
        # The player first (it tells the output), then the output (it drives the pin).
        return self.player.settle() and self.out.settle()

    def close(self) -> None:
        self.player.close()
        self.out.close()


@pytest.fixture
def rig(factory: MockFactory) -> Iterator[Rig]:
    r = Rig(factory, siren_cfg())
    yield r
    r.close()


def siren_cfg(**kw: object) -> OutputConfig:
    return OutputConfig(name="siren", type="siren", pin=23, **kw)  # type: ignore[arg-type]


def starts(periods: list[tuple[float, float]]) -> list[float]:
    return [start for start, _ in periods]


def lengths(periods: list[tuple[float, float]]) -> list[float]:
    return [length for _, length in periods]


def test_plays_steps_for_the_duration_then_stops(rig: Rig) -> None:
    tr = rig.trace
    tr.after(lambda: rig.player.play("a", Pattern("p", ((100, 100),)), 1.0, 5))
    assert rig.player.current is not None and rig.player.current.key == "a"
    tr.hold(1.0)
    assert rig.player.current is None
    assert tr.hold(0.5) is False
    blasts = tr.high_periods()
    assert starts(blasts) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8], abs=TOL)
    assert lengths(blasts) == pytest.approx([0.1] * 5, abs=TOL)
    assert tr.rises() == 5


def test_play_returns_at_once(rig: Rig) -> None:
    t0 = time.monotonic()
    rig.player.play("a", FAST, 60, 5)
    assert time.monotonic() - t0 < 0.5  # non-blocking: the sound plays on the worker


def test_gong_pattern_rolls_each_long_step(factory: MockFactory) -> None:
    cfg = OutputConfig(name="gong", type="gong", pin=23, pulse_ms=50, roll_gap_ms=50)
    rig = Rig(factory, cfg)
    tr = rig.trace
    tr.after(lambda: rig.player.play("flood", Pattern("flood", ((300, 400),)), 1.2, 5))
    tr.hold(1.5)
    assert rig.player.current is None
    rolls = groups(tr.high_periods(), 0.2)
    # Two on-steps of 300 ms, at 0 and 0.7 s, each a roll of three 50 ms strikes.
    assert [starts(roll) for roll in rolls] == [
        pytest.approx([0.0, 0.1, 0.2], abs=TOL), pytest.approx([0.7, 0.8, 0.9], abs=TOL)]
    assert all(lengths(roll) == pytest.approx([0.05] * 3, abs=TOL) for roll in rolls)
    rig.close()


def test_hostile_hour_long_step_is_capped(factory: MockFactory) -> None:
    rig = Rig(factory, siren_cfg(max_on_s=30))
    tr = rig.trace
    assert tr.after(lambda: rig.player.play("evil", Pattern("evil", ((3_600_000, 0),)),
                                            3600, 9)) is True
    assert tr.step(30 - TICK) is True
    assert tr.step(TICK) is False
    for _ in range(36):
        tr.step(100)    # the rest of the hour: the player still asks for "on"
    assert rig.player.current is None
    [(start, length)] = tr.high_periods()
    assert start == 0.0 and length == pytest.approx(30, abs=TOL)
    assert tr.rises() == 1
    rig.close()


def test_priority_stack_newest_among_equals_and_silence_by_key(rig: Rig) -> None:
    tr, player = rig.trace, rig.player
    tr.after(lambda: player.play("fire-incident", FAST, 60, 5))
    tr.hold(0.1)
    tr.after(lambda: player.play("theft-incident", SLOW, 60, 5))   # same priority, newer
    assert player.current is not None and player.current.key == "theft-incident"
    tr.hold(1.0)
    theft = [p for p in tr.high_periods() if p[0] >= 0.1]
    # SLOW from the top at 0.1 s: 0.4 on, 0.4 off.
    assert starts(theft) == pytest.approx([0.1, 0.9], abs=TOL)
    assert lengths(theft)[0] == pytest.approx(0.4, abs=TOL)

    assert tr.after(lambda: player.silence("theft-incident")) is True   # silencing the theft
    assert player.current is not None and player.current.key == "fire-incident"  # ... not fire
    tr.hold(0.6)
    # FAST from the top at 1.1 s. Its first blast joins the theft's blast that was on
    # (a siren does not stop for an instant between two on-steps), the rest are FAST's.
    joined = [p for p in tr.high_periods() if p[0] == pytest.approx(0.9, abs=TOL)]
    assert lengths(joined) == pytest.approx([0.25], abs=TOL)
    fire = [p for p in tr.high_periods() if p[0] >= 1.15]
    assert starts(fire) == pytest.approx([1.2, 1.3, 1.4, 1.5, 1.6, 1.7], abs=TOL)
    assert lengths(fire)[:-1] == pytest.approx([0.05] * 5, abs=TOL)

    assert [s.key for s in player.active()] == ["fire-incident"]
    assert player.silence() is True
    assert player.current is None
    assert tr.read() is False
    rises = tr.rises()
    assert tr.hold(0.3) is False
    assert tr.rises() == rises
    assert player.silence() is False


def test_lower_priority_waits_and_resumes_when_higher_ends(rig: Rig) -> None:
    tr, player = rig.trace, rig.player

    def play_three() -> None:
        player.play("drill", SLOW, 60, 1, drill=True)
        player.play("fire", FAST, 0.5, 5)
        player.play("warning", SLOW, 60, 3)   # newer, but lower than the fire

    tr.after(play_three)
    assert [s.key for s in player.active()] == ["fire", "warning", "drill"]
    tr.hold(0.49)
    assert player.current is not None and player.current.key == "fire"
    # What sounds is the fire's FAST pattern, not the newer warning's SLOW one.
    assert starts(tr.high_periods()) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4], abs=TOL)
    tr.step(TICK)
    assert player.current is not None and player.current.key == "warning"
    assert player.silence("warning")
    current = player.current
    assert current is not None and current.key == "drill" and current.drill


def test_play_again_restarts_the_same_key(rig: Rig) -> None:
    tr, player = rig.trace, rig.player
    tr.after(lambda: player.play("k", FAST, 0.3, 5))
    tr.hold(0.2)
    tr.after(lambda: player.play("k", FAST, 0.6, 5))
    assert len(player.active()) == 1
    tr.hold(0.3)   # past the first end: the restart keeps it going
    assert player.current is not None
    tr.hold(0.31)   # (0.2 + 0.6 rounds a hair past 0.8)
    assert player.current is None


def test_close_switches_everything_off(rig: Rig) -> None:
    tr, player = rig.trace, rig.player
    assert tr.after(lambda: player.play("k", Pattern("long", ((5000, 100),)), 60, 5)) is True
    player.close()
    assert tr.read() is False
    tr.after(lambda: player.play("k", FAST, 60, 5))  # ignored after close
    assert tr.hold(0.2) is False
    assert tr.rises() == 1


def test_feedback_fault_is_passed_on(factory: MockFactory, mocker: MockerFixture) -> None:
    rig = Rig(factory, siren_cfg(feedback_pin=24, feedback_grace_ms=100))
    on_fault = mocker.Mock()
    rig.player.on_fault = on_fault
    rig.trace.after(lambda: rig.player.play("fire", FAST, 5, 5))
    rig.trace.hold(0.1)
    on_fault.assert_called_once_with("siren", FAULT_NO_CURRENT)
    rig.trace.hold(0.5)
    on_fault.assert_called_once_with("siren", FAULT_NO_CURRENT)  # once, not once per blast
    rig.close()
