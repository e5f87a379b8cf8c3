"""Issue 12 points 4 and 6, as fault scenarios on the hub process (SQLite): commits
that fail, and files that turn read-only. Figures as in scenarios.py, with every
`sound` checked against the incidents stored at the end (phantoms).

- `commit_failures`: the database's tmpfs filled and freed again and again during a
  burst (0.3 s full, 0.3 s free), so commits fail with ENOSPC at random points of the
  alarm transactions, the way an injected commit failure does in-process
  (tests/hub/outage.py): no sound may name an incident that is not stored at the end,
  no second incident;
- `sqlite_readonly`: the hub runs without root's file-mode override (setpriv, as
  tests/faults/test_sqlite_readonly.py), its database files and folder are made
  read-only for a while during a burst (a failing SD card's file system), then
  writable again; the hub must heal by itself.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from tests.faults.rig import Figures, db_alarm_ids
from tests.faults.scenarios import Tmpfs, rig

NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
          "--inh-caps=-dac_override,-dac_read_search"]


def commit_failures(workdir: Path, flaps: int = 10, alarms: int = 60, nodes: int = 10,
                    full_s: float = 0.3, free_s: float = 0.3) -> Figures:
    """ENOSPC on and off during a burst: commits fail mid-run, the hub retries."""
    fig = Figures(f"commits failing (disk full/free x{flaps})", nodes)
    fs = Tmpfs(workdir / "dbfs", "32M")
    try:
        with rig(workdir, nodes, max(1, nodes // 5), db_dir=fs.path) as r:
            burst = threading.Thread(target=r.nodes.burst,
                                     args=(alarms, flaps * (full_s + free_s)), daemon=True)
            burst.start()
            for _ in range(flaps):
                filler = fs.fill()
                time.sleep(full_s)
                filler.unlink()
                time.sleep(free_s)
            t0 = time.monotonic()
            burst.join()
            r.nodes.wait_pressed(alarms)
            fig = r.finish(fig, t0)
            fig.notes["logged_full"] = "full" in r.hub.log_text().lower()
            return fig
    finally:
        fs.unmount()
        shutil.rmtree(fs.path, ignore_errors=True)


def _modes(folder: Path, file_mode: int, dir_mode: int) -> None:
    for f in folder.iterdir():
        os.chmod(f, file_mode)
    os.chmod(folder, dir_mode)


def sqlite_readonly(workdir: Path, readonly_s: float = 7.0, alarms: int = 60,
                    nodes: int = 10) -> Figures:
    """The database files read-only for `readonly_s` during a burst, then writable."""
    fig = Figures(f"SQLite files read-only {readonly_s:.0f} s", nodes)
    db_dir = workdir / "db"
    db_dir.mkdir(parents=True, exist_ok=True)
    with rig(workdir, nodes, max(1, nodes // 5), db_dir=db_dir, hub_prefix=NO_DAC) as r:
        stored_before = len(db_alarm_ids(r.db))
        _modes(db_dir, 0o444, 0o555)
        t_ro = time.monotonic()
        health: tuple[int, dict[str, Any]] = (0, {})
        try:
            r.nodes.burst(alarms, min(3.0, readonly_s / 2))
            r.nodes.wait_pressed(alarms)
            while time.monotonic() - t_ro < readonly_s:
                h = r.hub.health()
                if h[0] == 503 or health[0] == 0:
                    health = h
                time.sleep(0.2)
            r.audit.check()
            _, acked = r.nodes.outbox_ids()
            fig.notes["acked_while_readonly"] = len(acked)
            fig.notes["stored_while_readonly"] = len(db_alarm_ids(r.db)) - stored_before
            fig.notes["health_while_readonly"] = health[0]
            fig.notes["store_error_while_readonly"] = str(health[1].get("store_error"))[:160]
        finally:
            _modes(db_dir, 0o644, 0o755)
        t0 = time.monotonic()
        fig = r.finish(fig, t0, bound_s=60.0)
        return fig
