"""The real Mosquitto running the production config (deploy/mosquitto/mosquitto.conf).

Only ports, paths and TLS are changed (tiengmo.mosquitto_conf.render_conf);
logins come from a password file made by `mosquitto_passwd -b`, access from
an ACL text (usually tiengmo.acl.render_acl).
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from tests.support.broker import free_port
from tiengmo.mosquitto_conf import render_production_conf


def write_mosquitto_passwd(path: Path, users: Mapping[str, str]) -> None:
    """A password file in Mosquitto's own format, made by its own tool."""
    exe = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    path.unlink(missing_ok=True)
    for i, (name, password) in enumerate(users.items()):
        args = [exe, *(["-c"] if i == 0 else []), "-b", str(path), name, password]
        subprocess.run(args, check=True, capture_output=True, timeout=30)


class ProductionMosquitto:
    """mosquitto -c <rendered production config>; `port` is the node listener (8883)."""

    def __init__(self, workdir: Path, users: Mapping[str, str], acl: str,
                 drop: Iterable[str] = ()) -> None:
        self.exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(self.exe).exists():
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = free_port()       # production 8883 (TLS there, plain here)
        self.local_port = free_port()  # production 1883 on loopback
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        (workdir / "data").mkdir(exist_ok=True)
        write_mosquitto_passwd(workdir / "passwd", users)
        (workdir / "acl").write_text(acl, encoding="utf-8")
        self.conf.write_text(render_production_conf(
            ports={8883: self.port, 1883: self.local_port},
            persistence_location=workdir / "data",
            password_file=workdir / "passwd",
            acl_file=workdir / "acl",
            user=getpass.getuser(),
            drop=drop,
        ), encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ProductionMosquitto:
        logf = self.log.open("ab")
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=logf, stderr=logf)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port),
                                                                       0.2):
                return self
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening within 10 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
