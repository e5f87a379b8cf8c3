"""SMS through a cellular modem (a 4G USB stick or HAT: Vietnam has switched 2G
off), with AT commands over its serial port (pyserial).

Text mode with the UCS-2 character set, so Vietnamese arrives with its diacritics:
    AT            is anyone there          ATE0          no echo
    AT+CMGF=1     text mode                AT+CSCS="UCS2" strings as UCS-2 hex
    AT+CSMP=17,167,0,8                     SMS-SUBMIT, validity 24 h, data coding 8 = UCS-2
    AT+CMGS="<number as UCS-2 hex>"  → "> "  then the text as UCS-2 hex and Ctrl-Z
                                     ← +CMGS: <reference>, OK
A UCS-2 SMS holds 70 characters (UTF-16 code units). Text mode cannot send the
concatenation header, so a longer message goes as separate parts numbered "(1/3) ",
each within 70 units, split at a space where one is near the end.

Inbound (`listen()`, then `poll()` from the thread that owns the modem):
    AT+CLIP=1     caller id with every RING      AT+CNMI=2,1,0,0,0  +CMTI when an SMS is stored
    AT+CMGL="ALL" (the word as UCS-2 hex)  → the stored messages; AT+CMGD=<i> deletes one
    ATH           a ringing call rejected, never answered: it costs the caller nothing
Unsolicited lines (RING, +CLIP, +CMTI) may come at any time, also inside another
command's answer: they are set aside there and handed out by the next `poll()`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import termios
import threading
import time
from typing import Any

from .inbound import URC, Inbound, calls_in, stored_sms

log = logging.getLogger("tiengmo.modem")

UCS2_LIMIT = 70
CTRL_Z = b"\x1a"
INIT = ("AT", "ATE0", "AT+CMGF=1", 'AT+CSCS="UCS2"', "AT+CSMP=17,167,0,8")
LISTEN = ("AT+CLIP=1", "AT+CNMI=2,1,0,0,0")
_FINAL_ERR = re.compile(r"^(ERROR|\+CMS ERROR:.*|\+CME ERROR:.*)$")


class ModemError(OSError):
    """The modem did not answer as expected (no answer, ERROR, +CMS ERROR)."""


def units(text: str) -> int:
    """UTF-16 code units: what a UCS-2 SMS counts (a character beyond the BMP is two)."""
    return len(text.encode("utf-16-be")) // 2


def ucs2_hex(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def _take(text: str, budget: int) -> tuple[str, str]:
    """The longest head of `text` within `budget` units, broken at a space if one is near."""
    used, cut = 0, 0
    for i, ch in enumerate(text):
        u = units(ch)
        if used + u > budget:
            break
        used, cut = used + u, i + 1
    else:
        return text, ""
    space = text.rfind(" ", 0, cut)
    if space > cut - 15 and space > 0:
        cut = space + 1
    return text[:cut].rstrip(), text[cut:].lstrip()


def split_sms(text: str, limit: int = UCS2_LIMIT) -> list[str]:
    """`text` as one part, or as parts "(i/n) ..." each within `limit` UTF-16 units."""
    if units(text) <= limit:
        return [text]
    n = 2
    while True:
        parts: list[str] = []
        rest = text
        while rest:
            prefix = f"({len(parts) + 1}/{n}) "
            head, rest = _take(rest, limit - units(prefix))
            parts.append(prefix + head)
        if len(parts) <= n:
            return [p.replace(f"/{n}) ", f"/{len(parts)}) ", 1) for p in parts]
        n = len(parts)


# What a serial port raises when its device goes away (a USB modem unplugged mid-send):
# pyserial's flush and buffer resets call termios directly, whose error is no OSError.
PORT_ERRORS: tuple[type[Exception], ...] = (OSError, termios.error)


class Modem:
    """One modem on one serial port; not thread-safe (the SMS worker owns it)."""

    def __init__(self, port: str, baudrate: int = 115200, timeout_s: float = 10.0,
                 serial_factory: Any = None) -> None:
        self.port, self.baudrate, self.timeout_s = port, baudrate, timeout_s
        self._factory = serial_factory
        self._ser: Any = None
        self._buf = b""
        self._lock = threading.RLock()
        self._urcs: list[str] = []
        self._listening = False
        self._check_store = True      # read the store once after opening (SMS while away)

    def listen(self) -> None:
        """Ask for caller ids and for a notice of every stored SMS (on every (re)open)."""
        with self._lock:
            self._listening = True
            if self._ser is not None:
                for cmd in LISTEN:
                    self.command(cmd)

    def open(self) -> None:
        if self._ser is not None:
            return
        if self._factory is not None:
            self._ser = self._factory()
        else:
            import serial  # pyserial: imported here so the hub starts without a modem

            try:
                self._ser = serial.Serial(self.port, self.baudrate, timeout=0.1,
                                          write_timeout=self.timeout_s)
            except (serial.SerialException, OSError) as exc:
                raise ModemError(f"cannot open the modem at {self.port}: {exc}") from None
        self._buf = b""
        self._check_store = True
        try:
            for cmd in INIT + (LISTEN if self._listening else ()):
                self.command(cmd)
        except ModemError:
            self.close()
            raise

    def close(self) -> None:
        if self._ser is not None:
            with contextlib.suppress(*PORT_ERRORS):
                self._ser.close()
            self._ser = None

    def _write(self, data: bytes) -> None:
        try:
            self._ser.write(data)
            self._ser.flush()
        except PORT_ERRORS as exc:
            raise ModemError(f"writing to the modem failed: {exc}") from None

    def _read_until(self, done: re.Pattern[bytes], what: str) -> bytes:
        deadline = time.monotonic() + self.timeout_s
        while True:
            m = done.search(self._buf)
            if m:
                out, self._buf = self._buf[:m.end()], self._buf[m.end():]
                # A RING or +CMTI that came before the answer (or the prompt): kept.
                self._urcs += [t for ln in out.decode("ascii", "replace").splitlines()
                               if URC.match(t := ln.strip())]
                return out
            if time.monotonic() > deadline:
                raise ModemError(f"no {what} from the modem within {self.timeout_s:.0f} s "
                                 f"(got {self._buf[-80:]!r})")
            try:
                chunk = self._ser.read(max(1, getattr(self._ser, "in_waiting", 0) or 1))
            except PORT_ERRORS as exc:
                raise ModemError(f"reading from the modem failed: {exc}") from None
            self._buf += chunk or b""

    _FINAL = re.compile(rb"\r\n(OK|ERROR|\+CMS ERROR:[^\r]*|\+CME ERROR:[^\r]*)\r\n")
    _PROMPT = re.compile(rb"> ")

    def command(self, cmd: str) -> list[str]:
        """Send one AT command; its answer lines (without OK). Raises ModemError on ERROR."""
        self._write(cmd.encode("ascii") + b"\r")
        return self._answer(cmd)

    def _answer(self, what: str) -> list[str]:
        raw = self._read_until(self._FINAL, f"answer to {what}")
        lines = [ln.strip() for ln in raw.decode("ascii", "replace").splitlines() if ln.strip()]
        lines = [ln for ln in lines if not URC.match(ln)]   # kept by _read_until
        if lines and _FINAL_ERR.match(lines[-1]):
            raise ModemError(f"{what}: {lines[-1]}")
        return [ln for ln in lines[:-1] if ln != what]

    def send(self, number: str, text: str) -> list[int]:
        """Send `text` to `number` (in as many numbered parts as it needs); the modem's
        message references."""
        with self._lock:
            self.open()
            refs: list[int] = []
            for part in split_sms(text):
                self._write(f'AT+CMGS="{ucs2_hex(number)}"\r'.encode("ascii"))
                self._read_until(self._PROMPT, "'>' prompt")
                self._write(ucs2_hex(part).encode("ascii") + CTRL_Z)
                for line in self._answer("AT+CMGS"):
                    if line.startswith("+CMGS:"):
                        refs.append(int(line.split(":", 1)[1].strip().split(",")[0]))
            return refs

    def poll(self, wait_s: float = 0.2) -> list[Inbound]:
        """What came in: SMS stored (read, then deleted) and calls ringing (rejected
        with ATH once their caller id is read). Waits up to `wait_s` for something."""
        with self._lock:
            self.open()
            deadline = time.monotonic() + wait_s
            while not self._urcs and not self._check_store:
                self._take_lines()
                if self._urcs or time.monotonic() >= deadline:
                    break
                try:
                    chunk = self._ser.read(max(1, getattr(self._ser, "in_waiting", 0) or 1))
                except PORT_ERRORS as exc:
                    raise ModemError(f"reading from the modem failed: {exc}") from None
                self._buf += chunk or b""
            self._take_lines()
            urcs, self._urcs = self._urcs, []
            got: list[Inbound] = list(calls_in(urcs))
            if got:
                self.command("ATH")   # never answered: a missed call, free for the caller
            if self._check_store or any(u.startswith("+CMTI:") for u in urcs):
                self._check_store = False
                messages = stored_sms(self.command(f'AT+CMGL="{ucs2_hex("ALL")}"'))
                for sms in messages:
                    self.command(f"AT+CMGD={sms.index}")
                got += messages
            return got

    def _take_lines(self) -> None:
        """Unsolicited lines complete in the buffer, set aside; anything else is dropped."""
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            text = line.decode("ascii", "replace").strip()
            if URC.match(text):
                self._urcs.append(text)
