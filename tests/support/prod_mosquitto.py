"""The real Mosquitto running the production config (deploy/mosquitto/mosquitto.conf).

Only ports, paths and TLS are changed (tiengmo.mosquitto_conf.render_conf);
logins come from a password file made by `mosquitto_passwd -b`, access from
an ACL text (usually tiengmo.acl.render_acl).
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path

from tests.support.broker import Mosquitto, free_port
from tiengmo.mosquitto_conf import render_production_conf


def write_mosquitto_passwd(path: Path, users: Mapping[str, str]) -> None:
    """A password file in Mosquitto's own format, made by its own tool."""
    exe = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    path.unlink(missing_ok=True)
    for i, (name, password) in enumerate(users.items()):
        args = [exe, *(["-c"] if i == 0 else []), "-b", str(path), name, password]
        subprocess.run(args, check=True, capture_output=True, timeout=30)


class ProductionMosquitto(Mosquitto):
    """mosquitto -c <rendered production config>; `port` is the node listener (8883).

    Starting, waiting for the listener and stopping are Mosquitto's own; only the
    config differs.
    """

    def __init__(self, workdir: Path, users: Mapping[str, str], acl: str,
                 drop: Iterable[str] = ()) -> None:
        super().__init__(workdir)     # port: production 8883 (TLS there, plain here)
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

    def write_config(self) -> None:
        """The config is written once, above (subclasses such as SecureMosquitto add to it)."""

    def start(self) -> ProductionMosquitto:
        super().start()
        return self
