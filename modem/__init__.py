"""SMS through a cellular modem over its serial port: a leaf package (standard library and
pyserial only), shared by the hub's SMS integration and the sentinel that watches the hub,
so that neither imports the other."""

from .driver import UCS2_LIMIT, Modem, ModemError, split_sms, ucs2_hex, units

__all__ = ["UCS2_LIMIT", "Modem", "ModemError", "split_sms", "ucs2_hex", "units"]
