"""Store: the hub's database as a set of repositories over one unit of work.

`Store.open(url)` connects (and migrates) and returns a Store whose
repositories are attributes: `store.alarms`, `store.incidents`, `store.nodes`,
`store.commands`, `store.troubles`, `store.audit`, `store.auth`,
`store.history`. Each is a plain class on the store's `Database` (`store.db`:
the engine, the writer gate, the retry on constraint races, the clock), and
each of its calls is one transaction returning frozen snapshots
(hub.store.snapshots).

Work that must commit together across repositories goes through one explicit
unit of work, whose repositories share one transaction:

    with store.unit(urgent=True) as uow:      # one attempt, committed at the end
        uow.alarms.record_batch(...)
        uow.commands.record(...)

    store.transaction(fn, urgent=True)        # fn(uow), retried whole on a race
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine

import protocol

from ..db import make_engine, upgrade
from .alarms import Alarms
from .auth import AuthStore
from .base import Database, Unit, Work
from .history import History
from .incidents import Incidents
from .nodes import Nodes
from .records import Audit, Commands, Troubles
from .snapshots import TroubleKind

log = logging.getLogger("tiengmo.hub.store")

T = TypeVar("T")


class Repositories:
    """Every repository, bound to one `Work` (the Database, or one open Unit)."""

    def __init__(self, work: Work) -> None:
        self.work = work
        self.alarms = Alarms(work)
        self.incidents = Incidents(work)
        self.nodes = Nodes(work)
        self.commands = Commands(work)
        self.troubles = Troubles(work)
        self.audit = Audit(work)
        self.auth = AuthStore(work)
        self.history = History(work)

    def now_ms(self) -> int:
        """The hub's time in ms (audit rows, defaults)."""
        return self.work.now_ms()


class Store(Repositories):
    """One database, many threads, possibly many hub replicas."""

    def __init__(self, engine: Engine, *, clock: Callable[[], int] | None = None) -> None:
        self.db = Database(engine, clock)
        super().__init__(self.db)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True,
             clock: Callable[[], int] | None = None, lock_timeout_s: float | None = None,
             statement_timeout_s: float | None = None) -> Store:
        """Connect to `url` (sqlite:///rel, sqlite:////abs, postgresql://...), bring the
        schema to head (under a lock, so replicas starting together migrate once) and
        return a Store. `clock` gives the hub's time in ms for audit rows and defaults;
        the timeouts bound every PostgreSQL transaction's lock waits and statements."""
        engine = make_engine(url, lock_timeout_s=lock_timeout_s,
                             statement_timeout_s=statement_timeout_s)
        if migrate:
            try:
                upgrade(engine)
            except Exception:
                engine.dispose()
                raise
        return cls(engine, clock=clock)

    @property
    def engine(self) -> Engine:
        return self.db.engine

    def heal_with(self, registry: protocol.Registry | None) -> None:
        """What to do when the database comes back empty (dropped and created again; the
        schema is migrated again by Database.heal_schema): put the registry's areas and
        nodes back, so alarms are correlated and sounded as before, and open a
        `database_recreated` trouble: the users, incidents and history are gone and
        someone must know (the log says so at CRITICAL too)."""
        def recreated() -> None:
            if registry is not None:
                self.nodes.sync_registry(registry)
            self.troubles.open(TroubleKind.DATABASE_RECREATED.value, "database", {
                "vi": "Cơ sở dữ liệu bị xoá và tạo lại: mất tài khoản và lịch sử",
                "en": "the database was dropped and created again: users and history "
                      "are gone"})
            log.critical("NGUY CẤP / CRITICAL: database re-created; registry synced again "
                         "(%d nodes); users and history are gone",
                         len(registry.nodes) if registry is not None else 0)

        self.db.on_recreated = recreated

    @contextmanager
    def unit(self, *, urgent: bool = False) -> Iterator[Repositories]:
        """One transaction for every repository used through the yielded `uow`:
        committed when the block ends, rolled back if it raises (not retried).
        `urgent` (alarms and their sounds) goes before other waiting writers."""
        with self.db.session(urgent) as s:
            yield Repositories(Unit(self.db, s))

    def transaction(self, fn: Callable[[Repositories], T], *, urgent: bool = False) -> T:
        """`fn(uow)` in one unit of work, run again whole on a constraint race (the
        retry sees what the winner committed and decides again)."""
        def attempt() -> T:
            with self.unit(urgent=urgent) as uow:
                return fn(uow)

        return self.db.retried(attempt)

    def close(self) -> None:
        """Release the connection pool."""
        self.db.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
