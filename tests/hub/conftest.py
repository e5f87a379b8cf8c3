"""Hub tests that start a hub through the harness run on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support.hubdb import (  # noqa: F401 - fixtures
    hub_database,
    parametrize_hub_database,
    pg_database,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_hub_database(metafunc)
