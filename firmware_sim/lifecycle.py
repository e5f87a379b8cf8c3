"""What every simulated node does the same way around its NodeAgent: start once, wait, stop.

VirtualNode (mock pins) and HeadlessNode (no gpiozero devices) differ only in
how the agent's hardware is made; `_new_agent` is that difference.
"""

from __future__ import annotations

from typing import Self

from node.agent import NodeAgent
from node.config import NodeConfig


class AgentLifecycle:
    """Owns at most one running NodeAgent for `config`."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.agent: NodeAgent | None = None

    @property
    def node_id(self) -> str:
        return self.config.node_id

    def _new_agent(self) -> NodeAgent:
        """A fresh, not yet started agent on this node's hardware."""
        raise NotImplementedError

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
