"""The durable outbox: nothing pending is lost, whatever happens to the process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from node.outbox import EntryState, Outbox
from protocol import Kind, Source, new_id


def test_an_alarm_stays_pending_until_received_and_attempts_persist(tmp_path: Path) -> None:
    db = tmp_path / "outbox.sqlite"
    box = Outbox(db)
    a = new_id()
    box.add(a, Kind.FIRE, 1000, Source.BUTTON, 2, now_ms=1000)
    box.mark_sent(a, 1, 0, 1000)
    box.mark_sent(a, 2, 0, 1000)
    box.close()
    box = Outbox(db)
    [entry] = box.pending()
    assert (entry.alarm_id, entry.kind, entry.button, entry.attempt) == (a, Kind.FIRE, 2, 2)
    assert entry.to_alarm(entry.attempt + 1).attempt == 3
    assert box.mark_received(a, new_id(), 2000) is True
    assert box.mark_received(a, None, 2001) is False   # a duplicate changes nothing
    assert box.pending() == [] and box.depth() == 0
    box.close()


def test_a_rejected_alarm_is_kept_with_its_reason_and_no_longer_pending(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    a = new_id()
    box.add(a, Kind.SOS, 1, Source.BUTTON, None, now_ms=1)
    assert box.mark_rejected(a, "unknown node", 2)
    entry = box.get(a)
    assert entry is not None and entry.state is EntryState.REJECTED
    assert entry.reason == "unknown node"
    assert box.pending() == []
    assert box.prune(10**15) == 0 and box.get(a) is not None   # the log keeps it
    box.close()


def test_boot_id_rises_by_one_per_start(tmp_path: Path) -> None:
    ids = []
    for _ in range(3):
        box = Outbox(tmp_path / "o.sqlite")
        ids.append(box.next_boot_id())
        box.close()
    assert ids == [0, 1, 2]


def test_a_committed_alarm_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "outbox.sqlite"
    alarm_id = new_id()
    # A child process writes the alarm, says so, then waits to be killed.
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from node.outbox import Outbox
        from protocol import Kind, Source
        box = Outbox({str(db)!r})
        box.next_boot_id()
        box.add({alarm_id!r}, Kind.THEFT, 5, Source.BUTTON, 1, now_ms=5)
        print("written", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "written"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    box = Outbox(db)
    assert [e.alarm_id for e in box.pending()] == [alarm_id]
    assert box.next_boot_id() == 1
    box.close()


def test_latest_open_skips_resolved_and_rejected_alarms(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    first, second, third = new_id(), new_id(), new_id()
    box.add(first, Kind.FIRE, 1, Source.BUTTON, 1, now_ms=1)
    box.add(second, Kind.FIRE, 2, Source.BUTTON, 1, now_ms=2)
    box.add(third, Kind.FIRE, 3, Source.BUTTON, 1, now_ms=3)
    box.mark_rejected(third, "no", 4)
    box.set_progress(second, "resolved", new_id(), 4)
    latest = box.latest_open()
    assert latest is not None and latest.alarm_id == first
    box.close()


def test_an_unsynced_stamp_is_kept_and_an_old_outbox_is_upgraded(tmp_path: Path) -> None:
    import sqlite3
    db = tmp_path / "outbox.sqlite"
    # An outbox written by an agent from before `clock_synced` existed, with a pending alarm.
    con = sqlite3.connect(db)
    con.executescript("""CREATE TABLE alarms (alarm_id TEXT PRIMARY KEY, kind TEXT NOT NULL,
        ts_ms INTEGER NOT NULL, source TEXT NOT NULL, button INTEGER,
        attempt INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, progress TEXT,
        incident_id TEXT, reason TEXT, next_send_ms INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);""")
    old = new_id()
    con.execute("INSERT INTO alarms(alarm_id, kind, ts_ms, source, state, created_ms, "
                "updated_ms) VALUES(?, 'fire', 7, 'button', 'pending', 7, 7)", (old,))
    con.commit()
    con.close()
    box = Outbox(db)
    [entry] = box.pending()
    assert entry.alarm_id == old and entry.clock_synced   # judged as before
    assert entry.to_alarm(1).clock_synced is None           # not on the wire
    a = new_id()
    box.add(a, Kind.FIRE, 5, Source.BUTTON, 1, now_ms=5, clock_synced=False)
    box.close()
    entry2 = Outbox(db).get(a)
    assert entry2 is not None and entry2.clock_synced is False
    assert entry2.to_alarm(2).clock_synced is False
