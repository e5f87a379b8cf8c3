"""SafeOutput: one gong striker or siren, with the hard caps of PROTOCOL.md rule 6.

The caps live here, below every caller, so that neither a hostile command, a bug in the
player nor a stuck agent loop can hold a solenoid or siren on:

- one continuous on-period lasts at most `max_on_s` (an off-gap shorter than `min_rest_ms`
  does not end the period, so flicking the output off cannot reset the cap);
- total sounding time within any `total_window_s` stays at most `max_total_s`; once it is
  used up the output refuses to switch on (a `total_cap` fault) until the sliding window
  has freed a tenth of the allowance again, so it cannot buzz in slivers at the edge;
- a gong striker is energised at most `pulse_ms` at a time: a longer on-step becomes a roll
  of strikes (`pulse_ms` on, `roll_gap_ms` off) for as long as the on-step lasts;
- with a feedback input (a current sensor), an energised pulse that shows no current within
  `feedback_grace_ms` is a `no_current` fault.

Each output has one small worker thread that owns the pin's timeline; callers only state
what they want (`on()` / `off()`), and the worker decides what the pin does. It waits on a
condition with a timeout to the next deadline, never polls. Every time is read from the
injected `Clock`, and what the pin does is a function of that clock's reading and the
requests alone, so a test drives a fake clock and calls `settle()` instead of sleeping.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from gpiozero import DigitalInputDevice, DigitalOutputDevice

from protocol.timing import SYSTEM_CLOCK, Clock

from .hwconfig import UNSAFE_OUTPUT_PINS, HardwareConfigError, OutputConfig
from .settle import Settle

log = logging.getLogger(__name__)

FaultCallback = Callable[[str, str], None]

# Fault reasons reported through on_fault(name, reason).
FAULT_NO_CURRENT = "no_current"
FAULT_TOTAL_CAP = "total_cap"

# After the total cap is hit, sounding resumes only once this share of the allowance is free.
_TOTAL_RESUME_SHARE = 0.9


class _Closable(Protocol):
    def close(self) -> None: ...


def atexit_closer(ref: weakref.ReferenceType[Any]) -> Callable[[], None]:
    """An atexit hook that closes the device if it still exists (without keeping it alive)."""

    def close() -> None:
        obj: _Closable | None = ref()
        if obj is not None:
            obj.close()

    return close


class SafeOutput:
    """A sounder driver that starts off, fails off and enforces its caps whatever it is told."""

    def __init__(
        self,
        cfg: OutputConfig,
        pin_factory: Any = None,
        *,
        on_fault: FaultCallback | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = cfg
        self.name = cfg.name
        self.on_fault: FaultCallback | None = on_fault
        self._clock = clock
        if cfg.pin in UNSAFE_OUTPUT_PINS:
            # Refused here too, not only by `--check`: this pin is high while the Pi boots.
            raise HardwareConfigError([f"output '{cfg.name}': GPIO {cfg.pin} is boot-high"])
        # initial_value=False: the pin is driven to the off level the moment it is claimed.
        self._device = DigitalOutputDevice(
            cfg.pin, active_high=cfg.active_high, initial_value=False, pin_factory=pin_factory
        )
        self._feedback: DigitalInputDevice | None = None
        if cfg.feedback_pin is not None:
            # A current sensor drives the line high while current flows; pull it down so a
            # broken sensor wire reads as "no current", which is the truth we can report.
            self._feedback = DigitalInputDevice(
                cfg.feedback_pin, pull_up=False, pin_factory=pin_factory
            )
            self._feedback.when_activated = self._on_current
        self._cond = threading.Condition()
        self._closed = False
        self._requested = False        # what the caller wants
        self._step_start = 0.0         # start of the caller's current on-step (roll phase origin)
        self._period_start: float | None = None  # start of the continuous on-period
        self._capped = False           # this on-period ran into max_on_s
        self._quiet_since = -1e18      # when the output last stopped sounding
        self._sounding_since: float | None = None
        self._history: deque[tuple[float, float]] = deque()  # closed sounding intervals
        self._exhausted = False        # total cap reached
        self._energised = False
        self._fb_check_at: float | None = None
        self._fb_since = 0.0
        self._fb_seen_at = -1e18
        self._faults: set[str] = set()
        self._pending: list[str] = []  # faults to report, outside the lock
        self._settle = Settle(self._cond)   # node/settle.py
        self._thread = threading.Thread(target=self._run, name=f"output-{cfg.name}", daemon=True)
        self._thread.start()
        # Ends off even if nobody calls close(): the interpreter's exit runs this.
        self._atexit = atexit_closer(weakref.ref(self))
        atexit.register(self._atexit)

    # -- what callers use --------------------------------------------------------------

    def on(self) -> bool:
        """Start an on-step; False when the output refuses (closed or total cap used up)."""
        with self._cond:
            if self._closed:
                return False
            now = self._clock.monotonic()
            if self._exhausted and not self._total_recovered(now):
                self._report(FAULT_TOTAL_CAP)
                self._cond.notify_all()
                return False
            if self._requested:
                return True
            self._requested = True
            self._step_start = now
            # A rest counts from when the worker last stopped the sound; if it has not seen
            # an off() yet, there was no rest at all and the on-period carries on.
            rest = 0.0 if self._sounding_since is not None else now - self._quiet_since
            if self._period_start is None or rest >= self._min_rest:
                self._period_start = now
                self._capped = False
            self._cond.notify_all()
            return not self._capped

    def off(self) -> None:
        """End the on-step; the output goes quiet at once."""
        with self._cond:
            self._requested = False
            self._cond.notify_all()

    @property
    def is_on(self) -> bool:
        """True while the driver is energised (a gong's strike, a siren's blast)."""
        with self._cond:
            return self._energised

    @property
    def faults(self) -> frozenset[str]:
        """Faults currently standing (`no_current`, `total_cap`)."""
        with self._cond:
            return frozenset(self._faults)

    def sounding_s(self) -> float:
        """Sounding time used within the current total window."""
        with self._cond:
            return self._used(self._clock.monotonic())

    def settle(self, timeout: float = 2.0) -> bool:
        """Wake the worker and wait until it has acted on the clock's reading and every
        request made before this call.

        The pin then shows what the caps allow at that reading. For tests on a fake
        clock (advance it, then settle), and for a caller that must know the pin's state.
        False if the worker did not get there within `timeout` real seconds.
        """
        return self._settle.ask(timeout, lambda: self._closed)

    def close(self) -> None:
        """Switch off for good and release the pins. Safe to call twice."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._requested = False
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        with self._cond:
            self._set_pin(False, self._clock.monotonic())
        atexit.unregister(self._atexit)
        self._device.close()
        if self._feedback is not None:
            self._feedback.close()

    # -- the worker ----------------------------------------------------------------------

    @property
    def _min_rest(self) -> float:
        return self.config.min_rest_ms / 1000.0

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    self._set_pin(False, self._clock.monotonic())
                    return
                asked = self._settle.begin()   # this step sees every request before it
                timeout = self._step(self._clock.monotonic())
                pending, self._pending = self._pending, []
                if not pending:
                    # Settled only once its faults are told (else: told, then step again).
                    self._settle.answer(asked)
                    self._cond.notify_all()   # a settle() waiting for this step
                    self._cond.wait(timeout)
            for reason in pending:  # outside the lock: the callback may call back into us
                self._notify(reason)

    def _step(self, now: float) -> float | None:
        """Bring the pin to what the caps allow now; seconds until the next deadline."""
        cfg = self.config
        deadlines: list[float] = []
        sounding = self._requested and not self._capped and not self._exhausted
        if sounding and self._period_start is not None:
            if now - self._period_start >= cfg.max_on_s:
                log.warning("%s: on-period capped at max_on_s=%.1f s", self.name, cfg.max_on_s)
                self._capped = True
                sounding = False
            else:
                deadlines.append(self._period_start + cfg.max_on_s)
        if sounding:
            used = self._used(now)
            if used >= cfg.max_total_s:
                log.error("%s: total sounding cap of %.0f s reached", self.name, cfg.max_total_s)
                self._exhausted = True
                self._report(FAULT_TOTAL_CAP)
                sounding = False
            else:
                deadlines.append(now + (cfg.max_total_s - used))
        self._set_sounding(sounding, now)
        energise = sounding
        if sounding and cfg.type == "gong":
            # A roll: strikes of pulse_ms separated by roll_gap_ms, phased from the on-step.
            pulse, cycle = cfg.pulse_ms / 1000.0, (cfg.pulse_ms + cfg.roll_gap_ms) / 1000.0
            into = (now - self._step_start) % cycle
            energise = into < pulse
            deadlines.append(now + (pulse - into if energise else cycle - into))
        self._set_pin(energise, now)
        self._check_feedback(now, deadlines)
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - now)

    def _set_sounding(self, sounding: bool, now: float) -> None:
        if sounding and self._sounding_since is None:
            self._sounding_since = now
        elif not sounding and self._sounding_since is not None:
            self._history.append((self._sounding_since, now))
            self._sounding_since = None
            self._quiet_since = now

    def _set_pin(self, energise: bool, now: float) -> None:
        if energise == self._energised:
            return
        self._energised = energise
        if energise:
            self._device.on()
            if self._feedback is not None and self._fb_check_at is None:
                self._fb_since = now
                self._fb_check_at = now + self.config.feedback_grace_ms / 1000.0
        else:
            self._device.off()

    def _check_feedback(self, now: float, deadlines: list[float]) -> None:
        if self._feedback is None or self._fb_check_at is None:
            return
        if self._fb_seen_at >= self._fb_since or (self._energised and self._feedback.is_active):
            self._fb_check_at = None
            self._faults.discard(FAULT_NO_CURRENT)
        elif now >= self._fb_check_at:
            self._fb_check_at = None
            if FAULT_NO_CURRENT not in self._faults:
                log.error("%s: no current within %d ms of switching on",
                          self.name, self.config.feedback_grace_ms)
            self._report(FAULT_NO_CURRENT)
        else:
            deadlines.append(self._fb_check_at)

    def _on_current(self) -> None:
        # Runs on gpiozero's event thread (or the test's thread with mock pins).
        with self._cond:
            self._fb_seen_at = self._clock.monotonic()
            self._cond.notify_all()

    # -- bookkeeping ---------------------------------------------------------------------

    def _used(self, now: float) -> float:
        start = now - self.config.total_window_s
        while self._history and self._history[0][1] <= start:
            self._history.popleft()
        used = sum(min(e, now) - max(s, start) for s, e in self._history)
        if self._sounding_since is not None:
            used += now - max(self._sounding_since, start)
        return used

    def _total_recovered(self, now: float) -> bool:
        if self._used(now) <= self.config.max_total_s * _TOTAL_RESUME_SHARE:
            self._exhausted = False
            self._faults.discard(FAULT_TOTAL_CAP)
            return True
        return False

    def _report(self, reason: str) -> None:
        # A standing fault is reported once, not on every strike of a roll.
        if reason not in self._faults:
            self._faults.add(reason)
            self._pending.append(reason)
            self._cond.notify_all()

    def _notify(self, reason: str) -> None:
        callback = self.on_fault
        if callback is None:
            return
        try:
            callback(self.name, reason)
        except Exception:  # a broken listener must not stop the caps
            log.exception("%s: fault callback failed", self.name)
