"""The alarm transaction's statements (hub.store.alarms._Batch), on the fastest faithful path.

Between a press and the gongs the alarm worker runs a handful of small statements:
the batch's nodes, its alarm ids, the open incidents of its keys, the origin nodes'
recent fan-outs, a new incident's insert; after the sound, the batch's writes.
Through SQLAlchemy Core each costs 0.1-0.2 ms of Python on an idle hub, against
~0.03 ms on the bare `sqlite3` cursor of the same connection (docs/alarm-lane.md,
"Against a bare relay"), and a real alarm comes to an idle hub. So on SQLite they
run on that cursor, inside the transaction SQLAlchemy began (`BEGIN IMMEDIATE`,
hub.db.engine).

Under load, what costs is how often SQLite is stepped: each step releases the GIL
and takes it back, against paho's thread busy with the next alarms. So each write
is one statement for all of the batch's rows (a multi-row INSERT, `UPDATE ... FROM
(VALUES ...)`), not an `executemany` that steps once per row, and the batch's nodes
come back as one JSON row (ingest +9-24%, docs/alarm-lane.md). One difference: the
`events` rows the update triggers write (migration 0002) come in the table's row
order, not the batch's, and share one `ts_ms`; each only says "this changed".

Errors stay SQLAlchemy's: a statement that fails on the cursor is run again, the
same text with the same parameters, through SQLAlchemy (`exec_driver_sql`), which
raises it wrapped (`DBAPIError`, `IntegrityError`) and runs the engine's
`handle_error` (a read-only or full SQLite file drops the pool: hub.db.engine),
exactly as before; if it then succeeds, its result is used. Running it again must
not change what the transaction does, so:
- a write is one statement, which applies nothing when it fails; one too large for
  SQLite's cap on parameters is split, and its statements run inside a SAVEPOINT
  that a failure rolls back to first (else the re-run's first row would fail as a
  duplicate, and a full disk be taken for a race);
- after some errors (a full disk, an I/O error, SQLITE_BUSY) SQLite rolls the whole
  transaction back itself, and with pysqlite's `isolation_level = None` nothing would
  begin another: a re-run, and every statement after it, would commit on its own,
  half a batch. So when the transaction is gone (or the savepoint cannot be rolled
  back to) nothing runs again: the error is raised wrapped as SQLAlchemy wraps it,
  and a file failure invalidates the connection as `handle_error` does.

Other databases (PostgreSQL) keep SQLAlchemy Core: there the network round trip,
not Python, is the cost, and several replicas write at once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from sqlalchemy import Boolean, Connection, Table
from sqlalchemy.exc import DBAPIError

from ..db.engine import sqlite_file_failure
from . import alarm_sql as sql

# (id, area, registered, enabled) of a node
NodeRow = tuple[str, "str | None", bool, bool]
# incident id -> (alarms joined in this batch, the latest receipt, its alarm_count and
# last_alarm_ms after them, as read and counted in this transaction)
Joined = dict[str, tuple[int, int, int, int]]


class CoreStatements:
    """The statements through SQLAlchemy Core (every dialect)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def nodes(self, ids: list[str]) -> list[NodeRow]:
        return [(r.id, r.area, bool(r.registered), bool(r.enabled))
                for r in self.conn.execute(sql.SEL_NODES, {"ids": ids})]

    def alarms(self, ids: list[str]) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in self.conn.execute(sql.SEL_ALARMS, {"ids": ids})]

    def incidents(self, keys: list[str], ids: list[str]) -> list[dict[str, Any]]:
        """The incidents holding `keys`, and those of `ids`, in one round trip."""
        return [dict(r._mapping)
                for r in self.conn.execute(sql.SEL_INC_KEYS, {"keys": keys, "ids": ids})]

    def fanned(self, ids: list[str], since: int) -> list[tuple[str, int]]:
        """(origin node, opened_ms) of the fanned-out incidents of `ids` opened after `since`."""
        return [(r.origin_node, r.opened_ms)
                for r in self.conn.execute(sql.SEL_FANNED, {"ids": ids, "since": since})]

    def incident(self, inc_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(sql.SEL_INC, {"b_id": inc_id}).first()
        return dict(row._mapping) if row is not None else None

    def insert_incident(self, row: dict[str, Any]) -> None:
        self.conn.execute(sql.INS_INC, row)   # the UNIQUE corr_key decides a race

    def join(self, joined: Joined) -> None:
        # Relative, in SQL: copies of one incident's alarms may join on two replicas.
        self.conn.execute(sql.JOIN, [{"b_id": i, "b_n": n, "b_ms": ms}
                                     for i, (n, ms, _, _) in joined.items()])

    def insert_alarms(self, rows: Sequence[dict[str, Any]]) -> None:
        self.conn.execute(sql.INS_ALARM, list(rows))   # the primary key decides a race

    def seen(self, last: dict[str, int]) -> None:
        self.conn.execute(sql.SEEN, [{"b_id": n, "b_ms": ms} for n, ms in last.items()])


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _marks(n: int) -> str:
    return ", ".join("?" * n) if n else "NULL"   # IN (NULL) matches nothing


def _values(rows: int, width: int) -> str:
    one = f"({_marks(width)})"
    return ", ".join([one] * rows)


class _Shape:
    """One table's columns for the cursor: their list, and which are booleans (SQLite
    stores 0/1; SQLAlchemy's rows give bool, and so must these)."""

    def __init__(self, table: Table) -> None:
        self.names = [c.name for c in table.columns]
        self.cols = ", ".join(_q(n) for n in self.names)
        self.table = _q(table.name)
        self.bools = [i for i, c in enumerate(table.columns) if isinstance(c.type, Boolean)]
        self.insert = self.insert_many(1)

    def insert_many(self, n: int) -> str:
        return f"INSERT INTO {self.table} ({self.cols}) VALUES {_values(n, len(self.names))}"

    def row(self, values: Sequence[Any]) -> dict[str, Any]:
        out = dict(zip(self.names, values, strict=True))
        for i in self.bools:
            v = values[i]
            out[self.names[i]] = None if v is None else bool(v)
        return out

    def values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row[n] for n in self.names)


_INC = _Shape(sql.INCIDENTS)
_ALARM = _Shape(sql.ALARMS)
_NODES = _q(sql.NODES.name)


# Many rows in one statement (`UPDATE ... FROM`: SQLite 3.33; `statements_for`). A
# VALUES table's columns are column1, column2, ...
def _join_sql(n: int) -> str:
    # Absolute values (counted in this transaction, which holds SQLite's one write lock
    # since BEGIN IMMEDIATE): running it twice changes nothing more.
    return (f"UPDATE {_INC.table} SET alarm_count = v.column1, last_alarm_ms = v.column2 "
            f"FROM (VALUES {_values(n, 3)}) AS v WHERE incident_id = v.column3")


def _seen_sql(n: int) -> str:
    return (f"UPDATE {_NODES} SET last_seen_ms = v.column2 FROM (VALUES {_values(n, 2)}) "
            f"AS v WHERE id = v.column1 AND (last_seen_ms IS NULL OR last_seen_ms < v.column2)")


class SqliteStatements(CoreStatements):
    """The same statements on the connection's own `sqlite3` cursor (see the module)."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        raw = conn.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        self.raw: sqlite3.Connection = raw

    def _all(self, text: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        try:
            return self.raw.execute(text, tuple(params)).fetchall()
        except sqlite3.Error as err:
            if not self.raw.in_transaction:
                self._lost(err, text, params)
        # again through SQLAlchemy: raised as it would raise it (see the module)
        result = self.conn.exec_driver_sql(text, tuple(params))
        return [tuple(r) for r in result] if result.returns_rows else []

    def _many(self, build: Callable[[int], str], width: int,
              rows: list[tuple[Any, ...]]) -> None:
        """Write `rows` (`width` values each) with as few statements as SQLite allows:
        `build(n)` is the statement for n rows. Not `executemany`: it steps SQLite once
        per row (see the module)."""
        if not rows:
            return
        per = max(1, self.raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
        chunks = [rows[i:i + per] for i in range(0, len(rows), per)]
        stmts = [(build(len(c)), tuple(v for r in c for v in r)) for c in chunks]
        if len(stmts) == 1:   # one statement that fails applies nothing: no savepoint
            self._all(*stmts[0])
            return
        text, params = stmts[0]
        try:
            self.raw.execute("SAVEPOINT alarm_cursor")
            for text, params in stmts:
                self.raw.execute(text, params)
            self.raw.execute("RELEASE alarm_cursor")
            return
        except sqlite3.Error as err:   # `text` is the statement that failed
            if not self.raw.in_transaction:
                self._lost(err, text, params)
            try:   # undo the statements it applied before failing
                self.raw.execute("ROLLBACK TO alarm_cursor")
                self.raw.execute("RELEASE alarm_cursor")
            except sqlite3.Error:
                self._lost(err, text, params)
        for text, params in stmts:
            self.conn.exec_driver_sql(text, params)

    def _lost(self, err: sqlite3.Error, text: str, params: Sequence[Any]) -> NoReturn:
        """Raise `err` as SQLAlchemy would, without running anything again."""
        if sqlite_file_failure(err):
            self.conn.invalidate(err)   # what hub.db.engine's handle_error asks for
        raise DBAPIError.instance(text, params, err, sqlite3.Error) from err

    def nodes(self, ids: list[str]) -> list[NodeRow]:
        # One row, the nodes as a JSON array: a batch's nodes are many rows, and SQLite
        # is stepped once per row (see the module).
        rows = self._all(f"SELECT json_group_array(json_array(id, area, registered, enabled)) "
                         f"FROM {_NODES} WHERE id IN ({_marks(len(ids))})", ids)
        return [(i, a, bool(r), bool(e)) for i, a, r, e in json.loads(rows[0][0])]

    def alarms(self, ids: list[str]) -> list[dict[str, Any]]:
        return [_ALARM.row(r) for r in self._all(
            f"SELECT {_ALARM.cols} FROM {_ALARM.table} "
            f"WHERE alarm_id IN ({_marks(len(ids))})", ids)]

    def incidents(self, keys: list[str], ids: list[str]) -> list[dict[str, Any]]:
        return [_INC.row(r) for r in self._all(
            f"SELECT {_INC.cols} FROM {_INC.table} WHERE corr_key IN ({_marks(len(keys))}) "
            f"UNION ALL SELECT {_INC.cols} FROM {_INC.table} "
            f"WHERE incident_id IN ({_marks(len(ids))})", [*keys, *ids])]

    def fanned(self, ids: list[str], since: int) -> list[tuple[str, int]]:
        rows = self._all(
            f"SELECT origin_node, opened_ms FROM {_INC.table} WHERE origin_node IN "
            f"({_marks(len(ids))}) AND fanned_out = 1 AND drill = 0 AND opened_ms > ?",
            [*ids, since])
        return [(n, t) for n, t in rows]

    def incident(self, inc_id: str) -> dict[str, Any] | None:
        rows = self._all(f"SELECT {_INC.cols} FROM {_INC.table} WHERE incident_id = ?",
                         [inc_id])
        return _INC.row(rows[0]) if rows else None

    def insert_incident(self, row: dict[str, Any]) -> None:
        # Before the sound: one statement, which applies nothing when it fails, so no
        # savepoint (two more statements on the press -> sound path) is needed.
        self._all(_INC.insert, _INC.values(row))

    def join(self, joined: Joined) -> None:
        self._many(_join_sql, 3, [(count, last, i) for i, (_, _, count, last) in joined.items()])

    def insert_alarms(self, rows: Sequence[dict[str, Any]]) -> None:
        self._many(_ALARM.insert_many, len(_ALARM.names), [_ALARM.values(r) for r in rows])

    def seen(self, last: dict[str, int]) -> None:
        self._many(_seen_sql, 2, list(last.items()))


def statements_for(conn: Connection) -> CoreStatements:
    """The fastest faithful statements for this connection's database."""
    if conn.dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 33, 0):
        return SqliteStatements(conn)
    return CoreStatements(conn)
