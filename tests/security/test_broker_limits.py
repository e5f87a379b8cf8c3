"""The broker role's per-source connection limit, loaded into a real kernel's nftables.

Mosquitto 2.0.11 keeps a socket that never sends CONNECT for ~95 s and counts it like a
client (docs/security.md has the measurement), so the broker role caps the connections
one address may hold on the TLS port with nftables `ct count over N`. Here the role's
own template is rendered for a real Mosquitto on a free loopback port with N = 5, loaded,
and 12 silent sockets are opened from 127.0.0.1: 5 get in, the rest are reset, and a
real client from the same address is refused too while another port is untouched. The
table is deleted afterwards. Needs `nft` and CAP_NET_ADMIN (root); skipped otherwise.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.broker import Mosquitto

ROLE = Path(__file__).resolve().parents[2] / "ansible" / "roles" / "tiengmo_broker"
TABLE = "tiengmo_mqtt"
PER_SOURCE = 5


def render(port: int, limit: int) -> str:
    """The role's template with its three variables (anything else is an error here)."""
    text = (ROLE / "templates" / "tiengmo-mqtt.nft.j2").read_text(encoding="utf-8")
    values = {"ansible_managed": "rendered by tests/security/test_broker_limits.py",
              "tiengmo_broker_tls_port": str(port), "tiengmo_broker_conn_per_source": str(limit)}
    out = re.sub(r"\{\{ *(\w+) *\}\}", lambda m: values[m.group(1)], text)
    assert "{{" not in out and "{%" not in out
    return out


def nft(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("nft") or "/usr/sbin/nft"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=30)


def can_load() -> bool:
    installed = Path(shutil.which("nft") or "/usr/sbin/nft").exists()
    return installed and nft("list", "tables").returncode == 0


def test_the_rules_parse(tmp_path: Path) -> None:
    if not Path(shutil.which("nft") or "/usr/sbin/nft").exists():
        pytest.skip("nft is not installed (apt-get install nftables)")
    rules = tmp_path / "limits.nft"
    rules.write_text(render(8883, 256), encoding="utf-8")
    check = nft("--check", "--file", str(rules))
    if "Operation not permitted" in check.stderr:
        pytest.skip("nft --check needs CAP_NET_ADMIN here")
    assert check.returncode == 0, check.stderr


@pytest.mark.skipif(not can_load(), reason="needs nft and CAP_NET_ADMIN")
def test_one_address_holds_at_most_n_connections(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path).start()
    other = Mosquitto(tmp_path).start()   # same folder: file names carry the port
    rules = tmp_path / "limits.nft"
    rules.write_text(render(broker.port, PER_SOURCE), encoding="utf-8")
    assert nft("list", "table", "inet", TABLE).returncode != 0, "the table exists already"
    held: list[socket.socket] = []
    try:
        loaded = nft("--file", str(rules))
        assert loaded.returncode == 0, loaded.stderr
        refused = 0
        for _ in range(12):
            s = socket.socket()
            s.settimeout(3)
            try:
                s.connect(("127.0.0.1", broker.port))
                held.append(s)
            except OSError:
                refused += 1
                s.close()
        # The rule looks at new connections only: the broker itself is untouched.
        assert (len(held), refused) == (PER_SOURCE, 12 - PER_SOURCE)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", broker.port), 3).close()
        # Another port of the same host is not limited.
        extra = [socket.create_connection(("127.0.0.1", other.port), 3)
                 for _ in range(PER_SOURCE + 3)]
        for s in extra:
            s.close()
        # Closing two of the held sockets lets two new ones in, once the broker has
        # closed its side too (conntrack counts a connection until TIME_WAIT).
        for s in held[:2]:
            s.close()
        del held[:2]
        deadline = time.monotonic() + 5
        while len(held) < PER_SOURCE and time.monotonic() < deadline:
            try:
                held.append(socket.create_connection(("127.0.0.1", broker.port), 3))
            except OSError:
                time.sleep(0.05)
        assert len(held) == PER_SOURCE
    finally:
        nft("delete", "table", "inet", TABLE)
        for s in held:
            s.close()
        broker.stop()
        other.stop()
    assert nft("list", "table", "inet", TABLE).returncode != 0
    # Without the rule the same 12 connect: the limit, not the broker, refused above.
    broker.start()
    try:
        plain = [socket.create_connection(("127.0.0.1", broker.port), 3) for _ in range(12)]
        for s in plain:
            s.close()
    finally:
        broker.stop()
