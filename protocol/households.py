"""Households in the registry file: who may alarm by phone, and for which hamlet.

    [[households]]
    id = "na-sang-h01"                        # a slug, unique in the file
    area = "bach-thong/vi-huong/na-sang"      # the hamlet whose gongs it may sound
    phones = ["0912 345 678", "+84987654321"] # one or more; 09xx and +849xx are alike
    name = "Hộ ông Hoàng Văn Páo"             # optional, shown to officers

Every number is normalised (protocol.phones) when the file is read, and a number may
belong to one household only: a caller must map to exactly one hamlet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .ids import is_area_path, is_node_id
from .phones import normalise_phone

KEYS = {"id", "area", "phones", "name"}


@dataclass(frozen=True, slots=True)
class HouseholdEntry:
    id: str
    area: str
    phones: tuple[str, ...]      # E.164, normalised
    name: str | None = None


def parse_households(raw: Any, source: str,
                     error: Callable[[str], Exception]) -> tuple[HouseholdEntry, ...]:
    """The `[[households]]` entries, validated; `error(message)` is raised naming the entry."""
    if not isinstance(raw, list):
        raise error(f"{source}: 'households' must be an array of tables ([[households]])")
    out: list[HouseholdEntry] = []
    owner: dict[str, str] = {}
    for i, entry in enumerate(raw):
        where = f"{source}: [[households]] #{i + 1}"
        if not isinstance(entry, dict):
            raise error(f"{where}: must be a table")
        extra = set(entry) - KEYS
        if extra:
            raise error(f"{where}: unknown key {sorted(extra)[0]!r}")
        for key in ("id", "area", "phones"):
            if key not in entry:
                raise error(f"{where}: key {key!r} is required")
        hid, area, phones = entry["id"], entry["area"], entry["phones"]
        if not isinstance(hid, str) or not is_node_id(hid):
            raise error(f"{where}: key 'id' = {hid!r} must match [a-z0-9][a-z0-9-]*")
        if not isinstance(area, str) or not is_area_path(area):
            raise error(f"{where}: key 'area' = {area!r} is not an area path")
        if not isinstance(phones, list) or not phones or not all(
                isinstance(p, str) for p in phones):
            raise error(f"{where}: key 'phones' must be a non-empty list of strings")
        name = entry.get("name")
        if name is not None and not isinstance(name, str):
            raise error(f"{where}: key 'name' must be a string")
        numbers: list[str] = []
        for p in phones:
            try:
                number = normalise_phone(p)
            except ValueError as exc:
                raise error(f"{where}: key 'phones': {exc}") from None
            if number in owner and owner[number] != hid:
                raise error(f"{where}: number {number} already belongs to household "
                            f"{owner[number]!r}")
            owner[number] = hid
            numbers.append(number)
        if any(h.id == hid for h in out):
            raise error(f"{where}: household {hid!r} is listed twice")
        out.append(HouseholdEntry(hid, area, tuple(dict.fromkeys(numbers)), name))
    return tuple(out)


def dump_households(households: tuple[HouseholdEntry, ...]) -> list[str]:
    """TOML lines of the `[[households]]` entries (for generated registries)."""
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    out: list[str] = []
    for h in households:
        out += ["[[households]]", f"id = {q(h.id)}", f"area = {q(h.area)}",
                "phones = [" + ", ".join(q(p) for p in h.phones) + "]"]
        if h.name:
            out.append(f"name = {q(h.name)}")
        out.append("")
    return out
