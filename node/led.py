"""The node's status LED: what a household can read from it at a glance.

Each state has its own rhythm, chosen so that no two can be confused in the dark
(docs/wiring.md has the table printed for households):

    IDLE          one short blip every 5 s   working, hub reachable, nothing going on
    SENDING       fast blink, 5 a second     alarm raised, hub has not confirmed it yet
    RECEIVED      slow blink, 1 a second     the hub has stored the alarm
    ACKNOWLEDGED  steady on                  an operator has taken the alarm
    NO_HUB        double blink every 2 s     no hub: the gong still sounds locally
    FAULT         triple blink every 2 s     a fault: call the technician
"""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Any

from gpiozero import LED


class LedState(StrEnum):
    """What the status LED is showing."""

    IDLE = "idle"
    SENDING = "sending"
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    NO_HUB = "no_hub"
    FAULT = "fault"


# (on_s, off_s) steps, repeated. An off of 0 in the last step means "stay on".
LED_PATTERNS: dict[LedState, tuple[tuple[float, float], ...]] = {
    LedState.IDLE: ((0.05, 4.95),),
    LedState.SENDING: ((0.1, 0.1),),
    LedState.RECEIVED: ((0.5, 0.5),),
    LedState.ACKNOWLEDGED: ((1.0, 0.0),),
    LedState.NO_HUB: ((0.15, 0.25), (0.15, 1.45)),
    LedState.FAULT: ((0.15, 0.25), (0.15, 0.25), (0.15, 1.05)),
}


class StatusLed:
    """Shows one LedState at a time; without an LED pin it only remembers the state."""

    def __init__(
        self, pin: int | None, active_high: bool = True, pin_factory: Any = None
    ) -> None:
        self._cond = threading.Condition()
        self._state = LedState.IDLE
        self._changed = False
        self._closed = False
        self._led: LED | None = None
        self._thread: threading.Thread | None = None
        if pin is not None:
            self._led = LED(pin, active_high=active_high, initial_value=False,
                            pin_factory=pin_factory)
            # One small thread rather than gpiozero's blink(): the multi-blink rhythms need
            # steps of different lengths, and a state change must restart the rhythm at once.
            self._thread = threading.Thread(target=self._run, name=f"led-{pin}", daemon=True)
            self._thread.start()

    @property
    def state(self) -> LedState:
        with self._cond:
            return self._state

    def show(self, state: LedState) -> None:
        """Switch to `state`'s rhythm (no-op if already showing it)."""
        with self._cond:
            if state == self._state:
                return
            self._state = LedState(state)
            self._changed = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        if self._led is not None:
            self._led.off()
            self._led.close()

    def _run(self) -> None:
        assert self._led is not None
        led = self._led
        with self._cond:
            while not self._closed:
                self._changed = False
                for on_s, off_s in LED_PATTERNS[self._state]:
                    led.on()
                    if self._cond.wait_for(lambda: self._changed or self._closed, on_s):
                        break
                    if off_s <= 0:
                        continue
                    led.off()
                    if self._cond.wait_for(lambda: self._changed or self._closed, off_s):
                        break
            led.off()
