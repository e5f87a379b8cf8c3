"""End-to-end harness: a real Mosquitto, the real Hub on a SQLite file, and real node
agents (firmware_sim VirtualNodes, each on its own gpiozero MockFactory).

Nothing on the measured path is a fake: a press is a mock pin held low for the
button's hold time, a gong is the output pin's recorded on/off history. Timers
are short (settings), waits are event- or poll-based with generous timeouts.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from firmware_sim.village import Village, node_config
from firmware_sim.virtual import VirtualNode
from hub.runtime import Hub
from hub.services import Services
from hub.settings import HubSettings
from node.led import LedState
from protocol import load_registry
from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    COMMUNE,
    HAMLET,
    OTHER_HAMLET,
    hub_settings,
    wait_until,
    write_registry,
)
from tests.support.nodes import FAST_BUTTONS, FAST_TIMERS

__all__ = ["COMMUNE", "E2E", "HAMLET", "OTHER_HAMLET", "LedState", "Strike"]

GONG = "gong"
# A striker pulse as long as the patterns' quick strike (120 ms), so one on-step of
# a pattern is one strike and the pin's history shows the pattern's own rhythm.
# (Rolls of longer on-steps are the node's unit tests' business.)
E2E_HARDWARE: dict[str, Any] = {
    "outputs": [{"name": GONG, "type": "gong", "pin": 23, "pulse_ms": 120}],
}
# keepalive 2 s: a dead link brings the Will quickly; reconnects retried every ≤ 1 s.
E2E_MQTT: dict[str, Any] = {"keepalive_s": 2, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0}

Strike = tuple[float, float | None]   # (on at, off at or None while still on), monotonic s


# One polling helper for every test: poll `cond` until truthy, or fail naming `what`.
wait_for = wait_until


def strikes(node: VirtualNode, since: float = 0.0) -> list[Strike]:
    """Every on-period of the node's gong that started at or after `since`."""
    out: list[Strike] = []
    start: float | None = None
    for t, on in node.output_timeline(GONG):
        if on and start is None:
            start = t
        elif not on and start is not None:
            if start >= since:
                out.append((start, t))
            start = None
    if start is not None and start >= since:
        out.append((start, None))
    return out


def ever_sounded(node: VirtualNode, since: float = 0.0) -> bool:
    return bool(strikes(node, since))


def wait_strikes(node: VirtualNode, count: int, since: float = 0.0,
                 timeout: float = 10.0) -> list[Strike]:
    """Wait until `count` complete strikes started at or after `since`."""
    def done() -> list[Strike] | None:
        got = [s for s in strikes(node, since) if s[1] is not None]
        return got if len(got) >= count else None
    return list(wait_for(done, timeout, f"{count} strikes of {node.node_id}"))


def gaps_ms(got: Sequence[Strike]) -> list[float]:
    """Milliseconds from each strike's start to the next one's."""
    return [(b[0] - a[0]) * 1000 for a, b in itertools.pairwise(got)]


def assert_rhythm(got: list[Strike], *, on_ms: float, period_ms: float,
                  tol_ms: float = 70.0) -> None:
    """The strikes follow a one-step pattern: median on-time and strike-to-strike period.

    Medians and wide tolerances: the machine is shared and has two cores.
    """
    done = [(a, b) for a, b in got if b is not None]
    assert len(done) >= 3, f"too few strikes to judge a rhythm: {done}"
    ons = [(b - a) * 1000 for a, b in done]
    gaps = gaps_ms(done)
    on_med, period_med = statistics.median(ons), statistics.median(gaps)
    assert abs(on_med - on_ms) <= tol_ms, f"strikes last {on_med:.0f} ms, want ~{on_ms}"
    assert abs(period_med - period_ms) <= tol_ms, \
        f"strikes every {period_med:.0f} ms, want ~{period_ms} (gaps {gaps})"


class E2E:
    """One test's world on one broker: hubs, villages and their teardown."""

    def __init__(self, broker: Mosquitto, tmp_path: Path) -> None:
        self.broker = broker
        self.tmp_path = tmp_path
        self.registry_file = write_registry(tmp_path)
        self._hubs: list[Hub] = []
        self._villages: list[Village] = []
        self._nodes: list[VirtualNode] = []
        self.settings: HubSettings | None = None

    # -- hub -------------------------------------------------------------------

    def hub_settings(self, **overrides: Any) -> HubSettings:
        """Fast settings on this test's SQLite file (tests/support's QUIET timers)."""
        self.settings = hub_settings(self.broker, self.tmp_path, **overrides)
        return self.settings

    def start_hub(self, settings: HubSettings | None = None, *, hub: Hub | None = None,
                  **kwargs: Any) -> Hub:
        """Start a Hub (or the one given, built by the test) and wait for its broker."""
        if hub is None:
            hub = Hub(settings or self.settings or self.hub_settings(), **kwargs)
        self._hubs.append(hub)
        hub.start()
        assert hub.link is not None and hub.link.wait_connected(10), "hub did not connect"
        return hub

    def services(self, hub: Hub) -> Services:
        assert hub.link is not None
        return Services(hub.store, hub.link, hub.settings)

    # -- nodes -----------------------------------------------------------------

    def _node_kwargs(self) -> dict[str, Any]:
        return {"broker_url": self.broker.url, "timers": dict(FAST_TIMERS),
                "buttons": FAST_BUTTONS, "mqtt": E2E_MQTT, "hardware": E2E_HARDWARE}

    def village(self) -> Village:
        """One VirtualNode per enabled registry node, started and connected."""
        v = Village.from_registry(load_registry(self.registry_file),
                                  data_root=self.tmp_path / "nodes", **self._node_kwargs())
        self._villages.append(v)
        return v.start(wait_s=15)

    def node(self, node_id: str, area: str = HAMLET, *,
             wall: Callable[[], float] = time.time) -> VirtualNode:
        """One more node outside the registry's village (e.g. an unknown one)."""
        cfg = node_config(node_id, area, data_dir=self.tmp_path / "nodes" / node_id,
                          **self._node_kwargs())
        n = VirtualNode(cfg, wall=wall)
        self._nodes.append(n)
        n.start()
        assert n.wait_connected(15), f"{node_id} did not connect"
        return n

    def close(self) -> None:
        for n in self._nodes:
            n.stop()
        for v in self._villages:
            v.stop()
        for h in self._hubs:
            h.stop()


def wait_led(node: VirtualNode, state: LedState, timeout: float = 10.0) -> None:
    wait_for(lambda: node.led_state is state, timeout,
             f"{node.node_id}'s LED to show {state.value} (shows {node.led_state})")


def wait_hub_ready(node: VirtualNode, timeout: float = 10.0) -> None:
    """The node sees a hub (birth + fresh beacon), so its clock has a hub sample."""
    def ready() -> bool:
        a = node.agent
        return a is not None and a.clock.hub_available() and a.clock.has_sample
    wait_for(ready, timeout, f"{node.node_id} to see the hub")

