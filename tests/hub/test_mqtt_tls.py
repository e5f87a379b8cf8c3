"""Mutual TLS for every MQTT connection the hub opens (hub.mqtt), on a real Mosquitto.

The broker is the production config with its TLS listener (tests.support.secure_broker)
plus `require_certificate true`, and the dynamic-security plugin: a client without a
certificate from the broker's CA never gets to log in. The hub's protocol link, its
dynamic-security session and its Home Assistant bridge (which used to ignore the client
certificate) all connect with the hub's `cert_file`/`key_file`; each one without them
does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.dynsec import DynsecConfig, DynsecControl, DynsecError
from hub.integrations.config import HomeAssistantSettings
from hub.integrations.homeassistant import HomeAssistant
from hub.link import Link, LinkConfig
from hub.runtime import Hub
from hub.settings import HubSettings, load_settings
from protocol import Topics, load_registry
from tests.support.hub_harness import write_registry
from tests.support.secure_broker import Pki, SecureMosquitto, make_pki
from tiengmo.acl import render_acl

T = Topics()
HUB, HA, ADMIN = "hub-1", "hub-1-ha", "hub-admin"
USERS = {HUB: "hub-cert-pass-2b8d", HA: "ha-cert-pass-6e01"}
ADMIN_PASSWORD = "dynsec-cert-pass-c3a7"
HA_ACL = f"\nuser {HA}\ntopic readwrite homeassistant/#\ntopic readwrite tiengmo/ha/#\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), client_name=HUB)


@pytest.fixture
def mtls(tmp_path: Path, pki: Pki) -> Iterator[SecureMosquitto]:
    reg = load_registry(write_registry(tmp_path))
    m = SecureMosquitto(tmp_path / "broker", USERS, render_acl(reg, [HUB]) + HA_ACL, pki=pki,
                        dynsec_admin=(ADMIN, ADMIN_PASSWORD))
    text = m.conf.read_text(encoding="utf-8")
    assert "\ntls_version tlsv1.2\n" in text
    m.conf.write_text(text.replace("\ntls_version tlsv1.2\n",
                                   "\ntls_version tlsv1.2\nrequire_certificate true\n"),
                      encoding="utf-8")
    m.start()
    yield m
    m.stop()


def url(m: SecureMosquitto) -> str:
    return f"mqtts://127.0.0.1:{m.port}"


def settings(m: SecureMosquitto, pki: Pki, tmp_path: Path, *, cert: bool) -> HubSettings:
    (tmp_path / "hub.pass").write_text(USERS[HUB] + "\n", encoding="utf-8")
    tls = {"cert_file": str(pki.client_crt), "key_file": str(pki.client_key)} if cert else {}
    return load_settings(None, env={}, hub_id=HUB, broker_url=url(m), ca_file=str(pki.ca),
                         password_file=str(tmp_path / "hub.pass"),
                         data_dir=str(tmp_path / "data"), **tls)


def test_the_link_connects_with_its_client_certificate_only(mtls: SecureMosquitto, pki: Pki,
                                                            tmp_path: Path) -> None:
    for cert in (True, False):
        hub = Hub(settings(mtls, pki, tmp_path, cert=cert))
        link = Link(LinkConfig(HUB, hub.mqtt_options()), T, on_message=lambda m: None)
        link.start()
        try:
            assert link.wait_connected(10 if cert else 2) is cert, f"cert={cert}"
            assert (link.connect_count > 0) is cert
        finally:
            link.stop()
        if not cert:
            print(f"\nwithout a client certificate: {link.client.last_error}")
            assert link.client.last_error is not None


def test_dynamic_security_connects_with_the_client_certificate_only(
        mtls: SecureMosquitto, pki: Pki) -> None:
    with_cert = DynsecConfig(url(mtls), ADMIN, ADMIN_PASSWORD, ca_file=str(pki.ca),
                             cert_file=str(pki.client_crt), key_file=str(pki.client_key),
                             timeout_s=5)
    [resp] = DynsecControl(with_cert).request([{"command": "listClients"}])
    assert ADMIN in resp["data"]["clients"]
    bad_login = DynsecConfig(url(mtls), ADMIN, "wrong-pass", ca_file=str(pki.ca),
                             cert_file=str(pki.client_crt), key_file=str(pki.client_key),
                             timeout_s=5)
    with pytest.raises(DynsecError, match="refused the dynamic-security login 'hub-admin': "
                                          "Not authorized"):
        DynsecControl(bad_login).request([{"command": "listClients"}])
    without = DynsecConfig(url(mtls), ADMIN, ADMIN_PASSWORD, ca_file=str(pki.ca), timeout_s=3)
    with pytest.raises(DynsecError) as exc:
        DynsecControl(without).request([{"command": "listClients"}])
    print(f"\nwithout a client certificate: {exc.value}")


def test_the_home_assistant_bridge_uses_the_hubs_client_certificate(
        mtls: SecureMosquitto, pki: Pki, tmp_path: Path) -> None:
    ha_settings = HomeAssistantSettings(enabled=True, password=USERS[HA])
    for cert in (True, False):
        hub = Hub(settings(mtls, pki, tmp_path, cert=cert))
        ha = HomeAssistant(hub, ha_settings, store=lambda: None,  # type: ignore[arg-type,return-value]
                           services=lambda: None)  # type: ignore[arg-type,return-value]
        ha.start()
        try:
            assert ha.link.wait_connected(10 if cert else 2) is cert, f"cert={cert}"
            assert (ha.link.connects > 0) is cert
        finally:
            ha.stop()
    log = mtls.log.read_text(encoding="utf-8")
    assert f"u'{HA}'" in log     # it logged in as itself, over TLS
    # With a wrong password the bridge is refused, not connected, and knows why.
    hub = Hub(settings(mtls, pki, tmp_path, cert=True))
    ha = HomeAssistant(hub, HomeAssistantSettings(enabled=True, password="wrong-pass"),
                       store=lambda: None, services=lambda: None)  # type: ignore[arg-type,return-value]
    ha.start()
    try:
        assert not ha.link.wait_connected(1.5)
        assert ha.link.refused is not None and ha.link.refused.reason == "Not authorized"
    finally:
        ha.stop()
