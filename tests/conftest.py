"""Shared fixtures (a real Mosquitto per test that needs one, a bare MQTT wire) and the
suite's tiers.

Tiers (budgets on the CI machine, 2 cores; README.md gives the figures):
  quick          `pytest -m quick`       protocol, node unit, hub logic: < 3 min
  default        `pytest -m "not long"`  everything but the long rigs:   <= 12 min
  long           `pytest -m long`        the real Ansible apply, the fault table
The README's command (`pytest -n auto`) runs all three. A test gets its tier from
TIERS below, by its file or folder (the longest entry that matches wins), unless it
carries `@pytest.mark.quick` or `@pytest.mark.long` itself; anything not listed is
in the default tier, so a new test always lands in one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import progress
from tests.support.broker import Mosquitto
from tests.support.wire import Wire

TESTS = Path(__file__).resolve().parent

# Paths relative to tests/. Keep `quick` to what runs in a few seconds per file.
TIERS: dict[str, str] = {
    "protocol": "quick",
    "node": "quick",
    "test_self_contained.py": "quick",
    "test_ci_command.py": "quick",
    "test_tiers.py": "quick",
    "test_broker_support.py": "quick",
    "fuzz/test_config_errors.py": "quick",
    "fuzz/test_ingest_fuzz.py": "quick",
    "hub/test_settings.py": "quick",
    "hub/test_supervision_logic.py": "quick",
    "hub/test_power_logic.py": "quick",
    "hub/test_store.py": "quick",
    "hub/test_store_nodes.py": "quick",
    "hub/test_services.py": "quick",
    "hub/test_migrations.py": "quick",
    "hub/test_flood.py": "quick",
    "ansible/test_apply.py": "long",
    "ansible/test_site.py": "long",
    "ansible/test_hub_https.py": "long",
    "ansible/test_site_rollout.py": "long",
    "ansible/test_offline_install.py": "quick",
    "faults": "long",
    "hil": "long",          # Debian's kernel in QEMU with gpio-sim (docs/hil.md)
    # tests/scale (replicas, leadership, federation) takes about 25 s: default tier.
}
TIER_MARKS = ("quick", "long")


def tier_of(path: Path) -> str | None:
    """The tier TIERS gives a test file (None: the default tier)."""
    rel = path.resolve().relative_to(TESTS).as_posix()
    best: tuple[int, str | None] = (-1, None)
    for key, tier in TIERS.items():
        if (rel == key or rel.startswith(key + "/")) and len(key) > best[0]:
            best = (len(key), tier)
    return best[1]


def _check_tiers() -> None:
    # A renamed file must not fall out of its tier unnoticed.
    missing = [key for key in TIERS if not (TESTS / key).exists()]
    if missing:
        raise pytest.UsageError(f"tests/conftest.py TIERS names what does not exist: {missing}")


def _shared_fixtures_group(item: pytest.Item) -> str | None:
    """The xdist group of a test whose fixtures outlive it (None: it has none). A
    package-scoped fixture (tests/ansible's applied site) is shared by several modules:
    they all go to the fixture's package's group, so one worker makes it once; a module-
    or class-scoped one keeps its module on one worker."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    defs = [d for ds in info.name2fixturedefs.values() for d in ds]
    package = sorted(d.baseid or "tests" for d in defs if d.scope == "package")
    if package:
        return f"package:{package[0]}"
    if any(d.scope in ("module", "class") for d in defs):
        module = getattr(item, "module", None)
        return module.__name__ if module else item.path.stem
    return None


def pytest_configure(config: pytest.Config) -> None:
    progress.bind(config)   # long fixtures say how far they are, past the capture


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI (CI=true), a skipped test is a failure: nothing may be skipped there for
    want of a service, a package or a privilege (.ci/setup installs them all)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if (report.skipped and not hasattr(report, "wasxfail")
            and os.environ.get("CI", "").lower() in ("1", "true", "yes")):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, which must run every test: {report.longrepr}"


# tryfirst: xdist's own hook turns the xdist_group marks into scheduling groups, so
# they must be on the items before it runs.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _check_tiers()
    for item in items:
        own = [m for m in TIER_MARKS if item.get_closest_marker(m) is not None]
        if len(own) > 1:
            raise pytest.UsageError(f"{item.nodeid} is marked both quick and long")
        if not own and (tier := tier_of(item.path)) is not None:
            item.add_marker(getattr(pytest.mark, tier))
        # Under xdist (--dist loadgroup), the tests sharing fixtures that outlive one
        # test (the Ansible applies, the TLS broker) run on one worker, so they are made
        # once.
        if (group := _shared_fixtures_group(item)) is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    # The long rigs first: under xdist they start at once and the short tests fill the
    # other workers meanwhile, instead of one long rig being left alone at the end.
    items.sort(key=lambda it: 0 if it.get_closest_marker("long") is not None else 1)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh Mosquitto on a free port, anonymous, no persistence.

    One per test on purpose (about 55 ms to start and stop): tests restart and kill
    it, and retained messages or sessions of one test must not reach the next."""
    b = Mosquitto(tmp_path).start()
    yield b
    b.stop()


@pytest.fixture
def wire(broker: Mosquitto) -> Iterator[Wire]:
    """A bare MQTT client on `broker` that records everything it is subscribed to."""
    w = Wire(broker.host, broker.port)
    yield w
    w.close()
