"""Inside the VM (run by hil-rig.service through rig.sh): the node agent on gpio-sim lines.

Everything here talks to the kernel the way a technician's meter would: the agent runs
under its own systemd unit (the node role's, rendered by the host) and knows nothing of
this script; the script pulls lines through gpio-sim's sysfs attributes, samples the
output lines' values, reads the kernel's line-info events and listens on the broker.
The report (JSON) goes to the shared folder's out/ and to the serial console.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

SHARE = Path(sys.argv[1])
OUT = SHARE / "out"
sys.path.insert(0, str(SHARE))
from lines import InfoWatch, Sampler, SimChip  # noqa: E402

VENV = "/opt/tiengmo/venv"
UNIT = "tiengmo-node"
PARAMS: dict[str, Any] = json.loads((SHARE / "params.json").read_text())
PINS: dict[str, int] = PARAMS["pins"]
OUTPUT_LINES = ["gong", "enable", "led"]
report: dict[str, Any] = {"params": PARAMS, "timings": {}, "phases": {}, "errors": []}
T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"HIL [{time.monotonic() - T0:7.2f}] {msg}", flush=True)


def sh(*cmd: str, check: bool = True, env: dict[str, str] | None = None,
       timeout: float = 300) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stdout}{p.stderr}")
    return (p.stdout + p.stderr).strip()


class Broker:
    """Mosquitto on 127.0.0.1 inside the VM and a listener on everything under the prefix."""

    def __init__(self) -> None:
        # Debian's own broker unit (enabled by a first boot's presets) would hold the port.
        sh("systemctl", "stop", "mosquitto.service", check=False)
        conf = Path("/run/hil-mosquitto.conf")
        conf.write_text("listener 1883 127.0.0.1\nallow_anonymous true\n")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)])
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        self.messages: list[tuple[float, str, Any]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hil-listener")
        self.client.on_message = self._on_message
        for _ in range(100):
            try:
                self.client.connect("127.0.0.1", 1883)
                break
            except OSError:
                time.sleep(0.2)
        self.client.subscribe(f"{PARAMS['prefix']}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            body: Any = json.loads(msg.payload)
        except ValueError:
            body = msg.payload.decode(errors="replace")
        self.messages.append((time.monotonic(), msg.topic, body))

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def wait(self, pred: Any, timeout: float) -> tuple[float, str, Any] | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for m in list(self.messages):
                if pred(m):
                    return m
            time.sleep(0.05)
        return None

    def close(self) -> None:
        self.client.loop_stop()
        self.proc.terminate()
        self.proc.wait(10)


class CurrentSensor(threading.Thread):
    """The gong's current sensor: its line follows the gong line while `working`."""

    def __init__(self, chip: SimChip) -> None:
        super().__init__(name="current-sensor", daemon=True)
        self.chip = chip
        self.working = True
        self._level = 0

    def run(self) -> None:
        while True:
            want = self.chip.value(PINS["gong"]) if self.working else 0
            if want != self._level:
                self.chip.pull(PINS["feedback"], bool(want))
                self._level = want
            time.sleep(0.001)


def main_pid() -> int:
    return int(sh("systemctl", "show", "-p", "MainPID", "--value", UNIT))


def install(chip: SimChip) -> None:
    """What is left for the running VM: the node was installed into its root by the host
    (tests/hil/rig.py, the node role's pip command and unit); here the chip's device
    gets the gpio group, as Pi OS's udev rule gives /dev/gpiochip*, and --check runs."""
    sh("chgrp", "gpio", chip.devnode)
    sh("chmod", "0660", chip.devnode)
    t = time.monotonic()
    check = subprocess.run(["runuser", "-u", "tiengmo", "--", f"{VENV}/bin/tiengmo", "node",
                            "--config", "/etc/tiengmo/node.toml", "--check"],
                           capture_output=True, text=True)
    report["timings"]["check_s"] = round(time.monotonic() - t, 2)
    report["check"] = {"code": check.returncode, "output": (check.stdout + check.stderr).strip()}


def pattern_compare(rises: list[float], falls: list[float], start: float) -> dict[str, Any]:
    """Each strike's rise and fall against the pattern, from the first rise."""
    on_s, off_s = (x / 1000 for x in PARAMS["pattern_step_ms"])
    period = on_s + off_s
    first = rises[0]
    errors = []
    for k, r in enumerate(rises):
        want_r = first + k * period
        fall = next((f for f in falls if f > r), None)
        errors.append({"strike": k, "rise_s": round(r - start, 4),
                       "rise_error_ms": round((r - want_r) * 1000, 1),
                       "width_ms": None if fall is None else round((fall - r) * 1000, 1),
                       "width_error_ms": None if fall is None
                       else round((fall - r - on_s) * 1000, 1)})
    worst = max(max(abs(e["rise_error_ms"]), abs(e["width_error_ms"] or 0)) for e in errors)
    return {"strikes": len(rises), "expected_strikes": round(PARAMS["duration_s"] / period),
            "first_rise_after_press_s": round(first - start, 4), "per_strike": errors,
            "worst_error_ms": worst, "tolerance_ms": PARAMS["tolerance_ms"]}


def run() -> None:
    report["kernel"] = sh("uname", "-r")
    report["timings"]["vm_uptime_at_rig_start_s"] = float(
        Path("/proc/uptime").read_text().split()[0])
    # The initramfs loaded it (vm/init.sh): the kernel checked its vermagic then.
    report["module_loaded"] = Path("/sys/module/gpio_sim").is_dir()
    chip = SimChip("hil", PARAMS["lines"])
    report["chip"] = {"chip": chip.chip, "dev": chip.dev, "lines": chip.lines,
                      "label": (chip.sysfs / "label").read_text().strip()
                      if (chip.sysfs / "label").exists() else None}
    say(f"gpio-sim live: {chip.chip} ({chip.dev}), {chip.lines} lines")
    install(chip)
    say(f"--check: {report['check']}")
    all_lines = {**PINS}
    watch = InfoWatch(chip.devnode, all_lines, chip)
    watch.start()
    sampler = Sampler(chip, {n: PINS[n] for n in ("gong", "enable", "led", "feedback",
                                                  "button")})
    sampler.start()
    broker = Broker()
    import protocol
    from protocol.messages import Action, Command, HubTime, Pattern
    topics = protocol.Topics(PARAMS["prefix"])
    node = PARAMS["node_id"]
    broker.publish(topics.hub_time(), protocol.encode(
        HubTime(hub_id="hil-hub", ts_ms=int(time.time() * 1000))), retain=True)
    sensor = CurrentSensor(chip)
    sensor.start()
    phases = report["phases"]

    t = time.monotonic()
    sh("systemctl", "start", UNIT)           # Type=notify: returns at READY=1
    report["timings"]["agent_start_to_ready_s"] = round(time.monotonic() - t, 2)
    online = broker.wait(lambda m: m[1] == topics.node_state(node)
                         and isinstance(m[2], dict) and m[2].get("online") is True, 60)
    report["timings"]["agent_start_to_online_s"] = None if online is None \
        else round(online[0] - t, 2)
    say(f"agent ready after {report['timings']['agent_start_to_ready_s']} s, online: "
        f"{online is not None}")
    time.sleep(1.0)
    phases["requests"] = {
        "events": [e for e in watch.events if e["t"] >= t],
        "levels_after_start": {n: chip.value(PINS[n]) for n in PINS},
        "pulls": {n: chip.get_pull(PINS[n]) for n in PINS}}

    # -- buttons: 0.6 s is a brush, 1.6 s an alarm ------------------------------------
    for name, hold in (("short_press", PARAMS["short_press_s"]),
                       ("long_press", PARAMS["long_press_s"])):
        before = len(broker.messages)
        pressed = chip.pull(PINS["button"], up=False)
        time.sleep(hold)
        released = chip.pull(PINS["button"], up=True)
        wait = PARAMS["duration_s"] + 2.0 if name == "long_press" else 2.5
        time.sleep(wait)
        end = time.monotonic()
        rises = sampler.edges("gong", pressed, end, value=1)
        falls = sampler.edges("gong", pressed, end, value=0)
        alarms = [m for m in broker.messages[before:] if m[1] == topics.alarm(node)]
        phase: dict[str, Any] = {
            "held_s": round(released - pressed, 3), "gong_strikes": len(rises),
            "alarm_messages": [m[2] for m in alarms],
            "button_line": sampler.timeline("button", pressed - 0.1, end),
            "gong_line": sampler.timeline("gong", pressed, end),
            "led_line": sampler.timeline("led", pressed - 0.5, end),
            "enable_edges": len(sampler.edges("enable", pressed, end))}
        if rises:
            phase["pattern"] = pattern_compare(rises, falls, pressed)
        if alarms:
            phase["alarm_after_press_s"] = round(alarms[0][0] - pressed, 3)
        phases[name] = phase
        say(f"{name}: {len(rises)} strike(s), {len(alarms)} alarm message(s)")

    # -- the current sensor sees nothing: a `failed` result ---------------------------
    sensor.working = False
    now_ms = int(time.time() * 1000)
    cmd = Command(cmd_id=protocol.new_id(), action=Action.SOUND, ts_ms=now_ms,
                  expires_ts_ms=now_ms + 600_000,
                  pattern=Pattern("hil", (tuple(PARAMS["pattern_step_ms"]),)),
                  duration_s=2, priority=5)
    sent = time.monotonic()
    broker.publish(topics.node_cmd(node), protocol.encode(cmd))
    failed = broker.wait(lambda m: m[1] == topics.result(node) and isinstance(m[2], dict)
                         and m[2].get("cmd_id") == cmd.cmd_id
                         and m[2].get("status") == "failed", 40)
    time.sleep(2.5)
    end = time.monotonic()
    phases["no_current"] = {
        "results": [m[2] for m in broker.messages if m[1] == topics.result(node)
                    and isinstance(m[2], dict) and m[2].get("cmd_id") == cmd.cmd_id],
        "failed_after_s": None if failed is None else round(failed[0] - sent, 3),
        "gong_line": sampler.timeline("gong", sent, end),
        "feedback_line": sampler.timeline("feedback", sent, end)}
    sensor.working = True
    say(f"no current: failed result {'seen' if failed else 'NOT seen'}")

    # -- the main loop stops: the enable line stops toggling --------------------------
    pid = main_pid()
    window = PARAMS["enable_window_s"]
    a = time.monotonic()
    time.sleep(window)
    os.kill(pid, signal.SIGSTOP)
    b = time.monotonic()
    time.sleep(window + 0.2)
    c = time.monotonic()                    # before SIGCONT: the stopped window ends here
    os.kill(pid, signal.SIGCONT)
    time.sleep(window)
    d = time.monotonic()
    phases["main_loop_stopped"] = {
        "how": "SIGSTOP to the agent's main PID, SIGCONT after",
        "window_s": window, "toggle_ms": PARAMS["toggle_ms"],
        "edges_running": len(sampler.edges("enable", a, b)),
        "edges_stopped": len(sampler.edges("enable", b + 0.2, c)),
        "edges_resumed": len(sampler.edges("enable", c + 0.1, d)),
        "enable_line": sampler.timeline("enable", a, d)}
    say(f"enable edges running/stopped/resumed: {phases['main_loop_stopped']}")

    # -- SIGKILL: what every output line does, then ExecStopPost ----------------------
    # Every output line's outside pull goes up first: a released line then reads 1, so
    # the 0 that ExecStopPost drives is visible (the wiring's pull-downs would hide it).
    for n in OUTPUT_LINES:
        chip.pull(PINS[n], up=True)
    time.sleep(0.3)
    pid = main_pid()
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    restarted = None
    while time.monotonic() - killed < 180:    # ExecStopPost, RestartSec, a slow start
        p = main_pid()
        if p not in (0, pid) and sh("systemctl", "is-active", UNIT, check=False) == "active":
            restarted = time.monotonic()
            break
        time.sleep(0.1)
    time.sleep(1.0)
    end = time.monotonic()
    journal = sh("journalctl", "-u", UNIT, "-o", "short-monotonic", "--no-pager", check=False)
    phases["sigkill"] = {
        "restarted_after_s": None if restarted is None else round(restarted - killed, 2),
        "lines": {n: sampler.timeline(n, killed - 0.2, end) for n in OUTPUT_LINES},
        "events": [{**e, "t": round(float(e["t"]) - killed, 4)}   # type: ignore[arg-type]
                   for e in watch.events if killed - 0.2 <= float(e["t"]) < end],  # type: ignore[arg-type]
        "exec_stop_post_output": [ln for ln in journal.splitlines()
                                  if ": GPIO " in ln and " off" in ln][-4:]}
    for n in OUTPUT_LINES:
        chip.pull(PINS[n], up=False)
    say("sigkill: recorded")

    # -- a graceful stop -------------------------------------------------------------
    t = time.monotonic()
    sh("systemctl", "stop", UNIT)
    time.sleep(0.5)
    end = time.monotonic()
    phases["stop"] = {"stop_s": round(end - t - 0.5, 2),
                      "lines": {n: sampler.timeline(n, t, end) for n in OUTPUT_LINES},
                      "levels_after": {n: chip.value(PINS[n]) for n in PINS}}
    sampler.stop()
    report["timings"]["samples"] = sampler.samples
    report["journal_tail"] = journal.splitlines()[-60:]
    broker.close()


def main() -> None:
    OUT.mkdir(exist_ok=True)
    try:
        run()
    except Exception:
        report["errors"].append(traceback.format_exc())
        report["journal_tail"] = sh("journalctl", "-b", "--no-pager", "-n", "120",
                                    check=False).splitlines()
    report["timings"]["rig_s"] = round(time.monotonic() - T0, 2)
    text = json.dumps(report, indent=1, ensure_ascii=False)
    (OUT / "report.json").write_text(text)
    print("HIL-REPORT-WRITTEN", flush=True)


if __name__ == "__main__":
    main()
