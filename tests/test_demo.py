"""`tiengmo demo`, the README's main command, shows the whole loop by itself, on
Mosquitto (the production broker, installed in CI) and on the embedded amqtt one; a
re-run in the same folder starts fresh, or resumes when asked, and says which."""

from __future__ import annotations

import argparse
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tiengmo import demo
from tiengmo.demo_data import MARKER, DemoDataError, prepare


def run_demo(data: Path, *args: str, timeout: float = 150) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "tiengmo.cli", "demo", "--data", str(data),
         "--http", "127.0.0.1:0", *args],
        # One pipe for both, so log lines (stderr) stay in order with the demo's own.
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out
    return out


def count(data: Path, table: str) -> int:
    db = sqlite3.connect(data / "hub" / "hub.db")
    try:
        return int(db.execute(f"select count(*) from {table}").fetchone()[0])
    finally:
        db.close()


@pytest.mark.parametrize(("backend", "shown"), [("mosquitto", "(Mosquitto)"),
                                                ("amqtt", "(amqtt, embedded")])
def test_demo_shows_press_incident_gongs_and_operator(tmp_path: Path, backend: str,
                                                      shown: str) -> None:
    data = tmp_path / "data"
    out = run_demo(data, "--broker-backend", backend, "--duration", "28", "--first-press", "2",
                   "--press-every", "1000", "--ack-after", "4", "--resolve-after", "8",
                   "--first-call", "10", "--call-every", "1000", "--seed", "3")
    ready = re.search(r"SẴN SÀNG / READY: 24 nodes online, 239 households, broker (.*)", out)
    assert ready is not None, out[-3000:]
    assert shown in ready.group(1)
    assert "BÁO ĐỘNG / ALARM" in out
    assert "runs on battery (its mains adapter failed)" in out   # issue 15: a node on battery
    # Every gong of the origin's hamlet sounds (the demo's hamlets have 2 or 3 nodes).
    sounding = re.search(r"gongs sounding: ([a-z0-9, -]+)", out)
    assert sounding is not None, out[-3000:]
    assert len(sounding.group(1).split(", ")) >= 2
    assert "silent:" not in out
    assert "acknowledged incident" in out and "resolved incident" in out
    assert "đã dừng / stopped" in out
    # A household calls in (a missed call to the hub's simulated modem), is asked to
    # confirm, replies "1": its hamlet's alarm, texted back, then taken by the officer.
    call = re.search(r"a household in (.+?) rings the hub from (\+84\d+)", out)
    assert call is not None, out[-3000:]
    number = call.group(2)
    assert f"SMS → {number}: [Tiếng mõ] Nhận cuộc gọi báo động ({call.group(1)})" in out
    assert f"the household replies 1 from {number}" in out
    assert re.search(rf"SMS → {re.escape(number)}: .*Đã nhận báo động KHẨN CẤP", out), out[-3000:]
    assert re.search(rf"SMS → {re.escape(number)}: .*Công an xã đã tiếp nhận", out), out[-3000:]
    assert count(data, "alarms") == 2
    db = sqlite3.connect(data / "hub" / "hub.db")
    try:
        assert [r[0] for r in db.execute("select state from incidents")] == ["resolved"] * 2
        assert sorted(r[0] for r in db.execute("select source from alarms")) == [
            "button", "call"]
    finally:
        db.close()
    # One login per node and two for the hub (its own and its alarm lane's), each its
    # own password; the hub ran with its alarm lane's own connection.
    passwords = {p.name: p.read_text().strip() for p in (data / "passwords").iterdir()}
    assert len(passwords) == 26 and len(set(passwords.values())) == 26
    assert "demo-hub-alarms" in passwords
    assert all((p.stat().st_mode & 0o077) == 0 for p in (data / "passwords").iterdir())
    assert "alarm lane: its own connection demo-hub-alarms (đã kết nối / connected)" in out
    if backend == "mosquitto":
        # The production rules: per-node logins and the ACL of tiengmo.acl.
        acl = (data / "broker" / "acl").read_text()
        assert "user demo-hub" in acl and "user don-bay-01" in acl
        assert "user demo-hub-alarms" in acl
        assert len((data / "broker" / "passwd").read_text().splitlines()) == 26
        broker_log = (data / "broker" / "mosquitto.log").read_text()
        assert "Denied" not in broker_log
        assert " as demo-hub-alarms " in broker_log and " as demo-hub " in broker_log
    else:
        assert not (data / "broker").exists()


def age_the_previous_run(data: Path, seconds: int = 3600) -> None:
    """Make the previous run end `seconds` ago, as if the demo is run again next day."""
    db = sqlite3.connect(data / "hub" / "hub.db")
    try:
        db.execute("update nodes set status_since_ms = status_since_ms - ?, "
                   "last_seen_ms = last_seen_ms - ?", (seconds * 1000, seconds * 1000))
        db.commit()
    finally:
        db.close()


def test_a_rerun_starts_fresh_by_default_and_resumes_when_asked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    quick = ("--duration", "2", "--first-press", "1000")
    run_demo(data, "--duration", "8", "--first-press", "1", "--operator", "none", "--seed", "1")
    assert count(data, "alarms") == 1
    age_the_previous_run(data)

    out = run_demo(data, "--resume", *quick)
    before_ready = out.split("SẴN SÀNG / READY")[0]
    assert re.search(r"RESUMING the previous run in .*alarms: 1, incidents: 1", before_ready)
    assert count(data, "alarms") == 1            # kept
    # The hub judges no node before its own link is up, and then gives each a fresh
    # grace (hub/supervision.py): an hour-old run's nodes are not reported lost.
    assert "LOST" not in before_ready, before_ready[-3000:]
    age_the_previous_run(data)

    out = run_demo(data, *quick)
    before_ready = out.split("SẴN SÀNG / READY")[0]
    assert re.search(r"starting fresh in .*removed \(its database \(alarms: 1, incidents: 1\)",
                     before_ready), out[-3000:]
    assert "LOST" not in out
    assert count(data, "alarms") == 0 and count(data, "incidents") == 0


def test_only_a_folder_the_demo_made_is_cleared(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "hub").mkdir()
    (theirs / "hub" / "thesis.txt").write_text("years of work")
    with pytest.raises(DemoDataError, match="not made by tiengmo demo"):
        prepare(theirs, resume=False)
    assert (theirs / "hub" / "thesis.txt").read_text() == "years of work"
    assert not (theirs / MARKER).exists()

    ours = tmp_path / "ours"
    assert prepare(ours, resume=False) is None                  # a first run says nothing
    (ours / "hub").mkdir()
    (ours / "notes.txt").write_text("mine")
    assert "starting fresh" in (prepare(ours, resume=False) or "")
    assert not (ours / "hub").exists() and (ours / "notes.txt").read_text() == "mine"
    assert "no previous run" in (prepare(ours, resume=True) or "")


def test_every_demo_option_says_what_it_does() -> None:
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    for action in parser._actions:
        assert action.help and action.help != argparse.SUPPRESS, action.option_strings
    text = parser.format_help()
    assert "--broker-backend {auto,mosquitto,amqtt}" in text and "--resume" in text


def test_asking_for_a_missing_mosquitto_fails_before_touching_the_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tiengmo.local_mosquitto import LocalMosquittoError

    data = tmp_path / "data"
    (data / "hub").mkdir(parents=True)
    (data / MARKER).write_text("")
    (data / "hub" / "hub.db").write_text("the previous run")
    monkeypatch.setattr("tiengmo.local_mosquitto.find_mosquitto", lambda: None)
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(["--data", str(data), "--broker-backend", "mosquitto"])
    with pytest.raises(LocalMosquittoError, match="not installed"):
        demo.Demo(args).start()
    assert (data / "hub" / "hub.db").read_text() == "the previous run"
