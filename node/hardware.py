"""NodeHardware: every device wired to one node, built on one gpiozero pin factory.

Every device gets `pin_factory=` explicitly: each simulated node has its own MockFactory,
and the global `Device.pin_factory` is never touched. `pin_factory=None` is gpiozero's
default factory, i.e. the real pins of the Pi.

Buttons trigger on a hold, not a touch: `on_press` is called once when a button has been
held for its `hold_s`, and a brush that is released sooner triggers nothing (a child, a
broom, a bump in the dark). Callbacks arrive on gpiozero's threads; the agent should hand
them to its own queue and return.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gpiozero import Button, Device, DigitalInputDevice

from protocol.timing import SYSTEM_CLOCK, Clock

from .enable import EnableLine
from .hwconfig import (
    ButtonConfig,
    HardwareConfig,
    HardwareConfigError,
    RemoteConfig,
    check_hardware_config,
)
from .led import StatusLed
from .outputs import SafeOutput

log = logging.getLogger(__name__)


class NodeHardware:
    """The node's buttons, remote inputs, cancel input, sounders, enable line, power-good
    input and LED.

    `clock` times the sounders' caps, the enable line's toggles and the LED's rhythms (a
    fake one in tests).
    """

    def __init__(self, cfg: HardwareConfig, pin_factory: Any = None, *,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        problems = check_hardware_config(cfg)
        if problems:
            raise HardwareConfigError(problems)
        self.config = cfg
        self.on_press: Callable[[ButtonConfig], None] | None = None
        self.on_cancel: Callable[[], None] | None = None
        self.on_remote: Callable[[RemoteConfig], None] | None = None
        self.outputs: dict[str, SafeOutput] = {}
        self._devices: list[Device] = []
        self._enable: EnableLine | None = None
        self._power: DigitalInputDevice | None = None
        self._closed = False
        try:
            # Outputs first: they claim their pins at the off level before anything else runs.
            for out in cfg.outputs:
                self.outputs[out.name] = SafeOutput(out, pin_factory, clock=clock)
            if cfg.enable_pin is not None:
                self._enable = EnableLine(cfg.enable_pin, cfg.enable_toggle_ms, pin_factory,
                                          clock=clock)
            for b in cfg.buttons:
                button = Button(b.pin, pull_up=b.active_low, hold_time=b.hold_s,
                                hold_repeat=False, pin_factory=pin_factory)
                button.when_held = self._held_handler(b)
                self._devices.append(button)
            for r in cfg.remotes:
                # A receiver's relay or a panel's output, held like a button: a glitch
                # on a long wire or a burst of 433 MHz noise shorter than hold_s is nothing.
                remote = Button(r.pin, pull_up=r.active_low, hold_time=r.hold_s,
                                hold_repeat=False, pin_factory=pin_factory)
                remote.when_held = self._remote_handler(r)
                self._devices.append(remote)
            if cfg.cancel is not None:
                cancel = Button(cfg.cancel.pin, pull_up=cfg.cancel.active_low,
                                hold_time=cfg.cancel.hold_s, hold_repeat=False,
                                pin_factory=pin_factory)
                cancel.when_held = self._cancel_held
                self._devices.append(cancel)
            if cfg.power_good_pin is not None:
                # Pulled down: a cut power-good wire reads as "no mains", the cautious answer.
                self._power = DigitalInputDevice(cfg.power_good_pin, pull_up=False,
                                                 pin_factory=pin_factory)
                self._devices.append(self._power)
            self.led = StatusLed(cfg.led_pin, cfg.led_active_high, pin_factory, clock=clock)
        except BaseException:
            self.close()
            raise

    def _held_handler(self, b: ButtonConfig) -> Callable[[], None]:
        def held() -> None:
            log.info("button %d (%s) held for %.1f s", b.number, b.kind, b.hold_s)
            callback = self.on_press
            if callback is not None:
                callback(b)
        return held

    def _remote_handler(self, r: RemoteConfig) -> Callable[[], None]:
        def held() -> None:
            log.info("remote input %d (%s) active for %.1f s", r.number, r.kind, r.hold_s)
            callback = self.on_remote
            if callback is not None:
                callback(r)
        return held

    def _cancel_held(self) -> None:
        log.info("cancel input held")
        callback = self.on_cancel
        if callback is not None:
            callback()

    @property
    def enable(self) -> EnableLine | None:
        """The dead-man enable line, when one is wired."""
        return self._enable

    def power_good(self) -> bool | None:
        """True on mains, False on battery, None when no power-good input is wired."""
        if self._power is None:
            return None
        return bool(self._power.is_active)

    def outputs_off(self) -> None:
        """Every output off now (they stay usable)."""
        for out in self.outputs.values():
            out.off()

    def close(self) -> None:
        """Every output off, the enable dropped, every device released. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for out in self.outputs.values():
            out.close()
        if self._enable is not None:
            self._enable.close()
        for device in self._devices:
            device.close()
        led = getattr(self, "led", None)
        if led is not None:
            led.close()
