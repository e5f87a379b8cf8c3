"""The applied site (tests/ansible/site_rig.py), made once for every module that uses it.

Package scope: test_hub_https.py, test_site.py and test_site_rollout.py share one boot
and one pair of applies (tests/conftest.py puts them in one xdist group, so one worker
makes it once). The modules run in that order, the rollout last: it changes the nodes'
version.

Time budget: 40 min (the modules' timeouts). Measured on the 2-core machine shared with
other runs: see README.md "What the tests need and how long they take". The first run
on a machine also builds the systemd root (debootstrap ~2 min, then apt ~2 min; cached
in /var/cache/tiengmo-ci by its inputs: the minbase inputs and nspawn.PACKAGES).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ansible.site_rig import Site, applied_site


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with applied_site(tmp_path_factory.mktemp("site")) as applied:
        yield applied
