"""The modem driver's inbound half against the simulated modem on a pty: stored SMS read
and deleted, calls rejected once their caller id is read, unsolicited lines that arrive
inside another command's answer kept for the next poll."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from modem import Modem
from modem.inbound import InboundSms, IncomingCall, scts_ms, stored_sms, ucs2_number
from modem.sim import SimModem


@pytest.fixture
def sim() -> Iterator[SimModem]:
    m = SimModem()
    yield m
    m.close()


def test_sms_and_calls_come_in_and_the_modem_is_left_clean(sim: SimModem) -> None:
    d = Modem(sim.port, timeout_s=3)
    d.listen()
    assert d.poll(0.2) == []
    assert {"AT+CLIP=1", "AT+CNMI=2,1,0,0,0"} <= set(sim.commands)
    sim.deliver_sms("+84912000101", "CHÁY nhà")
    got = d.poll(2)
    assert [(g.number, g.text) for g in got if isinstance(g, InboundSms)] == [
        ("+84912000101", "CHÁY nhà")]
    assert sim.inbox == {}
    sim.ring("0912000101", rings=3)
    assert d.poll(2) == [IncomingCall("0912000101")]   # one call, however many RINGs
    assert sim.hangups == 1
    # An SMS announced while the hub is sending: kept, and handed out by the next poll.
    sim.deliver_sms("+84912000101", "1")
    time.sleep(0.2)
    d.send("+84912000101", "Đã nhận")
    assert [g.text for g in d.poll(1) if isinstance(g, InboundSms)] == ["1"]
    d.close()


def test_messages_stored_while_the_hub_was_away_are_read_on_open(sim: SimModem) -> None:
    sim.deliver_sms("+84912000101", "trom")
    d = Modem(sim.port, timeout_s=3)
    d.listen()
    assert [g.text for g in d.poll(0.5) if isinstance(g, InboundSms)] == ["trom"]
    d.close()


def test_parsing() -> None:
    assert ucs2_number("002B00380034") == "+84"
    assert ucs2_number("+84912") == "+84912"
    assert scts_ms("26/12/06,22:41:05+28") == 1796571665000
    assert scts_ms("garbage") is None
    lines = ['+CMGL: 1,"REC UNREAD","002B0038","","26/12/06,22:41:05+28"', "0043",
             '+CMGL: 2,"REC READ","+84",,"26/12/06,22:41:05+28"', "hi"]
    assert [(s.index, s.number, s.text) for s in stored_sms(lines)] == [
        (1, "+8", "C"), (2, "+84", "hi")]
