"""The host's half of the HIL rig: the shared folder, the KVM probe, the QEMU run.

The VM has no network device at all (`-nic none`): the broker, the listener and the
agent talk over the VM's own loopback, so nothing leaves it. Its results come back
through a 9p shared folder (the report) and the serial console (progress lines).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.ansible import support
from tests.hil import image as image_mod
from tests.support import progress

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ROLE = REPO / "ansible" / "roles" / "tiengmo_node"
QEMU = "qemu-system-x86_64"
KVM_PROBE_S = 10.0     # a bare kernel reaches its panic in 1 to 3 s under a working KVM
VENV = image_mod.VENV
MEMORY_MB = 1536

# BCM numbers = line offsets on the 32-line sim chip, as on a Pi's gpiochip0.
PARAMS: dict[str, Any] = {
    "node_id": "hil-01", "area": "hil/rig", "prefix": "mo/v1", "lines": 32,
    "pins": {"button": 17, "cancel": 22, "gong": 23, "feedback": 24, "enable": 25, "led": 12},
    "hold_s": 1.5, "short_press_s": 0.6, "long_press_s": 1.6,
    "pattern_step_ms": [120, 180], "duration_s": 3, "toggle_ms": 50,
    "enable_window_s": 1.0, "tolerance_ms": 40.0,     # median strike error
    "pi_revision": "d03114",          # a Raspberry Pi 4 Model B (8 GB)
}

NODE_TOML = """\
[node]
id = "{node_id}"
area = "{area}"
data_dir = "/var/lib/tiengmo"

[mqtt]
url = "mqtt://127.0.0.1:1883"
prefix = "{prefix}"

[[buttons]]
pin = {button}
number = 1
kind = "fire"
hold_s = {hold_s}

[cancel]
pin = {cancel}
hold_s = 3.0

[[outputs]]
name = "gong"
type = "gong"
pin = {gong}
pulse_ms = 150
feedback_pin = {feedback}
feedback_grace_ms = 150

[enable]
pin = {enable}
toggle_ms = {toggle_ms}

[led]
pin = {led}

[patterns.fire]
steps = [[{on}, {off}]]
duration_s = {duration_s}
"""

# What this rig adds to the node role's unit: the pin factory, and the Pi revision
# gpiozero reads from /proc/cpuinfo (gpiozero 2.0 has no variable for it outside its
# MockFactory's GPIOZERO_MOCK_REVISION: pins/local.py get_pi_revision()).
DROPIN = """\
[Service]
Environment=GPIOZERO_PIN_FACTORY=lgpio
BindReadOnlyPaths=/etc/tiengmo/hil-cpuinfo:/proc/cpuinfo
# Emulated (TCG) on a shared machine, Python takes over 10 s to start: the role's
# TimeoutStopSec=10 killed ExecStopPost before it drove anything.
TimeoutStopSec=120
TimeoutStartSec=180
"""


def node_toml() -> str:
    p = PARAMS
    on, off = p["pattern_step_ms"]
    return NODE_TOML.format(**{k: v for k, v in p.items() if k != "pins"}, **p["pins"],
                            on=on, off=off)


def render_unit() -> str:
    """The node role's unit template with its defaults, rendered by Ansible's Jinja2."""
    import yaml

    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    code = (
        "import json, sys, jinja2\n"
        "v = json.load(sys.stdin)\n"
        "env = jinja2.Environment()\n"
        "def r(x):\n"
        "    try:\n"
        "        return env.from_string(x).render(v) if isinstance(x, str) else x\n"
        "    except jinja2.TemplateError:\n"          # e.g. groups[...]: not the unit's
        "        return x\n"
        "for _ in range(5):\n"
        "    v = {k: r(x) for k, x in v.items()}\n"
        "print(env.from_string(open(sys.argv[1]).read()).render(v))\n")
    python = Path(support.tool("ansible-playbook")).parent / "python3"
    variables = {**defaults, "ansible_managed": "tests/hil: the node role's template",
                 "tiengmo_node_id": PARAMS["node_id"]}
    out = subprocess.run([str(python), "-c", code, str(ROLE / "templates" /
                                                       "tiengmo-node.service.j2")],
                         input=json.dumps(variables), capture_output=True, text=True,
                         check=True)
    if "{{" in out.stdout or "{%" in out.stdout:
        raise RuntimeError(f"the node role's unit did not render:\n{out.stdout}")
    return out.stdout


def prepare_run(image: Path, work: Path, log: Path) -> dict[str, float]:
    """This run's root disk and shared folder; each step's seconds.

    The node goes into a copy of the cached root here, natively, as the node role
    installs it (the controller's wheelhouse, then the role's pip command offline),
    with the role's unit and this rig's drop-in: pip under the emulator took 75 to
    95 s. The copy is packed as an ext4 image the VM boots (`mkfs.ext4 -d`, no mount)."""
    steps = image_mod.Steps()
    share = work / "share"
    shutil.rmtree(share, ignore_errors=True)
    (share / "out").mkdir(parents=True)
    for name in ("rig.sh", "rig_vm.py", "lines.py"):
        shutil.copy(HERE / "vm" / name, share / name)
    (share / "params.json").write_text(json.dumps(PARAMS))
    root = work / "root"
    wheels = root / "opt/tiengmo/wheelhouse"           # the role's tiengmo_node_wheelhouse
    subprocess.run(["cp", "-a", str(image / "root"), str(root)], check=True)
    steps.done("a copy of the cached root")
    subprocess.run(["sh", str(REPO / "ansible/roles/tiengmo_controller/files/"
                               "build-wheelhouse.sh"), str(REPO), str(wheels),
                    sys.executable], check=True, capture_output=True, timeout=600)
    steps.done("the wheelhouse (the controller role's build-wheelhouse.sh)")
    wheel = next(wheels.glob("tiengmo-*.whl")).name
    # The node role's install command (ansible/roles/tiengmo_node/tasks/agent.yml).
    image_mod.chroot(root, f"{VENV}/bin/pip", "install", "--no-index", "--find-links",
                     "/opt/tiengmo/wheelhouse", "--force-reinstall",
                     "--disable-pip-version-check", "--no-input",
                     f"/opt/tiengmo/wheelhouse/{wheel}[node]", log=log,
                     what="the node's wheelhouse into the VM root (pip, offline)")
    steps.done("the node role's pip install, offline, in the root")
    etc = root / "etc/tiengmo"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "node.toml").write_text(node_toml())
    # gpiozero finds the Pi's revision in /proc/device-tree or /proc/cpuinfo only (no
    # variable for its real factories): the drop-in binds this file over /proc/cpuinfo.
    (etc / "hil-cpuinfo").write_text(f"processor\t: 0\nRevision\t: {PARAMS['pi_revision']}\n")
    image_mod.chroot(root, "install", "-d", "-o", "tiengmo", "-g", "tiengmo",
                     "/var/lib/tiengmo", log=log, what="the node's data folder")
    units = root / "etc/systemd/system"
    (units / "tiengmo-node.service").write_text(render_unit())
    (units / "tiengmo-node.service.d").mkdir(exist_ok=True)
    (units / "tiengmo-node.service.d" / "hil.conf").write_text(DROPIN)
    steps.done("config, unit and drop-in")
    size_mb = int(subprocess.run(["du", "-sm", str(root)], capture_output=True, text=True,
                                 check=True).stdout.split()[0]) + 400
    subprocess.run(["mkfs.ext4", "-q", "-L", "hilroot", "-d", str(root),
                    str(work / "root.img"), f"{size_mb}M"], check=True, timeout=600)
    shutil.rmtree(root)
    steps.done("mkfs.ext4 -d of the root")
    return steps.times


def probe_kvm(image: Path) -> dict[str, Any]:
    """Does KVM boot Debian's kernel here? A bare kernel that must panic (no root) in time."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return {"kvm": False, "why": "no usable /dev/kvm"}
    t = time.monotonic()
    cmd = [QEMU, "-accel", "kvm", "-machine", "q35", "-m", "256", "-nographic",
           "-no-reboot", "-nic", "none", "-kernel", str(image / "vmlinuz"),
           "-append", "console=ttyS0 panic=-1 root=/dev/hil-none"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=KVM_PROBE_S)
        out = p.stdout + p.stderr
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) \
            else str(exc.stdout or "")
        return {"kvm": False, "why": f"no panic within {KVM_PROBE_S:.0f} s",
                "tail": out[-300:]}
    ok = "Kernel panic" in out or "VFS: Unable to mount root" in out
    return {"kvm": ok, "probe_s": round(time.monotonic() - t, 1),
            "why": "booted to the expected panic" if ok else out[-300:]}


def run_vm(image: Path, work: Path, kvm: bool, timeout_s: float) -> dict[str, Any]:
    """Boot this run's root disk (prepare_run), run the rig, return its report."""
    share = work / "share"
    serial = work / "serial.log"
    # The probe's CPU model: -cpu host aborted on MSR 0x10a on the CI machine.
    # TCG's default CPU (qemu64) lacks instructions PyPI's lgpio wheel uses (SIGILL in
    # _lgpio.so, seen here): -cpu max emulates every feature TCG has.
    accel = ["-accel", "kvm"] if kvm else ["-accel", "tcg,thread=multi", "-cpu", "max"]
    # Not niced: the VM keeps time for the timeline it measures.
    cmd = [QEMU, *accel, "-machine", "q35", "-smp", "2", "-m", str(MEMORY_MB),
           "-display", "none", "-no-reboot", "-nic", "none",
           "-serial", f"file:{serial}", "-monitor", "none",
           "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"),
           # The initramfs (vm/init.sh) mounts /dev/vda itself.
           "-append", "console=ttyS0 loglevel=4 systemd.show_status=1 panic=-1",
           "-drive", f"file={work / 'root.img'},if=virtio,format=raw,cache=unsafe",
           "-virtfs", f"local,path={share},mount_tag=hil,security_model=none",
           ]
    t = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    code = progress.wait_saying(proc, f"the HIL VM ({'KVM' if kvm else 'TCG'})", serial,
                                timeout_s, marker="HIL")
    took = time.monotonic() - t
    text = serial.read_text(errors="replace") if serial.exists() else ""
    report_file = share / "out" / "report.json"
    if not report_file.exists():
        raise RuntimeError(f"the VM wrote no report (qemu exit {code}, {took:.0f} s); "
                           f"serial console tail:\n{text[-4000:]}")
    report: dict[str, Any] = json.loads(report_file.read_text())
    report.setdefault("timings", {})["vm_wall_s"] = round(took, 1)
    report["serial_hil_lines"] = [ln for ln in text.splitlines() if "HIL" in ln][-40:]
    return report
