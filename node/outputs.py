"""SafeOutput: one sounder with its hard caps (stub, being implemented)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .hwconfig import OutputConfig


class SafeOutput:
    """A gong striker or siren driver that enforces PROTOCOL.md rule 6 itself."""

    def __init__(self, cfg: OutputConfig, pin_factory: Any = None) -> None:
        self.config = cfg
        self.name = cfg.name
        self.on_fault: Callable[[str, str], None] | None = None

    def on(self) -> bool:
        return False

    def off(self) -> None:
        pass

    @property
    def is_on(self) -> bool:
        return False

    def close(self) -> None:
        pass


class EnableLine:
    """The dead-man enable line (stub)."""

    def __init__(self, pin: int, toggle_ms: int = 50, pin_factory: Any = None) -> None:
        self.pin = pin

    def close(self) -> None:
        pass
