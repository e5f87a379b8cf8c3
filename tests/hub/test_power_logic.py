"""Power supervision's rules (hub/power.py) on an injected clock: a commune's power cut is
ONE event, a single node on battery is its own trouble after the window, low batteries
with hysteresis, and everything clears when mains returns."""

from __future__ import annotations

from hub.power import LOW_BATTERY, ON_BATTERY, POWER_CUT, PowerTimers, PowerTrouble, PowerWatch

COMMUNE = "bach-thong/vi-huong"
NA_SANG = f"{COMMUNE}/na-sang"
NA_CHA = f"{COMMUNE}/na-cha"
NODES = [(f"na-sang-0{i}", NA_SANG, True) for i in range(1, 5)] + \
        [(f"na-cha-0{i}", NA_CHA, True) for i in range(1, 6)]
TIMERS = PowerTimers(low_battery_pct=20, low_battery_margin_pct=5, cut_min_nodes=3,
                     cut_fraction=0.5, cut_window_s=10)


def watch() -> PowerWatch:
    w = PowerWatch(TIMERS)
    w.set_nodes(NODES)
    return w


def opened(evs: list[PowerTrouble], kind: str | None = None) -> list[tuple[str, str]]:
    return [(e.kind, e.subject) for e in evs if e.open and kind in (None, e.kind)]


def cleared(evs: list[PowerTrouble]) -> list[tuple[str, str, bool]]:
    return [(e.kind, e.subject, e.folded) for e in evs if not e.open]


def test_a_commune_wide_cut_is_one_event_naming_the_commune() -> None:
    w = watch()
    t = 1_000_000
    for node_id, _, _ in NODES:   # the nodes report over one heartbeat interval
        w.heartbeat(node_id, "battery", 90.0, t)
        t += 500
        evs = w.tick(t)
        assert not opened(evs, ON_BATTERY)   # never one trouble per node
    everything = opened(w.tick(t + 60_000)) + opened(evs)
    cuts = [e for e in everything if e[0] == POWER_CUT]
    assert cuts == [(POWER_CUT, NA_SANG)] or (POWER_CUT, COMMUNE) in cuts
    # Wherever it started, the cut of all nine nodes reads as the commune's, once.
    w2 = watch()
    for node_id, _, _ in NODES:
        w2.heartbeat(node_id, "battery", 90.0, 1_000)
    [cut] = [e for e in w2.tick(1_000) if e.kind == POWER_CUT]
    assert (cut.subject, cut.detail["count"], cut.detail["of"]) == (COMMUNE, 9, 9)
    assert w2.tick(100_000) == []   # nothing more while it lasts, no per-node troubles


def test_a_cut_spreading_from_a_hamlet_to_the_commune_folds_into_one() -> None:
    w = watch()
    for i in range(1, 5):
        w.heartbeat(f"na-sang-0{i}", "battery", 90.0, 1_000)
    assert opened(w.tick(1_000)) == [(POWER_CUT, NA_SANG)]
    for i in range(1, 6):
        w.heartbeat(f"na-cha-0{i}", "battery", 90.0, 2_000)
    evs = w.tick(2_000)
    assert cleared(evs) == [(POWER_CUT, NA_SANG, True)]
    assert opened(evs) == [(POWER_CUT, COMMUNE)]


def test_mains_back_clears_the_cut_without_a_trouble_for_the_last_nodes() -> None:
    w = watch()
    for node_id, _, _ in NODES:
        w.heartbeat(node_id, "battery", 90.0, 1_000)
    w.tick(1_000)
    t = 50_000
    evs: list[PowerTrouble] = []
    for node_id, _, _ in NODES:
        w.heartbeat(node_id, "mains", 91.0, t)
        evs += w.tick(t)
        t += 500
    assert cleared(evs) == [(POWER_CUT, COMMUNE, False)]
    assert not opened(evs, ON_BATTERY)   # the stragglers never became troubles of their own


def test_one_node_on_battery_is_its_own_trouble_after_the_window() -> None:
    w = watch()
    w.heartbeat("na-cha-03", "battery", 80.0, 1_000)
    assert w.tick(10_999) == []   # waiting for neighbours: it may be the start of a cut
    [ev] = w.tick(11_000)
    assert (ev.kind, ev.subject, ev.detail["area"]) == (ON_BATTERY, "na-cha-03", NA_CHA)
    w.heartbeat("na-cha-03", None, None, 12_000)   # no power-good input: changes nothing
    assert w.tick(12_000) == []
    w.heartbeat("na-cha-03", "mains", 80.0, 20_000)
    assert cleared(w.tick(20_000)) == [(ON_BATTERY, "na-cha-03", False)]


def test_a_node_trouble_is_folded_when_its_neighbours_follow() -> None:
    w = watch()
    w.heartbeat("na-sang-01", "battery", 80.0, 1_000)
    assert opened(w.tick(20_000)) == [(ON_BATTERY, "na-sang-01")]
    for i in (2, 3):
        w.heartbeat(f"na-sang-0{i}", "battery", 80.0, 21_000)
    evs = w.tick(21_000)
    assert opened(evs) == [(POWER_CUT, NA_SANG)]
    assert cleared(evs) == [(ON_BATTERY, "na-sang-01", True)]


def test_low_battery_below_the_threshold_with_hysteresis() -> None:
    w = watch()
    w.heartbeat("na-cha-01", "battery", 20.0, 1_000)
    assert opened(w.tick(1_000), LOW_BATTERY) == []   # at the threshold is not below
    w.heartbeat("na-cha-01", "battery", 19.9, 2_000)
    [low] = [e for e in w.tick(2_000) if e.kind == LOW_BATTERY]
    assert low.open and low.detail["battery_pct"] == 19.9
    w.heartbeat("na-cha-01", "mains", 24.0, 3_000)
    assert [e for e in w.tick(3_000) if e.kind == LOW_BATTERY] == []   # not yet 25
    w.heartbeat("na-cha-01", "mains", 25.0, 4_000)
    assert cleared(w.tick(4_000)) == [(LOW_BATTERY, "na-cha-01", False)]


def test_restored_troubles_hold_until_heartbeats_say_otherwise() -> None:
    w = watch()
    names = [n for n, _, _ in NODES]
    w.restore(POWER_CUT, COMMUNE, {"nodes": names, "since_ms": 500}, 600)
    w.restore(LOW_BATTERY, "na-cha-01", {"battery_pct": 10.0}, 600)
    assert w.tick(1_000) == []   # a restarted hub does not clear what it has not heard
    for n in names:
        w.heartbeat(n, "mains", 50.0, 2_000)
    assert sorted(cleared(w.tick(2_000))) == [(LOW_BATTERY, "na-cha-01", False),
                                              (POWER_CUT, COMMUNE, False)]


def test_disabled_nodes_do_not_count() -> None:
    w = PowerWatch(TIMERS)
    w.set_nodes([(n, a, n.startswith("na-sang")) for n, a, _ in NODES])
    for n, _, _ in NODES[4:]:
        w.heartbeat(n, "battery", 90.0, 1_000)
    assert w.tick(100_000) == []
