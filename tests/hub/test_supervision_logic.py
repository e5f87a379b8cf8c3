"""Supervision rules on a fake clock: what operators are told, and when."""

from __future__ import annotations

from hub.supervision import (
    NodeStatus,
    StatusChanged,
    SupervisionTimers,
    Supervisor,
    TroubleCleared,
    TroubleRaised,
    area_key,
    node_key,
)

S = 1000  # ms
HAMLET = "bach-thong/vi-huong/na-sang"
OTHER = "bach-thong/vi-huong/na-cha"


def make(nodes: int = 5, t0: int = 1_000_000) -> Supervisor:
    sup = Supervisor(SupervisionTimers(), started_ms=t0)
    sup.set_nodes([(f"na-sang-{i:02d}", HAMLET, True) for i in range(1, nodes + 1)]
                  + [("na-cha-01", OTHER, True)])
    for i in range(1, nodes + 1):
        sup.birth(f"na-sang-{i:02d}", 1, t0)
    sup.birth("na-cha-01", 1, t0)
    sup.tick(t0)
    return sup


def raised(events: list) -> list[TroubleRaised]:
    return [e for e in events if isinstance(e, TroubleRaised)]


def cleared(events: list) -> list[TroubleCleared]:
    return [e for e in events if isinstance(e, TroubleCleared)]


def keep_alive(sup: Supervisor, now: int, skip: frozenset[str] | set[str] = frozenset()) -> None:
    for n in ["na-cha-01", *[f"na-sang-{i:02d}" for i in range(1, 6)]]:
        if n not in skip:
            sup.heartbeat(n, 1, now)


def test_will_becomes_a_trouble_after_the_debounce_and_within_report_time() -> None:
    t0 = 1_000_000
    sup = make(t0=t0)
    sup.death("na-sang-01", 1, t0 + 1 * S)
    ev = sup.tick(t0 + 2 * S)
    assert StatusChanged("na-sang-01", NodeStatus.OFFLINE, t0 + 1 * S) in ev
    assert raised(ev) == []
    keep_alive(sup, t0 + 10 * S, skip={"na-sang-01"})
    assert raised(sup.tick(t0 + 20 * S)) == []  # 19 s lost: still a blip
    keep_alive(sup, t0 + 20 * S, skip={"na-sang-01"})
    ev = sup.tick(t0 + 21 * S)
    assert [e.key for e in raised(ev)] == [node_key("na-sang-01")]
    assert raised(ev)[0].status is NodeStatus.OFFLINE
    assert raised(sup.tick(t0 + 22 * S)) == []  # raised once


def test_a_short_blip_is_never_reported() -> None:
    t0 = 1_000_000
    sup = make(t0=t0)
    sup.death("na-sang-01", 1, t0 + 1 * S)
    sup.tick(t0 + 2 * S)
    sup.birth("na-sang-01", 2, t0 + 5 * S)
    for t in range(6, 60):
        keep_alive(sup, t0 + t * S)
        ev = sup.tick(t0 + t * S)
        assert raised(ev) == [] and cleared(ev) == []
    assert sup.status("na-sang-01", t0 + 60 * S) is NodeStatus.ONLINE


def test_stale_death_of_an_older_boot_is_ignored() -> None:
    t0 = 1_000_000
    sup = make(t0=t0)
    sup.birth("na-sang-01", 5, t0 + 1 * S)
    assert sup.death("na-sang-01", 4, t0 + 2 * S) is False
    keep_alive(sup, t0 + 25 * S)
    assert raised(sup.tick(t0 + 25 * S)) == []
    assert sup.status("na-sang-01", t0 + 25 * S) is NodeStatus.ONLINE


def test_silent_node_goes_missing_and_is_reported_within_60_s() -> None:
    t0 = 1_000_000
    sup = make(t0=t0)
    reported_at = None
    for t in range(1, 61):
        keep_alive(sup, t0 + t * S, skip={"na-sang-02"})
        ev = sup.tick(t0 + t * S)
        if raised(ev):
            reported_at = t
            assert raised(ev)[0].key == node_key("na-sang-02")
            assert raised(ev)[0].status is NodeStatus.MISSING
            break
    assert reported_at is not None and 20 <= reported_at <= 60


def test_node_trouble_clears_when_it_comes_back() -> None:
    t0 = 1_000_000
    sup = make(t0=t0)
    sup.death("na-sang-01", 1, t0)
    keep_alive(sup, t0 + 25 * S, skip={"na-sang-01"})
    assert raised(sup.tick(t0 + 25 * S))
    sup.birth("na-sang-01", 2, t0 + 26 * S)
    ev = sup.tick(t0 + 26 * S)
    assert [e.key for e in cleared(ev)] == [node_key("na-sang-01")]
    assert StatusChanged("na-sang-01", NodeStatus.ONLINE, t0 + 26 * S) in ev


def test_power_cut_is_one_area_trouble_not_one_per_node() -> None:
    t0 = 1_000_000
    sup = make(t0=t0)
    for i in range(1, 5):  # 4 of 5 gongs of the hamlet die within seconds
        sup.death(f"na-sang-{i:02d}", 1, t0 + i * S)
    keep_alive(sup, t0 + 30 * S, skip={f"na-sang-{i:02d}" for i in range(1, 5)})
    ev = sup.tick(t0 + 30 * S)
    assert [e.key for e in raised(ev)] == [area_key(HAMLET)]
    assert set(raised(ev)[0].nodes) == {f"na-sang-{i:02d}" for i in range(1, 5)}
    keep_alive(sup, t0 + 40 * S, skip={f"na-sang-{i:02d}" for i in range(1, 5)})
    assert raised(sup.tick(t0 + 40 * S)) == []
    # Power is back: the area trouble clears, no node trouble is left behind.
    for i in range(1, 5):
        sup.birth(f"na-sang-{i:02d}", 2, t0 + 50 * S)
    ev = sup.tick(t0 + 50 * S)
    assert [e.key for e in cleared(ev)] == [area_key(HAMLET)]
    assert raised(ev) == []


def test_node_trouble_folds_into_a_later_area_trouble() -> None:
    t0 = 1_000_000
    sup = make(t0=t0)
    sup.death("na-sang-01", 1, t0)
    keep_alive(sup, t0 + 21 * S, skip={"na-sang-01"})
    assert [e.key for e in raised(sup.tick(t0 + 21 * S))] == [node_key("na-sang-01")]
    sup.death("na-sang-02", 1, t0 + 22 * S)
    sup.death("na-sang-03", 1, t0 + 22 * S)
    keep_alive(sup, t0 + 43 * S, skip={"na-sang-01", "na-sang-02", "na-sang-03"})
    ev = sup.tick(t0 + 43 * S)
    assert [e.key for e in raised(ev)] == [area_key(HAMLET)]
    folded = cleared(ev)
    assert [(e.key, e.folded) for e in folded] == [(node_key("na-sang-01"), True)]


def test_area_trouble_shrinks_to_node_trouble_when_most_come_back() -> None:
    t0 = 1_000_000
    sup = make(t0=t0)
    lost = {f"na-sang-{i:02d}" for i in range(1, 5)}
    for n in lost:
        sup.death(n, 1, t0)
    keep_alive(sup, t0 + 25 * S, skip=lost)
    assert raised(sup.tick(t0 + 25 * S))[0].key == area_key(HAMLET)
    for n in ["na-sang-02", "na-sang-03", "na-sang-04"]:
        sup.birth(n, 2, t0 + 30 * S)
    ev = sup.tick(t0 + 30 * S)
    assert [e.key for e in cleared(ev)] == [area_key(HAMLET)]
    assert [e.key for e in raised(ev)] == [node_key("na-sang-01")]


def test_disabled_nodes_are_not_supervised_and_unknown_nodes_are_ignored() -> None:
    t0 = 1_000_000
    sup = Supervisor(SupervisionTimers(), started_ms=t0)
    sup.set_nodes([("na-sang-01", HAMLET, False)])
    sup.heartbeat("stranger-01", 1, t0)
    assert sup.tick(t0 + 120 * S) == []


def test_a_heartbeat_after_a_death_means_the_node_is_back() -> None:
    t0 = 1_000_000
    sup = make(t0=t0)
    sup.death("na-sang-01", 1, t0)
    sup.heartbeat("na-sang-01", 1, t0 + 3 * S)  # reconnected; its birth was lost
    keep_alive(sup, t0 + 25 * S)
    assert raised(sup.tick(t0 + 25 * S)) == []


def test_never_heard_node_goes_missing_after_the_grace_from_hub_start() -> None:
    t0 = 1_000_000
    sup = Supervisor(SupervisionTimers(), started_ms=t0)
    sup.set_nodes([("na-sang-01", HAMLET, True)])
    assert raised(sup.tick(t0 + 29 * S)) == []
    assert [e.key for e in raised(sup.tick(t0 + 50 * S))] == [node_key("na-sang-01")]


def test_restored_open_trouble_is_not_raised_twice_and_clears_on_return() -> None:
    t0 = 1_000_000
    sup = Supervisor(SupervisionTimers(), started_ms=t0)
    sup.set_nodes([("na-sang-01", HAMLET, True)])
    sup.restore("na-sang-01", online=False, boot_id=3, last_seen_ms=t0 - 100 * S,
                offline_since_ms=t0 - 90 * S, trouble_open=True)
    ev = sup.tick(t0)
    assert raised(ev) == []
    sup.birth("na-sang-01", 4, t0 + S)
    assert [e.key for e in cleared(sup.tick(t0 + S))] == [node_key("na-sang-01")]


def test_nothing_is_judged_while_the_hubs_own_link_is_down_and_clocks_restart_on_reconnect(
) -> None:
    t0 = 1_000_000
    sup = make(t0=t0)
    sup.link_state(True, t0, connection=1)
    sup.death("na-cha-01", 1, t0 + 1 * S)               # a real loss before the drop
    assert [e.node_id for e in raised(sup.tick(t0 + 25 * S))] == ["na-cha-01"]
    sup.link_state(False, t0 + 26 * S)                  # the hub is cut off for 5 minutes
    assert sup.tick(t0 + 300 * S) == []                 # its silence is not the nodes'
    back = t0 + 326 * S
    sup.link_state(True, back, connection=2)
    sup.death("na-sang-01", 1, back)                    # a Will sent as the broker died
    # The loss reported before the drop stays reported: nothing cleared...
    assert cleared(sup.tick(back + 1 * S)) == []
    # ...and everyone else gets the full grace from the reconnect (a death too).
    assert raised(sup.tick(back + 19 * S)) == []
    # A later reconnect the tick never saw go down (a new connection number) counts too.
    keep_alive(sup, back + 20 * S)
    sup.link_state(True, back + 200 * S, connection=3)
    assert raised(sup.tick(back + 229 * S)) == []


def test_a_fresh_loss_of_most_of_an_area_beside_one_old_loss_waits_for_its_debounce() -> None:
    t0 = 1_000_000
    sup = make(nodes=4, t0=t0)
    sup.death("na-sang-04", 1, t0)
    keep_alive(sup, t0 + 20 * S, skip={"na-sang-04"})
    assert [e.node_id for e in raised(sup.tick(t0 + 21 * S))] == ["na-sang-04"]
    for n in ("na-sang-01", "na-sang-02"):
        sup.death(n, 1, t0 + 22 * S)
    assert raised(sup.tick(t0 + 23 * S)) == []          # 3 of 4 lost, 2 of them just now
    area = raised(sup.tick(t0 + 42 * S))
    assert [e.key for e in area] == [area_key(HAMLET)]


def test_a_power_cut_whose_wills_arrive_over_seconds_is_still_one_area_trouble() -> None:
    # Each Will comes when the broker's keepalive for that node runs out: spread over
    # many seconds. The first node due must wait for its neighbours, not be reported alone.
    t0 = 1_000_000
    sup = make(nodes=4, t0=t0)
    for i, n in enumerate(("na-sang-01", "na-sang-02", "na-sang-03")):
        sup.death(n, 1, t0 + (1 + 6 * i) * S)
    events = []
    for sec in range(2, 45):
        keep_alive(sup, t0 + sec * S, skip={"na-sang-01", "na-sang-02", "na-sang-03"})
        events += sup.tick(t0 + sec * S)
    assert [e.key for e in raised(events)] == [area_key(HAMLET)]


def test_a_node_lost_beside_a_passing_blip_is_still_reported_in_time() -> None:
    t0 = 1_000_000
    sup = make(nodes=4, t0=t0)
    sup.death("na-sang-01", 1, t0 + 1 * S)
    for n in ("na-sang-02", "na-sang-03"):
        sup.death(n, 1, t0 + 15 * S)
    events = []
    for sec in range(2, 61):
        if sec == 30:           # the two come back before their own debounce
            for n in ("na-sang-02", "na-sang-03"):
                sup.birth(n, 2, t0 + sec * S)
        keep_alive(sup, t0 + sec * S, skip={"na-sang-01"} | (
            {"na-sang-02", "na-sang-03"} if sec < 30 else set()))
        got = raised(sup.tick(t0 + sec * S))
        events += [(sec, e) for e in got]
    assert [(e.key) for _, e in events] == [node_key("na-sang-01")]
    assert events[0][0] <= 60
