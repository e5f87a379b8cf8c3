"""The demo village: Bạch Thông district's gong network as a registry (package data).

`tiengmo demo` and the simulator start from this; it is an ordinary registry
file (protocol/registry.py format) shipped inside the package, so the demo
works from a plain `pip install` with no file of the user's.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from protocol import Registry, parse_registry

DEMO_REGISTRY_FILE = "bach-thong.toml"
# Facts of the source (DOMAIN.md) that the data file must keep true.
DEMO_HAMLET_AREAS = 11
DEMO_HOUSEHOLDS = 239


def demo_registry_text() -> str:
    """The demo registry's TOML text, as shipped."""
    return (resources.files("tiengmo.data") / DEMO_REGISTRY_FILE).read_text(encoding="utf-8")


def load_demo_registry() -> Registry:
    """The demo district, validated like any registry file."""
    source = f"tiengmo/data/{DEMO_REGISTRY_FILE}"
    return parse_registry(tomllib.loads(demo_registry_text()), source)


def write_demo_registry(path: str | Path) -> Path:
    """Copy the demo registry to `path` (for a hub or simulator that reads a file)."""
    p = Path(path)
    p.write_text(demo_registry_text(), encoding="utf-8")
    return p
