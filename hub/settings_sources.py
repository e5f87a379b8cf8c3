"""Where hub settings come from, and how a refusal is worded (used by hub.settings).

pydantic-settings merges its sources in order, each later one winning key by key:
the TOML file, then `TIENGMO_*` environment variables, then keyword overrides (its
init source). The file and environment sources are ours, not pydantic-settings' own,
because `load_settings` is handed both (tests pass an `env` mapping; the file must be
refused when missing, not silently skipped as TomlConfigSettingsSource does), and so
that a refusal can name where the bad value came from.

`explain()` turns pydantic's ValidationError into one plain sentence: the file or
variable, the key, the value and what is allowed. No pydantic dump reaches a user.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import annotated_types as at
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from .errors import SettingsError

ENV_PREFIX = "TIENGMO_"
NESTED_DELIMITER = "__"
# Tables validated by the shared TOML-table validator (protocol.tomltable), not field by
# field here; environment variables reach into them with the nested delimiter.
NESTED = ("policy", "integrations")
INTERNAL = ("source",)


def read_toml(path: Path) -> dict[str, Any]:
    """The decoded file, or a SettingsError naming it."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"{path}: settings file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read settings file: {exc}") from None


class TomlSource(PydanticBaseSettingsSource):
    """The settings file, already decoded; its keys go to validation as written, so an
    unknown one meets `extra="forbid"`."""

    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self.data = dict(data)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


def _env_literal(text: str) -> Any:
    """A nested variable's value as TOML would read it (`true`, `3`, `"x"`, `[1, 2]`);
    anything TOML cannot read is kept as the text itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


class EnvSource(PydanticBaseSettingsSource):
    """TIENGMO_<KEY> for every top-level setting; TIENGMO_POLICY__<A>__<B> and
    TIENGMO_INTEGRATIONS__<A>__<B> for keys of the nested tables. Other TIENGMO_*
    variables belong to other components (the node agent, the simulator): ignored."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env = env
        self.origin: dict[str, str] = {}     # setting -> the variable it came from

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        fields = self.settings_cls.model_fields
        out: dict[str, Any] = {}
        for var, text in sorted(self.env.items()):
            if not var.startswith(ENV_PREFIX) or var == ENV_PREFIX + "CONFIG":
                continue
            path = var[len(ENV_PREFIX):].lower().split(NESTED_DELIMITER)
            key = path[0]
            if key not in fields or key in INTERNAL:
                continue
            if key in NESTED:
                if len(path) < 2 or not all(path):
                    continue
                table = out.setdefault(key, {})
                for part in path[1:-1]:
                    table = table.setdefault(part, {})
                table[path[-1]] = _env_literal(text)
                self.origin.setdefault(key, var)
                continue
            if len(path) != 1:
                continue
            # An empty value clears an optional key (its default applies otherwise).
            if text == "" and _optional(fields[key]):
                out[key] = None
            else:
                out[key] = text
            self.origin[key] = var
        return out


def _optional(info: FieldInfo) -> bool:
    return info.default is None


def _allowed(info: FieldInfo, error_type: str) -> str:
    """What a key accepts, in words, from its type and its Field constraints."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "allowed" in extra:
        return str(extra["allowed"])
    kind = {"int": "an integer", "float": "a number (float)", "bool": "true or false",
            "str": "text", "Path": "a path"}
    ann = info.annotation
    names = [getattr(a, "__name__", "") for a in getattr(ann, "__args__", ())] or [
        getattr(ann, "__name__", "")]
    base = next((kind[n] for n in names if n in kind), "a value of the right type")
    if error_type.startswith("bool"):
        base = "true or false"
    lo = next((m.ge for m in info.metadata if isinstance(m, at.Ge)), None)
    hi = next((m.le for m in info.metadata if isinstance(m, at.Le)), None)
    if lo is not None and hi is not None:
        return f"{base} from {lo} to {hi}"
    bounds = []
    for m in info.metadata:
        if isinstance(m, at.Gt):
            bounds.append(f"greater than {m.gt}")
        elif isinstance(m, at.Ge):
            bounds.append(f"{m.ge} or more")
        elif isinstance(m, at.Lt):
            bounds.append(f"less than {m.lt}")
        elif isinstance(m, at.Le):
            bounds.append(f"at most {m.le}")
    return base + (" " + " and ".join(bounds) if bounds else "")


def explain(exc: ValidationError, settings_cls: type[BaseSettings], *, source: str,
            env_origin: Mapping[str, str], override_keys: set[str],
            overrides_source: str = "<overrides>") -> SettingsError:
    """The first error of `exc` as the project's SettingsError, in plain words."""
    err = exc.errors(include_url=False)[0]
    loc = err.get("loc", ())
    key = str(loc[0]) if loc else ""
    if key in override_keys:
        where = overrides_source
    elif key in env_origin:
        where = f"environment variable {env_origin[key]}"
    else:
        where = source
    if not key:
        # A rule across keys (model validator): its message already names them.
        msg = str(err.get("msg", "invalid settings"))
        return SettingsError(f"{source}: {msg.removeprefix('Value error, ')}")
    if err["type"] == "extra_forbidden":
        return SettingsError(f"{where}: unknown key {key!r}")
    if err["type"] == "settings_rule":     # a field validator's own sentence
        return SettingsError(f"{where}: {err['msg']}")
    info = settings_cls.model_fields.get(key)
    allowed = _allowed(info, err["type"]) if info is not None else str(err.get("msg"))
    value = err.get("input")
    if err["type"] == "literal_error":
        allowed = "one of " + str(err.get("ctx", {}).get("expected", "")).replace("'", "") \
            .replace(" or ", ", ")
    verb = "must" if allowed.startswith("match ") else "must be"
    return SettingsError(f"{where}: key {key!r} {verb} {allowed}, got {value!r}")
