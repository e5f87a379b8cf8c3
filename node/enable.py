"""The dead-man enable line: the hardware half of "outputs fail off" (PROTOCOL.md rule 6)."""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable
from typing import Any

from gpiozero import DigitalOutputDevice

from protocol.timing import SYSTEM_CLOCK, Clock

from .outputs import atexit_closer
from .settle import Settle


class EnableLine:
    """The dead-man enable line to the output driver.

    A thread toggles the pin every `toggle_ms` while the agent runs. The driver's enable
    input sits behind a retriggerable monostable (74HC123) or a capacitor-coupled charge
    pump (docs/wiring.md): a steady level, high or low, drops the enable within a few
    periods. So a crashed, hung or killed agent, or a Pi that is still booting, cannot hold
    an output on, whatever state its output pins are left in.

    The toggles are timed on the injected `clock`; a test moves a fake one and calls
    `settle()`, as for SafeOutput.
    """

    def __init__(
        self,
        pin: int,
        toggle_ms: int = 50,
        pin_factory: Any = None,
        *,
        alive: Callable[[], bool] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.pin = pin
        self._period = toggle_ms / 1000.0
        # `alive` lets the agent tie the toggling to its own main loop's health.
        self._alive = alive
        self._clock = clock
        self._device = DigitalOutputDevice(pin, initial_value=False, pin_factory=pin_factory)
        self._cond = threading.Condition()
        self._closed = False
        self._settle = Settle(self._cond)   # node/settle.py
        self._thread = threading.Thread(target=self._run, name=f"enable-{pin}", daemon=True)
        self._thread.start()
        self._atexit = atexit_closer(weakref.ref(self))
        atexit.register(self._atexit)

    def _run(self) -> None:
        with self._cond:
            next_at = self._clock.monotonic() + self._period
            while not self._closed:
                asked = self._settle.begin()
                now = self._clock.monotonic()
                if now >= next_at:
                    if self._alive is None or self._alive():
                        self._device.toggle()
                    next_at += self._period
                    if next_at <= now:   # after a stall, carry on from now (no burst)
                        next_at = now + self._period
                self._settle.answer(asked)
                self._cond.notify_all()
                self._cond.wait(max(0.0, next_at - now))

    @property
    def alive(self) -> Callable[[], bool] | None:
        return self._alive

    @alive.setter
    def alive(self, hook: Callable[[], bool] | None) -> None:
        """Tie the toggling to `hook` (read at every toggle; None: toggle unconditionally).

        Hardware is built before the agent that owns it, so the agent ties it here.
        """
        self._alive = hook

    def settle(self, timeout: float = 2.0) -> bool:
        """Wake the thread and wait until it has acted on the clock's current reading."""
        return self._settle.ask(timeout, lambda: self._closed)

    def close(self) -> None:
        """Stop toggling and drive the line low: the driver's enable drops."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        self._device.off()
        atexit.unregister(self._atexit)
        self._device.close()
