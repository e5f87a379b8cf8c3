"""NodeHardware wired like the reference build, driven through its mock pins."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPin
from pytest_mock import MockerFixture

from node.hardware import NodeHardware
from node.hwconfig import (
    ButtonConfig,
    HardwareConfig,
    HardwareConfigError,
    InputConfig,
    OutputConfig,
)
from node.led import LED_PATTERNS, LedState
from tests.node.pins import Trace, wait_for
from tests.support.fake_clock import FakeClock

THEFT = ButtonConfig(pin=17, number=1, kind="theft", hold_s=0.3)
FIRE = ButtonConfig(pin=27, number=2, kind="fire", hold_s=0.3)
CFG = HardwareConfig(
    buttons=(THEFT, FIRE),
    cancel=InputConfig(pin=22, hold_s=0.3),
    outputs=(OutputConfig(name="gong", type="gong", pin=23, feedback_pin=24),
             OutputConfig(name="siren", type="siren", pin=25)),
    enable_pin=12,
    enable_toggle_ms=20,
    power_good_pin=16,
    led_pin=13,
)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
def hw(factory: MockFactory) -> Iterator[NodeHardware]:
    node = NodeHardware(CFG, pin_factory=factory)
    yield node
    node.close()


def pin(factory: MockFactory, n: int) -> MockPin:
    p: MockPin = factory.pin(n)
    return p


def test_brushing_a_button_triggers_nothing(factory: MockFactory, hw: NodeHardware,
                                            mocker: MockerFixture) -> None:
    presses = mocker.Mock()
    hw.on_press = presses
    button = pin(factory, THEFT.pin)
    for _ in range(3):  # three brushes, each shorter than hold_s
        button.drive_low()
        time.sleep(0.1)
        button.drive_high()
        time.sleep(0.05)
    time.sleep(0.5)
    presses.assert_not_called()


def test_holding_a_button_triggers_once(factory: MockFactory, hw: NodeHardware,
                                        mocker: MockerFixture) -> None:
    presses = mocker.Mock()
    hw.on_press = presses
    button = pin(factory, FIRE.pin)
    button.drive_low()
    assert wait_for(lambda: presses.called, 3)
    time.sleep(0.8)  # still held, well past two more hold times: no repeat
    button.drive_high()
    time.sleep(0.1)
    presses.assert_called_once_with(FIRE)


def test_cancel_input_held_calls_on_cancel(factory: MockFactory, hw: NodeHardware,
                                           mocker: MockerFixture) -> None:
    cancelled = threading.Event()
    hw.on_cancel = cancelled.set
    presses = mocker.Mock()
    hw.on_press = presses
    cancel = pin(factory, 22)
    cancel.drive_low()
    assert cancelled.wait(3)
    cancel.drive_high()
    presses.assert_not_called()


def test_outputs_start_off_and_end_off(factory: MockFactory) -> None:
    node = NodeHardware(CFG, pin_factory=factory)
    assert set(node.outputs) == {"gong", "siren"}
    assert not pin(factory, 23).state and not pin(factory, 25).state
    node.outputs["siren"].on()
    node.outputs["gong"].on()
    assert wait_for(lambda: bool(pin(factory, 25).state), 2)
    node.close()
    assert not pin(factory, 23).state and not pin(factory, 25).state
    assert not pin(factory, 12).state  # enable dropped
    node.close()  # twice is harmless


def test_enable_line_toggles_while_running(factory: MockFactory) -> None:
    clock = FakeClock()
    node = NodeHardware(CFG, pin_factory=factory, clock=clock)
    assert node._enable is not None
    tr = Trace(clock, pin(factory, 12), node._enable.settle, 0.02)
    tr.hold(0.3)
    assert tr.rises() == 8   # a toggle every 20 ms: 15, from low, so 8 rises
    node.close()


def test_power_good_follows_its_input(factory: MockFactory, hw: NodeHardware) -> None:
    power = pin(factory, 16)
    power.drive_high()
    assert hw.power_good() is True
    power.drive_low()
    assert hw.power_good() is False
    bare = NodeHardware(HardwareConfig(), pin_factory=MockFactory())
    assert bare.power_good() is None
    bare.close()


def test_led_rhythms_differ_per_state(factory: MockFactory) -> None:
    assert len(set(LED_PATTERNS.values())) == len(LedState)
    clock = FakeClock()
    hw = NodeHardware(CFG, pin_factory=factory, clock=clock)
    led = hw.led

    def shown(state: LedState, seconds: float) -> Trace:
        led.show(state)
        assert led.state is state
        tr = Trace(clock, pin(factory, 13), led.settle, 0.05)   # its first reading: t = 0
        tr.hold(seconds)
        return tr

    def starts(tr: Trace) -> list[float]:
        return [start for start, _ in tr.high_periods()]

    steady = shown(LedState.ACKNOWLEDGED, 0.5)
    assert all(level for _, level in steady.readings) and len(steady.pin.states) == 1
    # Each rhythm from the change on, read every 50 ms (one reading late at most).
    assert starts(shown(LedState.SENDING, 0.65)) == pytest.approx(   # 0.1 s on, 0.1 s off
        [0.0, 0.2, 0.4, 0.6], abs=0.075)
    assert starts(shown(LedState.FAULT, 2.05)) == pytest.approx(     # three, then a pause
        [0.0, 0.4, 0.8, 2.0], abs=0.075)
    assert starts(shown(LedState.IDLE, 10.05)) == pytest.approx(     # a blip every 5 s
        [0.0, 5.0, 10.0], abs=0.075)
    hw.close()


def test_led_without_a_pin_remembers_the_state() -> None:
    node = NodeHardware(replace(CFG, led_pin=None), pin_factory=MockFactory())
    node.led.show(LedState.NO_HUB)
    assert node.led.state is LedState.NO_HUB
    node.close()


def test_unsafe_config_is_refused_before_any_pin_is_claimed(factory: MockFactory) -> None:
    cfg = replace(CFG, outputs=(OutputConfig(name="gong", type="gong", pin=4),))
    with pytest.raises(HardwareConfigError) as err:
        NodeHardware(cfg, pin_factory=factory)
    assert any("GPIO 4" in p for p in err.value.problems)
    assert factory.pins == {}


def test_each_node_uses_its_own_factory() -> None:
    # Two simulated nodes with the same pin numbers must not share pins.
    a, b = MockFactory(), MockFactory()
    node_a = NodeHardware(CFG, pin_factory=a)
    node_b = NodeHardware(CFG, pin_factory=b)
    node_a.outputs["siren"].on()
    assert wait_for(lambda: bool(a.pin(25).state), 2)
    time.sleep(0.05)
    assert not b.pin(25).state
    node_a.close()
    node_b.close()


def test_none_means_gpiozeros_default_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    default = MockFactory()
    monkeypatch.setattr(Device, "pin_factory", default)
    node = NodeHardware(CFG, pin_factory=None)
    node.outputs["siren"].on()
    assert wait_for(lambda: bool(default.pin(25).state), 2)  # on the default factory's pin
    node.close()
    assert not default.pin(25).state
