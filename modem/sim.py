"""A simulated 4G modem on a pseudo-terminal: the hub opens the pty's slave end with
pyserial like a real /dev/ttyUSB2; a thread on the master end answers AT commands as a
modem does (echo until ATE0, OK, the '>' prompt of AT+CMGS, +CMGS: <ref>) and records
every message, decoding its UCS-2 hex.

The other way, as a household's phone would reach the modem: `deliver_sms(number, text)`
stores an SMS and says +CMTI (answering AT+CMGL and AT+CMGD as a modem does), and
`ring(number)` says RING and +CLIP (strings as UCS-2 hex once AT+CSCS="UCS2"), until
the hub rejects the call (ATH) or `ring` is told the caller hung up. Used by the tests
and by the demo's simulator panel (a household calling in), so it lives here, in the
modem package, not in tests/."""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Received:
    number: str
    text: str
    at: float


def decode_ucs2(hex_text: str) -> str:
    return bytes.fromhex(hex_text).decode("utf-16-be")


class SimModem:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.commands: list[str] = []
        self.messages: list[Received] = []
        self.charset = "IRA"
        self.text_mode = False
        self.refuse_sends = 0          # answer +CMS ERROR to this many sends first
        self.clip = False
        self.cnmi = False
        self.inbox: dict[int, tuple[str, str, str]] = {}
        self.hangups = 0
        self.ringing: str | None = None
        self._index = 0
        self._echo = True
        self._pending_number: str | None = None
        self._ref = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fake-modem")
        self._thread.start()

    def _say(self, text: str) -> None:
        with contextlib.suppress(OSError):
            os.write(self.master, text.encode("ascii"))

    def _str(self, text: str) -> str:
        return text.encode("utf-16-be").hex().upper() if self.charset == "UCS2" else text

    # --- a household's phone -----------------------------------------------------------------

    def deliver_sms(self, number: str, text: str, sent: float | None = None) -> int:
        """An SMS from `number` arrives (sent at `sent`, epoch s; now by default): stored,
        and announced with +CMTI."""
        when = time.gmtime((time.time() if sent is None else sent) + 7 * 3600)
        stamp = time.strftime("%y/%m/%d,%H:%M:%S", when) + "+28"   # Vietnam, UTC+7
        with self._cond:
            self._index += 1
            index = self._index
            self.inbox[index] = (number, text, stamp)
        if self.cnmi:
            self._say(f'\r\n+CMTI: "SM",{index}\r\n')
        return index

    def ring(self, number: str, rings: int = 1) -> None:
        """A call from `number` rings (`rings` times, one RING + +CLIP each)."""
        self.ringing = number
        for _ in range(rings):
            clip = f'\r\n+CLIP: "{self._str(number)}",145,,,,0\r\n' if self.clip else ""
            self._say("\r\nRING\r\n" + clip)

    def hang_up(self) -> None:
        """The caller gave up before anyone answered."""
        if self.ringing is not None:
            self.ringing = None
            self._say("\r\nNO CARRIER\r\n")

    def _list(self) -> None:
        with self._cond:
            stored = sorted(self.inbox.items())
        out = "".join(f'\r\n+CMGL: {i},"REC UNREAD","{self._str(n)}",,"{sent}"\r\n'
                      f"{self._str(t)}" for i, (n, t, sent) in stored)
        self._say(out + "\r\n\r\nOK\r\n")

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            buf += chunk
            while True:
                if self._pending_number is not None:
                    if b"\x1a" not in buf:
                        break
                    body, buf = buf.split(b"\x1a", 1)
                    self._message(body.decode("ascii").strip())
                    continue
                if b"\r" not in buf:
                    break
                line, buf = buf.split(b"\r", 1)
                cmd = line.decode("ascii", "replace").strip()
                if cmd:
                    self._command(cmd)

    def _command(self, cmd: str) -> None:
        with self._cond:
            self.commands.append(cmd)
            self._cond.notify_all()
        if self._echo:
            self._say(cmd + "\r")
        upper = cmd.upper()
        if upper == "ATE0":
            self._echo = False
        elif upper == "AT+CMGF=1":
            self.text_mode = True
        elif upper.startswith("AT+CSCS="):
            self.charset = cmd.split("=", 1)[1].strip('"')
        elif upper == "AT+CLIP=1":
            self.clip = True
        elif upper.startswith("AT+CNMI=2,1"):
            self.cnmi = True
        elif upper.startswith("AT+CMGL="):
            self._list()
            return
        elif upper.startswith("AT+CMGD="):
            with self._cond:
                if self.inbox.pop(int(upper.split("=", 1)[1].split(",")[0]), None) is None:
                    self._say("\r\n+CMS ERROR: 321\r\n")
                    return
        elif upper in ("ATH", "AT+CHUP"):
            with self._cond:
                self.hangups += 1
                self.ringing = None
                self._cond.notify_all()
        elif upper.startswith("AT+CMGS="):
            if not self.text_mode or self.charset != "UCS2":
                self._say("\r\n+CMS ERROR: 302\r\n")
                return
            self._pending_number = cmd.split("=", 1)[1].strip('"')
            self._say("\r\n> ")
            return
        elif not (upper == "AT" or upper.startswith("AT+CSMP=")):
            self._say("\r\nERROR\r\n")
            return
        self._say("\r\nOK\r\n")

    def _message(self, body_hex: str) -> None:
        number_hex, self._pending_number = self._pending_number or "", None
        if self.refuse_sends > 0:
            self.refuse_sends -= 1
            self._say("\r\n+CMS ERROR: 500\r\n")
            return
        self._ref += 1
        with self._cond:
            self.messages.append(Received(decode_ucs2(number_hex), decode_ucs2(body_hex),
                                          time.monotonic()))
            self._cond.notify_all()
        self._say(f"\r\n+CMGS: {self._ref}\r\n\r\nOK\r\n")

    def wait(self, pred: Callable[[list[Received]], bool], timeout: float = 15.0,
             what: str = "messages") -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; the modem got "
                                         f"{self.commands[-10:]} and {self.messages}")
                self._cond.wait(left)
            return list(self.messages)

    def wait_until(self, pred: Callable[[], bool], timeout: float = 15.0,
                   what: str = "the modem") -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; the modem got "
                                         f"{self.commands[-10:]}")
                self._cond.wait(left)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
