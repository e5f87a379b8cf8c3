"""Backup while the hub ingests a burst, restore into a fresh database: every alarm acked
before the backup began is there. Restore never overwrites a database by accident."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.faults.rig import ROOT, db_alarm_ids
from tests.faults.scenarios import rig


def tiengmo_hub(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "tiengmo.cli", "hub", *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_a_backup_taken_during_a_burst_restores_every_alarm_acked_before_it(
        tmp_path: Path) -> None:
    backup = tmp_path / "backups" / "hub-backup.db"
    fresh = tmp_path / "restored" / "hub.db"
    with rig(tmp_path / "run", 20, 2) as r:
        burst = threading.Thread(target=r.nodes.burst, args=(200, 4.0), daemon=True)
        burst.start()
        deadline = time.monotonic() + 30
        while len(r.nodes.outbox_ids()[1]) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        _, acked_before = r.nodes.outbox_ids()      # read BEFORE the backup begins
        out = tiengmo_hub("backup", "--db", f"sqlite:///{r.db}", "--out", str(backup))
        assert out.returncode == 0, out.stderr
        assert "written to" in out.stdout
        burst.join()
        # Restoring over the running hub's database is refused, --force or not.
        busy = tiengmo_hub("restore", "--db", f"sqlite:///{r.db}", "--from", str(backup),
                           "--force")
        assert busy.returncode == 1 and "a hub is running" in busy.stderr
        stored_live = db_alarm_ids(r.db)

    assert len(acked_before) >= 60
    done = tiengmo_hub("restore", "--db", f"sqlite:///{fresh}", "--from", str(backup))
    assert done.returncode == 0, done.stderr
    restored = db_alarm_ids(fresh)
    assert acked_before <= restored                 # every acked alarm is in the backup
    assert restored <= stored_live                  # and nothing that was never stored
    conn = sqlite3.connect(str(fresh))
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()

    again = tiengmo_hub("restore", "--db", f"sqlite:///{fresh}", "--from", str(backup))
    assert again.returncode == 1
    assert "not empty" in again.stderr and "--force" in again.stderr
    forced = tiengmo_hub("restore", "--db", f"sqlite:///{fresh}", "--from", str(backup),
                         "--force")
    assert forced.returncode == 0, forced.stderr
    assert db_alarm_ids(fresh) == restored


def test_restore_refuses_a_file_that_is_not_a_hub_backup(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    res = tiengmo_hub("restore", "--db", f"sqlite:///{tmp_path / 'hub.db'}", "--from", str(junk))
    assert res.returncode == 1
    assert str(junk) in res.stderr and "not a SQLite database" in res.stderr
    assert not (tmp_path / "hub.db").exists()


def test_a_backup_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """It holds webhook secrets and password hashes in clear: 0600 whatever the umask."""
    from hub.backup import backup

    db = tmp_path / "hub.db"
    conn = sqlite3.connect(db)
    for table in ("alembic_version", "alarms", "incidents", "nodes"):
        conn.execute(f"CREATE TABLE {table} (x)")
    conn.execute("INSERT INTO alarms VALUES ('whsec-not-for-the-world')")
    conn.commit()
    conn.close()
    out = tmp_path / "backups" / "hub-backup.db"
    old = os.umask(0o022)
    try:
        assert backup(f"sqlite:///{db}", out) > 0
        assert os.stat(out).st_mode & 0o777 == 0o600
        out.chmod(0o644)   # a second backup over an old, too open one is private again
        backup(f"sqlite:///{db}", out)
        assert os.stat(out).st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
