"""The registry file (TOML): the deployment's areas and nodes.

Read by the hub and by the simulator, so it lives here (stdlib only).

    [[areas]]
    path = "bach-thong/vi-huong/na-sang"
    name = "Thôn Nà Sang"
    level = "thôn"            # optional label for this level

    [[nodes]]
    id = "na-sang-01"
    area = "bach-thong/vi-huong/na-sang"
    households = 22          # optional
    lat = 22.2461            # optional
    lon = 105.8612           # optional
    enabled = true           # optional, default true

    [[households]]           # who may alarm by phone (protocol/households.py)
    id = "na-sang-h01"
    area = "bach-thong/vi-huong/na-sang"
    phones = ["0912 345 678"]
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ProtocolError
from .households import HouseholdEntry, dump_households, parse_households
from .ids import area_ancestors, is_area_path, is_node_id


class RegistryError(ProtocolError):
    """A registry file that cannot be used; the message names file, entry and key."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_registry", message)


@dataclass(frozen=True, slots=True)
class AreaEntry:
    path: str
    name: str
    level: str | None = None

    @property
    def depth(self) -> int:
        return self.path.count("/") + 1


@dataclass(frozen=True, slots=True)
class NodeEntry:
    id: str
    area: str
    households: int | None = None
    lat: float | None = None
    lon: float | None = None
    enabled: bool = True
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Registry:
    areas: tuple[AreaEntry, ...] = ()
    nodes: tuple[NodeEntry, ...] = ()
    source: str = "<memory>"
    _by_path: dict[str, AreaEntry] = field(default_factory=dict, compare=False, repr=False)
    households: tuple[HouseholdEntry, ...] = ()

    def area(self, path: str) -> AreaEntry | None:
        return self._by_path.get(path) or next((a for a in self.areas if a.path == path), None)

    def node(self, node_id: str) -> NodeEntry | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def household_of(self, number: str) -> HouseholdEntry | None:
        """The household a normalised (E.164) number belongs to, if any."""
        return next((h for h in self.households if number in h.phones), None)


_AREA_KEYS = {"path", "name", "level"}
_NODE_KEYS = {"id", "area", "households", "lat", "lon", "enabled", "name"}


def _where(source: str, table: str, i: int) -> str:
    return f"{source}: [[{table}]] #{i + 1}"


def _typed(where: str, key: str, value: Any, kinds: tuple[type, ...], what: str) -> Any:
    if isinstance(value, bool) and bool not in kinds:
        raise RegistryError(f"{where}: key {key!r} must be {what}")
    if not isinstance(value, kinds):
        raise RegistryError(f"{where}: key {key!r} must be {what}")
    return value


def _check_table(where: str, raw: object, allowed: set[str],
                 required: tuple[str, ...]) -> None:
    """One [[areas]] or [[nodes]] entry: a table, with only known keys and every required one."""
    if not isinstance(raw, dict):
        raise RegistryError(f"{where}: must be a table")
    extra = set(raw) - allowed
    if extra:
        raise RegistryError(f"{where}: unknown key {sorted(extra)[0]!r}")
    for key in required:
        if key not in raw:
            raise RegistryError(f"{where}: key {key!r} is required")


def parse_registry(data: dict[str, Any], source: str = "<memory>") -> Registry:
    """Validate a decoded registry document; every error names the entry and key."""
    unknown = set(data) - {"areas", "nodes", "households"}
    if unknown:
        raise RegistryError(f"{source}: unknown top-level key {sorted(unknown)[0]!r}")
    areas: list[AreaEntry] = []
    for i, raw in enumerate(data.get("areas", [])):
        where = _where(source, "areas", i)
        _check_table(where, raw, _AREA_KEYS, ("path", "name"))
        path = _typed(where, "path", raw["path"], (str,), "a string")
        if not is_area_path(path):
            raise RegistryError(f"{where}: key 'path' = {path!r} is not 1-4 slugs joined by '/'")
        name = _typed(where, "name", raw["name"], (str,), "a string")
        level = raw.get("level")
        if level is not None:
            _typed(where, "level", level, (str,), "a string")
        if any(a.path == path for a in areas):
            raise RegistryError(f"{where}: area {path!r} is listed twice")
        areas.append(AreaEntry(path, name, level))
    nodes: list[NodeEntry] = []
    known_areas = {a.path for a in areas}
    for i, raw in enumerate(data.get("nodes", [])):
        where = _where(source, "nodes", i)
        _check_table(where, raw, _NODE_KEYS, ("id", "area"))
        node_id = _typed(where, "id", raw["id"], (str,), "a string")
        if not is_node_id(node_id):
            raise RegistryError(f"{where}: key 'id' = {node_id!r} must match [a-z0-9][a-z0-9-]*")
        area = _typed(where, "area", raw["area"], (str,), "a string")
        if not is_area_path(area):
            raise RegistryError(f"{where}: key 'area' = {area!r} is not an area path")
        households = raw.get("households")
        if households is not None and (
            _typed(where, "households", households, (int,), "an integer") < 0
        ):
            raise RegistryError(f"{where}: key 'households' must be 0 or more")
        lat = raw.get("lat")
        lon = raw.get("lon")
        if lat is not None and not -90 <= _typed(where, "lat", lat, (int, float), "a number") <= 90:
            raise RegistryError(f"{where}: key 'lat' must be in -90..90")
        if lon is not None and not -180 <= _typed(where, "lon", lon, (int, float),
                                                  "a number") <= 180:
            raise RegistryError(f"{where}: key 'lon' must be in -180..180")
        enabled = _typed(where, "enabled", raw.get("enabled", True), (bool,), "true or false")
        name = raw.get("name")
        if name is not None:
            _typed(where, "name", name, (str,), "a string")
        if any(n.id == node_id for n in nodes):
            raise RegistryError(f"{where}: node {node_id!r} is listed twice")
        nodes.append(NodeEntry(node_id, area, households, lat, lon, enabled, name))
        known_areas.update(area_ancestors(area))
    households = parse_households(data.get("households", []), source, RegistryError)
    known_areas.update(a for h in households for a in area_ancestors(h.area))
    # Areas a node names but the file does not list are still areas (named by
    # their slug), so a node may sit at any depth without boilerplate.
    listed = {a.path for a in areas}
    for path in sorted(known_areas - listed):
        areas.append(AreaEntry(path, path.rsplit("/", 1)[-1]))
    areas.sort(key=lambda a: a.path)
    return Registry(tuple(areas), tuple(nodes), source, {a.path: a for a in areas},
                    households)


def load_registry(path: str | Path) -> Registry:
    """Read and validate a registry TOML file."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise RegistryError(f"{p}: registry file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{p}: not valid TOML: {exc}") from None
    return parse_registry(data, str(p))


def dump_registry(reg: Registry) -> str:
    """The registry as TOML text (for generated registries, e.g. by the simulator)."""
    out: list[str] = []

    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    for a in reg.areas:
        out += ["[[areas]]", f"path = {q(a.path)}", f"name = {q(a.name)}"]
        if a.level:
            out.append(f"level = {q(a.level)}")
        out.append("")
    for n in reg.nodes:
        out += ["[[nodes]]", f"id = {q(n.id)}", f"area = {q(n.area)}"]
        if n.name:
            out.append(f"name = {q(n.name)}")
        if n.households is not None:
            out.append(f"households = {n.households}")
        if n.lat is not None:
            out.append(f"lat = {n.lat}")
        if n.lon is not None:
            out.append(f"lon = {n.lon}")
        if not n.enabled:
            out.append("enabled = false")
        out.append("")
    out += dump_households(reg.households)
    return "\n".join(out)
