"""The production Mosquitto with what production adds: TLS and the dynamic-security plugin.

`make_pki` makes a throwaway CA, a server certificate for 127.0.0.1/localhost, a client
certificate and a second, unrelated CA (to show a wrong CA is refused), with the
`openssl` command (.ci/setup installs it). `SecureMosquitto` is
tests.support.prod_mosquitto.ProductionMosquitto with the production config rendered
*with* its TLS lines (certificate paths moved to the test's folder). Access is
production's dynamic-security store when `acl` is one (tiengmo.dynsec_config); with an
ACL text it is the old ACL-file security, and `dynsec_admin` then adds the plugin on a
store made by `mosquitto_ctrl dynsec init` (the old hybrid set-up).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.prod_mosquitto import ProductionMosquitto, dynsec_plugin
from tiengmo.mosquitto_conf import render_production_conf


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl") or "/usr/bin/openssl"
    subprocess.run([exe, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_crt: Path
    server_key: Path
    client_crt: Path
    client_key: Path
    other_ca: Path


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, crt = folder / f"{name}.key", folder / f"{name}.crt"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", f"/CN=tiengmo test {name}", "-keyout", str(key), "-out", str(crt),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    return crt, key


def _leaf(folder: Path, name: str, ca: tuple[Path, Path], ext: str) -> tuple[Path, Path]:
    key, csr, crt = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    extfile = folder / f"{name}.ext"
    extfile.write_text(ext, encoding="utf-8")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
             "-keyout", str(key), "-out", str(csr), cwd=folder)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-days", "2", "-extfile", str(extfile), "-out", str(crt),
             cwd=folder)
    return crt, key


def make_pki(folder: Path, client_name: str = "na-sang-01") -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    ca = _ca(folder, "ca")
    other = _ca(folder, "other-ca")
    server = _leaf(folder, "server", ca, "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                   "extendedKeyUsage=serverAuth\n")
    client = _leaf(folder, client_name, ca, "extendedKeyUsage=clientAuth\n")
    return Pki(ca[0], server[0], server[1], client[0], client[1], other[0])


class SecureMosquitto(ProductionMosquitto):
    """`port` speaks TLS when `pki` is given (production's 8883); `local_port` is plain."""

    def __init__(self, workdir: Path, users: Mapping[str, str], acl: str | Mapping[str, Any], *,
                 pki: Pki | None = None, dynsec_admin: tuple[str, str] | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir, users, acl)
        text = render_production_conf(
            ports={8883: self.port, 1883: self.local_port},
            persistence_location=workdir / "data", **self.auth,
            user=self.conf_user(), tls=pki is not None)
        if pki is not None:
            text = (text.replace("/etc/mosquitto/certs/ca.crt", str(pki.ca))
                    .replace("/etc/mosquitto/certs/server.crt", str(pki.server_crt))
                    .replace("/etc/mosquitto/certs/server.key", str(pki.server_key)))
        self.dynsec_file: Path | None = None
        if not isinstance(acl, str):
            self.dynsec_file = workdir / "dynamic-security.json"
        elif dynsec_admin is not None:
            self.dynsec_file = workdir / "dynamic-security.json"
            self.dynsec_file.unlink(missing_ok=True)
            exe = shutil.which("mosquitto_ctrl") or "/usr/bin/mosquitto_ctrl"
            subprocess.run([exe, "dynsec", "init", str(self.dynsec_file), *dynsec_admin],
                           check=True, capture_output=True, timeout=30)
            # The old hybrid: the plugin only for the hub's admin, on top of the files.
            text += (f"\nplugin {dynsec_plugin()}\n"
                     f"plugin_opt_config_file {self.dynsec_file}\n")
        self.conf.write_text(text, encoding="utf-8")

    @staticmethod
    def conf_user() -> str:
        import getpass
        return getpass.getuser()
