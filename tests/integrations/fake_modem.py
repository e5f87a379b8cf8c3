"""The simulated modem of the tests: modem.sim (a pty answering AT commands), here under
the name the tests have always used."""

from modem.sim import Received, SimModem, decode_ucs2

FakeModem = SimModem

__all__ = ["FakeModem", "Received", "SimModem", "decode_ucs2"]
