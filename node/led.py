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

from protocol.timing import SYSTEM_CLOCK, Clock

from .settle import Settle


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


def _phases(steps: tuple[tuple[float, float], ...]) -> list[tuple[bool, float]]:
    """A rhythm as (lit?, seconds) phases, without zero-length ones."""
    return [(lit, s) for on_s, off_s in steps for lit, s in ((True, on_s), (False, off_s))
            if s > 0]


class StatusLed:
    """Shows one LedState at a time; without an LED pin it only remembers the state.

    The rhythm is timed on the injected `clock`; a test moves a fake one and calls `settle()`.
    """

    def __init__(
        self, pin: int | None, active_high: bool = True, pin_factory: Any = None, *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._cond = threading.Condition()
        self._clock = clock
        self._state = LedState.IDLE
        self._changed = True   # the worker starts the first rhythm
        self._closed = False
        self._settle = Settle(self._cond)   # node/settle.py
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

    def settle(self, timeout: float = 2.0) -> bool:
        """Wake the worker and wait until it has acted on the clock's reading and the state."""
        return self._settle.ask(timeout, lambda: self._closed or self._thread is None)

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
        phases: list[tuple[bool, float]] = []
        phase, phase_end = 0, 0.0
        with self._cond:
            while not self._closed:
                asked = self._settle.begin()
                now = self._clock.monotonic()
                if self._changed:   # a new state restarts its rhythm at once
                    self._changed = False
                    phases = _phases(LED_PATTERNS[self._state])
                    phase, phase_end = 0, now + phases[0][1]
                while now >= phase_end:
                    phase = (phase + 1) % len(phases)
                    phase_end += phases[phase][1]
                    if now - phase_end > 1.0:   # stalled: carry on from now, no catching up
                        phase_end = now + phases[phase][1]
                if phases[phase][0] != led.is_lit:
                    (led.on if phases[phase][0] else led.off)()
                self._settle.answer(asked)
                self._cond.notify_all()   # a settle() waiting for this pass
                self._cond.wait(phase_end - now)
            led.off()
