"""Issue 12.6: the hub's SQLite files read-only for a while (a failing SD card's file
system), then writable again: the store resumes without a restart.

The cause of "never stored again" (docs/faults.md): SQLite opens a connection to a
file it cannot write READ-ONLY without a word, and the pool kept that connection:
"attempt to write a readonly database" on every write after the files were fine.

The tests run as root, and root ignores file modes, so the probe runs in a child
process with CAP_DAC_OVERRIDE dropped (setpriv): the real file modes, the real
SQLite fallback, nothing injected. A read-only remount of a tmpfs is refused while
the hub holds its files open for writing (EBUSY), so that is not used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
          "--inh-caps=-dac_override,-dac_read_search"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to drop the file-mode override")
def test_read_only_files_fail_writes_and_the_store_heals_when_writable(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([*NO_DAC, sys.executable, "-m", "tests.faults.readonly_probe",
                           str(folder)], capture_output=True, text=True, env=env,
                          cwd=str(ROOT), timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["before"] is True
    assert out["during"] == [False, False, False], out          # the fault is real
    assert "readonly" in str(out["health_during"]), out         # /healthz has the reason
    assert out["after"] is True, out                            # healed, no restart
    assert out["recover_s"] < 2.0, out
    assert out["health_after"] is None, out
    assert "after" in out["stored"], out
    print(f"\nSQLite read-only: recovered {out['recover_s']} s after the files were "
          f"writable again")
