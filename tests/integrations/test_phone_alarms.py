"""Households alarm by phone, end to end: a household's phone → the simulated 4G modem (a
pty, modem.sim) → the real hub's SMS worker polling it → the hub's own alarm transaction →
`sound` on the hamlet's nodes' topics through real Mosquitto → real node agents strike
their gongs; and SMS back to the household (received, then acknowledged)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hub.integrations.sms import SmsNotifier
from hub.runtime import Hub
from hub.store import TroubleKind
from modem.sim import Received, SimModem
from tests.e2e.harness import ever_sounded, wait_for, wait_hub_ready
from tests.integrations.support import Stack, bearer
from tests.support.hub_harness import HAMLET, OTHER_HAMLET, REGISTRY

PAO, PAO_AS_MODEM = "0912 000 101", "+84912000101"     # a Nà Sang household
CHA, CHA_AS_MODEM = "+84912000201", "84912000201"       # a Nà Chá household
STRANGER = "+84999000999"
HAMLET_HEAD = "+84911000001"

HOUSEHOLDS = f"""
[[households]]
id = "na-sang-h01"
area = "{HAMLET}"
phones = ["{PAO}"]
name = "Hộ ông Hoàng Văn Páo"

[[households]]
id = "na-cha-h01"
area = "{OTHER_HAMLET}"
phones = ["{CHA}"]
"""


@pytest.fixture
def modem() -> Iterator[SimModem]:
    m = SimModem()
    yield m
    m.close()


def start(stack: Stack, modem: SimModem, tmp_path: Path, **inbound: Any) -> Hub:
    reg = tmp_path / "phone-registry.toml"
    reg.write_text(REGISTRY + HOUSEHOLDS, encoding="utf-8")
    stack.start({"sms": {
        "enabled": True, "port": modem.port, "timeout_s": 3.0,
        "responders": [{"area": HAMLET, "phone": HAMLET_HEAD, "role": "trưởng thôn"}],
        "inbound": {"enabled": True, "poll_s": 0.1, "confirm_s": 30.0,
                    "second_call_after_s": 0.5, **inbound}}}, registry_file=str(reg))
    assert stack.hub is not None
    # A call is only seen with its caller id once the hub's modem listens (AT+CLIP=1,
    # AT+CNMI): a RING before that is a withheld number (failed once in CI under load).
    modem.wait_until(lambda: modem.clip and modem.cnmi, what="the hub's modem listening")
    return stack.hub


def sms_worker(stack: Stack) -> SmsNotifier:
    assert stack.integrations is not None and stack.integrations.sms is not None
    return stack.integrations.sms  # type: ignore[no-any-return]


def texts_to(msgs: list[Received], number: str) -> str:
    """Everything `number` was sent, its SMS parts put back together."""
    return " ".join(re.sub(r"^\(\d+/\d+\) ", "", m.text) for m in msgs if m.number == number)


def test_an_sms_chay_from_a_registered_number_sounds_its_hamlet_and_texts_back(
        stack: Stack, modem: SimModem, tmp_path: Path) -> None:
    hub = start(stack, modem, tmp_path)
    village = stack.e2e.village()
    wait_hub_ready(village["na-sang-01"])
    modem.deliver_sms(PAO_AS_MODEM, "CHÁY nhà ông Páo")
    inc = wait_for(lambda: hub.store.incidents.active(), what="the incident")[0]
    assert (inc.kind, inc.area, inc.origin_node) == ("fire", HAMLET, f"tel:{PAO_AS_MODEM}")
    alarm = hub.store.alarms.find(incident_id=inc.incident_id)[0]
    assert alarm.source == "sms" and not alarm.unknown_node
    for node_id in ("na-sang-01", "na-sang-02", "na-sang-03", "na-sang-04"):
        wait_for(lambda n=node_id: ever_sounded(village[n]), what=f"{node_id}'s gong")
    assert not ever_sounded(village["na-cha-01"])
    got = modem.wait(lambda ms: "Alarm (Fire) received" in texts_to(ms, PAO_AS_MODEM),
                     what="the 'received' SMS")
    reply = texts_to(got, PAO_AS_MODEM)
    assert "Thôn Nà Sang" in reply and "received" in reply
    # An officer takes it: the household hears so.
    stack.e2e.services(hub).acknowledge(inc.incident_id, "officer")
    got = modem.wait(lambda ms: "An officer has taken your alarm" in texts_to(ms, PAO_AS_MODEM),
                     what="the 'acknowledged' SMS")
    assert "Công an xã đã tiếp nhận báo động cháy" in texts_to(got, PAO_AS_MODEM)
    assert modem.inbox == {}   # read and deleted from the modem


def test_a_missed_call_sounds_only_once_confirmed(stack: Stack, modem: SimModem,
                                                  tmp_path: Path) -> None:
    hub = start(stack, modem, tmp_path)
    village = stack.e2e.village()
    wait_hub_ready(village["na-sang-01"])
    modem.ring(PAO_AS_MODEM, rings=3)
    modem.wait_until(lambda: modem.hangups >= 1, what="the hub rejecting the call")
    got = modem.wait(lambda ms: "to sound the gongs" in texts_to(ms, PAO_AS_MODEM) and
                     "Unconfirmed" in texts_to(ms, HAMLET_HEAD),
                     what="the confirmation request and the responders' SMS")
    assert "Nhắn 1" in texts_to(got, PAO_AS_MODEM) and "Reply 1" in texts_to(got, PAO_AS_MODEM)
    assert "CHƯA XÁC NHẬN" in texts_to(got, HAMLET_HEAD)
    # The board shows it at once; no gong yet, no incident.
    trouble = wait_for(lambda: hub.store.troubles.find(kind=TroubleKind.PHONE_CALL.value),
                       what="the phone_call trouble")[0]
    assert trouble.subject == PAO_AS_MODEM and trouble.detail["area"] == HAMLET
    assert hub.store.incidents.active() == []
    assert not any(ever_sounded(village[n]) for n in ("na-sang-01", "na-sang-02"))
    modem.deliver_sms(PAO_AS_MODEM, "1")
    inc = wait_for(lambda: hub.store.incidents.active(), what="the confirmed incident")[0]
    assert (inc.kind, inc.area) == ("sos", HAMLET)
    assert hub.store.alarms.find(incident_id=inc.incident_id)[0].source == "call"
    for node_id in ("na-sang-01", "na-sang-02", "na-sang-03", "na-sang-04"):
        wait_for(lambda n=node_id: ever_sounded(village[n]), what=f"{node_id}'s gong")
    assert not ever_sounded(village["na-cha-01"])
    modem.wait(lambda ms: "Alarm (SOS) received" in texts_to(ms, PAO_AS_MODEM),
               what="the 'received' SMS")
    assert "Đã nhận báo động KHẨN CẤP" in texts_to(modem.messages, PAO_AS_MODEM)
    wait_for(lambda: not hub.store.troubles.find(kind=TroubleKind.PHONE_CALL.value),
             what="the phone_call trouble cleared")


def test_a_second_call_confirms_a_missed_call(stack: Stack, modem: SimModem,
                                              tmp_path: Path) -> None:
    hub = start(stack, modem, tmp_path, second_call_after_s=1.5)
    village = stack.e2e.village()
    wait_hub_ready(village["na-cha-01"])
    modem.ring(CHA_AS_MODEM)
    modem.wait(lambda ms: any(m.number == CHA for m in ms), what="the confirmation request")
    phone = sms_worker(stack).phone
    assert phone is not None
    t0 = time.monotonic()
    # At once again (the same call's late RING, a redial in the same pocket): no confirmation.
    modem.ring(CHA_AS_MODEM)
    wait_for(lambda: (CHA, "call", "same_call") in phone.handled, what="the early ring")
    assert hub.store.incidents.active() == []
    time.sleep(max(0.0, 1.6 - (time.monotonic() - t0)))   # second_call_after_s is 1.5 s
    modem.ring(CHA_AS_MODEM)
    inc = wait_for(lambda: hub.store.incidents.active(), what="the incident")[0]
    assert (inc.kind, inc.area) == ("sos", OTHER_HAMLET)
    wait_for(lambda: ever_sounded(village["na-cha-01"]), what="na-cha-01's gong")
    assert not ever_sounded(village["na-sang-01"])


def test_an_unknown_number_sounds_nothing_and_is_shown_to_the_officer(
        stack: Stack, modem: SimModem, tmp_path: Path) -> None:
    hub = start(stack, modem, tmp_path)
    village = stack.e2e.village()
    wait_hub_ready(village["na-sang-01"])
    modem.deliver_sms(STRANGER, "chay")
    modem.ring("+84999000998")
    token = stack.token("operator")
    assert stack.client is not None

    def shown() -> list[dict[str, Any]] | None:
        rows = stack.client.get("/api/v1/troubles", headers=bearer(token)).json()  # type: ignore[union-attr]
        mine = [r for r in rows if r["kind"] == "unknown_caller"]
        return mine if len(mine) == 2 else None

    rows = wait_for(shown, what="both unknown callers on the officer's trouble list")
    assert {r["subject"] for r in rows} == {STRANGER, "+84999000998"}
    by = {r["subject"]: r for r in rows}
    assert by[STRANGER]["detail"]["kind"] == "fire" and by[STRANGER]["detail"]["via"] == "sms"
    wait_for(lambda: len(sms_worker(stack).phone.handled) >= 2,  # type: ignore[union-attr]
             what="both handled")
    assert hub.store.incidents.active() == []
    assert not any(ever_sounded(n) for n in village.nodes)
    assert not [m for m in modem.messages if m.number in (STRANGER, "+84999000998")]
    entries = hub.store.audit.entries(action="phone_unknown")
    assert {e.subject for e in entries} == {STRANGER, "+84999000998"}


def test_an_unknown_number_may_sound_the_area_a_setting_names(
        stack: Stack, modem: SimModem, tmp_path: Path) -> None:
    hub = start(stack, modem, tmp_path, unknown_area=OTHER_HAMLET)
    modem.deliver_sms(STRANGER, "Trộm")
    inc = wait_for(lambda: hub.store.incidents.active(), what="the incident")[0]
    assert (inc.kind, inc.area) == ("theft", OTHER_HAMLET)
    assert hub.store.troubles.find(kind=TroubleKind.UNKNOWN_CALLER.value)


def test_a_flood_of_sms_from_one_number_is_rate_limited(stack: Stack, modem: SimModem,
                                                        tmp_path: Path) -> None:
    hub = start(stack, modem, tmp_path, rate_max=3, rate_window_s=600.0)
    for _ in range(12):
        modem.deliver_sms(PAO_AS_MODEM, "chay")
    phone = sms_worker(stack).phone
    assert phone is not None
    wait_for(lambda: len(phone.handled) >= 12, what="all twelve handled")
    outcomes = [o for n, _, o in phone.handled if n == PAO_AS_MODEM]
    assert outcomes.count("alarm") == 3 and outcomes.count("rate_limited") == 9
    assert len(hub.store.audit.entries(action="phone_alarm")) == 3
    flood = hub.store.troubles.find(kind=TroubleKind.PHONE_FLOOD.value)
    assert [t.subject for t in flood] == [PAO_AS_MODEM]
    incidents = hub.store.incidents.active()
    assert len(incidents) == 1 and incidents[0].alarm_count == 3   # one incident, correlated
    wait_for(lambda: len([m for m in modem.messages if m.number == PAO_AS_MODEM]) >= 3,
             what="three replies")
    assert len([m for m in modem.messages if m.number == PAO_AS_MODEM
                and "Đã nhận" in m.text]) <= 3


def test_admins_see_the_households_and_nobody_else_does(stack: Stack, modem: SimModem,
                                                         tmp_path: Path) -> None:
    start(stack, modem, tmp_path)
    assert stack.client is not None
    rows = stack.client.get("/api/v1/households", headers=bearer(stack.token("admin"))).json()
    assert rows == [
        {"id": "na-cha-h01", "area": OTHER_HAMLET, "name": None, "phones": [CHA]},
        {"id": "na-sang-h01", "area": HAMLET, "name": "Hộ ông Hoàng Văn Páo",
         "phones": [PAO_AS_MODEM]}]
    r = stack.client.get("/api/v1/households", headers=bearer(stack.token("operator")))
    assert r.status_code == 403


def test_the_simulator_panel_texts_and_rings_as_a_household(stack: Stack, modem: SimModem,
                                                             tmp_path: Path) -> None:
    from tiengmo import simpanel  # the demo's panel, on this stack's app

    hub = start(stack, modem, tmp_path)
    simpanel.mount(stack._app, SimpleNamespace(hub=hub, modem=modem, village=None))
    assert stack.client is not None
    op = bearer(stack.token("operator"))
    rows = stack.client.get("/api/v1/sim/households", headers=op).json()
    assert {(r["id"], r["phone"]) for r in rows} == {("na-sang-h01", PAO_AS_MODEM),
                                                    ("na-cha-h01", CHA)}
    r = stack.client.post("/api/v1/sim/households/na-sang-h01/call", headers=op)
    assert r.status_code == 202
    wait_for(lambda: hub.store.troubles.find(kind=TroubleKind.PHONE_CALL.value),
             what="the pending call")
    r = stack.client.post("/api/v1/sim/households/na-sang-h01/sms", headers=op,
                          json={"text": "1"})
    assert r.status_code == 202
    inc = wait_for(lambda: hub.store.incidents.active(), what="the confirmed incident")[0]
    assert inc.area == HAMLET

    def panel_sees_the_reply() -> bool:
        assert stack.client is not None
        got = [Received(m["number"], m["text"], 0.0) for m in stack.client.get(
            "/api/v1/sim/phone/messages", headers=op).json()]
        return "Alarm (SOS) received" in texts_to(got, PAO_AS_MODEM)

    wait_for(panel_sees_the_reply, what="the reply, seen by the panel")
    assert stack.client.post("/api/v1/sim/households/nobody/call",
                             headers=op).status_code == 404
