"""Issue 12.6 on the hub process: its SQLite files read-only for a while during a
burst (setpriv drops root's file-mode override), then writable: it heals, no restart."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.faults.commit_scenarios import sqlite_readonly
from tests.faults.conftest import assert_survived


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to drop the file-mode override")
def test_a_hub_whose_files_went_read_only_heals_without_a_restart(tmp_path: Path) -> None:
    fig = sqlite_readonly(tmp_path, readonly_s=5.0, alarms=30, nodes=6)
    assert fig.notes["acked_while_readonly"] <= fig.notes["stored_while_readonly"], fig
    assert_survived(fig)
