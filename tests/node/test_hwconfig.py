"""check_hardware_config: what `tiengmo node --check` tells a technician before switching on."""

from __future__ import annotations

from dataclasses import replace

from node.hwconfig import (
    UNSAFE_OUTPUT_PINS,
    ButtonConfig,
    HardwareConfig,
    InputConfig,
    OutputConfig,
    check_hardware_config,
)
from protocol import Kind

# The reference build of docs/wiring.md (and node/examples/node.toml).
REFERENCE = HardwareConfig(
    buttons=(ButtonConfig(pin=17, number=1, kind="theft"),
             ButtonConfig(pin=27, number=2, kind="fire")),
    cancel=InputConfig(pin=22),
    outputs=(OutputConfig(name="gong", type="gong", pin=23, feedback_pin=24),
             OutputConfig(name="siren", type="siren", pin=26)),
    enable_pin=25,
    power_good_pin=5,   # an input may sit on a boot-high pin
    led_pin=12,
)


def one(cfg: HardwareConfig) -> str:
    problems = check_hardware_config(cfg)
    assert len(problems) == 1, problems
    return problems[0]


def test_reference_build_is_clean() -> None:
    assert check_hardware_config(REFERENCE) == []
    assert check_hardware_config(HardwareConfig()) == []


def test_boot_high_pins_are_gpio_0_to_8() -> None:
    assert frozenset(range(9)) == UNSAFE_OUTPUT_PINS


def test_output_on_a_boot_high_pin_is_refused() -> None:
    for pin in (0, 4, 8):
        cfg = replace(REFERENCE, outputs=(OutputConfig(name="gong", type="gong", pin=pin),))
        problem = one(cfg)
        assert f"GPIO {pin}" in problem and "boot" in problem and "'gong'" in problem


def test_inputs_may_use_low_pins() -> None:
    # Only outputs are dangerous on boot-high pins; a button there is fine.
    cfg = replace(REFERENCE, buttons=(ButtonConfig(pin=6, number=1, kind="fire"),))
    assert check_hardware_config(cfg) == []


def test_pin_used_twice_names_both_uses() -> None:
    cfg = replace(REFERENCE, led_pin=23)
    problem = one(cfg)
    assert "status LED" in problem and "GPIO 23" in problem and "output 'gong'" in problem


def test_feedback_pin_clash_is_found() -> None:
    cfg = replace(REFERENCE, power_good_pin=24)
    assert "feedback" in one(cfg)


def test_pin_off_the_header() -> None:
    cfg = replace(REFERENCE, enable_pin=40)
    assert "GPIO 40" in one(cfg)


def test_unknown_output_type() -> None:
    cfg = replace(REFERENCE, outputs=(OutputConfig(name="bell", type="bell", pin=23),))
    assert "unknown type 'bell'" in one(cfg)


def test_duplicate_output_names() -> None:
    cfg = replace(REFERENCE, outputs=(OutputConfig(name="gong", type="gong", pin=23),
                                      OutputConfig(name="gong", type="siren", pin=26)))
    assert "two outputs" in one(cfg)


def test_duplicate_button_numbers_and_bad_kind() -> None:
    cfg = replace(REFERENCE, buttons=(ButtonConfig(pin=17, number=1, kind="theft"),
                                      ButtonConfig(pin=27, number=1, kind="fyre")))
    problems = check_hardware_config(cfg)
    assert any("button 1" in p and "two buttons" in p for p in problems)
    assert any("unknown kind 'fyre'" in p for p in problems)


def test_every_protocol_kind_is_a_valid_button_kind() -> None:
    for kind in Kind:
        cfg = replace(REFERENCE, buttons=(ButtonConfig(pin=17, number=1, kind=kind.value),))
        assert check_hardware_config(cfg) == []


def test_bad_ranges() -> None:
    bad = [
        OutputConfig(name="g", type="gong", pin=23, pulse_ms=0),
        OutputConfig(name="g", type="gong", pin=23, roll_gap_ms=-1),
        OutputConfig(name="g", type="siren", pin=23, max_on_s=0),
        OutputConfig(name="g", type="siren", pin=23, max_total_s=7200, total_window_s=3600),
        OutputConfig(name="g", type="siren", pin=23, feedback_grace_ms=0),
    ]
    for out in bad:
        cfg = HardwareConfig(outputs=(out,))
        assert "output 'g'" in one(cfg)
    assert "hold_s" in one(HardwareConfig(buttons=(ButtonConfig(17, 1, "fire", hold_s=0),)))
    zero = HardwareConfig(buttons=(ButtonConfig(17, 0, "fire"),))
    assert "button numbers start at 1" in one(zero)
    assert "enable_toggle_ms" in one(HardwareConfig(enable_toggle_ms=0))
