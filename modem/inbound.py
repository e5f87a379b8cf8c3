"""What a modem hands in: SMS it stored and calls ringing, parsed from AT text.

With `AT+CSCS="UCS2"` the modem writes every string (a sender's number, a caller's
number, an SMS body) as UCS-2 hex; some modems still write numbers plainly. Both are
read here.

    +CMTI: "SM",3                          an SMS was stored at index 3 (AT+CNMI=2,1)
    +CMGL: 3,"REC UNREAD","<number>",,"26/12/06,22:41:05+28"
    <body>                                 the answer to AT+CMGL="ALL", one pair per SMS
    RING / +CLIP: "<number>",145,,,,0      a call ringing, with its caller id (AT+CLIP=1)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

# Unsolicited result codes: lines a modem may write at any time, also in the middle of
# another command's answer.
URC = re.compile(r"^(RING|NO CARRIER|\+CLIP:.*|\+CRING:.*|\+CMTI:.*)$")
_CLIP = re.compile(r'^\+CLIP:\s*"([^"]*)"')
_CMGL = re.compile(r'^\+CMGL:\s*(\d+),"([^"]*)","([^"]*)",[^,]*(?:,"([^"]*)")?')
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{4})+$")


@dataclass(frozen=True, slots=True)
class InboundSms:
    number: str             # as the modem gave it (normalise before comparing)
    text: str
    index: int              # where the modem stored it (deleted once read)
    sent_ms: int | None     # the network's timestamp, if the modem gave one


@dataclass(frozen=True, slots=True)
class IncomingCall:
    number: str             # "" when the caller withheld their number


Inbound = InboundSms | IncomingCall


def ucs2_text(value: str) -> str:
    """A string the modem may have written as UCS-2 hex, as text."""
    if _HEX.match(value):
        try:
            return bytes.fromhex(value).decode("utf-16-be")
        except UnicodeDecodeError:
            return value
    return value


def ucs2_number(value: str) -> str:
    """A number: UCS-2 hex ("002B00380034…") or plain ("+84…")."""
    text = ucs2_text(value)
    return text if re.fullmatch(r"\+?[0-9*#]*", text) else value


def scts_ms(value: str | None) -> int | None:
    """The service-centre timestamp "yy/MM/dd,hh:mm:ss±zz" (zz in quarter hours) in ms."""
    if not value:
        return None
    m = re.fullmatch(r"(\d\d)/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)([+-]\d\d)", value.strip())
    if m is None:
        return None
    yy, mo, dd, hh, mi, ss, tz = m.groups()
    try:
        at = datetime(2000 + int(yy), int(mo), int(dd), int(hh), int(mi), int(ss),
                      tzinfo=timezone(timedelta(minutes=15 * int(tz))))
    except ValueError:
        return None
    return int(at.timestamp() * 1000)


def calls_in(lines: list[str]) -> list[IncomingCall]:
    """One call per caller (a call rings, with its +CLIP, every few seconds until it is
    rejected); a RING with no +CLIP at all is a withheld number."""
    calls = list(dict.fromkeys(IncomingCall(ucs2_number(m.group(1))) for ln in lines
                               if (m := _CLIP.match(ln)) is not None))
    if not calls and any(ln == "RING" or ln.startswith("+CRING:") for ln in lines):
        calls.append(IncomingCall(""))
    return calls


def stored_sms(lines: list[str]) -> list[InboundSms]:
    """The messages of an AT+CMGL answer (header line, then the body line)."""
    out: list[InboundSms] = []
    i = 0
    while i < len(lines):
        m = _CMGL.match(lines[i])
        if m is None:
            i += 1
            continue
        body = lines[i + 1] if i + 1 < len(lines) and not _CMGL.match(lines[i + 1]) else ""
        out.append(InboundSms(ucs2_number(m.group(3)), ucs2_text(body), int(m.group(1)),
                              scts_ms(m.group(4))))
        i += 2 if body else 1
    return out
