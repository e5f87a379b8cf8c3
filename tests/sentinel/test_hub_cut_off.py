"""Issue 14.5: the hub's machine cut off the network for real. The hub runs in a network
namespace of its own, joined to the broker's host by a veth pair; the link is pulled
down (no FIN, no RST: the broker hears nothing until the hub's keepalive runs out and
it sends the hub's Will). The sentinel, on the broker's side, texts "hub down" once per
number after its grace, and "hub back" once when the link is up again and the hub has
reconnected by itself (no restart)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.rig import HubProcess, registry_text
from tests.integrations.fake_modem import FakeModem
from tests.sentinel.netns import Netns, netns
from tests.sentinel.test_sentinel_e2e import (
    ADMIN,
    BACK,
    DOWN,
    POLICE,
    SentinelProcess,
    per_number,
    sentinel,
    texts,
)
from tests.support.broker import Mosquitto, free_port

pytestmark = pytest.mark.timeout(240)

KEEPALIVE_S = 2.0


@pytest.fixture
def ns() -> Iterator[Netns]:
    with netns() as n:
        yield n


@pytest.fixture
def split_broker(tmp_path: Path, ns: Netns) -> Iterator[tuple[Mosquitto, int]]:
    """A broker on the host's loopback (the sentinel) and on the host's end of the veth
    pair (the hub, in its namespace)."""
    port = free_port()
    b = Mosquitto(tmp_path, extra=f"listener {port} {ns.host_ip}\n").start()
    yield b, port
    b.stop()


def test_a_hub_cut_off_the_network_is_texted_after_the_grace_and_back_without_a_restart(
        tmp_path: Path, ns: Netns, split_broker: tuple[Mosquitto, int], modem: FakeModem,
        start_sentinel: list[SentinelProcess]) -> None:
    broker, ns_port = split_broker
    registry = tmp_path / "registry.toml"
    registry.write_text(registry_text(2, 1))
    hub = HubProcess(tmp_path, f"mqtt://{ns.host_ip}:{ns_port}", registry,
                     tmp_path / "hub.db", prefix=ns.exec_prefix(), http_host=ns.ns_ip,
                     keepalive_s=KEEPALIVE_S, reconnect_max_s=1.0)
    hub.start()
    try:
        grace = 2.0
        sentinel(start_sentinel, tmp_path, broker, modem, grace_s=grace, beacon_stale_s=60.0)
        time.sleep(grace + 1)
        assert modem.messages == []          # the hub is there: nothing to say
        cut = time.monotonic()
        ns.cut()
        got = modem.wait(lambda ms: len(texts(ms, DOWN)) >= 2, timeout=40,
                         what="the hub-down texts")
        took = min(m.at for m in texts(got, DOWN)) - cut
        print(f"\nhub-down text {took:.1f} s after the cut (keepalive {KEEPALIVE_S} s, "
              f"grace {grace} s)")
        # Not before the broker could know (1.5 keepalives) and the grace had run.
        assert took >= 1.5 * KEEPALIVE_S + grace - 0.5
        time.sleep(grace)
        assert per_number(modem.messages, DOWN) == {ADMIN: 1, POLICE: 1}
        assert hub.alive, "the hub process lives on, cut off"
        mended = time.monotonic()
        ns.mend()
        modem.wait(lambda ms: len(texts(ms, BACK)) >= 2, timeout=60, what="the hub-back texts")
        print(f"hub-back text {time.monotonic() - mended:.1f} s after the link came back")
        time.sleep(1.0)
        assert per_number(modem.messages, BACK) == {ADMIN: 1, POLICE: 1}
        assert per_number(modem.messages, DOWN) == {ADMIN: 1, POLICE: 1}
        assert hub.starts == 1 and hub.alive, "it came back by itself, never restarted"
        assert hub.health()[0] == 200
    finally:
        hub.stop()
