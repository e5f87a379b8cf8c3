"""The pattern player: which sound the node's sounders play, and its on/off timeline.

Every `sound` (a local alarm, a hub command, a drill) is an active sound with a key (the
incident id, the command id...), a priority and an end time. The player plays the
highest-priority active sound, the newest among equals; when that one ends or is silenced,
the next one still active resumes from the start of its pattern (PROTOCOL.md, `cmd`).
Because sounds are silenced by key, silencing a theft never silences a fire.

One worker thread plays the pattern's `[on_ms, off_ms]` steps on every output, waiting on a
condition until the next step boundary or until a caller changes the stack. Every time is
read from the injected `Clock`, and what the outputs are told is a function of that clock's
reading and the stack alone: a test advances a fake clock and calls `settle()`. The outputs
enforce their own caps (a siren's longest blast, a gong's roll, the total time), so the
player can be simple and a hostile pattern still cannot hold anything on.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from protocol import Pattern
from protocol.timing import SYSTEM_CLOCK, Clock

from .outputs import SafeOutput
from .settle import Settle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveSound:
    """One sound on the stack; `started` and `ends` are on the player's clock."""

    key: str
    pattern: Pattern
    priority: int
    drill: bool
    started: float
    ends: float


def _phases(pattern: Pattern) -> list[tuple[bool, float]]:
    """The pattern as (on?, seconds) phases, without zero-length ones."""
    phases: list[tuple[bool, float]] = []
    for on_ms, off_ms in pattern.steps:
        if on_ms > 0:
            phases.append((True, on_ms / 1000.0))
        if off_ms > 0:
            phases.append((False, off_ms / 1000.0))
    return phases


class Player:
    """Non-blocking, cancellable player of the node's active sounds.

    `clock` stamps `ActiveSound.started`/`ends`, decides expiry and times the steps; the
    worker waits in real time for the differences unless `settle()` wakes it first.
    `on_fault(output, reason)` passes on the outputs' faults: `no_current` (feedback shows
    no current while sounding) and `total_cap` (the output's total sounding time is used up).
    Each is reported once while it stands, not once per blast.
    """

    def __init__(
        self, outputs: Sequence[SafeOutput], clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._outputs = list(outputs)
        self.clock = clock
        self.on_fault: Callable[[str, str], None] | None = None
        for out in self._outputs:
            out.on_fault = self._output_fault
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._sounds: dict[str, tuple[ActiveSound, int]] = {}
        self._closed = False
        # What the worker is playing: the (key, seq) it started, and where it is in the pattern.
        self._playing: tuple[str, int] | None = None
        self._phases: list[tuple[bool, float]] = []
        self._phase = 0
        self._phase_end = 0.0
        self._driven = False
        self._settle = Settle(self._cond)   # node/settle.py
        self._thread = threading.Thread(target=self._run, name="player", daemon=True)
        self._thread.start()

    # -- the stack -----------------------------------------------------------------------

    def play(
        self, key: str, pattern: Pattern, duration_s: float, priority: int, *, drill: bool = False
    ) -> None:
        """Add (or restart, if `key` is active) a sound; returns at once."""
        with self._cond:
            if self._closed:
                return
            now = self.clock.monotonic()
            sound = ActiveSound(key, pattern, priority, drill, now, now + max(0.0, duration_s))
            self._sounds[key] = (sound, next(self._seq))
            self._cond.notify_all()

    def silence(self, key: str | None = None) -> bool:
        """Remove one sound, or every sound (`None`); True if anything was removed."""
        with self._cond:
            if key is None:
                removed = bool(self._sounds)
                self._sounds.clear()
            else:
                removed = self._sounds.pop(key, None) is not None
            self._cond.notify_all()
            return removed

    def active(self) -> list[ActiveSound]:
        """The sounds still active, the one playing first."""
        with self._cond:
            now = self.clock.monotonic()
            entries = [e for e in self._sounds.values() if e[0].ends > now]
            entries.sort(key=lambda e: (e[0].priority, e[1]), reverse=True)
            return [sound for sound, _ in entries]

    @property
    def current(self) -> ActiveSound | None:
        """The sound playing now, if any."""
        sounds = self.active()
        return sounds[0] if sounds else None

    def settle(self, timeout: float = 2.0) -> bool:
        """Wake the worker and wait until it has acted on the clock's reading and every
        change to the stack made before this call.

        The outputs have then been told what the stack plays at that reading (each output's
        own worker may still be switching its pin: see SafeOutput.settle). False if the
        worker did not get there within `timeout` real seconds.
        """
        return self._settle.ask(timeout, lambda: self._closed)

    def close(self) -> None:
        """Stop playing for good; outputs off. The outputs themselves stay open."""
        with self._cond:
            self._closed = True
            self._sounds.clear()
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        for out in self._outputs:
            out.off()

    # -- the worker ----------------------------------------------------------------------

    def _top(self, now: float) -> tuple[ActiveSound, int] | None:
        for key in [k for k, (s, _) in self._sounds.items() if s.ends <= now]:
            log.info("sound %s ended", key)
            del self._sounds[key]
        if not self._sounds:
            return None
        # Highest priority, then the newest: the sequence number orders by arrival even
        # when two sounds share a clock reading.
        return max(self._sounds.values(), key=lambda e: (e[0].priority, e[1]))

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                asked = self._settle.begin()   # this pass sees every change before it
                now = self.clock.monotonic()
                top = self._top(now)
                if top is None:
                    self._playing = None
                    self._drive(False)
                    self._settled(asked)
                    self._cond.wait()
                    continue
                sound, seq = top
                if self._playing != (sound.key, seq):
                    # A new sound, or one resuming after a higher one ended: from the top.
                    self._playing = (sound.key, seq)
                    self._phases = _phases(sound.pattern)
                    self._phase = 0
                    self._phase_end = now + self._phases[0][1]
                    if self._driven:
                        # End the old on-step, so a gong's roll is phased from the new
                        # sound's first step (the output caps still see one on-period).
                        self._drive(False)
                while now >= self._phase_end:
                    self._phase = (self._phase + 1) % len(self._phases)
                    self._phase_end += self._phases[self._phase][1]
                    if now - self._phase_end > 1.0:
                        # Fell far behind (a stalled machine): restart the phase from now
                        # instead of racing through the missed steps.
                        self._phase_end = now + self._phases[self._phase][1]
                self._drive(self._phases[self._phase][0])
                self._settled(asked)
                self._cond.wait(max(0.0, min(self._phase_end, sound.ends) - now))
            self._drive(False)

    def _settled(self, asked: int) -> None:
        self._settle.answer(asked)
        self._cond.notify_all()   # a settle() waiting for this pass

    def _drive(self, on: bool) -> None:
        # Switching on again while already on is a no-op for the outputs, so two on-steps
        # with no gap between them are one continuous on-period, as the caps expect.
        if on:
            for out in self._outputs:
                out.on()
        elif self._driven:
            for out in self._outputs:
                out.off()
        self._driven = on

    def _output_fault(self, name: str, reason: str) -> None:
        # Called on the output's worker thread, without its lock; pass it on unchanged.
        callback = self.on_fault
        if callback is not None:
            try:
                callback(name, reason)
            except Exception:
                log.exception("player fault callback failed")
