"""A simulated UPS HAT fuel gauge (MAX17048) behind a fake SMBus.

The fake implements the chip's register protocol (big-endian 16-bit registers
read as I2C blocks: VCELL 0x02, SOC 0x04, VERSION 0x08), so the node's real
driver (node/battery.py) runs against it unchanged. A register read at the wrong
address, or while `fail` is set, raises OSError 121 (EREMOTEIO), as smbus2 does
when nothing acknowledges.

The charge moves with time: on battery it drains at `drain_pct_per_min`, on mains
it charges at `charge_pct_per_min` (both 0 unless a test or the demo sets them),
computed when read, so there is no thread.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable

from node.battery import DEFAULT_ADDRESS, REG_SOC, REG_VCELL, REG_VERSION, I2CBus

MAX17048_VERSION = 0x0012
# A Li-ion cell's open-circuit voltage, roughly, for VCELL (only for looks: the node
# reports SOC).
_EMPTY_V, _FULL_V = 3.3, 4.2


class FakeGauge:
    """One gauge's state; `bus(n)` is the BusFactory to hand to NodeAgent."""

    def __init__(self, percent: float = 100.0, *, address: int = DEFAULT_ADDRESS,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self.address = address
        self.fail = False            # the HAT unseated, the bus stuck: every read fails
        self.drain_pct_per_min = 0.0
        self.charge_pct_per_min = 0.0
        self.reads = 0
        self._mono = mono
        self._lock = threading.Lock()
        self._pct = float(percent)
        self._since = mono()
        self._mains = True

    def _now_pct(self) -> float:
        dt_min = (self._mono() - self._since) / 60.0
        rate = self.charge_pct_per_min if self._mains else -self.drain_pct_per_min
        return min(100.0, max(0.0, self._pct + rate * dt_min))

    def _settle(self) -> None:
        self._pct, self._since = self._now_pct(), self._mono()

    @property
    def percent(self) -> float:
        with self._lock:
            return self._now_pct()

    def set_percent(self, pct: float) -> None:
        with self._lock:
            self._pct, self._since = float(pct), self._mono()

    def set_mains(self, mains: bool) -> None:
        """Mains present: the cell charges; cut: it drains (at the rates set)."""
        with self._lock:
            self._settle()
            self._mains = mains

    def register(self, reg: int) -> int:
        """The 16-bit value of a register, as the chip holds it."""
        with self._lock:
            pct = self._now_pct()
        if reg == REG_SOC:
            return round(pct * 256)   # high byte %, low byte 1/256 %
        if reg == REG_VCELL:
            volts = _EMPTY_V + (_FULL_V - _EMPTY_V) * pct / 100
            return int(volts / 78.125e-6) & 0xFFFF   # MAX17048: 78.125 µV per bit
        if reg == REG_VERSION:
            return MAX17048_VERSION
        raise OSError(errno.EREMOTEIO, f"register 0x{reg:02x} not implemented")

    def bus(self, number: int) -> I2CBus:
        return FakeSMBus(self, number)


class FakeSMBus:
    """The subset of smbus2.SMBus the driver uses, answering for one FakeGauge."""

    def __init__(self, gauge: FakeGauge, number: int) -> None:
        self.gauge = gauge
        self.number = number
        self.closed = False

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int,
                            force: bool | None = None) -> list[int]:
        g = self.gauge
        g.reads += 1
        if self.closed or g.fail or i2c_addr != g.address:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        out: list[int] = []
        reg = register
        while len(out) < length:   # the chip auto-increments through its 16-bit registers
            value = g.register(reg)
            out += [value >> 8, value & 0xFF]
            reg += 2
        return out[:length]

    def close(self) -> None:
        self.closed = True
