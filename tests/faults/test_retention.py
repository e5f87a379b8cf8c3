"""Retention of old events: by default nothing is ever deleted; with `retention_days`
finished incidents go with their alarms, open ones stay; the append-only audit log is
pruned only by its own explicit setting, and stays append-only for everyone else."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hub.errors import SettingsError
from hub.retention import DAY_MS, prune
from hub.settings import load_settings
from hub.store import Outcome, Store
from protocol import Alarm, Kind, Source, parse_registry
from tests.support.hubdb import db_url, pg_database

__all__ = ["db_url", "pg_database"]

T0 = 1_700_000_000_000
HAMLET = "xa/thon-1"
REGISTRY = parse_registry({"areas": [{"path": "xa", "name": "Xã"},
                                     {"path": HAMLET, "name": "Thôn 1"}],
                           "nodes": [{"id": "n1", "area": HAMLET}]})


def press(store: Store, kind: str, at_ms: int) -> tuple[str, str]:
    a = Alarm(alarm_id=str(uuid.uuid4()), kind=Kind(kind), ts_ms=at_ms, source=Source.BUTTON,
              attempt=1, button=1)
    out = store.alarms.record_batch([("n1", a, at_ms)], window_s=600)[0]
    return a.alarm_id, out.incident_id


def count(store: Store, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0)


def test_retention_deletes_only_old_finished_incidents_and_audit_only_when_told(
        db_url: str) -> None:
    with Store.open(db_url) as store:
        store.nodes.sync_registry(REGISTRY)
        old_alarm, old_inc = press(store, "fire", T0)
        store.incidents.resolve(old_inc, "cong-an-xa", Outcome.REAL, None, T0 + 1_000)
        open_alarm, _ = press(store, "theft", T0 + 2_000)        # never dealt with
        new_alarm, new_inc = press(store, "flood", T0 + 29 * DAY_MS)
        store.incidents.resolve(new_inc, "cong-an-xa", Outcome.REAL, None, T0 + 29 * DAY_MS + 1)
        store.audit.record("cong-an-xa", "login", None, {}, now_ms=T0)
        now = T0 + 31 * DAY_MS
        audit_rows = count(store, "audit")

        # The defaults keep everything.
        assert prune(store.db, now).total == 0
        assert count(store, "alarms") == 3 and count(store, "incidents") == 3

        done = prune(store.db, now, retention_days=30)
        assert (done.incidents, done.alarms) == (1, 1)
        assert store.alarms.get(old_alarm) is None and store.incidents.get(old_inc) is None
        assert store.alarms.get(open_alarm) is not None       # open: kept however old
        assert store.alarms.get(new_alarm) is not None        # resolved, but recent
        assert count(store, "audit") == audit_rows       # audit untouched

        # Nobody else can delete from the audit log.
        with pytest.raises(DBAPIError), store.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit"))

        done = prune(store.db, now, retention_days=30, audit_retention_days=30)
        assert done.audit >= 1
        log = store.audit.entries()
        assert any(e.action == "audit_retention" for e in log)   # the prune says so itself
        assert all(e.ts_ms >= now - 30 * DAY_MS for e in log)
        with pytest.raises(DBAPIError), store.engine.begin() as conn:   # trigger is back
            conn.execute(text("DELETE FROM audit"))


def test_retention_settings_default_to_keeping_everything(tmp_path: Path) -> None:
    s = load_settings(None, env={}, data_dir=str(tmp_path), hub_id="hub-1")
    assert s.retention_days == 0 and s.audit_retention_days == 0
    s = load_settings(None, env={"TIENGMO_RETENTION_DAYS": "365"}, data_dir=str(tmp_path),
                      hub_id="hub-1")
    assert s.retention_days == 365
    with pytest.raises(SettingsError, match="'audit_retention_days' must be 0"):
        load_settings(None, env={}, data_dir=str(tmp_path), hub_id="hub-1",
                      audit_retention_days=-1)
