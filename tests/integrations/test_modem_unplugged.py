"""A USB modem pulled out mid-send: the SMS lane says so and goes on.

pyserial's `flush` calls `termios.tcdrain`, whose error on a vanished device is
`termios.error`, not an OSError: it went past the driver's handling and ended the
`hub-sms` thread, and with it every later SMS to responders and the phone alarms
(seen once in CI as an unhandled exception in `hub-sms` when a test's modem closed).
"""

from __future__ import annotations

import termios
import threading
from typing import Any

import pytest
from pytest_mock import MockerFixture

from hub.integrations.config import SmsSettings
from hub.integrations.sms import SmsNotifier
from modem import Modem, ModemError


class Unplugged:
    """A serial port whose device went away: writes are taken, the drain fails."""

    in_waiting = 0

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        raise termios.error(5, "Input/output error")

    def read(self, n: int) -> bytes:
        return b""

    def close(self) -> None:
        raise termios.error(5, "Input/output error")


def test_a_vanished_port_is_a_modem_error() -> None:
    m = Modem("/dev/ttyUSB2", timeout_s=0.2, serial_factory=Unplugged)
    with pytest.raises(ModemError, match="Input/output error"):
        m.send("+84911000001", "thử")
    m.close()   # closing a vanished port does not raise either


def test_the_sms_lane_outlives_a_modem_failing_in_an_unforeseen_way(
        mocker: MockerFixture) -> None:
    sent: list[tuple[str, str]] = []
    done = threading.Event()

    class Flaky:
        calls = 0

        def send(self, phone: str, text: str) -> list[int]:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("a driver bug")   # neither ModemError nor OSError
            sent.append((phone, text))
            done.set()
            return [1]

        def close(self) -> None:
            pass

    notifier: Any = SmsNotifier(mocker.Mock(), SmsSettings(enabled=True, send_attempts=1),
                                mocker.Mock(), lambda: False, modem_factory=Flaky)
    notifier.start()
    try:
        notifier.text("+84911000001", "một", "test")
        notifier.text("+84911000002", "hai", "test")
        assert done.wait(10), "the second SMS never went out: the lane ended"
    finally:
        notifier.stop()
    assert sent == [("+84911000002", "hai")]
