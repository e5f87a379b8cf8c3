"""Village: many VirtualNodes on one broker, from a registry or a count.

Every node gets a generated config (the same TOML schema as a Pi, validated
by `node.config.parse_config`), pins from the safe range, its own data_dir
and its own MockFactory. Short timers for tests pass through `timers=`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from node.config import NodeConfig, parse_config
from protocol import Registry, is_area_path

from .virtual import VirtualNode

# A typical household post: two buttons, a cancel key, one gong, an LED, a
# power-good input and a UPS HAT's fuel gauge (firmware_sim/gauge.py fakes its
# I2C bus). Outputs on 9-27 only (PROTOCOL.md rule 6).
DEFAULT_BUTTONS: tuple[dict[str, Any], ...] = (
    {"pin": 17, "number": 1, "kind": "theft"},
    {"pin": 27, "number": 2, "kind": "fire"},
)
DEFAULT_HARDWARE: dict[str, Any] = {
    "cancel": {"pin": 22, "hold_s": 1.5},
    "outputs": [{"name": "gong", "type": "gong", "pin": 23}],
    "led": {"pin": 12},
    "power": {"good_pin": 16},
    "battery": {"gauge": "max17048"},
}


def node_config_dict(node_id: str, area: str, *, broker_url: str, data_dir: str | Path,
                     username: str | None = None, password_file: str | Path | None = None,
                     prefix: str | None = None, timers: Mapping[str, Any] | None = None,
                     mqtt: Mapping[str, Any] | None = None,
                     hardware: Mapping[str, Any] | None = None,
                     buttons: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The TOML document (as a dict) of one simulated node; `hardware` replaces sections."""
    m: dict[str, Any] = {"url": broker_url, "reconnect_min_s": 0.5}
    if username is not None:
        m["username"] = username
    if password_file is not None:
        m["password_file"] = str(password_file)
    if prefix is not None:
        m["prefix"] = prefix
    m.update(mqtt or {})
    doc: dict[str, Any] = {
        "node": {"id": node_id, "area": area, "data_dir": str(data_dir)},
        "mqtt": m,
        "buttons": copy.deepcopy(buttons if buttons is not None else list(DEFAULT_BUTTONS)),
    }
    doc.update(copy.deepcopy(DEFAULT_HARDWARE))
    doc.update(copy.deepcopy(dict(hardware or {})))
    doc = {k: v for k, v in doc.items() if v is not None}
    if timers:
        doc["timers"] = dict(timers)
    return doc


def node_config(node_id: str, area: str, **kwargs: Any) -> NodeConfig:
    """A validated NodeConfig for one simulated node (see `node_config_dict`)."""
    return parse_config(node_config_dict(node_id, area, **kwargs), f"<sim {node_id}>")


class Village:
    """A set of VirtualNodes sharing one broker URL and credentials."""

    def __init__(self, nodes: list[VirtualNode]) -> None:
        self.nodes = nodes
        self._by_id = {n.node_id: n for n in nodes}

    @classmethod
    def from_registry(cls, registry: Registry, *, broker_url: str, data_root: str | Path,
                      include_disabled: bool = False, **kwargs: Any) -> Village:
        """One node per registry node (enabled ones unless `include_disabled`)."""
        root = Path(data_root)
        nodes = [VirtualNode(node_config(n.id, n.area, broker_url=broker_url,
                                         data_dir=root / n.id, **kwargs))
                 for n in registry.nodes if n.enabled or include_disabled]
        return cls(nodes)

    @classmethod
    def from_count(cls, count: int, area: str, *, broker_url: str, data_root: str | Path,
                   first: int = 1, **kwargs: Any) -> Village:
        """`count` nodes sim-0001, sim-0002... all in `area`."""
        if not is_area_path(area):
            raise ValueError(f"{area!r} is not an area path")
        root = Path(data_root)
        ids = [f"sim-{i:04d}" for i in range(first, first + count)]
        return cls([VirtualNode(node_config(i, area, broker_url=broker_url,
                                            data_dir=root / i, **kwargs)) for i in ids])

    def start(self, wait_s: float | None = 10.0) -> Village:
        """Start every node; wait until all are connected (None: do not wait)."""
        for n in self.nodes:
            n.start()
        if wait_s is not None:
            late = [n.node_id for n in self.nodes if not n.wait_connected(wait_s)]
            if late:
                raise TimeoutError(f"not connected within {wait_s} s: {', '.join(late[:10])}")
        return self

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    def __getitem__(self, node_id: str) -> VirtualNode:
        return self._by_id[node_id]

    def __iter__(self) -> Iterator[VirtualNode]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def in_area(self, area: str) -> list[VirtualNode]:
        """Nodes in `area` or below it."""
        return [n for n in self.nodes
                if n.config.area == area or n.config.area.startswith(area + "/")]
