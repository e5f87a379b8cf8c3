"""The HIL rig's VM: Debian's kernel, an out-of-tree gpio-sim, a tiny initramfs, a root.

Built once per set of inputs and cached beside the Ansible tests' roots (the same
folder, naming and locking, tests/ansible/support.py). Made for a cold CI machine
(nothing cached survives there), so every step is the cheapest that stays real:

- the root is tests/ansible/nspawn.py's cached systemd root (the minbase root plus
  systemd, Mosquitto, python3-venv: what test_site.py boots too), not a debootstrap
  of its own;
- Debian's `linux-image`, `linux-headers` (with their `-common` and `linux-kbuild`)
  and `linux-source` are fetched together with `apt-get download` by the root's apt
  (one set of lists, so their versions match: the mirror keeps only the latest) and
  unpacked with `dpkg-deb -x` on this machine: no maintainer scripts, no
  update-initramfs, no dpkg in a chroot;
- gpio-sim is built here (gcc and make of this Debian, the kernel's compiler) from
  linux-source's `gpio-sim.c`, `gpiolib.h` and `irq_sim.c` (Debian builds neither
  GPIO_SIM nor IRQ_SIM; `irq_to_desc` is not exported, so the module calls
  `generic_handle_irq(irqnum)` instead of `handle_simple_irq(irq_to_desc(irqnum))`);
- the initramfs is a static busybox, `vm/init.sh` and exactly the modules the rig
  needs with their dependencies (read from each module's own `depends=`);
- the root stays a folder: each run copies it, installs the node into the copy and
  packs it as an ext4 image with `mkfs.ext4 -d` (rig.py), so nothing is installed
  inside the slow emulated VM.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.ansible import nspawn, support
from tests.support import progress

HERE = Path(__file__).resolve().parent
IMAGE_FORMAT = "2"      # bump when build() changes what goes into the image
VENV = "/opt/tiengmo/venv"          # the node role's tiengmo_node_venv
# Raspberry Pi OS has python3-lgpio (the node role installs it and makes the venv with
# --system-site-packages); Debian has none: PyPI's wheel goes where the package would.
LGPIO = "lgpio==0.2.2.0"
SYSTEM_SITE = "/usr/local/lib/python3.11/dist-packages"
# What the initramfs loads: the root disk, its file system, the shared folder (9p),
# configfs for gpio-sim, and gpio-sim itself (not in Debian's tree: added by name).
MODULES = ["virtio_pci", "virtio_blk", "crc32c_generic", "ext4", "9pnet_virtio", "9p",
           "configfs"]
BUSYBOX = Path("/bin/busybox")        # busybox-static (.ci/setup)
BUILD_TIMEOUT_S = 1200.0


def image_inputs() -> dict[str, str]:
    """What the image is made of: a change to any of these makes a new image.

    Not the kernel's version: the image fetches the kernel, headers and source in one
    apt run, so a cached image is consistent whatever the mirror holds now (the root's
    apt knows only the suite's point release, which changes every few months)."""
    files = hashlib.sha256()
    for name in ("hil-rig.service", "init.sh"):
        files.update((HERE / "vm" / name).read_bytes())
    return {**support.rootfs_inputs(), "sdroot": nspawn.sdroot_cache().name,
            "image_format": IMAGE_FORMAT, "vm_files": files.hexdigest()[:12], "lgpio": LGPIO}


def image_dir() -> Path:
    key = hashlib.sha256(repr(sorted(image_inputs().items())).encode()).hexdigest()[:16]
    return support.rootfs_cache().parent / f"hil-vm-{key}"


def ensure_image() -> Path:
    """The folder holding root/, vmlinuz, initrd.img and build.json: built if missing."""
    folder = image_dir()
    support.build_once(folder, lambda: build(folder), done=folder / "done")
    return folder


def chroot(root: Path, *cmd: str, log: Path, what: str) -> None:
    support.in_chroot(root, *cmd, log=log, what=what, timeout_s=BUILD_TIMEOUT_S)


class Steps:
    """Each build step's wall time, for build.json and docs/hil.md."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._t = time.monotonic()

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.times[name] = round(now - self._t, 1)
        self._t = now
        progress.say(f"HIL: {name} took {self.times[name]} s")


def fetch_kernel(root: Path, debs: Path, log: Path) -> dict[str, str]:
    """Download the kernel's packages with the root's apt (fresh lists): name -> version."""
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    chroot(root, "apt-get", "update", "-q", log=log, what="apt-get update in the VM root")

    def depends(pkg: str) -> list[str]:
        out = subprocess.run(["chroot", str(root), "apt-cache", "depends", pkg],
                             capture_output=True, text=True, check=True).stdout
        return re.findall(r"^\s+Depends:\s*(\S+)", out, re.M)

    image = next(p for p in depends("linux-image-amd64") if p.startswith("linux-image-"))
    release = image.removeprefix("linux-image-")                  # 6.1.0-57-amd64
    headers = f"linux-headers-{release}"
    wanted = [image, headers, *[p for p in depends(headers)
                                if p.startswith(("linux-headers-", "linux-kbuild-"))],
              "linux-source-" + ".".join(release.split(".")[:2])]
    inside = root / "tmp/hil-debs"
    inside.mkdir(parents=True, exist_ok=True)
    chroot(root, "sh", "-c", "cd /tmp/hil-debs && apt-get download -q " + " ".join(wanted),
           log=log, what="apt-get download the kernel, headers and source")
    (root / "etc/resolv.conf").write_text("")            # the VM has no name servers
    debs.mkdir(parents=True, exist_ok=True)
    versions = {}
    for deb in inside.glob("*.deb"):
        name = subprocess.run(["dpkg-deb", "-f", str(deb), "Package"], capture_output=True,
                              text=True, check=True).stdout.strip()
        versions[name] = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"],
                                        capture_output=True, text=True,
                                        check=True).stdout.strip()
        shutil.move(deb, debs / f"{name}.deb")
    shutil.rmtree(inside)
    if set(versions) != set(wanted) or len(set(versions.values())) != 1:
        raise RuntimeError(f"the kernel's packages do not match: {versions} (wanted {wanted})")
    return {"release": release, **versions}


def build_module(kernel: Path, release: str, debs: Path, work: Path) -> Path:
    """gpio-sim.ko for `release`, from linux-source, built against the unpacked headers."""
    work.mkdir(parents=True)
    src = work / "src"
    src.mkdir()
    source = next(debs.glob("linux-source-*.deb"))
    tarball = f"./usr/src/{source.stem}.tar.xz"
    members = ["*/drivers/gpio/gpio-sim.c", "*/drivers/gpio/gpiolib*.h",
               "*/kernel/irq/irq_sim.c"]
    subprocess.run(f"dpkg-deb --fsys-tarfile {source} | tar -xO {tarball} | tar -C {src} "
                   f"-xJ --wildcards --strip-components=1 " + " ".join(f"'{m}'" for m in members),
                   shell=True, check=True, timeout=600)
    shutil.copy(src / "drivers/gpio/gpio-sim.c", work / "sim-main.c")
    for header in (src / "drivers/gpio").glob("gpiolib*.h"):
        shutil.copy(header, work / header.name)
    sim = (src / "kernel/irq/irq_sim.c").read_text()
    patched = sim.replace("handle_simple_irq(irq_to_desc(irqnum))", "generic_handle_irq(irqnum)")
    if patched == sim:
        raise RuntimeError("irq_sim.c no longer calls handle_simple_irq(irq_to_desc()): "
                           "update tests/hil/image.py's patch")
    (work / "irq-sim.c").write_text(patched)
    (work / "Kbuild").write_text("obj-m := gpio-sim.o\ngpio-sim-y := sim-main.o irq-sim.o\n")
    # The headers' Makefile includes the -common one by its absolute /usr/src path.
    headers = kernel / "usr/src" / f"linux-headers-{release}"
    common = (headers / "Makefile").read_text().split()[-1]
    (headers / "Makefile").write_text(f"include {kernel}{common}\n")
    log = work / "make.log"
    with log.open("wb") as out:
        code = subprocess.run(["make", "-C", str(headers), f"M={work}", "modules"],
                              stdout=out, stderr=subprocess.STDOUT, timeout=600).returncode
    if code != 0:
        raise RuntimeError(f"building gpio-sim failed: see {log}\n{log.read_text()[-2000:]}")
    return work / "gpio-sim.ko"


def _depends(ko: Path) -> list[str]:
    m = re.search(rb"depends=([^\0]*)\0", ko.read_bytes())
    return [d.replace("-", "_") for d in m.group(1).decode().split(",") if d] if m else []


def module_order(tree: Path, extra: dict[str, Path]) -> list[Path]:
    """MODULES and `extra` with their dependencies, each after what it depends on."""
    by_name = {p.name.removesuffix(".ko").replace("-", "_"): p for p in tree.rglob("*.ko")}
    by_name.update(extra)
    order: list[Path] = []

    def add(name: str) -> None:
        path = by_name[name]
        if path not in order:
            for dep in _depends(path):
                add(dep)
            order.append(path)

    for name in [*MODULES, *extra]:
        add(name)
    return order


def make_initramfs(modules: list[Path], out: Path, work: Path) -> None:
    if subprocess.run(["ldd", str(BUSYBOX)], capture_output=True).returncode == 0:
        raise RuntimeError(f"{BUSYBOX} is linked dynamically: install busybox-static "
                           "(.ci/setup)")
    tree = work / "initramfs"
    for d in ("bin", "dev", "proc", "sys", "newroot", "lib/modules"):
        (tree / d).mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, tree / "bin/busybox")
    shutil.copy(HERE / "vm" / "init.sh", tree / "init")
    (tree / "init").chmod(0o755)
    for ko in modules:
        shutil.copy(ko, tree / "lib/modules" / ko.name)
    (tree / "modules.order").write_text("".join(f"{ko.name}\n" for ko in modules))
    files = subprocess.run(["find", "."], cwd=tree, capture_output=True, check=True).stdout
    with out.open("wb") as f:
        subprocess.run([str(BUSYBOX), "cpio", "-o", "-H", "newc"], cwd=tree, input=files,
                       stdout=f, stderr=subprocess.DEVNULL, check=True)


def build(folder: Path) -> None:
    steps = Steps()
    work = folder.parent / f"hil-build-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    root = work / "root"
    log = work / "build.log"
    work.mkdir(parents=True)
    log.touch()
    nspawn.make_sdroot(root, "hil", {})
    steps.done("systemd root (tests/ansible's cache, built if missing)")
    versions = fetch_kernel(root, work / "debs", log)
    steps.done("apt-get update and download of the kernel's packages")
    kernel = work / "kernel"
    for deb in (work / "debs").glob("linux-*.deb"):          # image, headers, kbuild
        if not deb.name.startswith("linux-source-"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(kernel)], check=True,
                           timeout=600)
    release = versions["release"]
    steps.done("dpkg-deb -x of the kernel and headers")
    ko = build_module(kernel, release, work / "debs", work / "module")
    steps.done("gpio-sim from linux-source, built against the headers")
    modules = module_order(kernel / "lib/modules" / release / "kernel", {"gpio_sim": ko})
    folder_tmp = work / "out"
    folder_tmp.mkdir()
    make_initramfs(modules, folder_tmp / "initrd.img", work)
    shutil.copy(kernel / "boot" / f"vmlinuz-{release}", folder_tmp / "vmlinuz")
    steps.done("initramfs (busybox and the modules)")
    prepare_root(root, work, log)
    steps.done("the node's venv, lgpio, users and units in the root")
    vermagic = re.search(rb"vermagic=([^\0]*)\0", ko.read_bytes())
    (folder_tmp / "build.json").write_text(json.dumps(
        {**versions, "module_vermagic": vermagic.group(1).decode() if vermagic else "",
         "modules": [ko.name for ko in modules], "build_steps_s": steps.times}) + "\n")
    root.rename(folder_tmp / "root")
    shutil.rmtree(folder, ignore_errors=True)
    folder_tmp.rename(folder)
    (folder / "done").write_text("ok\n")
    shutil.rmtree(work, ignore_errors=True)


def prepare_root(root: Path, work: Path, log: Path) -> None:
    """The venv as the node role makes it, lgpio where Pi OS's package puts it, the
    node's user and group, the rig's unit, and nothing the VM does not need at boot."""
    wheels = work / "lgpio"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
                    "--no-deps", "--disable-pip-version-check", "-d", str(wheels), LGPIO],
                   check=True, timeout=600)
    shutil.copytree(wheels, root / "tmp/hil-lgpio")
    chroot(root, "python3", "-m", "venv", "--system-site-packages", VENV, log=log,
           what="the node's venv")
    chroot(root, f"{VENV}/bin/pip", "install", "-q", "--disable-pip-version-check",
           "--no-index", "--find-links", "/tmp/hil-lgpio", "--target", SYSTEM_SITE, LGPIO,
           log=log, what="lgpio")
    shutil.rmtree(root / "tmp/hil-lgpio")
    (root / "etc/fstab").write_text("")           # the initramfs mounts /dev/vda rw
    (root / "etc/hostname").write_text("hil\n")
    unit = root / "etc/systemd/system/hil-rig.service"
    unit.write_text((HERE / "vm" / "hil-rig.service").read_text())
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "hil-rig.service").symlink_to("/etc/systemd/system/hil-rig.service")
    # The broker the rig starts itself on 127.0.0.1; Debian's own unit stays off (the
    # systemd root has it disabled). No udev in this root: no device waits at boot.
    chroot(root, "systemctl", "mask", "getty@tty1.service", "serial-getty@ttyS0.service",
           "systemd-timesyncd.service", "apt-daily.timer", "apt-daily-upgrade.timer",
           "e2scrub_reap.service", "systemd-binfmt.service", "nginx.service",
           "proc-sys-fs-binfmt_misc.automount", "man-db.timer", log=log, what="masking units")
    chroot(root, "groupadd", "-f", "gpio", log=log, what="the gpio group")
    chroot(root, "useradd", "--system", "-G", "gpio", "-d", "/var/lib/tiengmo", "-s",
           "/usr/sbin/nologin", "tiengmo", log=log, what="the node's user")
    shutil.rmtree(root / "var/cache/apt", ignore_errors=True)
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True)
