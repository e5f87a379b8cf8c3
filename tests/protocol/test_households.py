"""Households in the registry, and phone numbers as the hub compares them (E.164)."""

from __future__ import annotations

import tomllib

import pytest

from protocol import RegistryError, parse_registry
from protocol.households import HouseholdEntry
from protocol.phones import normalise_phone
from protocol.registry import dump_registry

HAMLET = "bach-thong/vi-huong/na-sang"


@pytest.mark.parametrize("raw", ["0912345678", "0912 345 678", "091.234.5678",
                                 "+84912345678", "84912345678", "0084 912 345 678",
                                 "(091) 234-5678"])
def test_every_way_of_writing_a_number_is_one_number(raw: str) -> None:
    assert normalise_phone(raw) == "+84912345678"


@pytest.mark.parametrize("raw", ["", "abc", "12345", "+84 91a", "912345678"])
def test_not_a_number(raw: str) -> None:
    with pytest.raises(ValueError, match="not a phone number"):
        normalise_phone(raw)


def doc(*households: dict[str, object]) -> dict[str, object]:
    return {"nodes": [{"id": "na-sang-01", "area": HAMLET}], "households": list(households)}


def test_households_are_read_and_found_by_any_spelling_of_their_number() -> None:
    reg = parse_registry(doc({"id": "h1", "area": HAMLET, "phones": ["0912 345 678",
                                                                     "+84987654321"],
                              "name": "Hộ ông Páo"}))
    assert reg.households == (HouseholdEntry("h1", HAMLET, ("+84912345678", "+84987654321"),
                                             "Hộ ông Páo"),)
    assert reg.household_of(normalise_phone("84912345678")) == reg.households[0]
    assert reg.household_of("+84900000000") is None
    again = parse_registry(tomllib.loads(dump_registry(reg)))
    assert again.households == reg.households


@pytest.mark.parametrize(("entry", "message"), [
    ({"id": "h1", "area": HAMLET}, "'phones' is required"),
    ({"id": "h1", "area": HAMLET, "phones": []}, "non-empty list"),
    ({"id": "h1", "area": HAMLET, "phones": ["12"]}, "not a phone number"),
    ({"id": "H 1", "area": HAMLET, "phones": ["0912345678"]}, "key 'id'"),
    ({"id": "h1", "area": "Nà Sang", "phones": ["0912345678"]}, "not an area path"),
    ({"id": "h1", "area": HAMLET, "phones": ["0912345678"], "owner": "x"}, "unknown key"),
])
def test_bad_households_are_refused_naming_the_entry(entry: dict[str, object],
                                                     message: str) -> None:
    with pytest.raises(RegistryError, match=message) as err:
        parse_registry(doc(entry), "village.toml")
    assert "village.toml: [[households]] #1" in str(err.value)


def test_a_number_belongs_to_one_household_only() -> None:
    with pytest.raises(RegistryError, match="already belongs to household 'h1'"):
        parse_registry(doc({"id": "h1", "area": HAMLET, "phones": ["0912345678"]},
                           {"id": "h2", "area": HAMLET, "phones": ["+84912345678"]}))
