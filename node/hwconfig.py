"""What is wired to a node's GPIO pins, and the checks that keep it safe.

The agent's TOML config builds these dataclasses; `check_hardware_config` is what
`tiengmo node --check` runs before anything is switched, so a technician learns about
an output on a boot-high pin in the workshop, not when a gong strikes at 3 a.m. after a
power cut (PROTOCOL.md rule 6).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocol import Kind

# GPIO 0-8 have their pull-ups enabled by the SoC at power-on on most Pis (and 0/1 are the
# HAT EEPROM bus), so a driver wired to one of them switches on while the Pi boots, before
# any software runs. Outputs must never sit on these pins.
UNSAFE_OUTPUT_PINS: frozenset[int] = frozenset(range(9))

# The BCM GPIO numbers brought out on the 40-pin header.
HEADER_PINS: frozenset[int] = frozenset(range(28))

OUTPUT_TYPES: frozenset[str] = frozenset({"gong", "siren"})

_KINDS: frozenset[str] = frozenset(k.value for k in Kind)


class HardwareConfigError(ValueError):
    """The hardware config is unsafe or inconsistent; `problems` says how."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("unsafe hardware config: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class ButtonConfig:
    """One alarm button: held for `hold_s`, it raises an alarm of `kind`."""

    pin: int                 # BCM GPIO number
    number: int              # button number on the wire (alarm "button" field), 1..
    kind: str                # protocol Kind value, e.g. "fire"
    hold_s: float = 1.5      # must be held this long to trigger (a brush does not)
    active_low: bool = True  # wired to ground with the internal pull-up


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    """One remote input: an output pin of a panel or a wireless receiver (docs/wiring.md).

    Active for `hold_s`, it raises an alarm of `kind` with source `remote` and
    `button` = `number` (remote inputs are numbered in their own series).
    """

    pin: int
    number: int
    kind: str
    hold_s: float = 0.5      # a receiver's relay closes while the fob's key is held
    active_low: bool = True  # a relay contact to ground, with the internal pull-up


@dataclass(frozen=True, slots=True)
class InputConfig:
    """The optional cancel input (a key switch or a hidden button)."""

    pin: int
    hold_s: float = 1.5
    active_low: bool = True


@dataclass(frozen=True, slots=True)
class OutputConfig:
    """One sounder and the hard limits the node enforces on it whatever a command says."""

    name: str                          # "gong", "siren" (appears in the birth's "outputs")
    type: str                          # "gong" (striker solenoid) or "siren"
    pin: int
    active_high: bool = True
    pulse_ms: int = 60                 # gong: longest single energised pulse; longer on-steps roll
    roll_gap_ms: int = 60              # gong: gap between strikes of a roll
    max_on_s: float = 30.0             # hard cap on one continuous on-period
    max_total_s: float = 600.0         # hard cap on total sounding time within total_window_s
    total_window_s: float = 3600.0
    feedback_pin: int | None = None    # current sensor: high while current flows
    feedback_grace_ms: int = 150       # how long after switching on current must appear
    # An off-gap shorter than this does not end a continuous on-period, so a caller that
    # toggles the output off for a moment cannot reset the max_on_s cap.
    min_rest_ms: int = 100


@dataclass(frozen=True, slots=True)
class HardwareConfig:
    """Everything wired to one node."""

    buttons: tuple[ButtonConfig, ...] = ()
    cancel: InputConfig | None = None
    outputs: tuple[OutputConfig, ...] = ()
    enable_pin: int | None = None      # dead-man enable line to the driver; toggled while alive
    enable_toggle_ms: int = 50
    power_good_pin: int | None = None  # high while mains power is present
    led_pin: int | None = None
    led_active_high: bool = True
    remotes: tuple[RemoteConfig, ...] = ()


def _pin_uses(cfg: HardwareConfig) -> list[tuple[str, int]]:
    """Every (use, pin) pair, named the way a technician reads the config file."""
    uses: list[tuple[str, int]] = [(f"button {b.number}", b.pin) for b in cfg.buttons]
    uses += [(f"remote input {r.number}", r.pin) for r in cfg.remotes]
    if cfg.cancel is not None:
        uses.append(("cancel input", cfg.cancel.pin))
    for out in cfg.outputs:
        uses.append((f"output '{out.name}'", out.pin))
        if out.feedback_pin is not None:
            uses.append((f"output '{out.name}' feedback", out.feedback_pin))
    if cfg.enable_pin is not None:
        uses.append(("enable line", cfg.enable_pin))
    if cfg.power_good_pin is not None:
        uses.append(("power-good input", cfg.power_good_pin))
    if cfg.led_pin is not None:
        uses.append(("status LED", cfg.led_pin))
    return uses


def _check_output(out: OutputConfig) -> list[str]:
    where = f"output '{out.name}'"
    problems: list[str] = []
    if not out.name:
        problems.append("an output has an empty name")
    if out.type not in OUTPUT_TYPES:
        problems.append(f"{where}: unknown type {out.type!r} (expected 'gong' or 'siren')")
    if out.pin in UNSAFE_OUTPUT_PINS:
        problems.append(
            f"{where}: GPIO {out.pin} is pulled high while the Pi boots; "
            "use GPIO 9-27 for outputs (see docs/wiring.md)"
        )
    if out.pulse_ms <= 0 or out.pulse_ms > 1000:
        problems.append(f"{where}: pulse_ms must be 1..1000, got {out.pulse_ms}")
    if out.roll_gap_ms <= 0 or out.roll_gap_ms > 5000:
        problems.append(f"{where}: roll_gap_ms must be 1..5000, got {out.roll_gap_ms}")
    if not 0 < out.max_on_s <= 600:
        problems.append(f"{where}: max_on_s must be > 0 and at most 600, got {out.max_on_s}")
    if not 0 < out.total_window_s <= 86_400:
        problems.append(
            f"{where}: total_window_s must be > 0 and at most 86400, got {out.total_window_s}"
        )
    if not 0 < out.max_total_s <= out.total_window_s:
        problems.append(
            f"{where}: max_total_s must be > 0 and at most total_window_s, got {out.max_total_s}"
        )
    if out.feedback_grace_ms <= 0 or out.feedback_grace_ms > 10_000:
        problems.append(
            f"{where}: feedback_grace_ms must be 1..10000, got {out.feedback_grace_ms}"
        )
    if out.min_rest_ms < 0 or out.min_rest_ms > 60_000:
        problems.append(f"{where}: min_rest_ms must be 0..60000, got {out.min_rest_ms}")
    return problems


def check_hardware_config(cfg: HardwareConfig) -> list[str]:
    """Human-readable problems with `cfg`, or [] when it is safe to switch on."""
    problems: list[str] = []
    seen: dict[int, str] = {}
    for use, pin in _pin_uses(cfg):
        if pin not in HEADER_PINS:
            problems.append(f"{use}: GPIO {pin} is not on the 40-pin header (use 0-27)")
        if pin in seen:
            problems.append(f"{use}: GPIO {pin} is already used by the {seen[pin]}")
        else:
            seen[pin] = use
    # Buttons and remote inputs are numbered in series of their own, by the same rules.
    inputs: list[tuple[str, str, Sequence[ButtonConfig | RemoteConfig]]] = [
        ("button", "buttons", cfg.buttons), ("remote input", "remote inputs", cfg.remotes)]
    for what, plural, items in inputs:
        numbers: set[int] = set()
        for b in items:
            if b.number < 1:
                problems.append(f"{what} {b.number}: {what} numbers start at 1")
            if b.number in numbers:
                problems.append(f"{what} {b.number}: the number is used by two {plural}")
            numbers.add(b.number)
            if b.kind not in _KINDS:
                problems.append(f"{what} {b.number}: unknown kind {b.kind!r} "
                                f"(one of {', '.join(sorted(_KINDS))})")
            if not 0.05 <= b.hold_s <= 30:
                problems.append(f"{what} {b.number}: hold_s must be 0.05..30, got {b.hold_s}")
    if cfg.cancel is not None and not 0.05 <= cfg.cancel.hold_s <= 30:
        problems.append(f"cancel input: hold_s must be 0.05..30, got {cfg.cancel.hold_s}")
    names: set[str] = set()
    for out in cfg.outputs:
        if out.name in names:
            problems.append(f"output '{out.name}': two outputs have this name")
        names.add(out.name)
        problems.extend(_check_output(out))
    if not 5 <= cfg.enable_toggle_ms <= 1000:
        problems.append(f"enable_toggle_ms must be 5..1000, got {cfg.enable_toggle_ms}")
    return problems
