"""A network namespace joined to the host by a veth pair, for tests that cut a process
off the network for real (the link goes down: no FIN, no RST, the peer hears nothing).
Traffic stays between the host and the namespace this makes (10.251.x.0/30)."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class Netns:
    name: str
    host_if: str
    host_ip: str   # the host's end of the veth pair
    ns_ip: str     # the namespace's end

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> None:
        """Pull the cable: the host's end of the link goes down."""
        _ip("link", "set", self.host_if, "down")

    def mend(self) -> None:
        _ip("link", "set", self.host_if, "up")


@contextmanager
def netns() -> Iterator[Netns]:
    tag = secrets.token_hex(3)
    name, host_if, ns_if = f"tm-{tag}", f"tmh{tag}", f"tmn{tag}"
    x = secrets.randbelow(250) + 1
    host_ip, ns_ip = f"10.251.{x}.1", f"10.251.{x}.2"
    _ip("netns", "add", name)
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", name)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        for args in (("addr", "add", f"{ns_ip}/30", "dev", ns_if), ("link", "set", ns_if, "up"),
                     ("link", "set", "lo", "up")):
            _ip("netns", "exec", name, "ip", *args)
        yield Netns(name, host_if, host_ip, ns_ip)
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
