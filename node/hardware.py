"""NodeHardware: every device wired to a node (stub, being implemented)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .hwconfig import ButtonConfig, HardwareConfig
from .led import StatusLed
from .outputs import SafeOutput


class NodeHardware:
    def __init__(self, cfg: HardwareConfig, pin_factory: Any = None) -> None:
        self.config = cfg
        self.on_press: Callable[[ButtonConfig], None] | None = None
        self.on_cancel: Callable[[], None] | None = None
        self.outputs: dict[str, SafeOutput] = {
            o.name: SafeOutput(o, pin_factory) for o in cfg.outputs
        }
        self.led = StatusLed(cfg.led_pin, cfg.led_active_high, pin_factory)

    def power_good(self) -> bool | None:
        return None

    def close(self) -> None:
        for out in self.outputs.values():
            out.close()
        self.led.close()
