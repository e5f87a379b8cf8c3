"""Commands from the hub (PROTOCOL.md `cmd`, rules 4 and 5), run on the agent's thread.

- Idempotent on `cmd_id`: a copy delivered twice gets the same result again
  and never restarts a sound; a new `cmd_id` for the same incident does.
- Expiry is judged on the hub's clock estimate; until the first sample a
  command is held for up to `clock_hold_s`, then judged on the node's own.
- Every command gets a `result`: `started` then `done` (or `failed`) for
  sounds and tests, `done` for silence and ping, `rejected` for expired or
  invalid ones.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from protocol import PRIORITY_DRILL, Action, Command, ResultStatus

from .clock import HubClock
from .config import LocalPattern
from .player import Player

log = logging.getLogger("tiengmo.node.commands")

# (cmd_id, status, reason)
ResultSink = Callable[[str, ResultStatus, str | None], None]


@dataclass(slots=True)
class _Held:
    cmd: Command
    since: float


@dataclass(slots=True)
class _Sounding:
    cmd_id: str
    key: str


class CommandRunner:
    """Holds, judges, runs and reports commands; `tick` drives time-based work."""

    def __init__(self, *, player: Player, clock: HubClock, publish_result: ResultSink,
                 silence_incident: Callable[[str], None], drill: LocalPattern,
                 has_outputs: bool, clock_hold_s: float, test_duration_s: float,
                 memory: int, mono: Callable[[], float],
                 player_clock: Callable[[], float] = time.monotonic) -> None:
        self.player = player
        self.clock = clock
        self._result = publish_result
        self._silence_incident = silence_incident
        self._drill = drill
        self._has_outputs = has_outputs
        self._hold_s = clock_hold_s
        self._test_s = test_duration_s
        self._memory_size = memory
        self._mono = mono
        self._player_clock = player_clock   # the clock `player` stamps ActiveSound.ends on
        # cmd_id -> latest (status, reason), or None while held/not yet answered
        self._memory: OrderedDict[str, tuple[ResultStatus, str | None] | None] = OrderedDict()
        self._held: list[_Held] = []
        self._sounding: list[_Sounding] = []

    # -- intake --------------------------------------------------------------

    def receive(self, cmd: Command) -> None:
        if cmd.cmd_id in self._memory:
            last = self._memory[cmd.cmd_id]
            log.info("command %s (%s) again: answering as before", cmd.cmd_id, cmd.action.value)
            if last is not None:
                self._result(cmd.cmd_id, last[0], last[1])
            return
        self._remember(cmd.cmd_id, None)
        if not self.clock.has_sample and self._hold_s > 0:
            log.info("command %s held: no hub clock sample yet", cmd.cmd_id)
            self._held.append(_Held(cmd, self._mono()))
            return
        self._judge(cmd)

    def invalid(self, cmd_id: str, reason: str) -> None:
        """A command we could read the id of but not accept: say so, once per id."""
        if cmd_id in self._memory:
            return
        self._answer(cmd_id, ResultStatus.REJECTED, reason)

    # -- time ----------------------------------------------------------------

    def tick(self) -> float | None:
        """Release held commands and report ended sounds; then `next_due_s()`."""
        if self._held:
            now = self._mono()
            release = [h for h in self._held
                       if self.clock.has_sample or now - h.since >= self._hold_s]
            for h in release:
                self._held.remove(h)
                if not self.clock.has_sample:
                    log.warning("command %s: no hub clock after %.0f s, judging on own clock",
                                h.cmd.cmd_id, self._hold_s)
                self._judge(h.cmd)
        if self._sounding:
            live = {s.key for s in self.player.active()}
            for s in [s for s in self._sounding if s.key not in live]:
                self._sounding.remove(s)
                self._answer(s.cmd_id, ResultStatus.DONE, None)
        return self.next_due_s()

    def next_due_s(self) -> float | None:
        """Seconds until `tick` has work (0: now), None while nothing is held or sounding.

        Only this runner's own commands count: a longer sound that is not theirs
        (a local alarm) must not hold back a `done`. A held command is also
        released by a first clock sample, which comes as an event the agent ticks
        after anyway.
        """
        due: list[float] = []
        if self._held:
            now = self._mono()
            due.extend(h.since + self._hold_s - now for h in self._held)
        if self._sounding:
            ends = {s.key: s.ends for s in self.player.active()}
            now = self._player_clock()
            for s in self._sounding:
                end = ends.get(s.key)
                due.append(0.0 if end is None else end - now)
        return max(0.0, min(due)) if due else None

    def on_fault(self, output: str, reason: str) -> None:
        """A sounder showed no current while sounding: the sound playing now failed."""
        current = self.player.current
        for s in [s for s in self._sounding if current is None or s.key == current.key]:
            self._sounding.remove(s)
            self._answer(s.cmd_id, ResultStatus.FAILED, f"output {output}: {reason}"[:200])

    # -- judging and running -------------------------------------------------

    def _judge(self, cmd: Command) -> None:
        now = self.clock.judge_ms()
        if now > cmd.expires_ts_ms:
            late = (now - cmd.expires_ts_ms) / 1000
            log.warning("command %s (%s) expired %.1f s ago on the %s clock: not acted on",
                        cmd.cmd_id, cmd.action.value, late,
                        "hub" if self.clock.has_sample else "node's own")
            self._answer(cmd.cmd_id, ResultStatus.REJECTED, "expired")
            return
        if cmd.action is Action.SOUND:
            self._sound(cmd)
        elif cmd.action is Action.SILENCE:
            if cmd.incident_id is not None:
                self.player.silence(cmd.incident_id)
                self._silence_incident(cmd.incident_id)
            else:
                self.player.silence(None)
            self._answer(cmd.cmd_id, ResultStatus.DONE, None)
        elif cmd.action is Action.TEST:
            self._test(cmd)
        else:   # ping
            self._answer(cmd.cmd_id, ResultStatus.DONE, None)

    def _sound(self, cmd: Command) -> None:
        assert cmd.pattern is not None and cmd.duration_s is not None \
            and cmd.priority is not None   # required for `sound` by protocol validation
        if not self._has_outputs:
            self._answer(cmd.cmd_id, ResultStatus.FAILED, "node has no outputs")
            return
        key = cmd.incident_id or cmd.cmd_id
        # A new cmd_id for a key already sounding (an escalation) restarts it;
        # the command it replaces is done.
        for s in [s for s in self._sounding if s.key == key]:
            self._sounding.remove(s)
            self._answer(s.cmd_id, ResultStatus.DONE, None)
        self.player.play(key, cmd.pattern, float(cmd.duration_s), cmd.priority,
                         drill=cmd.is_drill)
        self._sounding.append(_Sounding(cmd.cmd_id, key))
        self._answer(cmd.cmd_id, ResultStatus.STARTED, None)

    def _test(self, cmd: Command) -> None:
        if not self._has_outputs:
            self._answer(cmd.cmd_id, ResultStatus.FAILED, "node has no outputs")
            return
        duration = float(cmd.duration_s) if cmd.duration_s is not None else self._test_s
        self.player.play(cmd.cmd_id, self._drill.pattern, duration, PRIORITY_DRILL, drill=True)
        self._sounding.append(_Sounding(cmd.cmd_id, cmd.cmd_id))
        self._answer(cmd.cmd_id, ResultStatus.STARTED, None)

    # -- bookkeeping ---------------------------------------------------------

    def _answer(self, cmd_id: str, status: ResultStatus, reason: str | None) -> None:
        self._remember(cmd_id, (status, reason))
        self._result(cmd_id, status, reason)

    def _remember(self, cmd_id: str, value: tuple[ResultStatus, str | None] | None) -> None:
        self._memory[cmd_id] = value
        self._memory.move_to_end(cmd_id)
        while len(self._memory) > self._memory_size:
            self._memory.popitem(last=False)

    def held_count(self) -> int:
        return len(self._held)
