"""One validator for the project's TOML tables: typed getters that name the key.

Used by the node's config (node/config.py), the hub's `[policy]` (hub/policy.py) and
`[integrations]` (hub/integrations/config.py) tables, so every one of them refuses
the same way: unknown keys are refused, and every error names the file, the key as a
dotted path (`outputs[1].pin`, `policy.kinds.fire.level`) and the problem, with the
value given and what is allowed. Standard library only: the node runs on a Pi Zero
without pydantic (the hub's own flat settings use pydantic-settings, hub/settings.py).

    t = Table("node.toml", "timers", raw["timers"])
    hb = t.number("heartbeat_s", 10.0, lo=0, hi=3600, above=True)
    t.done()                         # refuses any key nobody read

Each caller turns TableError into its own exception at its edge (node ConfigError,
hub SettingsError/PolicyError), keeping `source`, `key` and `problem`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

OPEN_INT = 2**31   # an integer's default upper bound: "no bound" in messages


class TableError(ValueError):
    """A TOML table that cannot be used: names the file, the dotted key and the problem."""

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


class Table:
    """One TOML table being read; `path` is its dotted name ('' for the document)."""

    def __init__(self, source: str, path: str, data: Any) -> None:
        self.source, self.path = source, path
        if not isinstance(data, Mapping):
            raise TableError(source, path or None, "must be a table")
        self.data: dict[str, Any] = dict(data)
        self.used: set[str] = set()

    # ---- naming and failing ----------------------------------------------

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str | None, problem: str) -> TableError:
        """The error for `name` (or the table itself), to raise."""
        return TableError(self.source, self.key(name) if name else (self.path or None), problem)

    def only(self, names: Iterable[str]) -> None:
        """Refuse at once any key not in `names` (the alternative to `done()`)."""
        allowed = set(names)
        extra = sorted(set(self.data) - allowed)
        if extra:
            raise self.fail(extra[0], f"unknown key (known here: {', '.join(sorted(allowed))})")
        self.used |= allowed

    def done(self) -> None:
        """Refuse keys nobody asked for: a typo must not be silently ignored."""
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise self.fail(extra[0], "unknown key")

    # ---- typed getters -------------------------------------------------------

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str, required: bool = False) -> Any:
        self.used.add(name)
        if name not in self.data:
            if required:
                raise self.fail(name, "is required")
            return None
        return self.data[name]

    def string(self, name: str, default: str | None = None, *, required: bool = False,
               choices: Iterable[str] | None = None, pattern: str | None = None,
               what: str | None = None) -> Any:
        """A non-empty string; with `choices`, one of them; with `pattern`, matching it
        (`what` says in words what the pattern wants)."""
        v = self.raw(name, required)
        if v is None:
            return default
        if not isinstance(v, str) or not v:
            raise self.fail(name, f"must be a non-empty string, not {v!r}")
        if choices is not None:
            options = list(choices)
            if v not in options:
                raise self.fail(name, f"must be one of {', '.join(options)}, not {v!r}")
        if pattern is not None and not re.fullmatch(pattern, v):
            raise self.fail(name, f"must be {what or 'matching ' + pattern}, not {v!r}")
        return v

    def integer(self, name: str, default: int | None = None, *, lo: int = 0,
                hi: int = OPEN_INT, required: bool = False) -> Any:
        v = self.raw(name, required)
        if v is None:
            return default
        rng = f"in {lo}..{hi}" if hi < OPEN_INT else f"{lo} or more"
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(name, f"must be an integer {rng}, not {v!r}")
        if not lo <= v <= hi:
            raise self.fail(name, f"must be {rng}, got {v}")
        return v

    def number(self, name: str, default: float | None = None, *, lo: float = 0.0,
               hi: float = 1e9, required: bool = False, above: bool = False) -> Any:
        """A finite number in lo..hi (more than `lo` when `above`), as a float."""
        v = self.raw(name, required)
        if v is None:
            return default
        rng = f"more than {_num(lo)}" if above else f"in {_num(lo)}..{_num(hi)}"
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise self.fail(name, f"must be a number {rng}, not {v!r}")
        if not lo <= v <= hi or (above and v <= lo):
            raise self.fail(name, f"must be {rng}, got {v}")
        return float(v)

    def boolean(self, name: str, default: bool) -> bool:
        v = self.raw(name, False)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.fail(name, f"must be true or false, not {v!r}")
        return v

    def array(self, name: str) -> list[Any]:
        """A plain array (of anything), or [] when absent."""
        v = self.raw(name, False)
        if v is None:
            return []
        if not isinstance(v, list):
            raise self.fail(name, f"must be an array, not {v!r}")
        return v

    # ---- nested tables ---------------------------------------------------------

    def sub(self, name: str, *, required: bool = False) -> Table | None:
        v = self.raw(name, required)
        return None if v is None else Table(self.source, self.key(name), v)

    def tables(self, name: str) -> list[Table]:
        """An array of tables ([[name]]), each named `name[i]`."""
        v = self.raw(name, False)
        if v is None:
            return []
        if not isinstance(v, list):
            raise self.fail(name, "must be an array of tables ([[...]])")
        return [Table(self.source, f"{self.key(name)}[{i}]", item) for i, item in enumerate(v)]

    def subtables(self) -> Iterator[tuple[str, Table]]:
        """Every key of this table as a table of its own (`[patterns.fire]`, ...)."""
        for name in list(self.data):
            t = self.sub(name)
            assert t is not None
            yield name, t
