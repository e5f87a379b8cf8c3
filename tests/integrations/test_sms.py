"""SMS end to end through a simulated 4G modem on a pty: a press on a node agent → the hub
→ AT commands in text mode with UCS-2 → the hamlet head's and the commune police's phones
get the Vietnamese message with its diacritics intact (long ones in numbered parts); the
neighbouring hamlet's head gets nothing; the administrators hear when the hub loses its
broker for longer than the setting, and when it is back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from modem import UCS2_LIMIT, split_sms, ucs2_hex, units
from tests.e2e.harness import wait_for, wait_hub_ready
from tests.integrations.fake_modem import FakeModem, Received
from tests.integrations.support import Stack

HAMLET_HEAD, COMMUNE_POLICE, OTHER_HEAD, ADMIN = (
    "+84911000001", "+84911000002", "+84911000003", "+84911000009")


@pytest.fixture
def modem() -> Iterator[FakeModem]:
    m = FakeModem()
    yield m
    m.close()


def sms(port: str, **extra: Any) -> dict[str, Any]:
    return {"sms": {"enabled": True, "port": port, "timeout_s": 3.0, "admins": [ADMIN],
                    "broker_loss_after_s": 1.0, **extra, "responders": [
                        {"area": "bach-thong/vi-huong/na-sang", "phone": HAMLET_HEAD,
                         "role": "trưởng thôn"},
                        {"area": "bach-thong/vi-huong", "phone": COMMUNE_POLICE,
                         "role": "công an xã"},
                        {"area": "bach-thong/vi-huong/na-cha", "phone": OTHER_HEAD,
                         "role": "trưởng thôn"}]}}


def joined(msgs: list[Received], number: str) -> str:
    """One phone's parts put back together, in order."""
    parts = [m.text for m in msgs if m.number == number]
    if len(parts) == 1:
        return parts[0]
    return " ".join(re.sub(r"^\(\d+/\d+\) ", "", p) for p in parts)


def test_a_press_texts_the_hamlet_head_and_the_commune_police_in_vietnamese(
        stack: Stack, modem: FakeModem) -> None:
    stack.start(sms(modem.port))
    hub = stack.hub
    assert hub is not None
    village = stack.e2e.village()
    wait_hub_ready(village["na-sang-01"])
    village["na-sang-01"].press("fire")
    inc = wait_for(lambda: hub.store.incidents.active(), what="the incident")[0]

    def both(ms: list[Received]) -> bool:
        done = [joined(ms, n) for n in (HAMLET_HEAD, COMMUNE_POLICE)]
        return all("xử lý ngay." in t for t in done)

    msgs = modem.wait(both, what="an SMS to each responder")
    for number in (HAMLET_HEAD, COMMUNE_POLICE):
        text = joined(msgs, number)
        assert text.startswith("[Tiếng mõ] BÁO ĐỘNG CHÁY tại Thôn Nà Sang, Xã Vi Hương lúc ")
        assert f"Nút na-sang-01. Vụ việc {inc.incident_id[:8]}." in text
    assert all(units(m.text) <= UCS2_LIMIT for m in msgs)
    assert OTHER_HEAD not in {m.number for m in msgs}
    # Text mode, UCS-2 strings, and the data coding scheme that says UCS-2.
    assert {"AT+CMGF=1", 'AT+CSCS="UCS2"', "AT+CSMP=17,167,0,8"} <= set(modem.commands)
    sent = wait_for(lambda: (lambda rows: rows if {e.subject for e in rows} >= {
        HAMLET_HEAD, COMMUNE_POLICE} else None)(hub.store.audit.entries(action="sms_sent")),
        what="an audit row per SMS")
    assert all(e.actor == "hub:sms" and e.detail["incident_id"] == inc.incident_id
               for e in sent)


def test_a_refused_send_is_retried_and_drills_text_nobody(stack: Stack,
                                                          modem: FakeModem) -> None:
    modem.refuse_sends = 1
    stack.start(sms(modem.port))
    hub = stack.hub
    assert hub is not None
    services = stack.e2e.services(hub)
    services.start_drill("bach-thong/vi-huong/na-cha", "officer")
    village = stack.e2e.village()
    wait_hub_ready(village["na-cha-01"])
    village["na-cha-01"].press("theft")
    msgs = modem.wait(lambda ms: any(m.number == OTHER_HEAD and "xử lý ngay." in m.text
                                     for m in ms) and
                      any(m.number == COMMUNE_POLICE and "xử lý ngay." in m.text
                          for m in ms), what="the theft SMS after a refusal")
    assert not any("DIỄN TẬP" in m.text for m in msgs)
    assert "TRỘM CẮP" in joined(msgs, OTHER_HEAD)
    assert HAMLET_HEAD not in {m.number for m in msgs}


def test_the_hub_losing_its_broker_texts_the_administrators(stack: Stack,
                                                            modem: FakeModem) -> None:
    stack.start(sms(modem.port))
    hub = stack.hub
    assert hub is not None and hub.link is not None
    stack.e2e.broker.stop()
    lost = modem.wait(lambda ms: any(m.number == ADMIN for m in ms), what="the admin SMS")
    text = joined(lost, ADMIN)
    assert "mất kết nối MQTT" in text and "hub-test" in text
    stack.e2e.broker.start()
    assert hub.link.wait_connected(20)
    back = modem.wait(lambda ms: "kết nối lại" in joined(ms, ADMIN), what="the all-clear SMS")
    assert len([m for m in back if m.number == ADMIN and "mất kết nối" in m.text]) == 1


def test_splitting_counts_utf16_units_and_numbers_the_parts() -> None:
    short = "Cháy ở Nà Sang"
    assert split_sms(short) == [short]
    assert ucs2_hex("Đ") == "0110"
    long = "Tiếng mõ an ninh " * 12
    parts = split_sms(long)
    assert len(parts) > 1 and all(units(p) <= UCS2_LIMIT for p in parts)
    assert [p.split(" ", 1)[0] for p in parts] == [f"({i}/{len(parts)})"
                                                  for i in range(1, len(parts) + 1)]
    assert " ".join(p.split(" ", 1)[1] for p in parts).split() == long.split()
    emoji = "🔥" * 40               # beyond the BMP: two units each
    assert all(units(p) <= UCS2_LIMIT for p in split_sms(emoji))
    assert "".join(p.split(" ", 1)[1] for p in split_sms(emoji)) == emoji
