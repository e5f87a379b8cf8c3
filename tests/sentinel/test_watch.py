"""The sentinel's judgement on made-up times: told once after the grace, once when back,
never for a blip; a lost broker or stale beacons count as the hub gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.config import parse_config
from sentinel.errors import ConfigError
from sentinel.texts import sms_text
from sentinel.watch import Alert, Change, HubWatch


def up(w: HubWatch, now: float) -> None:
    w.broker(True, now)
    w.hub_state("hub-1", True, now)
    w.beacon("hub-1", now)


def run(w: HubWatch, start: float, end: float, step: float = 0.5,
        beacons: bool = False) -> list[tuple[float, Change]]:
    out = []
    t = start
    while t <= end:
        if beacons:
            w.beacon("hub-1", t)
        c = w.tick(t)
        if c is not None:
            out.append((t, c))
        t += step
    return out


def test_down_once_after_the_grace_then_back_once() -> None:
    w = HubWatch(grace_s=10, beacon_stale_s=5, now=0)
    up(w, 0)
    assert run(w, 0, 20, beacons=True) == []
    w.hub_state("hub-1", False, 21)   # the Will
    changes = run(w, 21, 60)
    assert [(t, c.alert) for t, c in changes] == [(31, Alert.DOWN)]
    assert changes[0][1].hubs == ("hub-1",)
    w.hub_state("hub-1", True, 70)
    w.beacon("hub-1", 70)
    back = run(w, 70, 90, beacons=True)
    assert [(t, c.alert, c.gone_s) for t, c in back] == [(70, Alert.BACK, 49)]


def test_a_blip_inside_the_grace_is_never_told() -> None:
    w = HubWatch(grace_s=10, beacon_stale_s=5, now=0)
    up(w, 0)
    run(w, 0, 5, beacons=True)
    w.hub_state("hub-1", False, 6)
    assert run(w, 6, 14) == []
    w.hub_state("hub-1", True, 14.5)
    assert run(w, 14.5, 60, beacons=True) == []


def test_stale_beacons_count_from_when_they_went_stale() -> None:
    w = HubWatch(grace_s=10, beacon_stale_s=5, now=0)
    up(w, 0)
    run(w, 0, 20, beacons=True)     # last beacon at 20: stale after 25, told at 35
    assert [(t, c.alert) for t, c in run(w, 20.5, 60)] == [(35, Alert.DOWN)]


def test_losing_the_broker_is_losing_the_hub() -> None:
    w = HubWatch(grace_s=10, beacon_stale_s=5, now=0)
    up(w, 0)
    run(w, 0, 3, beacons=True)
    w.broker(False, 3.5)
    assert [(t, c.alert) for t, c in run(w, 3.5, 30)] == [(13.5, Alert.DOWN)]


def test_a_hub_never_seen_since_start_is_told_after_the_grace() -> None:
    w = HubWatch(grace_s=10, beacon_stale_s=5, now=100)
    w.broker(True, 100)
    assert [(t, c.alert) for t, c in run(w, 100, 130)] == [(110, Alert.DOWN)]


def test_one_replica_online_is_enough() -> None:
    w = HubWatch(grace_s=10, beacon_stale_s=5, now=0)
    up(w, 0)
    w.hub_state("hub-2", True, 0)
    w.hub_state("hub-1", False, 1)
    assert run(w, 1, 30, beacons=True) == []


def test_texts_say_it_in_vietnamese_then_english() -> None:
    down = sms_text(Change(Alert.DOWN, 75, ("hub-1",)), 1_750_000_000)
    assert down.index("MẤT LIÊN LẠC") < down.index("Alarm hub DOWN") and "75 giây" in down
    back = sms_text(Change(Alert.BACK, 600, ("hub-1",)), 1_750_000_000)
    assert "HOẠT ĐỘNG LẠI" in back and "10 min" in back


def test_config_refusals_name_the_key(tmp_path: Path) -> None:
    base = {"sentinel": {"id": "sentinel-1"}, "mqtt": {"url": "mqtt://127.0.0.1:1883"},
            "sms": {"port": "/dev/ttyUSB2", "police": ["+84987654321"]}}
    cfg = parse_config(base)
    assert cfg.sms is not None and cfg.sms.numbers == ("+84987654321",)
    assert cfg.grace_s == 60.0
    with pytest.raises(ConfigError, match=r"sms\.police\[0\]"):
        parse_config({**base, "sms": {"port": "/dev/x", "police": ["113 ok"]}})
    with pytest.raises(ConfigError, match=r"sentinel\.grace_s"):
        parse_config({**base, "sentinel": {"id": "s", "grace_s": 0}})
    with pytest.raises(ConfigError, match=r"sentinel\.colour"):
        parse_config({**base, "sentinel": {"id": "s", "colour": "red"}})
    with pytest.raises(ConfigError, match="tells nobody"):
        parse_config({k: v for k, v in base.items() if k != "sms"})
