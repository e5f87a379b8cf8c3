"""A real Mosquitto on a free port with a generated config, for tests.

Each test that needs its own broker settings gets its own process; it can be
stopped and started again on the same port (to test reconnects).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortTaken(RuntimeError):
    """The port chosen for a broker was taken before the broker could bind it."""


class Mosquitto:
    """One mosquitto process; `extra` lines are appended to its config."""

    def __init__(self, workdir: Path, extra: str = "", port: int | None = None) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.exe = exe
        self.workdir = workdir
        self.port = port or free_port()
        # free_port() lets go of the port before Mosquitto binds it: under xdist another
        # worker (or any outgoing connection) may take it meanwhile. A port chosen here
        # is chosen again on such a clash; a fixed one, or one kept across restart(), not.
        self._may_move = port is None
        self.host = "127.0.0.1"
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = workdir / f"mosquitto-{self.port}.conf"
        self.log = workdir / f"mosquitto-{self.port}.log"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def write_config(self) -> None:
        base = "\n".join([
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true" if "allow_anonymous" not in self.extra else "",
            "persistence false" if "persistence" not in self.extra else "",
            "max_queued_messages 0",
            "set_tcp_nodelay true",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "",
        ])
        self.conf.write_text(base + self.extra + "\n")

    def start(self) -> Mosquitto:
        for _ in range(3):
            try:
                return self._start()
            except PortTaken:
                self._move()
        return self._start()

    def _move(self) -> None:
        self.port = free_port()
        self.conf = self.workdir / f"mosquitto-{self.port}.conf"
        self.log = self.workdir / f"mosquitto-{self.port}.log"

    def _start(self) -> Mosquitto:
        # Only the base config can follow a new port (subclasses render theirs once).
        movable = self._may_move and type(self).write_config is Mosquitto.write_config
        self.write_config()
        seen = self.log.stat().st_size if self.log.exists() else 0   # the log is appended to
        logf = self.log.open("ab")
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=logf, stderr=logf)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[seen:].decode(errors="replace")
            if self.proc.poll() is not None:
                self.proc = None
                if movable and "Address already in use" in text:
                    raise PortTaken(self.port)
                raise RuntimeError(f"mosquitto exited: {text[-2000:]}")
            # Ready when Mosquitto says so (every listener bound) and the port answers: a
            # connect alone may reach whoever else holds the port while Mosquitto fails.
            if " running" in text:
                with contextlib.suppress(OSError), socket.create_connection(
                        (self.host, self.port), 0.2):
                    self._may_move = False      # clients now know this port: keep it
                    return self
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start listening within 10 s")

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
