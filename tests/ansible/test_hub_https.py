"""The hub role applied for real into a throwaway Debian root: installed offline from the
controller's wheelhouse, served over HTTPS by Debian's nginx with a certificate the
officers' CA signed (name-constrained to the district's names and networks).

One module-scoped apply of hub.yml (the controller, then the hub in a chroot), then a
second that must change nothing. The tests then look at the CA and the files, and run
the installed nginx and the installed hub inside the root (on free ports, against a
throwaway Mosquitto) to log in over validated HTTPS: the issue's "200, then every next
request 401" was the session cookie being Secure over plain HTTP.

Time budget (2 cores shared at load 11-25): first apply 955 s (two wheel builds, the
hub's 48 wheels copied one by one, apt installs nginx), second 469 s, checks 30 s:
about 25 min, hence the 3000 s timeout (long tier).
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from tests.ansible import support
from tests.support.broker import Mosquitto, free_port

pytestmark = pytest.mark.timeout(3000)

LIMIT = "localhost,hub-test"
DOMAIN = "test.home.arpa"
NETWORK = "10.77.0.0/24"
NAME = f"mo-hub.{DOMAIN}"
ADDRESS = "10.77.0.2"


@dataclass
class Applied:
    root: Path
    work: Path
    ports: dict[str, int]
    first: str
    second: str

    @property
    def pki(self) -> Path:
        return self.work / "credentials" / "pki"


def write_inventory(path: Path, root: Path, work: Path, ports: dict[str, int],
                    repo: Path) -> None:
    chroot = {"ansible_connection": "community.general.chroot", "ansible_host": str(root),
              "ansible_become": False}
    inv: dict[str, Any] = {"all": {
        "vars": {
            "tiengmo_deployment_name": "test",
            "tiengmo_controller_repo_dir": str(repo),
            "tiengmo_credentials_dir": str(work / "credentials"),
            "tiengmo_build_dir": str(work / "build"),
            "tiengmo_mqtt_prefix": "mo/v1",
            "tiengmo_broker_hostname": "localhost",
            "tiengmo_broker_dynsec_admin": "hub-admin",
            "tiengmo_site_domains": [DOMAIN],
            "tiengmo_site_networks": [NETWORK],
            "tiengmo_areas": [{"path": "bach-thong", "name": "Huyện Bạch Thông"},
                              {"path": "bach-thong/na-sang", "name": "Thôn Nà Sang"}],
        },
        "children": {
            "tiengmo_controller": {"hosts": {"localhost": {
                "ansible_connection": "local",
                "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}},
            "tiengmo_brokers": {"hosts": {"broker-test": {}}},
            "tiengmo_hubs": {"hosts": {"hub-test": {
                **chroot, "tiengmo_hub_id": "hub-test-1",
                "tiengmo_hub_tls_names": [NAME], "tiengmo_hub_tls_addresses": [ADDRESS],
                "tiengmo_hub_https_port": ports["https"],
                "tiengmo_hub_http_redirect_port": ports["http"],
                "tiengmo_hub_http_port": ports["hub"],
                "tiengmo_hub_listen_ipv6": False,
                # The test's own broker (plain, anonymous): the hub's HTTP is under test.
                "tiengmo_hub_broker_url": f"mqtt://127.0.0.1:{ports['mqtt']}",
            }}},
            "tiengmo_nodes": {"hosts": {"na-sang-01": {
                "tiengmo_node_id": "na-sang-01", "tiengmo_node_area": "bach-thong/na-sang"}}},
        },
    }}
    path.write_text(yaml.safe_dump(inv, allow_unicode=True, sort_keys=False))


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Applied]:
    work = tmp_path_factory.mktemp("hub-apply")
    root = work / "root"
    support.make_root(root)
    src = work / "src"
    shutil.copytree(support.REPO, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", ".venv", "venv", "__pycache__", ".*_cache",
        ".hypothesis", "node_modules", "artifacts"))
    ports = {"https": free_port(), "http": free_port(), "hub": free_port(),
             "mqtt": free_port()}
    inventory = work / "hosts.yml"
    write_inventory(inventory, root, work, ports, src)
    logs = []
    times = []
    for name in ("first", "second"):
        t = time.monotonic()
        proc = support.run_playbooks(inventory, ["hub.yml"], LIMIT, work / f"{name}-apply.log",
                                     timeout=1400)
        times.append(time.monotonic() - t)
        assert proc.returncode == 0, f"{name} apply failed:\n{proc.stdout[-6000:]}"
        logs.append(proc.stdout)
    print(f"hub apply: first {times[0]:.1f} s, second {times[1]:.1f} s")
    yield Applied(root, work, ports, logs[0], logs[1])
    shutil.rmtree(root, ignore_errors=True)


def in_root(a: Applied, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chroot", str(a.root), *argv], text=True, capture_output=True,
                          timeout=120)


def openssl_verify(ca: Path, cert: Path, *opts: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "verify", "-purpose", "sslserver", *opts, "-CAfile",
                           str(ca), str(cert)], text=True, capture_output=True, timeout=30)


# ------------------------------------------------------------------ applies --

def test_second_apply_changes_nothing(applied: Applied) -> None:
    first, second = support.recap(applied.first), support.recap(applied.second)
    assert first["hub-test"]["failed"] == 0 and first["hub-test"]["changed"] > 0
    assert second["hub-test"]["changed"] == 0, support.recap_lines(applied.second)
    assert second["localhost"]["changed"] == 0, support.recap_lines(applied.second)


def test_hub_was_installed_offline_from_the_wheelhouse(applied: Applied) -> None:
    listed = in_root(applied, "/opt/tiengmo/venv/bin/pip", "list", "--format=freeze")
    names = {line.split("==")[0].lower().replace("_", "-") for line in listed.stdout.split()}
    assert {"tiengmo", "fastapi", "uvicorn", "sqlalchemy", "pydantic-core"} <= names
    held = {p.name for p in (applied.root / "opt/tiengmo/wheelhouse").glob("*.whl")}
    built = {p.name for p in (applied.work / "build/wheelhouse-hub").glob("*.whl")}
    assert held == built and any(w.startswith("pydantic_core-") for w in held)
    # The nodes' wheelhouse stays small: none of the hub's platform wheels go to a Pi.
    node = {p.name for p in (applied.work / "build/wheelhouse").glob("*.whl")}
    assert not any(w.startswith(("pydantic_core-", "sqlalchemy-", "fastapi-")) for w in node)
    # pip ran with --no-index: it never fetched anything, so it cached nothing.
    assert not (applied.root / "root/.cache/pip").exists()


# ---------------------------------------------------------------- the CA --

def test_officers_ca_has_critical_name_constraints_for_the_district(applied: Applied) -> None:
    ca = x509.load_pem_x509_certificate((applied.pki / "web-ca.crt").read_bytes())
    ext = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert ext.critical
    permitted = {str(getattr(n, "value", n)) for n in ext.value.permitted_subtrees or []}
    assert permitted == {DOMAIN, NETWORK}
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def _leaf(a: Applied, tmp: Path, san: str) -> Path:
    """A server certificate for `san`, signed with the officers' CA's own key."""
    key, csr, crt = tmp / "k.pem", tmp / "r.csr", tmp / "c.pem"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-subj",
                    "/CN=leaf", "-addext", f"subjectAltName={san}", "-out", str(csr)],
                   check=True, capture_output=True, timeout=30)
    ext = tmp / "ext.cnf"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(a.pki / "web-ca.crt"),
                    "-CAkey", str(a.pki / "web-ca.key"), "-CAcreateserial", "-days", "2",
                    "-extfile", str(ext), "-out", str(crt)],
                   check=True, capture_output=True, timeout=30)
    return crt


@pytest.mark.parametrize("san", ["DNS:www.google.com", "DNS:mo-hub.other.home.arpa",
                                 "IP:192.168.1.1", "IP:10.77.1.2", "IP:::1",
                                 f"DNS:{NAME},DNS:bank.example"])
def test_a_certificate_outside_the_constraints_fails_validation(
        applied: Applied, tmp_path: Path, san: str) -> None:
    crt = _leaf(applied, tmp_path, san)
    proc = openssl_verify(applied.pki / "web-ca.crt", crt)
    assert proc.returncode != 0, proc.stdout
    assert "subtree violation" in proc.stdout + proc.stderr


@pytest.mark.parametrize("san", [f"DNS:{NAME}", f"DNS:{DOMAIN}", "IP:10.77.0.200"])
def test_a_certificate_inside_the_constraints_validates(
        applied: Applied, tmp_path: Path, san: str) -> None:
    proc = openssl_verify(applied.pki / "web-ca.crt", _leaf(applied, tmp_path, san))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hubs_certificate_validates_for_its_names_and_addresses(applied: Applied) -> None:
    ca, crt = applied.pki / "web-ca.crt", applied.root / "etc/tiengmo/tls/hub.crt"
    assert openssl_verify(ca, crt, "-verify_hostname", NAME).returncode == 0
    assert openssl_verify(ca, crt, "-verify_ip", ADDRESS).returncode == 0
    assert openssl_verify(ca, crt, "-verify_hostname", "other.test.home.arpa").returncode != 0


def test_tls_files_are_installed_with_the_right_modes(applied: Applied) -> None:
    tls = applied.root / "etc/tiengmo/tls"
    key = (tls / "hub.key").stat()
    assert key.st_mode & 0o777 == 0o600 and key.st_uid == 0     # nginx's master reads it
    assert (tls / "hub.crt").stat().st_mode & 0o777 == 0o644
    assert (tls / "web-ca.crt").read_bytes() == (applied.pki / "web-ca.crt").read_bytes()
    assert (applied.pki / "web-ca.key").stat().st_mode & 0o777 == 0o600
    assert (tls / "hub.key").read_bytes() not in (applied.first + applied.second).encode()
    uid = int(in_root(applied, "id", "-u", "tiengmo").stdout)
    pw = (applied.root / "etc/tiengmo/hub.password").stat()
    assert pw.st_mode & 0o777 == 0o600 and pw.st_uid == uid
    # The alarm lane's own login (docs/alarm-lane.md): its password like the hub's.
    apw = applied.root / "etc/tiengmo/hub-alarms.password"
    assert apw.stat().st_mode & 0o777 == 0o600 and apw.stat().st_uid == uid
    assert apw.read_text().strip() == (
        applied.work / "credentials/mqtt/hub-test-1-alarms").read_text().strip()
    conf = tomllib.loads((applied.root / "etc/tiengmo/hub.toml").read_text())
    assert conf["alarm_connection"] is True and conf["alarm_username"] == "hub-test-1-alarms"
    assert conf["trusted_proxies"] == ["127.0.0.1"]
    assert conf["http_host"] == "127.0.0.1"
    assert not (applied.root / "etc/nginx/sites-enabled/default").exists()
    check = in_root(applied, "nginx", "-t")
    assert check.returncode == 0, check.stderr


# ------------------------------------------- nginx and the hub, running --

def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(log.read_text(errors="replace")[-3000:])
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(log.read_text(errors="replace")[-3000:]) from None
            time.sleep(0.2)


@pytest.fixture(scope="module")
def serving(applied: Applied) -> Iterator[Applied]:
    """The installed hub and nginx, run inside the root (a throwaway Mosquitto beside)."""
    broker = Mosquitto(applied.work, port=applied.ports["mqtt"]).start()
    procs = []
    try:
        for name, argv in (
                ("hub", ["/opt/tiengmo/venv/bin/tiengmo", "hub", "--config",
                         "/etc/tiengmo/hub.toml"]),
                ("nginx", ["/usr/sbin/nginx", "-g", "daemon off;"])):
            log = applied.work / f"{name}.log"
            with log.open("wb") as out:
                procs.append(subprocess.Popen(["chroot", str(applied.root), *argv],
                                              stdout=out, stderr=subprocess.STDOUT))
            port = applied.ports["hub" if name == "hub" else "https"]
            _wait_port(port, procs[-1], log)
        deadline = time.monotonic() + 60
        while _get(applied, "/healthz")[0] != 200:
            assert time.monotonic() < deadline, (applied.work / "hub.log").read_text()[-3000:]
            time.sleep(0.5)
        yield applied
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.stop()


class _Https(http.client.HTTPSConnection):
    """HTTPS to `name` (SNI and the certificate's check) at 127.0.0.1:port."""

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _ctx(a: Applied) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(a.pki / "web-ca.crt"))


def _get(a: Applied, path: str, name: str = NAME, method: str = "GET", body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = _Https(name, a.ports["https"], context=_ctx(a), timeout=15)
    try:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"content-type": "application/json", **(headers or {})} if data else headers or {}
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def test_https_validates_against_the_officers_ca_by_name_and_address(serving: Applied) -> None:
    for name in (NAME, ADDRESS):
        status, headers, _ = _get(serving, "/healthz", name=name)
        assert status == 200
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
    # The system's trust store does not know the officers' CA, and a name not in the
    # certificate is refused even with it.
    plain = _Https(NAME, serving.ports["https"], context=ssl.create_default_context(),
                   timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        plain.request("GET", "/healthz")
    with pytest.raises(ssl.SSLCertVerificationError):
        _get(serving, "/healthz", name=f"other.{DOMAIN}")


def test_plain_http_is_redirected_to_https(serving: Applied) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", serving.ports["http"], timeout=10)
    try:
        conn.request("GET", "/api/v1/session?x=1", headers={"Host": NAME})
        resp = conn.getresponse()
        assert resp.status == 301
        assert resp.headers["Location"] == (
            f"https://{NAME}:{serving.ports['https']}/api/v1/session?x=1")
    finally:
        conn.close()


def test_login_over_https_keeps_the_session(serving: Applied) -> None:
    password = (serving.work / "credentials/hub-admin-user").read_text().strip()
    status, headers, body = _get(serving, "/api/v1/session", method="POST",
                                 body={"username": "admin", "password": password})
    assert status == 200, body
    cookies = headers.get_all("Set-Cookie") or []
    session = next(c for c in cookies if c.startswith("tiengmo_session="))
    assert "Secure" in session and "HttpOnly" in session
    # The next request with the cookie is still logged in (over plain HTTP it was 401).
    status, _, body = _get(serving, "/api/v1/session",
                           headers={"Cookie": session.split(";")[0]})
    assert status == 200, body
    assert json.loads(body)["user"]["username"] == "admin"
    assert _get(serving, "/api/v1/session")[0] == 401      # and without it, not
