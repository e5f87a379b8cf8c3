"""Helpers for the Ansible tests: the tools, a throwaway Debian root, a test inventory.

The root is made with debootstrap once and cached as a tarball outside the
repository, so repeated runs unpack it in seconds; CI starts from nothing and makes
it. The cache file is named by a hash of what goes into the root (suite, variant,
architecture, mirror, debootstrap's version), so a changed input makes a new one; a
lock makes concurrent runs (xdist workers, two checkouts) build it once. The
folder is $TIENGMO_ROOTFS_CACHE_DIR, else /var/cache/tiengmo-ci when writable (CI
runs as root), else ~/.cache/tiengmo-ci; $TIENGMO_ROOTFS_CACHE names the file itself.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.support import progress

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
SUITE = "bookworm"
VARIANT = "minbase"
ROOTFS_FORMAT = "1"   # bump when make_root changes what it puts in the tarball
DEBOOTSTRAP_TIMEOUT_S = 1500.0
PLAYBOOKS = ["site.yml", "controller.yml", "node.yml", "broker.yml", "hub.yml", "rollout.yml"]


def tool(name: str) -> str:
    """The path of an Ansible tool: TIENGMO_ANSIBLE_BIN, the CI venv, or PATH."""
    for d in (os.environ.get("TIENGMO_ANSIBLE_BIN"), "/opt/tiengmo-ci/ansible/bin"):
        if d and (Path(d) / name).exists():
            return str(Path(d) / name)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: run .ci/ansible.sh (it installs "
                           f"ansible and ansible-lint into /opt/tiengmo-ci/ansible)")
    return found


def run_tool(name: str, *args: str, cwd: Path = ANSIBLE_DIR, timeout: float = 120,
             ) -> subprocess.CompletedProcess[str]:
    """An Ansible tool run to completion, output captured. Its stdin is /dev/null: Ansible
    refuses a non-blocking stdin, and the suite's stdin may have been made non-blocking by
    another child sharing it (a CI run failed so, once in ansible-playbook, once in
    ansible-lint)."""
    return subprocess.run([tool(name), *args], cwd=cwd, env=ansible_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def render_template(tmp_path: Path, role: str, template: str, **extra: object) -> str:
    """A role's template rendered by Ansible itself (a local play with the template module,
    the role's defaults loaded; no apply), `extra` as the inventory's host variables."""
    out = tmp_path / Path(template).stem
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "vars_files": [str(ANSIBLE_DIR / "roles" / role / "defaults/main.yml")],
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": [{"name": f"Render {template}", "ansible.builtin.template": {
            "src": str(ANSIBLE_DIR / "roles" / role / "templates" / template),
            "dest": str(out), "mode": "0640"}}],
    }]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    # Extra vars: above the role's defaults, as host variables are.
    (tmp_path / "vars.json").write_text(json.dumps(extra))
    proc = run_tool("ansible-playbook", "-i", "localhost,", "-c", "local",
                    "-e", f"@{tmp_path / 'vars.json'}", str(tmp_path / "play.yml"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return out.read_text()


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOST_KEY_CHECKING": "0",
        "ANSIBLE_LOCAL_TEMP": "/tmp/tiengmo-ansible-local",
        "PATH": f"{Path(tool('ansible-playbook')).parent}:{env.get('PATH', '')}",
    })
    return env


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line sources)."""
    texts = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if p.is_file():
            texts.append(p.read_text(errors="replace"))
    text = "\n".join(texts)
    for pattern in (r"^URIs:\s*(\S+/debian)/?\s*$", r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+/debian)/?\s"):
        m = re.search(pattern, text, re.M)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def _output(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def rootfs_inputs(arch: str | None = None, include: tuple[str, ...] = (),
                  unpack_only: bool = False) -> dict[str, str]:
    """What the cached root is made of: a change to any of these makes a new root.

    `arch` is a foreign Debian architecture (arm64, run through qemu-user-static and
    binfmt_misc; None is this machine's), `include` packages debootstrap adds;
    `unpack_only`: see _build_rootfs."""
    inputs = {"format": ROOTFS_FORMAT, "suite": SUITE, "variant": VARIANT,
              "arch": arch or _output("dpkg", "--print-architecture"),
              "mirror": debian_mirror(),
              "debootstrap": _output("dpkg-query", "-W", "-f=${Version}", "debootstrap")}
    if include:
        inputs["include"] = ",".join(sorted(include))
    if unpack_only:
        inputs["unpack_only"] = "1"
    return inputs


def rootfs_cache(arch: str | None = None, include: tuple[str, ...] = (),
                 unpack_only: bool = False) -> Path:
    """The tarball of the root for this machine's inputs (see the module's docstring)."""
    if os.environ.get("TIENGMO_ROOTFS_CACHE") and arch is None and not include:
        return Path(os.environ["TIENGMO_ROOTFS_CACHE"])
    folder = os.environ.get("TIENGMO_ROOTFS_CACHE_DIR")
    if not folder:
        system = Path("/var/cache/tiengmo-ci")
        writable = os.access(system if system.exists() else system.parent, os.W_OK)
        folder = str(system if writable else Path.home() / ".cache" / "tiengmo-ci")
    inputs = rootfs_inputs(arch, include, unpack_only)
    key = hashlib.sha256(repr(sorted(inputs.items())).encode())
    name = f"{SUITE}-{VARIANT}-{arch + '-' if arch else ''}{key.hexdigest()[:16]}.tgz"
    return Path(folder) / name


def _build_rootfs(cache: Path, arch: str | None = None, include: tuple[str, ...] = (),
                  unpack_only: bool = False) -> None:
    """debootstrap a root and pack it as `cache` (the caller holds the lock).

    `unpack_only`: debootstrap's first stage (download, unpack the essential packages)
    and every other package's files unpacked with dpkg-deb, natively, without their
    maintainer scripts: the files of the root, not a configured system. For a foreign
    architecture the second stage runs every maintainer script under emulation: a whole
    arm64 debootstrap took 165 to 276 s here, its first stage 19 s."""
    build = cache.parent / f"build-{os.getpid()}"
    shutil.rmtree(build, ignore_errors=True)
    log = cache.parent / f"build-{os.getpid()}.log"
    options = [f"--variant={VARIANT}", *([f"--arch={arch}"] if arch else []),
               *([f"--include={','.join(include)}"] if include else []),
               *(["--foreign"] if unpack_only else [])]
    with log.open("wb") as out:
        proc = subprocess.Popen(["debootstrap", *options, SUITE, str(build), debian_mirror()],
                                stdout=out, stderr=subprocess.STDOUT)
    code = progress.wait_saying(proc, f"debootstrap {' '.join(options)} {SUITE} (once; cached "
                                      f"as {cache})", log, DEBOOTSTRAP_TIMEOUT_S)
    if code != 0:
        raise RuntimeError(f"debootstrap failed ({code}):\n{progress.last_line(log)}\n"
                           f"see {log}")
    if unpack_only:
        _unpack_the_rest(build)
    tmp = cache.with_name(cache.name + f".tmp-{os.getpid()}")
    subprocess.run(["tar", "-C", str(build), "-czf", str(tmp), "."], check=True)
    tmp.rename(cache)            # atomic: a reader sees no tarball or a whole one
    shutil.rmtree(build, ignore_errors=True)
    log.unlink(missing_ok=True)


def _unpack_the_rest(build: Path) -> None:
    """After debootstrap --foreign: every downloaded package's files, and the users and
    groups base-passwd's maintainer script would have written."""
    archives = build / "var/cache/apt/archives"
    for deb in sorted(archives.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(build)], check=True, timeout=300)
        deb.unlink()
    for name in ("passwd", "group"):
        target = build / "etc" / name
        if not target.exists():
            shutil.copy(build / "usr/share/base-passwd" / f"{name}.master", target)


# What a command in a chroot sees of its environment: nothing of the caller's (a CI
# runner's pip config or locale must not leak into the root being built).
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
              "DEBIAN_FRONTEND": "noninteractive", "PIP_CONFIG_FILE": "/dev/null"}


def in_chroot(root: Path, *cmd: str, log: Path, what: str, timeout_s: float) -> None:
    """`cmd` in the root at `root` (at a lower priority than the tests), its output
    appended to `log`, progress said meanwhile; raises with its last line if it fails."""
    with log.open("ab") as out:
        proc = subprocess.Popen(["nice", "chroot", str(root), *cmd], stdout=out,
                                stderr=subprocess.STDOUT, env=CHROOT_ENV)
    code = progress.wait_saying(proc, what, log, timeout_s)
    if code != 0:
        raise RuntimeError(f"{what} failed ({code}):\n{progress.last_line(log)}\nsee {log}")


def build_once(target: Path, build: Callable[[], None], done: Path | None = None) -> None:
    """Run `build` unless `done` (default: `target`) exists, holding a lock beside
    `target`: parallel runs (xdist workers, another CI job) build a cache once, and the
    others wait for it."""
    done = done or target
    if done.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / (target.name + ".lock")).open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:             # another run is building it now
            progress.say(f"waiting for another run building {target.name}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            build()


def make_root(dest: Path, arch: str | None = None, include: tuple[str, ...] = (),
              unpack_only: bool = False) -> None:
    """Unpack a minbase Debian root at `dest`, making and caching it first if needed.

    A foreign `arch` needs qemu-user-static registered with binfmt_misc (.ci/setup)."""
    cache = rootfs_cache(arch, include, unpack_only)
    build_once(cache, lambda: _build_rootfs(cache, arch, include, unpack_only))
    progress.say(f"unpacking the cached Debian root {cache}")
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-C", str(dest), "-xzf", str(cache)], check=True)
    # What an image builder does in a chroot: name servers for apt, and no
    # daemons started by package scripts (they would run on this machine).
    shutil.copy("/etc/resolv.conf", dest / "etc/resolv.conf")
    # debootstrap writes no /etc/hosts (the installer does): without it nothing in
    # the root resolves "localhost" (the broker's bridge address in the test; IPv4
    # only, as the test's brokers listen on 127.0.0.1).
    hosts = dest / "etc/hosts"
    if not hosts.exists():
        hosts.write_text("127.0.0.1\tlocalhost\n")
    policy = dest / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)


def write_inventory(path: Path, root: Path, work: Path, ports: dict[str, int],
                    repo: Path = REPO) -> None:
    chroot: dict[str, Any] = {"ansible_connection": "community.general.chroot",
                              "ansible_host": str(root), "ansible_become": False}
    inv = {"all": {
        "vars": {
            "tiengmo_deployment_name": "test",
            "tiengmo_controller_repo_dir": str(repo),
            "tiengmo_credentials_dir": str(work / "credentials"),
            "tiengmo_build_dir": str(work / "build"),
            "tiengmo_mqtt_prefix": "mo/v1",
            "tiengmo_broker_hostname": "localhost",
            "tiengmo_broker_tls_port": ports["tls"],
            "tiengmo_broker_local_port": ports["plain"],
            "tiengmo_broker_tls_bind_address": "127.0.0.1",
            "tiengmo_broker_dynsec_admin": "hub-admin",
            # The officers' CA's name constraints (the controller refuses to make it
            # without them; docs/security.md).
            "tiengmo_site_domains": ["bach-thong.test"],
            "tiengmo_site_networks": ["127.0.0.0/8"],
            "tiengmo_areas": [
                {"path": "bach-thong", "name": "Huyện Bạch Thông", "level": "huyện"},
                {"path": "bach-thong/vi-huong", "name": "Xã Vi Hương", "level": "xã"},
                {"path": "bach-thong/vi-huong/na-sang", "name": "Thôn Nà Sang", "level": "thôn"},
            ],
        },
        "children": {
            "tiengmo_controller": {"hosts": {"localhost": {
                "ansible_connection": "local",
                "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}},
            "tiengmo_brokers": {"hosts": {"broker-test": {**chroot, **bridge_vars(work, ports),
                                                          **SENTINEL_VARS}}},
            "tiengmo_hubs": {"hosts": {"hub-test": {"tiengmo_hub_id": "hub-test-1"}}},
            "tiengmo_nodes": {"children": {"thon_na_sang": {"hosts": {
                "na-sang-01": {**chroot, **NODE_VARS},
                "na-cha-01": {"tiengmo_node_id": "na-cha-01",
                              "tiengmo_node_area": "bach-thong/vi-huong/na-cha"},
            }}}},
        },
    }}
    path.write_text(yaml.safe_dump(inv, allow_unicode=True, sort_keys=False))


BRIDGE_NAME = "test-district"
# The broker's machine also runs the sentinel (its modem texts these numbers).
SENTINEL_VARS: dict[str, Any] = {
    "tiengmo_sentinel_enabled": True, "tiengmo_sentinel_admins": ["+84912345678"],
    "tiengmo_sentinel_police": ["+84987654321"], "tiengmo_sentinel_grace_s": 90,
}


def bridge_vars(work: Path, ports: dict[str, int]) -> dict[str, Any]:
    """With a "province" port: the broker bridges up to it, and also lists itself as a
    bridge client, so one apply yields both sides (its passwd and ACL let the bridge in at
    a provincial broker; its bridge section goes up). The controller's CA signs the
    provincial broker's certificate too (the test reuses the broker's one for localhost)."""
    if "province" not in ports:
        return {}
    return {
        "tiengmo_broker_bridge": {"name": BRIDGE_NAME, "remote_host": "localhost",
                                  "remote_port": ports["province"],
                                  "ca_src": str(work / "credentials" / "pki" / "ca.crt")},
        "tiengmo_broker_bridge_clients": [BRIDGE_NAME],
    }


NODE_VARS: dict[str, Any] = {
    "tiengmo_node_id": "na-sang-01",
    "tiengmo_node_area": "bach-thong/vi-huong/na-sang",
    "tiengmo_node_name": "Nhà văn hoá thôn Nà Sang",
    "tiengmo_node_households": 22,
    "tiengmo_node_hardware": False,
    "tiengmo_node_buttons": [{"pin": 17, "number": 1, "kind": "theft"},
                             {"pin": 27, "number": 2, "kind": "fire", "hold_s": 1.5}],
    "tiengmo_node_cancel": {"pin": 22, "hold_s": 3.0},
    "tiengmo_node_outputs": [
        {"name": "gong", "type": "gong", "pin": 23, "pulse_ms": 60, "feedback_pin": 24},
        {"name": "siren", "type": "siren", "pin": 16, "active_high": False, "max_on_s": 20.0},
    ],
    "tiengmo_node_enable": {"pin": 25, "toggle_ms": 50},
    "tiengmo_node_led": {"pin": 12},
    "tiengmo_node_patterns": {"fire": {"steps": [[120, 180]], "duration_s": 120}},
}


def run_playbooks(inventory: Path, playbooks: list[str], limit: str, log: Path,
                  timeout: float = 900, extra_vars: dict[str, Any] | None = None,
                  ) -> subprocess.CompletedProcess[str]:
    """ansible-playbook, its output in `log` (and returned); progress said meanwhile.
    `extra_vars` go in with -e (as JSON: they win over the inventory)."""
    cmd = [tool("ansible-playbook"), "-i", str(inventory), "--limit", limit,
           *(["-e", json.dumps(extra_vars)] if extra_vars else []),
           *[str(ANSIBLE_DIR / p) for p in playbooks]]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ANSIBLE_DIR, env=ansible_env(), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    code = progress.wait_saying(proc, f"ansible-playbook {' '.join(playbooks)} ({log.name})",
                                log, timeout, marker="TASK [")
    return subprocess.CompletedProcess(cmd, code, log.read_text(errors="replace"))


RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)"
                   r"\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)", re.M)


def recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP lines as {host: {ok, changed, unreachable, failed, ...}}."""
    keys = ["ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored"]
    tail = output[output.rfind("PLAY RECAP"):]
    return {m.group(1): dict(zip(keys, map(int, m.groups()[1:]), strict=True))
            for m in RECAP.finditer(tail)}


def recap_lines(output: str) -> str:
    return output[output.rfind("PLAY RECAP"):].strip()

