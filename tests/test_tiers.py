"""Every test lands in a tier (tests/conftest.py): quick, long, or the default."""

from __future__ import annotations

import pytest

from tests.conftest import TESTS, TIERS, tier_of


@pytest.mark.parametrize(("path", "tier"), [
    ("protocol/test_topics.py", "quick"),
    ("node/test_outbox.py", "quick"),
    ("hub/test_store.py", "quick"),
    ("hub/test_store_nodes.py", "quick"),        # its own entry, not test_store.py's
    ("hub/test_ingest.py", None),                # not listed: the default tier
    ("hub/test_new_thing.py", None),             # a new file: the default tier
    ("ansible/test_apply.py", "long"),
    ("ansible/test_site.py", "long"),
    ("ansible/test_lint.py", None),
    ("faults/test_hub_killed.py", "long"),
    ("scale/test_replicas.py", None),
])
def test_a_file_gets_the_tier_of_its_longest_entry(path: str, tier: str | None) -> None:
    assert tier_of(TESTS / path) == tier


def test_every_entry_names_a_file_or_folder_and_a_known_tier() -> None:
    assert set(TIERS.values()) <= {"quick", "long"}
    assert all((TESTS / key).exists() for key in TIERS)


def test_this_run_marked_this_test(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("quick") is not None
