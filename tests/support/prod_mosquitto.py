"""The real Mosquitto running the production config (deploy/mosquitto/mosquitto.conf).

Only ports, paths and TLS are changed (tiengmo.mosquitto_conf.render_conf).
Access is production's when `acl` is a dynamic-security store (a dict, usually
tiengmo.dynsec_config.render_dynsec: logins and roles, nothing else); when it is
an ACL text (tiengmo.acl.render_acl) the plugin's lines are swapped for the old
ACL-file security, with logins in a password file made by `mosquitto_passwd -b`.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from protocol import Registry
from tests.support.broker import Mosquitto, free_port
from tiengmo.dynsec_config import render_dynsec
from tiengmo.mosquitto_conf import render_production_conf


def write_mosquitto_passwd(path: Path, users: Mapping[str, str]) -> None:
    """A password file in Mosquitto's own format, made by its own tool."""
    exe = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    path.unlink(missing_ok=True)
    for i, (name, password) in enumerate(users.items()):
        args = [exe, *(["-c"] if i == 0 else []), "-b", str(path), name, password]
        subprocess.run(args, check=True, capture_output=True, timeout=30)


def dynsec_plugin() -> Path:
    """Where Debian's mosquitto package puts the plugin (as the Ansible role finds it)."""
    out = subprocess.run(["dpkg-query", "-L", "mosquitto"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    for line in out.splitlines():
        if line.endswith("/mosquitto_dynamic_security.so"):
            return Path(line)
    raise RuntimeError("the mosquitto package has no mosquitto_dynamic_security.so")


def dynsec_store(registry: Registry, hubs: Iterable[str], users: Mapping[str, str],
                 admin: str | None = None, sentinels: Iterable[str] = ()) -> dict[str, Any]:
    """Production's access for `registry`; logins not in `users` get a password nobody has."""
    return render_dynsec(registry, hubs, lambda u: users.get(u) or f"unused-{u}-{os.getpid()}",
                         admin=admin, sentinels=sentinels)


def auth_files(workdir: Path, users: Mapping[str, str],
               acl: str | Mapping[str, Any]) -> dict[str, Path]:
    """Write the access files for `acl`; render_conf's keyword arguments for them."""
    if isinstance(acl, str):
        write_mosquitto_passwd(workdir / "passwd", users)
        (workdir / "acl").write_text(acl, encoding="utf-8")
        return {"password_file": workdir / "passwd", "acl_file": workdir / "acl"}
    store = workdir / "dynamic-security.json"
    store.write_text(json.dumps(acl, indent=1), encoding="utf-8")
    return {"dynsec_file": store, "dynsec_plugin": dynsec_plugin()}


class ProductionMosquitto(Mosquitto):
    """mosquitto -c <rendered production config>; `port` is the node listener (8883).

    Starting, waiting for the listener and stopping are Mosquitto's own; only the
    config differs.
    """

    def __init__(self, workdir: Path, users: Mapping[str, str], acl: str | Mapping[str, Any],
                 drop: Iterable[str] = ()) -> None:
        super().__init__(workdir)     # port: production 8883 (TLS there, plain here)
        self.local_port = free_port()  # production 1883 on loopback
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        (workdir / "data").mkdir(exist_ok=True)
        self.auth = auth_files(workdir, users, acl)
        self.conf.write_text(render_production_conf(
            ports={8883: self.port, 1883: self.local_port},
            persistence_location=workdir / "data",
            **self.auth,
            user=getpass.getuser(),
            drop=drop,
        ), encoding="utf-8")

    def write_config(self) -> None:
        """The config is written once, above (subclasses such as SecureMosquitto add to it)."""

    def start(self) -> ProductionMosquitto:
        super().start()
        return self
