"""The node agent on real kernel GPIO lines: Debian's kernel in QEMU with gpio-sim.

Nothing here mocks a pin. The agent runs under the node role's systemd unit with
gpiozero's LGPIOFactory on /dev/gpiochip0 of a 32-line gpio-sim chip (BCM number =
line offset), inside a VM with no network device; the rig (tests/hil/vm/rig_vm.py)
drives and reads the lines through gpio-sim's sysfs attributes and the kernel's
line-info events. See docs/hil.md for the rig, its time budget and what it proved.

Time budget (docs/hil.md has the measurements): TIME_BUDGET_S for the whole module,
a cold image build included (CI's machine is fresh every time), and VM_BUDGET_S of it
for the VM run under TCG on 2 cores (KVM is probed first and used when it boots).
Past either the test fails; pytest's timeout is a last resort above both.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.hil import image, rig

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TIME_BUDGET_S = 900.0
VM_BUDGET_S = 600.0
pytestmark = pytest.mark.timeout(TIME_BUDGET_S + 300)


@pytest.fixture(scope="module")
def hil_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    started = time.monotonic()
    folder = image.ensure_image()
    built = time.monotonic()
    work = tmp_path_factory.mktemp("hil")
    steps = rig.prepare_run(folder, work, work / "prepare.log")
    prepared = time.monotonic()
    kvm = rig.probe_kvm(folder)
    report = rig.run_vm(folder, work, kvm["kvm"], VM_BUDGET_S)
    report["accel"] = kvm
    report["image"] = json.loads((folder / "build.json").read_text())
    total = time.monotonic() - started
    report["timings"].update({"image_ready_s": round(built - started, 1),
                              "prepare_run_s": round(prepared - built, 1),
                              "prepare_steps_s": steps, "total_s": round(total, 1),
                              "vm_budget_s": VM_BUDGET_S, "budget_s": TIME_BUDGET_S})
    ARTIFACTS.mkdir(exist_ok=True)
    text = json.dumps(report, indent=1, ensure_ascii=False)
    (ARTIFACTS / "hil-report.json").write_text(text)
    print(text)
    assert not report["errors"], report["errors"]
    assert total <= TIME_BUDGET_S, f"the rig took {total:.0f} s, over its {TIME_BUDGET_S:.0f} s"
    return report


def test_the_agent_runs_on_the_sim_chip_with_lgpio(hil_report: dict[str, Any]) -> None:
    r = hil_report
    # gpio-sim was built for the kernel that booted, and the kernel took it.
    assert r["kernel"] == r["image"]["release"]
    assert r["image"]["module_vermagic"].startswith(r["kernel"] + " ")
    assert r["module_loaded"]
    assert r["chip"]["lines"] >= 28
    assert r["check"]["code"] == 0, r["check"]
    assert r["timings"]["agent_start_to_online_s"] is not None
    requested = {(e["line"], e["event"]): e for e in r["phases"]["requests"]["events"]}
    # Bias flags reach the kernel: the button asks for a pull-up, the current sensor
    # for a pull-down, the outputs are outputs; every line is the agent's.
    assert "bias_pull_up" in requested["button", "requested"]["flags"]
    assert "bias_pull_down" in requested["feedback", "requested"]["flags"]
    for name in ("gong", "enable", "led"):
        assert "output" in requested[name, "requested"]["flags"], name
    levels = r["phases"]["requests"]["levels_after_start"]
    assert levels["button"] == 1 and levels["gong"] == 0


def test_a_short_press_sounds_nothing_and_a_long_one_strikes_the_pattern(
        hil_report: dict[str, Any]) -> None:
    short, long_ = hil_report["phases"]["short_press"], hil_report["phases"]["long_press"]
    assert short["gong_strikes"] == 0 and not short["alarm_messages"]
    assert long_["alarm_messages"], "no alarm published"
    p = long_["pattern"]
    hold = hil_report["params"]["hold_s"]
    # The kernel times the hold: no strike before hold_s. Under TCG on a loaded
    # machine the VM stalls for tenths of a second, even seconds, at times (docs/hil.md):
    # a stall stretches a strike or swallows some, so half the strikes, not all, must
    # be within the tolerance of the pattern; the report keeps every strike's error.
    assert hold <= p["first_rise_after_press_s"] <= hold + 1.0
    assert p["strikes"] >= p["expected_strikes"] // 2
    tol = p["tolerance_ms"]
    good = [s for s in p["per_strike"] if abs(s["rise_error_ms"]) <= tol
            and s["width_error_ms"] is not None and abs(s["width_error_ms"]) <= tol]
    assert len(good) >= max(3, len(p["per_strike"]) / 2), p["per_strike"]


def test_no_current_makes_a_failed_result(hil_report: dict[str, Any]) -> None:
    phase = hil_report["phases"]["no_current"]
    statuses = [m["status"] for m in phase["results"]]
    assert "failed" in statuses, phase["results"]
    failed = next(m for m in phase["results"] if m["status"] == "failed")
    assert "gong" in failed["reason"]


def test_a_stopped_agent_stops_toggling_the_enable_line(hil_report: dict[str, Any]) -> None:
    phase = hil_report["phases"]["main_loop_stopped"]
    # 20 edges a second at toggle_ms 50; a starved VM toggles fewer, never none.
    assert phase["edges_running"] >= 3
    assert phase["edges_stopped"] == 0
    assert phase["edges_resumed"] >= 3


def test_sigkill_releases_the_lines_and_exec_stop_post_drives_them_off(
        hil_report: dict[str, Any]) -> None:
    phase = hil_report["phases"]["sigkill"]
    assert phase["restarted_after_s"] is not None
    out = " ".join(phase["exec_stop_post_output"])
    assert "gong: GPIO 23 off" in out and "enable: GPIO 25 off" in out, \
        f"ExecStopPost did not drive the outputs off: {out!r}"
    driven: dict[str, int] = {}
    for name in ("gong", "enable"):
        # Times are seconds after the SIGKILL (events) and after 0.2 s before it (lines).
        events = [e for e in phase["events"] if e["line"] == name and e["t"] >= 0]
        line = [(t - 0.2, v) for t, v in phase["lines"][name]]
        released = events[0]
        # The kernel, not the agent, lets go of the line at the kill.
        assert released["event"] == "released" and released["t"] < 1.0, (name, events)
        # ExecStopPost: gpiozero claims the line as an input, then as an output at 0,
        # then lets go (its close() makes it an input again until the process exits).
        post = next(e for e in events if e["event"] == "requested" and "output" in e["flags"])
        # Driven, not inverted: gpiozero's initial_value=False on an active-high line is 0.
        assert "active_low" not in post["flags"], (name, post)
        driven[name] = post["value_after"]
        let_go = next((e for e in events if e["event"] == "released" and e["t"] > post["t"]),
                      None)
        assert let_go is not None, (name, "never released after ExecStopPost", events)
        # Released, the line reads its outside pull (up, here) until ExecStopPost, and
        # again after it.
        assert _level_at(line, released["t"] + 0.3) == 1, (name, line, events)
        assert [v for t, v in line if released["t"] + 0.3 < t < post["t"]] in ([], [1])
        assert _level_at(line, let_go["t"] + 0.5) == 1, (name, line, events)
    # The level read right after ExecStopPost's request is 0 where the reader was in
    # time, but ExecStopPost holds a line for only 6 to 8 ms: in one CI run, with the
    # site's rollout on the other core, the reader missed both windows and read the
    # pull after the release. So the level is reported (hil-report.json), not required;
    # the request itself (an active-high output, asserted above) and ExecStopPost's
    # "off" lines are the proof, and the levels --outputs-off drives are asserted on
    # mock pins in tests/node.
    print(f"levels read right after ExecStopPost's requests: {driven}")


def _level_at(line: list[tuple[float, int]], when: float) -> int:
    """The sampled level of a line at `when` (its last change at or before it)."""
    return [v for t, v in line if t <= when][-1]
