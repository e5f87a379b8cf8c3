"""The hub of the applied site (tests/ansible/site_rig.py, the `site` fixture of
conftest.py): installed offline from the controller's wheelhouse, served over HTTPS by
Debian's nginx with a certificate the officers' CA signed (name-constrained to the
district's names and networks).

The tests look at the CA and the installed files, and talk to the running nginx and hub
from the district's LAN (where an officer's phone is) to log in over validated HTTPS:
the issue's "200, then every next request 401" was the session cookie being Secure over
plain HTTP. The second apply changing nothing is test_site.py's.
"""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from tests.ansible import site_rig
from tests.ansible.site_rig import HOSTS, HUB_ID, HUB_NAME, SITE_DOMAIN, SITE_NETWORK, Site

pytestmark = pytest.mark.timeout(2400)     # the first test here makes the site

NAME, ADDRESS = HUB_NAME, HOSTS["hub"]


def pki(site: Site) -> Path:
    return site.work / "credentials" / "pki"


def hub_root(site: Site) -> Path:
    return site.machine("hub").root


def openssl_verify(ca: Path, cert: Path, *opts: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "verify", "-purpose", "sslserver", *opts, "-CAfile",
                           str(ca), str(cert)], text=True, capture_output=True, timeout=30)


def test_hub_was_installed_offline_from_the_wheelhouse(site: Site) -> None:
    listed = site.machine("hub").run("/opt/tiengmo/venv/bin/pip", "list", "--format=freeze")
    names = {line.split("==")[0].lower().replace("_", "-") for line in listed.stdout.split()}
    assert {"tiengmo", "fastapi", "uvicorn", "sqlalchemy", "pydantic-core"} <= names
    held = {p.name for p in (hub_root(site) / "opt/tiengmo/wheelhouse").glob("*.whl")}
    built = {p.name for p in (site.work / "build/wheelhouse-hub").glob("*.whl")}
    assert held == built and any(w.startswith("pydantic_core-") for w in held)
    # The nodes' wheelhouse stays small: none of the hub's platform wheels go to a Pi.
    node = {p.name for p in (site.work / "build/wheelhouse").glob("*.whl")}
    assert not any(w.startswith(("pydantic_core-", "sqlalchemy-", "fastapi-")) for w in node)
    # pip ran with --no-index: it never fetched anything, so it cached nothing.
    assert not (hub_root(site) / "root/.cache/pip").exists()


# ---------------------------------------------------------------- the CA --

def test_officers_ca_has_critical_name_constraints_for_the_district(site: Site) -> None:
    ca = x509.load_pem_x509_certificate((pki(site) / "web-ca.crt").read_bytes())
    ext = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert ext.critical
    permitted = {str(getattr(n, "value", n)) for n in ext.value.permitted_subtrees or []}
    assert permitted == {SITE_DOMAIN, SITE_NETWORK}
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def _leaf(site: Site, tmp: Path, san: str) -> Path:
    """A server certificate for `san`, signed with the officers' CA's own key."""
    key, csr, crt = tmp / "k.pem", tmp / "r.csr", tmp / "c.pem"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-subj",
                    "/CN=leaf", "-addext", f"subjectAltName={san}", "-out", str(csr)],
                   check=True, capture_output=True, timeout=30)
    ext = tmp / "ext.cnf"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
    ca = pki(site)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca / "web-ca.crt"),
                    "-CAkey", str(ca / "web-ca.key"), "-CAcreateserial", "-days", "2",
                    "-extfile", str(ext), "-out", str(crt)],
                   check=True, capture_output=True, timeout=30)
    return crt


# A sibling district's domain (cho-don.test beside bach-thong.test) and an address of
# the next /24 are as far outside as google.com.
@pytest.mark.parametrize("san", ["DNS:www.google.com", "DNS:hub.cho-don.test",
                                 "IP:192.168.1.1", "IP:10.77.1.2", "IP:::1",
                                 f"DNS:{NAME},DNS:bank.example"])
def test_a_certificate_outside_the_constraints_fails_validation(
        site: Site, tmp_path: Path, san: str) -> None:
    proc = openssl_verify(pki(site) / "web-ca.crt", _leaf(site, tmp_path, san))
    assert proc.returncode != 0, proc.stdout
    assert "subtree violation" in proc.stdout + proc.stderr


@pytest.mark.parametrize("san", [f"DNS:{NAME}", f"DNS:{SITE_DOMAIN}", "IP:10.77.0.200"])
def test_a_certificate_inside_the_constraints_validates(
        site: Site, tmp_path: Path, san: str) -> None:
    proc = openssl_verify(pki(site) / "web-ca.crt", _leaf(site, tmp_path, san))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hubs_certificate_validates_for_its_names_and_addresses(site: Site) -> None:
    ca, crt = pki(site) / "web-ca.crt", hub_root(site) / "etc/tiengmo/tls/hub.crt"
    assert openssl_verify(ca, crt, "-verify_hostname", NAME).returncode == 0
    assert openssl_verify(ca, crt, "-verify_ip", ADDRESS).returncode == 0
    assert openssl_verify(ca, crt, "-verify_hostname", f"other.{SITE_DOMAIN}").returncode != 0


def test_tls_files_are_installed_with_the_right_modes(site: Site) -> None:
    hub = site.machine("hub")
    tls = hub.root / "etc/tiengmo/tls"
    key = (tls / "hub.key").stat()
    assert key.st_mode & 0o777 == 0o600 and key.st_uid == 0     # nginx's master reads it
    assert (tls / "hub.crt").stat().st_mode & 0o777 == 0o644
    assert (tls / "web-ca.crt").read_bytes() == (pki(site) / "web-ca.crt").read_bytes()
    assert (pki(site) / "web-ca.key").stat().st_mode & 0o777 == 0o600
    assert (tls / "hub.key").read_bytes() not in "".join(site.logs).encode()
    uid = int(hub.run("id", "-u", "tiengmo").stdout)
    pw = (hub.root / "etc/tiengmo/hub.password").stat()
    assert pw.st_mode & 0o777 == 0o600 and pw.st_uid == uid
    # The alarm lane's own login (docs/alarm-lane.md): its password like the hub's.
    apw = hub.root / "etc/tiengmo/hub-alarms.password"
    assert apw.stat().st_mode & 0o777 == 0o600 and apw.stat().st_uid == uid
    assert apw.read_text().strip() == (
        site.work / f"credentials/mqtt/{HUB_ID}-alarms").read_text().strip()
    conf = tomllib.loads((hub.root / "etc/tiengmo/hub.toml").read_text())
    assert conf["alarm_connection"] is True and conf["alarm_username"] == f"{HUB_ID}-alarms"
    assert conf["trusted_proxies"] == ["127.0.0.1"]
    assert conf["http_host"] == "127.0.0.1"
    assert not (hub.root / "etc/nginx/sites-enabled/default").exists()
    check = hub.run("nginx", "-t")
    assert check.returncode == 0, check.stderr


# ------------------------------- nginx and the hub, running, from the LAN --

class _LanHttp(http.client.HTTPConnection):
    """Plain HTTP to the hub's address, from the district's LAN."""

    site: Site

    def connect(self) -> None:
        self.sock = site_rig.lan_connect(self.site, ADDRESS, self.port, self.timeout or 15)


class _LanHttps(http.client.HTTPSConnection):
    """HTTPS to the hub's address from the district's LAN, as to `host` (SNI and the
    certificate's check), as if the LAN's DNS answered it with the hub's address."""

    site: Site

    def connect(self) -> None:
        sock = site_rig.lan_connect(self.site, ADDRESS, self.port, self.timeout or 15)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _ctx(site: Site) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki(site) / "web-ca.crt"))


def _https(site: Site, name: str, context: ssl.SSLContext | None = None) -> _LanHttps:
    conn = _LanHttps(name, 443, context=context or _ctx(site), timeout=15)
    conn.site = site
    return conn


def _get(site: Site, path: str, name: str = NAME, method: str = "GET", body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = _https(site, name)
    try:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"content-type": "application/json", **(headers or {})} if data else headers or {}
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def test_https_validates_against_the_officers_ca_by_name_and_address(site: Site) -> None:
    for name in (NAME, ADDRESS):
        status, headers, _ = _get(site, "/healthz", name=name)
        assert status == 200
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
    # The system's trust store does not know the officers' CA, and a name not in the
    # certificate is refused even with it.
    plain = _https(site, NAME, ssl.create_default_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        plain.request("GET", "/healthz")
    with pytest.raises(ssl.SSLCertVerificationError):
        _get(site, "/healthz", name=f"other.{SITE_DOMAIN}")


def test_plain_http_is_redirected_to_https(site: Site) -> None:
    conn = _LanHttp(ADDRESS, 80, timeout=10)
    conn.site = site
    try:
        conn.request("GET", "/api/v1/session?x=1", headers={"Host": NAME})
        resp = conn.getresponse()
        assert resp.status == 301
        assert resp.headers["Location"] == f"https://{NAME}/api/v1/session?x=1"
    finally:
        conn.close()


def test_login_over_https_keeps_the_session(site: Site) -> None:
    password = site_rig.admin_password(site)
    status, headers, body = _get(site, "/api/v1/session", method="POST",
                                 body={"username": "admin", "password": password})
    assert status == 200, body
    cookies = headers.get_all("Set-Cookie") or []
    session = next(c for c in cookies if c.startswith("tiengmo_session="))
    assert "Secure" in session and "HttpOnly" in session
    # The next request with the cookie is still logged in (over plain HTTP it was 401).
    status, _, body = _get(site, "/api/v1/session", headers={"Cookie": session.split(";")[0]})
    assert status == 200, body
    assert json.loads(body)["user"]["username"] == "admin"
    assert _get(site, "/api/v1/session")[0] == 401      # and without it, not
