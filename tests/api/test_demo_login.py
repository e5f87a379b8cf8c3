"""`tiengmo demo` prints an admin's credentials, and they open the dashboard's API."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_demo_prints_credentials_that_log_in(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tiengmo.cli", "demo", "--data", str(tmp_path / "data"),
         "--duration", "60", "--first-press", "1000", "--http", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        found = None
        deadline = time.monotonic() + 90
        while found is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"Log in at (http://\S+/) as (\S+) / (\S+)", line)
        assert found is not None, "".join(lines)[-3000:]
        base, user, password = found.groups()
        assert "Đăng nhập" in lines[-1]
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/").status_code == 200          # the dashboard itself
            r = client.post("/api/v1/session", json={"username": user, "password": password})
            assert r.status_code == 200, r.text
            assert r.json()["user"]["role"] == "admin"
            nodes = client.get("/api/v1/nodes").json()
            assert len([n for n in nodes if n["registered"]]) == 24
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert "Traceback" not in out
