"""The one TOML-table validator (node config, hub policy and integrations tables)."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.tomltable import Table, TableError


def test_an_unknown_key_is_refused_naming_file_and_dotted_key() -> None:
    t = Table("node.toml", "timers", {"heartbeat_s": 5, "heartbeet_s": 5})
    assert t.number("heartbeat_s", 10.0, above=True) == 5.0
    with pytest.raises(TableError) as err:
        t.done()
    assert str(err.value) == "node.toml: timers.heartbeet_s: unknown key"
    assert (err.value.source, err.value.key) == ("node.toml", "timers.heartbeet_s")
    with pytest.raises(TableError, match=r"^hub.toml: policy.louder: unknown key \(known"):
        Table("hub.toml", "policy", {"louder": 1}).only({"kinds"})


@pytest.mark.parametrize(("read", "says"), [
    (lambda t: t.integer("n", lo=1, hi=9), "n: must be in 1..9, got 0"),
    (lambda t: t.integer("x", lo=1), "x: must be an integer 1 or more, not 'a'"),
    (lambda t: t.integer("b", lo=0), "b: must be an integer 0 or more, not True"),
    (lambda t: t.number("f", above=True), "f: must be more than 0, got -1.5"),
    (lambda t: t.number("nan", hi=5), "nan: must be a number in 0..5, not nan"),
    (lambda t: t.string("s", choices=("hamlet", "commune")),
     "s: must be one of hamlet, commune, not 'x'"),
    (lambda t: t.string("e"), "e: must be a non-empty string, not ''"),
    (lambda t: t.string("s", pattern="[a-z]+/[a-z]+", what="an area path"),
     "s: must be an area path, not 'x'"),
    (lambda t: t.boolean("x", False), "x: must be true or false, not 'a'"),
    (lambda t: t.raw("missing", True), "missing: is required"),
    (lambda t: t.tables("s"), "s: must be an array of tables"),
])
def test_each_getter_names_the_key_the_value_and_what_is_allowed(read: Any, says: str) -> None:
    t = Table("f.toml", "", {"n": 0, "x": "a", "b": True, "f": -1.5, "nan": float("nan"),
                             "s": "x", "e": ""})
    with pytest.raises(TableError) as err:
        read(t)
    assert str(err.value).startswith(f"f.toml: {says}"), str(err.value)


def test_nested_tables_and_arrays_carry_their_path() -> None:
    t = Table("n.toml", "", {"outputs": [{"pin": 3}, {"pin": 99}], "mqtt": "x"})
    second = t.tables("outputs")[1]
    with pytest.raises(TableError, match=r"n.toml: outputs\[1\].pin: must be in 0..27"):
        second.integer("pin", lo=0, hi=27)
    with pytest.raises(TableError, match=r"n\.toml: mqtt: must be a table"):
        t.sub("mqtt")
