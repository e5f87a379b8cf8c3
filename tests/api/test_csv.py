"""The CSV exports (issue 13, point 9): an alarm whose node clock is far in the future no
longer fails the export; times are in the hub's `tz` (default Asia/Ho_Chi_Minh); `lang=vi`
names the columns in Vietnamese."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest

from hub.runtime import Hub
from protocol import Alarm, Kind, Source
from tests.api.conftest import Browser

API = "/api/v1"
FAR_FUTURE_MS = 2**53 - 1      # the protocol allows it; year ~287000: no calendar shows it
NOON_UTC_MS = 1_796_040_000_000  # 2026-11-30T12:00:00Z


def rows(text: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.decode("utf-8-sig"))))


def store_alarm(hub: Hub, ts_ms: int) -> str:
    a = Alarm(alarm_id=str(uuid.uuid4()), kind=Kind.FIRE, ts_ms=ts_ms, source=Source.BUTTON,
              button=1, attempt=1)
    hub.store.alarms.record("na-sang-01", a, NOON_UTC_MS, window_s=600)
    return a.alarm_id


def test_a_far_future_press_time_does_not_fail_the_export(
        hub: Hub, browsers: dict[str, Browser]) -> None:
    alarm_id = store_alarm(hub, FAR_FUTURE_MS)
    r = browsers["viewer"].client.get(f"{API}/alarms.csv")
    assert r.status_code == 200, r.text
    [row] = rows(r.content)
    assert row["alarm_id"] == alarm_id
    assert row["pressed_at"] == "" and row["pressed_ms"] == str(FAR_FUTURE_MS)  # kept
    assert row["received_at"] == "2026-11-30T19:00:00+07:00"   # Asia/Ho_Chi_Minh
    assert browsers["viewer"].client.get(f"{API}/incidents.csv").status_code == 200


def test_vietnamese_column_names(hub: Hub, browsers: dict[str, Browser]) -> None:
    store_alarm(hub, NOON_UTC_MS)
    viewer = browsers["viewer"].client
    [alarm] = rows(viewer.get(f"{API}/alarms.csv?lang=vi").content)
    assert alarm["thời gian bấm"] == "2026-11-30T19:00:00+07:00" and alarm["mã nút"] == "na-sang-01"
    [inc] = rows(viewer.get(f"{API}/incidents.csv?lang=vi").content)
    assert inc["loại"] == "fire" and inc["thời gian mở"] == "2026-11-30T19:00:00+07:00"
    assert viewer.get(f"{API}/alarms.csv?lang=fr").status_code == 422


class TestAnotherZone:
    @pytest.fixture
    def hub_overrides(self) -> dict[str, Any]:
        return {"tz": "UTC"}

    def test_times_follow_the_tz_setting(self, hub: Hub, browsers: dict[str, Browser]) -> None:
        store_alarm(hub, NOON_UTC_MS)
        [row] = rows(browsers["viewer"].client.get(f"{API}/alarms.csv").content)
        assert row["pressed_at"] == "2026-11-30T12:00:00+00:00"
