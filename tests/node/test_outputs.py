"""SafeOutput enforces PROTOCOL.md rule 6 whatever its caller asks, read off the mock pin."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockConnectedPin, MockFactory, MockPin

from node.enable import EnableLine
from node.hwconfig import HardwareConfigError, OutputConfig
from node.outputs import FAULT_NO_CURRENT, FAULT_TOTAL_CAP, SafeOutput
from tests.node.pins import groups, high_periods, wait_for

# Slack for a loaded 2-core machine: caps may overrun by a scheduler delay, never by more.
SLACK = 0.12


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


class Faults:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.event = threading.Event()

    def __call__(self, name: str, reason: str) -> None:
        self.seen.append((name, reason))
        self.event.set()


def siren(**kw: object) -> OutputConfig:
    return OutputConfig(name="siren", type="siren", pin=23, **kw)  # type: ignore[arg-type]


def gong(**kw: object) -> OutputConfig:
    return OutputConfig(name="gong", type="gong", pin=23, **kw)  # type: ignore[arg-type]


def pin(factory: MockFactory, n: int = 23) -> MockPin:
    p: MockPin = factory.pin(n)
    return p


def test_output_starts_off_and_follows_requests(factory: MockFactory) -> None:
    out = SafeOutput(siren(), factory)
    p = pin(factory)
    assert p.state is False or p.state == 0
    p.clear_states()
    assert out.on() is True
    assert wait_for(lambda: bool(p.state), 2)
    time.sleep(0.2)
    out.off()
    assert wait_for(lambda: not p.state, 2)
    periods = high_periods(p)
    assert len(periods) == 1
    assert 0.15 <= periods[0][1] <= 0.2 + SLACK
    out.close()


def test_active_low_output_starts_at_the_high_level(factory: MockFactory) -> None:
    # An active-low driver is off when the pin is high: "starts off" means the off level.
    out = SafeOutput(siren(active_high=False), factory)
    p = pin(factory)
    assert p.state
    out.on()
    assert wait_for(lambda: not p.state, 2)
    out.close()
    assert p.state


def test_hour_long_on_step_is_cut_at_max_on(factory: MockFactory) -> None:
    out = SafeOutput(siren(max_on_s=0.3), factory)
    p = pin(factory)
    p.clear_states()
    out.on()  # and never off(): a hostile or broken caller
    time.sleep(1.0)
    periods = high_periods(p)
    assert len(periods) == 1
    assert 0.25 <= periods[0][1] <= 0.3 + SLACK
    assert not p.state
    out.close()


def test_flicking_off_does_not_reset_the_on_cap(factory: MockFactory) -> None:
    out = SafeOutput(siren(max_on_s=0.3, min_rest_ms=200), factory)
    p = pin(factory)
    p.clear_states()
    deadline = time.monotonic() + 0.9
    while time.monotonic() < deadline:  # off for 10 ms every 100 ms: never a real rest
        out.on()
        time.sleep(0.09)
        out.off()
        time.sleep(0.01)
    # Gaps shorter than min_rest_ms join one on-period; none may outlast max_on_s.
    periods = groups(high_periods(p), 0.19)
    spans = [g[-1][0] + g[-1][1] - g[0][0] for g in periods]
    assert spans[0] >= 0.25
    assert all(span <= 0.3 + SLACK for span in spans)
    out.close()


def test_a_real_rest_starts_a_new_on_period(factory: MockFactory) -> None:
    out = SafeOutput(siren(max_on_s=0.2, min_rest_ms=100), factory)
    p = pin(factory)
    p.clear_states()
    for _ in range(2):
        out.on()
        time.sleep(0.4)
        out.off()
        time.sleep(0.25)
    periods = high_periods(p)
    assert len(periods) == 2
    assert all(0.15 <= length <= 0.2 + SLACK for _, length in periods)
    out.close()


def test_gong_rolls_a_long_on_step_into_strikes(factory: MockFactory) -> None:
    out = SafeOutput(gong(pulse_ms=40, roll_gap_ms=60), factory)
    p = pin(factory)
    p.clear_states()
    out.on()
    time.sleep(0.55)
    out.off()
    assert wait_for(lambda: not p.state, 2)
    strikes = high_periods(p)
    # 0.55 s of 100 ms strike cycles: about 6 strikes, each no longer than the pulse limit.
    assert 4 <= len(strikes) <= 7
    assert all(length <= 0.04 + SLACK for _, length in strikes)
    # Strikes keep the roll's rhythm: pulse_ms + roll_gap_ms apart on average.
    spacing = (strikes[-1][0] - strikes[0][0]) / (len(strikes) - 1)
    assert 0.08 <= spacing <= 0.1 + SLACK / 2
    out.close()


def test_gong_short_step_is_one_strike(factory: MockFactory) -> None:
    out = SafeOutput(gong(pulse_ms=150, roll_gap_ms=60), factory)
    p = pin(factory)
    p.clear_states()
    for _ in range(3):
        out.on()
        time.sleep(0.05)
        out.off()
        time.sleep(0.25)
    strikes = high_periods(p)
    assert len(groups(strikes, 0.1)) == 3
    assert len(strikes) == 3
    out.close()


def test_total_cap_stops_sounding_and_reports_once(factory: MockFactory) -> None:
    faults = Faults()
    out = SafeOutput(siren(max_total_s=0.5, total_window_s=60, min_rest_ms=0), factory,
                     on_fault=faults)
    p = pin(factory)
    p.clear_states()
    out.on()
    time.sleep(0.3)
    out.off()
    time.sleep(0.1)
    out.on()
    assert faults.event.wait(3)  # the second blast runs into the cap after about 0.2 s
    assert wait_for(lambda: not p.state, 1)
    time.sleep(0.2)
    out.off()
    assert out.on() is False  # refuses from now on
    time.sleep(0.2)
    assert not p.state
    total_on = sum(length for _, length in high_periods(p))
    assert 0.4 <= total_on <= 0.5 + SLACK
    assert faults.seen == [("siren", FAULT_TOTAL_CAP)]
    assert FAULT_TOTAL_CAP in out.faults
    out.close()


def test_no_current_while_on_is_a_fault(factory: MockFactory) -> None:
    faults = Faults()
    out = SafeOutput(siren(feedback_pin=24, feedback_grace_ms=100), factory, on_fault=faults)
    out.on()
    assert faults.event.wait(3)
    assert faults.seen == [("siren", FAULT_NO_CURRENT)]
    assert out.faults == {FAULT_NO_CURRENT}
    out.close()


def test_current_flowing_is_no_fault(factory: MockFactory) -> None:
    # The output pin wired to the feedback pin: current appears the moment it switches on.
    feedback = factory.pin(24)
    factory.pin(23, pin_class=MockConnectedPin, input_pin=feedback)
    faults = Faults()
    out = SafeOutput(gong(pulse_ms=40, roll_gap_ms=40, feedback_pin=24, feedback_grace_ms=100),
                     factory, on_fault=faults)
    out.on()
    time.sleep(0.5)
    out.off()
    time.sleep(0.2)
    assert faults.seen == []
    assert out.faults == frozenset()
    out.close()


def test_close_ends_off_and_refuses_after(factory: MockFactory) -> None:
    out = SafeOutput(siren(), factory)
    p = pin(factory)
    out.on()
    assert wait_for(lambda: bool(p.state), 2)
    out.close()
    assert not p.state
    assert out.on() is False
    out.close()  # twice is harmless


def test_output_on_a_boot_high_pin_is_refused(factory: MockFactory) -> None:
    with pytest.raises(HardwareConfigError, match="GPIO 4"):
        SafeOutput(OutputConfig(name="gong", type="gong", pin=4), factory)


def test_enable_line_toggles_while_alive_and_drops_on_close(factory: MockFactory) -> None:
    line = EnableLine(25, toggle_ms=20, pin_factory=factory)
    p = pin(factory, 25)
    p.clear_states()
    time.sleep(0.5)
    assert len(p.states) >= 6  # toggling keeps the monostable triggered
    line.close()
    assert not p.state
    changes = len(p.states)
    time.sleep(0.15)
    assert len(p.states) == changes  # stopped: the hardware drops the enable


def test_enable_line_stops_when_the_agent_is_not_alive(factory: MockFactory) -> None:
    alive = threading.Event()
    alive.set()
    line = EnableLine(25, toggle_ms=20, pin_factory=factory, alive=alive.is_set)
    p = pin(factory, 25)
    time.sleep(0.2)
    alive.clear()
    time.sleep(0.1)
    p.clear_states()
    time.sleep(0.3)
    assert len(p.states) == 1  # no edges: the driver's enable times out
    line.close()
