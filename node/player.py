"""Pattern player with the priority stack (stub, being implemented)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from protocol import Pattern

from .outputs import SafeOutput


@dataclass(frozen=True)
class ActiveSound:
    key: str
    pattern: Pattern
    priority: int
    drill: bool
    started: float
    ends: float


class Player:
    def __init__(
        self, outputs: Sequence[SafeOutput], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.on_fault: Callable[[str, str], None] | None = None
        self._sounds: dict[str, ActiveSound] = {}
        self._clock = clock

    def play(
        self, key: str, pattern: Pattern, duration_s: float, priority: int, *, drill: bool = False
    ) -> None:
        now = self._clock()
        self._sounds[key] = ActiveSound(key, pattern, priority, drill, now, now + duration_s)

    def silence(self, key: str | None = None) -> bool:
        if key is None:
            had = bool(self._sounds)
            self._sounds.clear()
            return had
        return self._sounds.pop(key, None) is not None

    def active(self) -> list[ActiveSound]:
        return sorted(self._sounds.values(), key=lambda s: (s.priority, s.started), reverse=True)

    @property
    def current(self) -> ActiveSound | None:
        a = self.active()
        return a[0] if a else None

    def close(self) -> None:
        self._sounds.clear()
