"""hub/store/health.py: which failures degrade the store, and one probe a second."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import IntegrityError, OperationalError

from hub.store.health import StoreHealth, unavailable


def _op(msg: str, invalidated: bool = False) -> OperationalError:
    return OperationalError("INSERT ...", {}, sqlite3.OperationalError(msg),
                            connection_invalidated=invalidated)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_file_failures_and_lost_databases_degrade_the_store_but_races_and_busy_do_not() -> None:
    assert unavailable(_op("attempt to write a readonly database"))
    assert unavailable(_op("disk I/O error"))
    assert unavailable(_op("database or disk is full"))
    assert unavailable(_op("no such table: alarms"))
    assert unavailable(_op("server closed the connection", invalidated=True))
    assert not unavailable(_op("database is locked"))          # busy: waited on, not down
    assert not unavailable(IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE")))
    assert not unavailable(ValueError("not a database error"))


def test_one_probe_a_second_while_failing_then_healthy_again() -> None:
    clock = FakeClock()
    h = StoreHealth(probe_s=1.0, clock=clock)
    assert h.fail_fast() is None and h.error is None
    h.failed(_op("attempt to write a readonly database"))
    assert h.error and "readonly" in h.error and h.file_failure
    assert h.fail_fast() == h.error              # within the second: fail at once
    clock.t += 1.0
    assert h.fail_fast() is None                 # this caller probes ...
    assert h.fail_fast() is not None             # ... the others still fail fast
    assert h.ok() is True                        # the probe committed: healed
    assert (h.error, h.file_failure, h.recoveries) == (None, False, 1)
    assert h.fail_fast() is None
    assert h.ok() is False                       # a plain success is no recovery


def test_a_lost_connection_is_reported_but_the_next_write_tries_at_once() -> None:
    h = StoreHealth(probe_s=1.0, clock=FakeClock())
    h.failed(_op("terminating connection due to administrator command", invalidated=True))
    assert h.error is not None
    assert h.fail_fast() is None                 # the pool opens a new connection
