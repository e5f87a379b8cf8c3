"""Inside the VM: the gpio-sim chip, its lines' sysfs attributes, and the kernel's line events.

Stdlib only (it runs with the VM venv's Python before anything else is installed).

- `SimChip` describes a chip through configfs (docs: Documentation/admin-guide/gpio/
  gpio-sim.rst) and reads/writes each line's `sim_gpioN/value` and `sim_gpioN/pull`.
  Writing `pull` is a wire pulled up or down outside the Pi: it is what an input reads
  when nothing drives it, and the level a line returns to when its requester lets go.
- `Sampler` polls the value of some lines and keeps only the changes, with
  time.monotonic() stamps: the line timelines of the report.
- `InfoWatch` is the kernel's own record of who requests, reconfigures and releases
  each line (GPIO_V2_GET_LINEINFO_WATCH_IOCTL), with its flags (direction, bias, edges)
  and the kernel's CLOCK_MONOTONIC timestamp.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import time
from pathlib import Path

CONFIGFS = Path("/sys/kernel/config/gpio-sim")

# include/uapi/linux/gpio.h (v2 ABI)
_INFO_SIZE = 256
_CHANGED_SIZE = _INFO_SIZE + 8 + 4 + 20
_WATCH = (3 << 30) | (_INFO_SIZE << 16) | (0xB4 << 8) | 0x06     # _IOWR(0xB4, 0x06, info)
FLAGS = [(1 << 0, "used"), (1 << 1, "active_low"), (1 << 2, "input"), (1 << 3, "output"),
         (1 << 4, "edge_rising"), (1 << 5, "edge_falling"), (1 << 6, "open_drain"),
         (1 << 7, "open_source"), (1 << 8, "bias_pull_up"), (1 << 9, "bias_pull_down"),
         (1 << 10, "bias_disabled")]
EVENTS = {1: "requested", 2: "released", 3: "config"}


class SimChip:
    def __init__(self, name: str, lines: int) -> None:
        self.dir = CONFIGFS / name
        bank = self.dir / "bank0"
        bank.mkdir(parents=True)
        (bank / "num_lines").write_text(f"{lines}\n")
        (bank / "label").write_text(f"{name}-bank0\n")
        (self.dir / "live").write_text("1\n")
        self.chip = (bank / "chip_name").read_text().strip()           # gpiochipN
        self.dev = (self.dir / "dev_name").read_text().strip()         # gpio-sim.N
        self.sysfs = Path("/sys/devices/platform") / self.dev / self.chip
        self.lines = lines
        self._value_fds: dict[int, int] = {}

    @property
    def devnode(self) -> str:
        return f"/dev/{self.chip}"

    def value(self, line: int) -> int:
        fd = self._value_fds.get(line)
        if fd is None:
            fd = self._value_fds[line] = os.open(self.sysfs / f"sim_gpio{line}" / "value",
                                                 os.O_RDONLY)
        return int(os.pread(fd, 8, 0).strip())

    def pull(self, line: int, up: bool) -> float:
        """Pull the line up or down outside the chip; the monotonic time it was written."""
        path = self.sysfs / f"sim_gpio{line}" / "pull"
        path.write_text("pull-up\n" if up else "pull-down\n")
        return time.monotonic()

    def get_pull(self, line: int) -> str:
        return (self.sysfs / f"sim_gpio{line}" / "pull").read_text().strip()


class Sampler(threading.Thread):
    """Poll `lines` every `period_s`; keep (t, line, value) at start and at each change."""

    def __init__(self, chip: SimChip, lines: dict[str, int], period_s: float = 0.001) -> None:
        super().__init__(name="sampler", daemon=True)
        self.chip, self.lines, self.period = chip, lines, period_s
        self.changes: list[tuple[float, str, int]] = []
        self.samples = 0
        self._halt = threading.Event()
        self._last: dict[str, int] = {}

    def run(self) -> None:
        while not self._halt.is_set():
            values = {name: self.chip.value(line) for name, line in self.lines.items()}
            # Stamped after the reads: a change is never dated before it could be seen
            # (an edge the agent makes right after SIGCONT must not fall in the window
            # the rig counts as stopped).
            now = time.monotonic()
            for name, v in values.items():
                if self._last.get(name) != v:
                    self._last[name] = v
                    self.changes.append((now, name, v))
            self.samples += 1
            time.sleep(self.period)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def edges(self, name: str, since: float = 0.0, until: float = 1e18,
              value: int | None = None) -> list[float]:
        """Times `name` changed (to `value`, if given) within [since, until)."""
        mine = [(t, v) for t, n, v in self.changes if n == name][1:]   # [0]: its start level
        return [t for t, v in mine if since <= t < until and (value is None or v == value)]

    def timeline(self, name: str, since: float, until: float) -> list[list[float]]:
        """[[t - since, value], ...] of `name` within the window, the level at `since` first."""
        before = [v for t, n, v in self.changes if n == name and t < since]
        out = [[0.0, before[-1]]] if before else []
        out += [[round(t - since, 4), v] for t, n, v in self.changes
                if n == name and since <= t < until]
        return out


class InfoWatch(threading.Thread):
    """The kernel's line-info changes for `lines` of `devnode`, as dicts."""

    def __init__(self, devnode: str, lines: dict[str, int], chip: SimChip) -> None:
        super().__init__(name="infowatch", daemon=True)
        self.chip = chip
        self.names = {v: k for k, v in lines.items()}
        self.events: list[dict[str, object]] = []
        self._fd = os.open(devnode, os.O_RDONLY)
        for line in lines.values():
            buf = bytearray(_INFO_SIZE)
            struct.pack_into("=I", buf, 64, line)
            fcntl.ioctl(self._fd, _WATCH, buf)

    def run(self) -> None:
        while True:
            try:
                data = os.read(self._fd, _CHANGED_SIZE)
            except OSError:
                return
            if len(data) < _CHANGED_SIZE:
                return
            consumer = data[32:64].split(b"\0")[0].decode(errors="replace")
            offset, _nattrs, flags = struct.unpack_from("=IIQ", data, 64)
            ts_ns, kind = struct.unpack_from("=QI", data, _INFO_SIZE)
            # The level right after the event: a request held for a few ms (ExecStopPost
            # drives a line for about 8 ms here) is seen here when a poller misses it.
            value = self.chip.value(offset)
            self.events.append({"value_after": value,
                "t": ts_ns / 1e9, "line": self.names.get(offset, str(offset)), "offset": offset,
                "event": EVENTS.get(kind, str(kind)), "consumer": consumer,
                "flags": [n for bit, n in FLAGS if flags & bit]})

    def close(self) -> None:
        os.close(self._fd)
