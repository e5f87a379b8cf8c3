"""The durable alarm outbox of PROTOCOL.md rule 2, and the persisted boot_id.

An alarm is written here (and fsynced: WAL with synchronous=FULL) before it
is published, and stays `pending` until the hub answers `received`, so a
kill -9 or a power cut between press and ack loses nothing: the next agent
start re-sends it. `rejected` alarms stay in the log with the hub's reason.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from protocol import Alarm, Kind, Source

from .errors import OutboxError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarms (
    alarm_id     TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    ts_ms        INTEGER NOT NULL,
    source       TEXT NOT NULL,
    button       INTEGER,
    attempt      INTEGER NOT NULL DEFAULT 0,   -- sends so far
    state        TEXT NOT NULL,                -- pending / received / rejected
    progress     TEXT,                         -- latest ack status seen
    incident_id  TEXT,
    reason       TEXT,
    next_send_ms INTEGER NOT NULL DEFAULT 0,
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    clock_synced INTEGER NOT NULL DEFAULT 1    -- 0: ts_ms is the node's own clock
);
CREATE INDEX IF NOT EXISTS alarms_state ON alarms(state, next_send_ms);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Ack statuses after which an alarm is over: nothing more to show or cancel.
_CLOSED = ("resolved", "cancelled")


class EntryState(StrEnum):
    PENDING = "pending"
    RECEIVED = "received"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Entry:
    """One alarm as the outbox holds it."""

    alarm_id: str
    kind: Kind
    ts_ms: int
    source: Source
    button: int | None
    attempt: int
    state: EntryState
    progress: str | None
    incident_id: str | None
    reason: str | None
    next_send_ms: int
    created_ms: int
    clock_synced: bool = True

    def to_alarm(self, attempt: int) -> Alarm:
        # `clock_synced` goes on the wire only when false: a synced alarm is the same
        # bytes as before the field existed.
        return Alarm(alarm_id=self.alarm_id, kind=self.kind, ts_ms=self.ts_ms,
                     source=self.source, attempt=attempt, button=self.button,
                     clock_synced=None if self.clock_synced else False)

    @property
    def closed(self) -> bool:
        return self.progress in _CLOSED or self.state is EntryState.REJECTED


_COLS = ("alarm_id, kind, ts_ms, source, button, attempt, state, progress, incident_id, "
         "reason, next_send_ms, created_ms, clock_synced")


def _entry(row: Any) -> Entry:
    (aid, kind, ts, src, button, attempt, state, progress, inc, reason, nxt, created,
     synced) = row
    return Entry(aid, Kind(kind), ts, Source(src), button, attempt, EntryState(state), progress,
                 inc, reason, nxt, created, bool(synced))


class Outbox:
    """SQLite outbox in `data_dir/outbox.sqlite`; safe to call from several threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves so each
            # write is exactly one durable transaction.
            self._db = sqlite3.connect(str(self.path), isolation_level=None,
                                       check_same_thread=False, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsynced at every commit, so a committed alarm
            # survives a power cut, not only a process crash.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            cols = {r[1] for r in self._db.execute("PRAGMA table_info(alarms)")}
            if "clock_synced" not in cols:   # an outbox written before the column existed
                self._db.execute("ALTER TABLE alarms ADD COLUMN clock_synced INTEGER NOT NULL "
                                 "DEFAULT 1")
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"{self.path}: cannot open the outbox: {exc}") from exc
        self._lock = threading.Lock()

    def _write(self, sql: str, args: tuple[object, ...]) -> int:
        with self._lock:
            try:
                cur = self._db.execute(sql, args)
            except sqlite3.Error as exc:
                raise OutboxError(f"{self.path}: write failed: {exc}") from exc
            return cur.rowcount

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    # -- boot id -------------------------------------------------------------

    def next_boot_id(self) -> int:
        """+1 the persisted boot_id and return it (0 on the very first start)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT value FROM meta WHERE key='boot_id'").fetchone()
                boot = int(row[0]) + 1 if row else 0
                self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('boot_id', ?)",
                                 (str(boot),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return boot

    # -- alarms --------------------------------------------------------------

    def add(self, alarm_id: str, kind: Kind, ts_ms: int, source: Source, button: int | None,
            now_ms: int, clock_synced: bool = True) -> None:
        """Record a new alarm as pending, durably, before it is ever sent.

        `clock_synced` False: `ts_ms` is the node's own clock (no hub sample yet); kept
        with the alarm so every re-send, even after a reboot, says so."""
        self._write(
            "INSERT OR IGNORE INTO alarms(alarm_id, kind, ts_ms, source, button, attempt, state,"
            " next_send_ms, created_ms, updated_ms, clock_synced)"
            " VALUES(?,?,?,?,?,0,'pending',0,?,?,?)",
            (alarm_id, kind.value, ts_ms, source.value, button, now_ms, now_ms,
             int(clock_synced)))

    def get(self, alarm_id: str) -> Entry | None:
        rows = self._read(f"SELECT {_COLS} FROM alarms WHERE alarm_id=?", (alarm_id,))
        return _entry(rows[0]) if rows else None

    def pending(self) -> list[Entry]:
        """Alarms still waiting for `received`, oldest first."""
        return [_entry(r) for r in self._read(
            f"SELECT {_COLS} FROM alarms WHERE state='pending' ORDER BY created_ms, ts_ms")]

    def all(self) -> list[Entry]:
        return [_entry(r) for r in self._read(f"SELECT {_COLS} FROM alarms ORDER BY created_ms")]

    def depth(self) -> int:
        rows = self._read("SELECT count(*) FROM alarms WHERE state='pending'")
        return int(rows[0][0])

    def mark_sent(self, alarm_id: str, attempt: int, next_send_ms: int, now_ms: int) -> None:
        """Count one more send (persisted so `attempt` keeps rising across restarts)."""
        self._write("UPDATE alarms SET attempt=?, next_send_ms=?, updated_ms=? "
                    "WHERE alarm_id=? AND state='pending'",
                    (attempt, next_send_ms, now_ms, alarm_id))

    def mark_received(self, alarm_id: str, incident_id: str | None, now_ms: int) -> bool:
        """The hub stored it: stop re-sending. True the first time only."""
        return self._write(
            "UPDATE alarms SET state='received', incident_id=coalesce(?, incident_id),"
            " progress=coalesce(progress, 'received'), updated_ms=? "
            "WHERE alarm_id=? AND state='pending'", (incident_id, now_ms, alarm_id)) > 0

    def set_progress(self, alarm_id: str, status: str, incident_id: str | None,
                     now_ms: int) -> bool:
        """Record acknowledged / resolved / cancelled (which also imply received)."""
        return self._write(
            "UPDATE alarms SET progress=?, state=CASE WHEN state='pending' THEN 'received' "
            "ELSE state END, incident_id=coalesce(?, incident_id), updated_ms=? "
            "WHERE alarm_id=? AND state!='rejected'",
            (status, incident_id, now_ms, alarm_id)) > 0

    def mark_rejected(self, alarm_id: str, reason: str, now_ms: int) -> bool:
        """The hub will never accept it: stop re-sending, keep it with the reason."""
        return self._write(
            "UPDATE alarms SET state='rejected', reason=?, updated_ms=? "
            "WHERE alarm_id=? AND state='pending'", (reason, now_ms, alarm_id)) > 0

    def latest_open(self) -> Entry | None:
        """The newest alarm that is neither rejected nor resolved/cancelled."""
        rows = self._read(
            f"SELECT {_COLS} FROM alarms WHERE state!='rejected' AND "
            "(progress IS NULL OR progress NOT IN ('resolved','cancelled')) "
            "ORDER BY created_ms DESC, ts_ms DESC LIMIT 1")
        return _entry(rows[0]) if rows else None

    def by_incident(self, incident_id: str) -> list[Entry]:
        return [_entry(r) for r in self._read(
            f"SELECT {_COLS} FROM alarms WHERE incident_id=?", (incident_id,))]

    def prune(self, older_than_ms: int) -> int:
        """Forget received alarms last touched before `older_than_ms`; never pending ones."""
        return self._write("DELETE FROM alarms WHERE state='received' AND updated_ms<?",
                           (older_than_ms,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
