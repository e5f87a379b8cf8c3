"""A database that will not take writes, for tests: SQLAlchemy engine events raise
OperationalError at a write's COMMIT or at its first INSERT/UPDATE, a set number of
times or until restored. Reads still work (a full disk, a failing commit)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError


class Outage:
    """Makes `engine` refuse to commit alarm writes (`at="commit"`) or any write at all
    (`at="write"`), `times` times (None: until `restore`)."""

    def __init__(self, engine: Engine, at: str = "commit", times: int | None = None) -> None:
        self.engine, self.at, self.left = engine, at, times
        self.failed = 0
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _fail(self) -> bool:
        return self.left is None or self.left > 0

    def _raise(self) -> None:
        self.failed += 1
        if self.left is not None:
            self.left -= 1
        raise OperationalError("COMMIT", {}, Exception("injected: disk I/O error"))

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            if self.at == "write" and self._fail():
                self._raise()
            conn.info["wrote"] = True

    def _commit(self, conn: Any) -> None:
        if conn.info.pop("wrote", False) and self.at == "commit" and self._fail():
            self._raise()

    def restore(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)


@contextmanager
def outage(engine: Engine, **kw: Any) -> Iterator[Outage]:
    o = Outage(engine, **kw)
    try:
        yield o
    finally:
        o.restore()
