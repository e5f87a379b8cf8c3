"""The dead-man enable line: the hardware half of "outputs fail off" (PROTOCOL.md rule 6)."""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable
from typing import Any

from gpiozero import DigitalOutputDevice

from .outputs import atexit_closer


class EnableLine:
    """The dead-man enable line to the output driver.

    A thread toggles the pin every `toggle_ms` while the agent runs. The driver's enable
    input sits behind a retriggerable monostable (74HC123) or a capacitor-coupled charge
    pump (docs/wiring.md): a steady level, high or low, drops the enable within a few
    periods. So a crashed, hung or killed agent, or a Pi that is still booting, cannot hold
    an output on, whatever state its output pins are left in.
    """

    def __init__(
        self,
        pin: int,
        toggle_ms: int = 50,
        pin_factory: Any = None,
        *,
        alive: Callable[[], bool] | None = None,
    ) -> None:
        self.pin = pin
        self._period = toggle_ms / 1000.0
        # `alive` lets the agent tie the toggling to its own main loop's health.
        self._alive = alive
        self._device = DigitalOutputDevice(pin, initial_value=False, pin_factory=pin_factory)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"enable-{pin}", daemon=True)
        self._thread.start()
        self._atexit = atexit_closer(weakref.ref(self))
        atexit.register(self._atexit)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            if self._alive is None or self._alive():
                self._device.toggle()

    def close(self) -> None:
        """Stop toggling and drive the line low: the driver's enable drops."""
        if self._stop.is_set():
            return
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        self._device.off()
        atexit.unregister(self._atexit)
        self._device.close()
