"""`tiengmo demo`, the README's main command, shows the whole loop by itself."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path


def test_demo_shows_press_incident_gongs_and_operator(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, "-m", "tiengmo.cli", "demo", "--data", str(data), "--duration", "28",
         "--first-press", "2", "--press-every", "1000", "--ack-after", "4",
         "--resolve-after", "8", "--http", "127.0.0.1:0", "--seed", "3"],
        capture_output=True, text=True, timeout=150,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "SẴN SÀNG / READY: 24 nodes online, 239 households" in out
    assert "BÁO ĐỘNG / ALARM" in out
    # Every gong of the origin's hamlet sounds (the demo's hamlets have 2 or 3 nodes).
    sounding = re.search(r"gongs sounding: ([a-z0-9, -]+)", out)
    assert sounding is not None, out[-3000:]
    assert len(sounding.group(1).split(", ")) >= 2
    assert "silent:" not in out
    assert "acknowledged incident" in out and "resolved incident" in out
    assert "đã dừng / stopped" in out
    # No tracebacks, and nothing but normal disconnects at shutdown.
    assert "Traceback" not in out
    db = sqlite3.connect(data / "hub" / "hub.db")
    try:
        assert db.execute("select count(*) from alarms").fetchone()[0] == 1
        states = [r[0] for r in db.execute("select state from incidents")]
        assert states == ["resolved"]
    finally:
        db.close()
