"""What every simulated node does the same way around its NodeAgent: start once, wait, stop.

VirtualNode (mock pins) and HeadlessNode (no gpiozero devices) differ only in
how the agent's hardware is made; `_new_agent` is that difference. Both give
their agent a SimLink (simlink.py), through `_transport`, so that the network
can be cut and the node killed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

from node.agent import NodeAgent
from node.config import MqttConfig, NodeConfig
from node.transport import LinkEvent, Outgoing

from .gauge import FakeGauge
from .simlink import NetLoop, SimLink


class AgentLifecycle:
    """Owns at most one running NodeAgent for `config`."""

    def __init__(self, config: NodeConfig, *, net_loop: NetLoop | None = None) -> None:
        self.config = config
        self.agent: NodeAgent | None = None
        self.link: SimLink | None = None   # the running agent's
        self._net_loop = net_loop   # a fleet process's shared network thread, if any
        # The UPS HAT's fuel gauge, read by the agent when the config has `[battery]`;
        # kept across restarts like the cell itself.
        self.gauge = FakeGauge(address=config.battery.address if config.battery else 0x36)

    @property
    def node_id(self) -> str:
        return self.config.node_id

    def _new_agent(self) -> NodeAgent:
        """A fresh, not yet started agent on this node's hardware."""
        raise NotImplementedError

    def _transport(self, cfg: MqttConfig, client_id: str, *, will: Outgoing,
                   birth: Callable[[], Outgoing], subscriptions: list[tuple[str, int]],
                   on_event: Callable[[LinkEvent], None]) -> SimLink:
        """The agent's TransportFactory: a SimLink, kept so it can be cut or crashed."""
        self.link = SimLink(cfg, client_id, will=will, birth=birth,
                            subscriptions=subscriptions, on_event=on_event,
                            net_loop=self._net_loop)
        return self.link

    def start(self) -> Self:
        if self.agent is not None:
            raise RuntimeError(f"{self.node_id} is already running")
        self.agent = self._new_agent()
        self.agent.start()
        return self

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self.agent is not None and self.agent.wait_connected(timeout)

    def stop(self) -> None:
        """Graceful stop (as SIGTERM): death published, outputs off."""
        if self.agent is not None:
            self.agent.stop()
            self.agent = None
            self.link = None

    def kill(self) -> None:
        """Abrupt, like kill -9 or a crash: no death, no DISCONNECT (the broker's Will
        fires). Outputs end off, as the service manager's ExecStopPost leaves them."""
        if self.link is not None:
            self.link.crash()
            self.link = None
        if self.agent is not None:
            self.agent.halt()
            self.agent = None

    def cut_network(self) -> None:
        """The node's network goes away (no DISCONNECT; the broker fires the Will)."""
        if self.link is not None:
            self.link.cut()

    def restore_network(self) -> None:
        if self.link is not None:
            self.link.restore()
