"""Store: the public face of the hub's database.

Each public method is one transaction and returns frozen snapshots
(hub.store.snapshots); see the mixins for the rules each part follows:
nodes.py (registry, births/deaths, heartbeats), alarms.py (storing and
correlating alarms), incidents.py (incident life cycle, queries),
records.py (commands, results, troubles, audit).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from ..db import make_engine, upgrade
from .alarms import AlarmsMixin
from .incidents import IncidentsMixin
from .nodes import NodesMixin
from .records import RecordsMixin


class Store(AlarmsMixin, IncidentsMixin, NodesMixin, RecordsMixin):
    """One database, many threads, possibly many hub replicas."""

    def __init__(self, engine: Engine, *, clock: Callable[[], int] | None = None) -> None:
        self._init_base(engine, clock)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True,
             clock: Callable[[], int] | None = None) -> Store:
        """Connect to `url` (sqlite:///rel, sqlite:////abs, postgresql://...), bring the
        schema to head (under a lock, so replicas starting together migrate once) and
        return a Store. `clock` gives the hub's time in ms for audit rows and defaults."""
        engine = make_engine(url)
        if migrate:
            try:
                upgrade(engine)
            except Exception:
                engine.dispose()
                raise
        return cls(engine, clock=clock)

    def close(self) -> None:
        """Release the connection pool."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
