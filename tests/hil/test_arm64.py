"""The node installed and `--check`ed on an arm64 Debian root, the architecture of a Pi.

The root holds the files of debootstrap's minbase for arm64 with python3-venv: its
first stage and the other packages unpacked with dpkg-deb, natively, without their
maintainer scripts (`unpack_only` in tests/ansible/support.py, which caches it as a
tarball named by its inputs). The full debootstrap runs every maintainer script under
emulation and took 165 to 276 s here; the node's own steps do not need them. What
runs on arm64, through qemu-user-static and binfmt_misc, is what matters here: the
node goes in as the node role installs it:
a venv that sees the system's packages, the controller's wheelhouse copied over, the
role's offline pip command; then `tiengmo node --check` on a config with the rig's
pins. No GPIO here (a chroot has no chip): the pins are tests/hil/test_hil.py's.

Time budget: BUDGET_S, a cold root included (docs/hil.md has the measurements).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ansible import support
from tests.hil import image, rig
from tests.support import progress

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
BUDGET_S = 600.0
INCLUDE = ("python3-venv",)
BINFMT = Path("/proc/sys/fs/binfmt_misc")
pytestmark = pytest.mark.timeout(BUDGET_S + 300)


def ensure_binfmt() -> None:
    """qemu-aarch64 registered with binfmt_misc (installing qemu-user-static registers
    it only where binfmt_misc is mounted; a fresh container may not have it mounted)."""
    if (BINFMT / "qemu-aarch64").exists():
        return
    if not (BINFMT / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=True)
    subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], check=True,
                   capture_output=True)
    if not (BINFMT / "qemu-aarch64").exists():
        raise RuntimeError("qemu-aarch64 is not registered with binfmt_misc: install "
                           "qemu-user-static and binfmt-support (.ci/setup)")


def in_root(root: Path, *cmd: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chroot", str(root), *cmd], capture_output=True, text=True,
                          timeout=timeout, env=support.CHROOT_ENV)


def test_the_node_installs_and_checks_on_an_arm64_root(tmp_path: Path) -> None:
    started = time.monotonic()
    steps = image.Steps()
    ensure_binfmt()
    root = tmp_path / "root"
    support.make_root(root, arch="arm64", include=INCLUDE, unpack_only=True)
    steps.done("arm64 root (debootstrap --foreign --arch arm64 --include python3-venv, "
               "the rest unpacked; cached)")
    wheels = root / "opt/tiengmo/wheelhouse"
    subprocess.run(["sh", str(rig.REPO / "ansible/roles/tiengmo_controller/files/"
                               "build-wheelhouse.sh"), str(rig.REPO), str(wheels),
                    sys.executable], check=True, capture_output=True, timeout=600)
    wheel = next(wheels.glob("tiengmo-*.whl")).name
    steps.done("the wheelhouse (the controller role's build-wheelhouse.sh)")
    machine = in_root(root, "uname", "-m").stdout.strip()
    assert machine == "aarch64", machine              # emulated, not this machine's
    venv = in_root(root, "python3", "-m", "venv", "--system-site-packages", image.VENV)
    assert venv.returncode == 0, venv.stderr
    steps.done("the node role's venv (emulated)")
    # The node role's install command (ansible/roles/tiengmo_node/tasks/agent.yml).
    pip = in_root(root, f"{image.VENV}/bin/pip", "install", "--no-index", "--find-links",
                  "/opt/tiengmo/wheelhouse", "--force-reinstall", "--disable-pip-version-check",
                  "--no-input", f"/opt/tiengmo/wheelhouse/{wheel}[node]")
    assert pip.returncode == 0, pip.stdout + pip.stderr
    steps.done("the node role's pip install, offline (emulated)")
    (root / "etc/tiengmo").mkdir(parents=True)
    (root / "etc/tiengmo/node.toml").write_text(rig.node_toml())
    (root / "var/lib/tiengmo").mkdir(parents=True)
    check = in_root(root, f"{image.VENV}/bin/tiengmo", "node", "--config",
                    "/etc/tiengmo/node.toml", "--check")
    steps.done("tiengmo node --check (emulated)")
    python = in_root(root, f"{image.VENV}/bin/python", "-c",
                     "import platform, gpiozero, paho.mqtt; print(platform.machine())")
    total = time.monotonic() - started
    report = {"machine": machine, "venv_python_machine": python.stdout.strip(),
              "check": {"code": check.returncode,
                        "output": (check.stdout + check.stderr).strip()},
              "root": support.rootfs_cache("arm64", INCLUDE, unpack_only=True).name,
              "steps_s": steps.times, "total_s": round(total, 1), "budget_s": BUDGET_S}
    ARTIFACTS.mkdir(exist_ok=True)
    text = json.dumps(report, indent=1)
    (ARTIFACTS / "arm64-report.json").write_text(text)
    progress.say(f"arm64: {text}")
    assert check.returncode == 0, report["check"]
    assert "config, pins and files OK" in check.stdout, report["check"]
    assert python.stdout.strip() == "aarch64", python.stdout + python.stderr
    assert total <= BUDGET_S, f"the arm64 install took {total:.0f} s, over {BUDGET_S:.0f} s"
