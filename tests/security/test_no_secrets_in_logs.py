"""No secret in logs: a full `tiengmo demo` run at DEBUG, read afterwards, line by line.

The demo is the whole stack in one process (broker, hub, 24 node agents, HTTP API), so
every component logs into the same output. While it runs, an operator logs in (and
once with a wrong password), makes an API token and uses it. Afterwards every secret the
run used is looked for in everything it wrote: the nodes' MQTT password, the hub's
secret, the admin's password (allowed once: the demo's own "Log in at ..." line on the
terminal, which is the point of a demo), the wrong password typed, the session cookie,
the CSRF token, the API token, and the stored password and token hashes.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

RUN_S = 25


def read_until(path: Path, pattern: str, proc: subprocess.Popen[bytes],
               timeout: float = 90) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, path.read_text(encoding="utf-8", errors="replace"))
        if found:
            return found
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"no {pattern!r} in: {path.read_text(errors='replace')[-3000:]}")


def login_diagnosis(data: Path, out_path: Path, found: re.Match[str]) -> str:
    """Why a login with the printed password failed: what was matched, every login line
    printed, and whether the stored hash takes the printed password (a rare failure
    under load must leave enough to be understood)."""
    from hub.api.security import verify_password
    text = out_path.read_text(encoding="utf-8", errors="replace")
    lines = [line for line in text.splitlines() if "Log in at" in line]
    stored = []
    for db in sorted((data / "hub").glob("*.db")):
        with sqlite3.connect(db) as conn:
            stored += conn.execute("SELECT username, password_hash, active FROM users").fetchall()
    verdicts = [(u, a, verify_password(h, found.group(3))) for u, h, a in stored]
    return f"matched={found.group(0)!r} lines={lines} users(name, active, verifies)={verdicts}"


def test_a_full_demo_run_at_debug_logs_no_secret(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out_path = tmp_path / "demo.out"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tiengmo.cli", "demo", "--data", str(data),
             "--duration", str(RUN_S), "--first-press", "2", "--press-every", "4",
             "--ack-after", "2", "--resolve-after", "5", "--http", "127.0.0.1:0",
             "--log-level", "DEBUG", "--seed", "7"],
            stdout=out, stderr=subprocess.STDOUT)
    secrets: dict[str, str] = {}
    try:
        # Up to the line's end: the file is read while the demo writes it, and a password
        # cut off mid-write would fail the login for the wrong reason.
        found = read_until(out_path, r"Log in at (http://\S+/) as (\S+) / (\S+)\r?\n", proc)
        base, user, password = found.groups()
        secrets["admin password"] = password
        secrets["wrong password typed"] = "Wr0ng-but-s3cret-typo"
        with httpx.Client(base_url=base, timeout=10) as client:
            r = client.post("/api/v1/session", json={"username": user,
                                                     "password": secrets["wrong password typed"]})
            assert r.status_code == 401
            r = client.post("/api/v1/session", json={"username": user, "password": password})
            assert r.status_code == 200, (r.text, login_diagnosis(data, out_path, found))
            csrf = r.json()["csrf_token"]
            secrets["CSRF token"] = csrf
            secrets["session cookie"] = next(iter(client.cookies.values()))
            r = client.post("/api/v1/tokens", json={"name": "logs-test", "role": "viewer"},
                            headers={"X-CSRF-Token": csrf})
            assert r.status_code == 201, r.text
            secrets["API token"] = r.json()["token"]
        with httpx.Client(base_url=base, timeout=10) as bearer:
            r = bearer.get("/api/v1/incidents",
                           headers={"Authorization": f"Bearer {secrets['API token']}"})
            assert r.status_code == 200, r.text
            # A token in a query string must not be taken (it would land in access logs).
            r = bearer.get("/api/v1/incidents", params={"token": secrets["API token"]})
            assert r.status_code == 401
        proc.wait(RUN_S + 60)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
    # One MQTT password per node and one for the hub (tiengmo/demo.py), each in its file.
    pw_files = sorted((data / "passwords").iterdir())
    assert len(pw_files) > 1, pw_files
    for pw in pw_files:
        secrets[f"MQTT password of {pw.name}"] = pw.read_text().strip()
    secrets["hub secret"] = (data / "hub" / "secret").read_text().strip()
    db = sqlite3.connect(data / "hub" / "hub.db")
    try:
        secrets["admin password hash"] = db.execute(
            "SELECT password_hash FROM users WHERE username = ?", (user,)).fetchone()[0]
        secrets["API token hash"] = db.execute(
            "SELECT token_hash FROM api_tokens WHERE name = 'logs-test'").fetchone()[0]
        alarms = db.execute("SELECT count(*) FROM alarms").fetchone()[0]
    finally:
        db.close()
    text = out_path.read_text(encoding="utf-8", errors="replace")
    # The run did what a run does (presses, stored alarms, DEBUG output of the parts).
    assert alarms >= 1 and " DEBUG " in text, text[-2000:]
    logs = [text] + [p.read_text(errors="replace") for p in data.rglob("*.log")]
    leaks = []
    for what, value in secrets.items():
        assert len(value) >= 8, what
        hits = [line for doc in logs for line in doc.splitlines() if value in line]
        if what == "admin password":
            # The one line the demo prints on purpose, to the terminal, for the person at it.
            hits = [h for h in hits if not re.search(r"Log in at \S+ as \S+ / ", h)]
        leaks += [f"{what}: {h[:200]}" for h in hits]
    assert leaks == [], "secrets in the logs:\n" + "\n".join(leaks)
    print(f"\n{len(text.splitlines())} lines of output searched for {len(secrets)} secrets")
