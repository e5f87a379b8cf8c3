"""Debian machines that boot systemd, for applying site.yml as on real hardware.

A "district" is a set of systemd-nspawn containers, each in a network namespace of
its own, joined by veth pairs to a bridge that lives in one more namespace (the LAN,
where a phone would be: the test's Chromium runs there). Nothing is routed to the
host's network: every address is in 10.77.0.0/24 inside namespaces this module makes
and removes.

The containers' root is the minbase root of tests/ansible/support.py plus what the
roles install (systemd as init, dbus, Mosquitto, Python...), installed once with the
host's network while building the root and cached as a tarball named by its inputs
(the minbase inputs and PACKAGES). The containers have no route to a mirror, so the
roles' apt tasks find everything installed; apt's "last update" stamp is set at
unpack time so `cache_valid_time` does not try the network.

Ansible reaches a running container through the community.general.chroot connection
with `ansible_chroot_exe` pointing at a small script that runs the command with
nsenter in all the container's namespaces (its mount namespace has systemd's /run,
so systemctl talks to the container's systemd, not to a chroot's nothing).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.ansible import support

SDROOT_FORMAT = "1"      # bump when _build_sdroot changes what it puts in the tarball
# What the roles' apt tasks install (their vars/main.yml; nginx: the hub's HTTPS),
# plus systemd as init, dbus for its bus, sudo for `become_user`, python3-apt for
# Ansible's apt module. A role that needs another package fails its apply here
# (no mirror): add it to this list (a new list makes a new cached root).
PACKAGES = sorted([
    "systemd", "systemd-sysv", "dbus", "sudo", "python3", "python3-venv", "python3-apt",
    "systemd-timesyncd", "ca-certificates", "mosquitto", "mosquitto-clients", "nftables",
    "nginx", "iproute2", "procps",
])
APT_TIMEOUT_S = 1500.0
SUBNET = "10.77.0"
BOOT_TIMEOUT_S = 90.0


def sdroot_cache() -> Path:
    """The tarball of the systemd root for this machine's inputs, beside the minbase one."""
    inputs = {**support.rootfs_inputs(), "sdroot": SDROOT_FORMAT, "packages": " ".join(PACKAGES)}
    key = hashlib.sha256(repr(sorted(inputs.items())).encode()).hexdigest()[:16]
    return support.rootfs_cache().parent / f"{support.SUITE}-systemd-{key}.tgz"


def _build_sdroot(cache: Path) -> None:
    """Minbase root + PACKAGES, packed as `cache` (the caller holds the lock)."""
    build = cache.parent / f"sdbuild-{os.getpid()}"
    log = cache.parent / f"sdbuild-{os.getpid()}.log"
    shutil.rmtree(build, ignore_errors=True)
    support.make_root(build)
    for cmd, what in ((["apt-get", "update", "-q"], "apt-get update in the root"),
                      (["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
                       f"installing systemd and the roles' packages ({cache.name})"),
                      # Only the broker runs Mosquitto; the role enables it there. Each
                      # machine gets its own machine id at first boot.
                      (["systemctl", "disable", "mosquitto"], "disabling mosquitto"),
                      (["apt-get", "clean"], "apt-get clean")):
        support.in_chroot(build, *cmd, log=log, what=what, timeout_s=APT_TIMEOUT_S)
    (build / "etc/machine-id").write_text("")
    (build / "usr/sbin/policy-rc.d").unlink(missing_ok=True)   # a booted machine starts daemons
    tmp = cache.with_name(cache.name + f".tmp-{os.getpid()}")
    subprocess.run(["nice", "tar", "-C", str(build), "-czf", str(tmp), "."], check=True)
    tmp.rename(cache)
    shutil.rmtree(build, ignore_errors=True)
    log.unlink(missing_ok=True)


def make_sdroot(dest: Path, hostname: str, hosts: dict[str, str]) -> None:
    """Unpack a root that boots systemd at `dest` (building and caching it first if
    needed), named `hostname`, with `hosts` (name -> address) in its /etc/hosts."""
    cache = sdroot_cache()
    support.build_once(cache, lambda: _build_sdroot(cache))
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-C", str(dest), "-xzf", str(cache)], check=True)
    (dest / "etc/hostname").write_text(hostname + "\n")
    lines = ["127.0.0.1\tlocalhost", f"127.0.1.1\t{hostname}"]
    lines += [f"{addr}\t{name}" for name, addr in hosts.items()]
    (dest / "etc/hosts").write_text("\n".join(lines) + "\n")
    (dest / "etc/resolv.conf").write_text("")        # no name servers on the LAN
    # The lists come from the build; the containers reach no mirror. A fresh stamp
    # lets the roles' `update_cache` with `cache_valid_time` skip the update.
    stamp = dest / "var/lib/apt/periodic/update-success-stamp"
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.touch()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Machine:
    name: str
    address: str
    root: Path
    netns: str
    enter: Path                      # the chroot_exe script for Ansible
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    leader: int = 0

    def run(self, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `cmd` inside the booted machine (all its namespaces)."""
        return subprocess.run([str(self.enter), str(self.root), *cmd], capture_output=True,
                              text=True, timeout=timeout)

    def is_active(self, unit: str) -> str:
        return self.run("systemctl", "is-active", unit).stdout.strip()


@dataclass
class District:
    """The LAN namespace with its bridge, and the machines on it."""
    work: Path
    tag: str = field(default_factory=lambda: f"{os.getpid() % 100000}")
    machines: dict[str, Machine] = field(default_factory=dict)

    @property
    def lan(self) -> str:
        return f"tm{self.tag}-lan"

    @property
    def lan_address(self) -> str:
        return f"{SUBNET}.1"

    def create(self) -> None:
        _ip("netns", "add", self.lan)
        _ip("-n", self.lan, "link", "set", "lo", "up")
        _ip("-n", self.lan, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.lan, "addr", "add", f"{self.lan_address}/24", "dev", "br0")
        _ip("-n", self.lan, "link", "set", "br0", "up")

    def add(self, name: str, hosts: dict[str, str]) -> Machine:
        """A machine named `name` at hosts[name]: its root, namespace and veth."""
        n = len(self.machines) + 1
        netns = f"tm{self.tag}-{n}"
        root = self.work / "machines" / name
        make_sdroot(root, name, hosts)
        _ip("netns", "add", netns)
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", self.lan, "link", "add", f"v{n}", "type", "veth", "peer", "name", "eth0",
            "netns", netns)
        _ip("-n", self.lan, "link", "set", f"v{n}", "master", "br0", "up")
        _ip("-n", netns, "addr", "add", f"{hosts[name]}/24", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        pidfile = self.work / "machines" / f"{name}.pid"
        enter = self.work / "machines" / f"enter-{name}"
        # Called as `enter ROOT sh -c CMD` (the chroot connection's chroot_exe): the
        # root argument is dropped, the command runs in the booted machine with a
        # clean environment (nothing of the test's PATH or PYTHONPATH leaks in).
        enter.write_text(
            "#!/bin/sh\nshift\n"
            f'exec nsenter --target "$(cat {pidfile})" --all --root --wd -- '
            "env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "
            'HOME=/root LANG=C.UTF-8 "$@"\n')
        enter.chmod(0o755)
        m = Machine(name, hosts[name], root, netns, enter, self.work / "machines" / f"{name}.log")
        self.machines[name] = m
        return m

    def boot(self, m: Machine) -> None:
        """Boot systemd in `m` and wait until it says it is up (running or degraded)."""
        out = m.log.open("wb")
        m.proc = subprocess.Popen(
            ["systemd-nspawn", "--register=no", "--keep-unit", "--quiet",
             f"--network-namespace-path=/run/netns/{m.netns}",
             # The machine owns its network namespace, as a real one owns its
             # interfaces: root may load firewall rules there (the broker's nft limit).
             # nspawn grants this itself only with --private-network.
             "--capability=CAP_NET_ADMIN", "-M", m.name,
             "-D", str(m.root), "--console=read-only", "-b"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=_terminate_with_parent)
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while not m.leader:
            m.leader = _init_of(m.proc.pid)
            if m.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{m.name} did not boot:\n{m.log.read_text()[-3000:]}")
            time.sleep(0.2)
        (self.work / "machines" / f"{m.name}.pid").write_text(f"{m.leader}\n")
        state = ""
        while state not in ("running", "degraded"):
            if m.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{m.name} did not finish booting ({state!r}):\n"
                                   f"{m.log.read_text()[-3000:]}")
            time.sleep(0.5)
            with contextlib.suppress(subprocess.SubprocessError):
                state = m.run("systemctl", "is-system-running", timeout=10).stdout.strip()

    def shutdown(self) -> None:
        """Power every machine off (nspawn turns SIGTERM into an orderly shutdown),
        then remove the namespaces."""
        for m in self.machines.values():
            if m.proc and m.proc.poll() is None:
                m.proc.send_signal(signal.SIGTERM)
        for m in self.machines.values():
            if m.proc:
                try:
                    m.proc.wait(30)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
                    m.proc.wait(10)
        for m in self.machines.values():
            subprocess.run(["ip", "netns", "del", m.netns], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.lan], capture_output=True)


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM when pytest dies (a timeout's os._exit), which
    nspawn turns into the machine's orderly shutdown: no machine outlives the test."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)    # PR_SET_PDEATHSIG


def _init_of(nspawn_pid: int) -> int:
    """The host pid of the container's init: a child of systemd-nspawn (its subreaper)
    that is pid 1 in a pid namespace of its own."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            status = (d / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        nspid = fields.get("NSpid", "").split()
        if fields.get("PPid", "").strip() == str(nspawn_pid) and len(nspid) > 1 \
                and nspid[-1] == "1":
            return int(d.name)
    return 0
