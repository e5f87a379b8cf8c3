"""The UPS HAT's battery gauge over I2C: a MAX17040/MAX17048-family fuel gauge.

Why this family: the common Pi UPS HATs (Geekworm X72x, SupTronics, many 18650
boards) carry one at address 0x36, and it reports the state of charge itself
(register SOC, 0x04), so the node needs no voltage-to-percent curve that would be
wrong for every other cell. SOC is big-endian on the wire: the high byte is whole
percent, the low byte 1/256 of a percent.

A gauge that does not answer (not fitted, a loose HAT, a bus error) gives no
reading, never an exception: the heartbeat then simply carries no `battery_pct`
and the node goes on alarming. The bus is opened lazily at the first reading and
again after an error, so a HAT seated after boot is found.

The bus is injected (`bus_factory`): on a Pi it is `smbus2.SMBus(n)`; the
simulator passes a fake that implements the chip's registers
(firmware_sim/gauge.py), so this code is what runs in tests.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("tiengmo.node.battery")

GAUGES = ("max17040", "max17048")
DEFAULT_ADDRESS = 0x36
REG_VCELL = 0x02
REG_SOC = 0x04
REG_VERSION = 0x08


@dataclass(frozen=True, slots=True)
class GaugeConfig:
    """`[battery]` in the node's config: which gauge, on which bus and address."""

    gauge: str = "max17048"
    bus: int = 1                  # /dev/i2c-1: the header's SDA/SCL (GPIO 2/3)
    address: int = DEFAULT_ADDRESS


class I2CBus(Protocol):
    """What the gauge needs of smbus2.SMBus (and of the simulator's fake)."""

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int,
                            force: bool | None = None) -> list[int]: ...

    def close(self) -> None: ...


BusFactory = Callable[[int], I2CBus]


def smbus2_bus(number: int) -> I2CBus:
    """The Pi's real I2C bus (imported here: only a node with a gauge needs smbus2)."""
    from smbus2 import SMBus

    bus: I2CBus = SMBus(number)
    return bus


def soc_percent(msb: int, lsb: int) -> float:
    """The SOC register's two bytes as a percentage, 0..100, to 0.1 %.

    A freshly charged cell may read a little over 100 % before the gauge has
    learnt it: clamped, since the wire allows 0..100 only.
    """
    pct = msb + lsb / 256.0
    return round(min(100.0, max(0.0, pct)), 1)


class BatteryGauge:
    """Reads the state of charge; `percent()` is None whenever the gauge does not answer."""

    def __init__(self, cfg: GaugeConfig, bus_factory: BusFactory = smbus2_bus) -> None:
        self.config = cfg
        self._factory = bus_factory
        self._bus: I2CBus | None = None
        self._failing = False
        self.errors = 0

    def percent(self) -> float | None:
        try:
            if self._bus is None:
                self._bus = self._factory(self.config.bus)
            msb, lsb = self._bus.read_i2c_block_data(self.config.address, REG_SOC, 2)[:2]
        except (OSError, ValueError, IndexError) as exc:
            self.errors += 1
            if not self._failing:   # once per outage, not every heartbeat
                log.warning("battery gauge %s at 0x%02x on i2c-%d not answering: %s",
                            self.config.gauge, self.config.address, self.config.bus, exc)
            self._failing = True
            self._drop_bus()
            return None
        if self._failing:
            log.info("battery gauge answering again")
            self._failing = False
        return soc_percent(msb, lsb)

    def _drop_bus(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            with contextlib.suppress(OSError):
                bus.close()

    def close(self) -> None:
        self._drop_bus()
