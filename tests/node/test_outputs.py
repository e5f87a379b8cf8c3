"""SafeOutput enforces PROTOCOL.md rule 6 whatever its caller asks, read off the mock pin.

Time is a fake clock: each test moves it and lets the output's worker catch up
(`SafeOutput.settle`), so the caps are measured to the 10 ms of a trace's resolution
instead of a loaded machine's scheduler slack, and an hour-long step takes no hour.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockConnectedPin, MockFactory, MockPin
from pytest_mock import MockerFixture

from node.enable import EnableLine
from node.hwconfig import HardwareConfigError, OutputConfig
from node.outputs import FAULT_NO_CURRENT, FAULT_TOTAL_CAP, SafeOutput
from tests.node.pins import Trace, groups
from tests.support.fake_clock import FakeClock

TICK = 0.01   # a trace's resolution: a measured period is exact to one tick
TOL = 1.5 * TICK   # one reading late at most (plus the float rounding of summed steps)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def siren(**kw: object) -> OutputConfig:
    return OutputConfig(name="siren", type="siren", pin=23, **kw)  # type: ignore[arg-type]


def gong(**kw: object) -> OutputConfig:
    return OutputConfig(name="gong", type="gong", pin=23, **kw)  # type: ignore[arg-type]


def pin(factory: MockFactory, n: int = 23) -> MockPin:
    p: MockPin = factory.pin(n)
    return p


def trace(out: SafeOutput, factory: MockFactory, clock: FakeClock) -> Trace:
    return Trace(clock, pin(factory), out.settle, TICK)


def test_output_starts_off_and_follows_requests(factory: MockFactory, clock: FakeClock) -> None:
    out = SafeOutput(siren(), factory, clock=clock)
    tr = trace(out, factory, clock)
    assert tr.read() is False
    assert out.on() is True
    assert tr.read() is True
    tr.hold(0.2)
    out.off()
    assert tr.read() is False
    [(start, length)] = tr.high_periods()
    assert start == 0.0 and length == pytest.approx(0.2, abs=TOL)
    assert tr.rises() == 1
    out.close()


def test_active_low_output_starts_at_the_high_level(factory: MockFactory,
                                                   clock: FakeClock) -> None:
    # An active-low driver is off when the pin is high: "starts off" means the off level.
    out = SafeOutput(siren(active_high=False), factory, clock=clock)
    p = pin(factory)
    assert p.state
    out.on()
    assert out.settle()
    assert not p.state
    out.close()
    assert p.state


def test_hour_long_on_step_is_cut_at_max_on(factory: MockFactory, clock: FakeClock) -> None:
    out = SafeOutput(siren(max_on_s=30), factory, clock=clock)
    tr = trace(out, factory, clock)
    out.on()  # and never off(): a hostile or broken caller
    assert tr.read() is True
    assert tr.step(30 - TICK) is True
    assert tr.step(TICK) is False   # cut at exactly max_on_s
    assert tr.step(3600) is False
    [(start, length)] = tr.high_periods()
    assert start == 0.0 and length == pytest.approx(30, abs=TOL)
    assert tr.rises() == 1
    out.close()


def test_flicking_off_does_not_reset_the_on_cap(factory: MockFactory, clock: FakeClock) -> None:
    out = SafeOutput(siren(max_on_s=0.3, min_rest_ms=200), factory, clock=clock)
    tr = trace(out, factory, clock)
    for _ in range(9):  # off for 10 ms every 100 ms: never a real rest
        tr.after(out.on)
        tr.hold(0.09)
        tr.after(out.off)
        tr.hold(0.01)
    # Gaps shorter than min_rest_ms join one on-period; none may outlast max_on_s.
    periods = groups(tr.high_periods(), 0.19)
    spans = [g[-1][0] + g[-1][1] - g[0][0] for g in periods]
    assert spans[0] == pytest.approx(0.3, abs=TOL)
    assert all(span <= 0.3 + TOL for span in spans)
    out.close()


def test_a_real_rest_starts_a_new_on_period(factory: MockFactory, clock: FakeClock) -> None:
    out = SafeOutput(siren(max_on_s=0.2, min_rest_ms=100), factory, clock=clock)
    tr = trace(out, factory, clock)
    for _ in range(2):
        tr.after(out.on)
        tr.hold(0.4)
        tr.after(out.off)
        tr.hold(0.25)
    assert [length for _, length in tr.high_periods()] == [
        pytest.approx(0.2, abs=TOL), pytest.approx(0.2, abs=TOL)]
    assert tr.rises() == 2
    out.close()


def test_gong_rolls_a_long_on_step_into_strikes(factory: MockFactory, clock: FakeClock) -> None:
    out = SafeOutput(gong(pulse_ms=40, roll_gap_ms=60), factory, clock=clock)
    tr = trace(out, factory, clock)
    tr.after(out.on)
    tr.hold(0.55)
    out.off()
    assert tr.read() is False
    strikes = tr.high_periods()
    # 0.55 s of 100 ms strike cycles: a strike at 0, 0.1 ... 0.5, each pulse_ms long.
    assert [start for start, _ in strikes] == pytest.approx(
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], abs=TOL)
    assert all(length == pytest.approx(0.04, abs=TOL) for _, length in strikes)
    assert tr.rises() == 6
    out.close()


def test_gong_short_step_is_one_strike(factory: MockFactory, clock: FakeClock) -> None:
    out = SafeOutput(gong(pulse_ms=150, roll_gap_ms=60), factory, clock=clock)
    tr = trace(out, factory, clock)
    for _ in range(3):
        tr.after(out.on)
        tr.hold(0.05)
        tr.after(out.off)
        tr.hold(0.25)
    strikes = tr.high_periods()
    assert [start for start, _ in strikes] == pytest.approx([0.0, 0.3, 0.6], abs=TOL)
    assert all(length == pytest.approx(0.05, abs=TOL) for _, length in strikes)
    assert tr.rises() == 3
    out.close()


def test_total_cap_stops_sounding_and_reports_once(factory: MockFactory, clock: FakeClock,
                                                  mocker: MockerFixture) -> None:
    on_fault = mocker.Mock()
    out = SafeOutput(siren(max_total_s=0.5, total_window_s=60, min_rest_ms=0), factory,
                     on_fault=on_fault, clock=clock)
    tr = trace(out, factory, clock)
    tr.after(out.on)
    tr.hold(0.3)
    tr.after(out.off)
    tr.hold(0.1)
    tr.after(out.on)
    tr.hold(0.3)   # the second blast runs into the cap after 0.2 s
    on_fault.assert_called_once_with("siren", FAULT_TOTAL_CAP)
    assert tr.read() is False
    tr.after(out.off)
    assert out.on() is False  # refuses from now on
    assert tr.hold(0.2) is False
    assert sum(length for _, length in tr.high_periods()) == pytest.approx(0.5, abs=2 * TOL)
    assert out.sounding_s() == pytest.approx(0.5, abs=TOL)
    on_fault.assert_called_once_with("siren", FAULT_TOTAL_CAP)   # once, not per refusal
    assert FAULT_TOTAL_CAP in out.faults
    out.close()


def test_total_cap_frees_once_the_window_has_slid(factory: MockFactory,
                                                  clock: FakeClock) -> None:
    out = SafeOutput(siren(max_total_s=10, max_on_s=30, total_window_s=60), factory,
                     clock=clock)
    tr = trace(out, factory, clock)
    tr.after(out.on)
    assert tr.step(10) is False   # the whole allowance in one blast
    tr.after(out.off)
    tr.step(45)
    assert out.on() is False      # 55 s on: all 10 s of sounding still in the window
    tr.step(5.5)
    assert out.on() is False      # 60.5 s: 0.5 s freed, less than a tenth
    tr.after(out.off)
    tr.step(0.6)
    assert out.on() is True       # 61.1 s: over a tenth of the allowance free again
    assert tr.read() is True
    assert FAULT_TOTAL_CAP not in out.faults
    out.close()


def test_no_current_while_on_is_a_fault(factory: MockFactory, clock: FakeClock,
                                        mocker: MockerFixture) -> None:
    on_fault = mocker.Mock()
    out = SafeOutput(siren(feedback_pin=24, feedback_grace_ms=100), factory,
                     on_fault=on_fault, clock=clock)
    tr = trace(out, factory, clock)
    tr.after(out.on)
    tr.step(0.09)
    on_fault.assert_not_called()   # within the grace time
    tr.step(0.01)
    on_fault.assert_called_once_with("siren", FAULT_NO_CURRENT)
    assert out.faults == {FAULT_NO_CURRENT}
    tr.hold(0.5)
    on_fault.assert_called_once_with("siren", FAULT_NO_CURRENT)   # reported once
    out.close()


def test_current_flowing_is_no_fault(factory: MockFactory, clock: FakeClock,
                                     mocker: MockerFixture) -> None:
    # The output pin wired to the feedback pin: current appears the moment it switches on.
    feedback = factory.pin(24)
    factory.pin(23, pin_class=MockConnectedPin, input_pin=feedback)
    on_fault = mocker.Mock()
    out = SafeOutput(gong(pulse_ms=40, roll_gap_ms=40, feedback_pin=24, feedback_grace_ms=100),
                     factory, on_fault=on_fault, clock=clock)
    tr = trace(out, factory, clock)
    tr.after(out.on)
    tr.hold(0.5)
    tr.after(out.off)
    tr.hold(0.2)
    assert tr.rises() >= 6   # it did strike, each time with current
    on_fault.assert_not_called()
    assert out.faults == frozenset()
    out.close()


def test_close_ends_off_and_refuses_after(factory: MockFactory, clock: FakeClock) -> None:
    out = SafeOutput(siren(), factory, clock=clock)
    p = pin(factory)
    out.on()
    assert out.settle()
    assert p.state
    out.close()
    assert not p.state
    assert out.on() is False
    out.close()  # twice is harmless


def test_output_on_a_boot_high_pin_is_refused(factory: MockFactory) -> None:
    with pytest.raises(HardwareConfigError, match="GPIO 4"):
        SafeOutput(OutputConfig(name="gong", type="gong", pin=4), factory)


def test_enable_line_toggles_while_alive_and_drops_on_close(factory: MockFactory,
                                                            clock: FakeClock) -> None:
    line = EnableLine(25, toggle_ms=20, pin_factory=factory, clock=clock)
    tr = Trace(clock, pin(factory, 25), line.settle, 0.02)
    tr.hold(0.18)
    # Toggling every period keeps the monostable triggered.
    assert [level for _, level in tr.readings] == [False, True] * 5
    line.close()   # while the line is high: closing drives it low
    assert tr.read() is False
    changes = len(tr.pin.states)
    tr.hold(0.2)
    assert len(tr.pin.states) == changes  # stopped: the hardware drops the enable


def test_enable_line_stops_when_the_agent_is_not_alive(factory: MockFactory,
                                                       clock: FakeClock) -> None:
    alive = threading.Event()
    alive.set()
    line = EnableLine(25, toggle_ms=20, pin_factory=factory, alive=alive.is_set, clock=clock)
    tr = Trace(clock, pin(factory, 25), line.settle, 0.02)
    tr.hold(0.1)
    assert tr.rises() >= 2
    alive.clear()
    tr.step(0.02)
    tr.pin.clear_states()
    tr.hold(0.3)
    assert len(tr.pin.states) == 1  # no edges: the driver's enable times out
    line.close()
