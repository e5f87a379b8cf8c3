"""The alarm loop end to end: real node agents, real Mosquitto, the real hub on SQLite.

A press on one node's mock button → the hub stores the alarm → the other gongs of
its hamlet strike the kind's pattern → the origin's LED says the hub has it.
"""

from __future__ import annotations

import time

from hub.link import Link
from hub.runtime import Hub
from hub.store import TroubleKind
from protocol import Ack, AckStatus, Command
from tests.e2e.harness import (
    E2E,
    HAMLET,
    LedState,
    assert_rhythm,
    ever_sounded,
    gaps_ms,
    strikes,
    wait_for,
    wait_hub_ready,
    wait_led,
    wait_strikes,
)

FIRE_ON_MS, FIRE_PERIOD_MS = 120, 300      # protocol default "fire": [[120, 180]]


def sound_cmds(hub: Hub, incident_id: str) -> list[str]:
    return [c.cmd_id for c in hub.store.commands.for_incident(incident_id)
            if c.action == "sound"]


def started_by(hub: Hub, cmd_id: str) -> set[str]:
    return {r.node_id for r in hub.store.commands.results_for(cmd_id) if r.status == "started"}


def test_press_sounds_the_other_gongs_of_the_hamlet_and_the_origin_gets_received(
        e2e: E2E) -> None:
    hub = e2e.start_hub()
    village = e2e.village()
    origin, neighbours = village["na-sang-01"], [village[f"na-sang-0{i}"] for i in (2, 3, 4)]
    other_hamlet = village["na-cha-01"]
    wait_hub_ready(origin)

    t0 = time.monotonic()
    origin.press("fire")
    incs = wait_for(lambda: hub.store.incidents.active(), what="the incident to be stored")
    inc = incs[0]
    assert (inc.kind, inc.area, inc.origin_node) == ("fire", HAMLET, "na-sang-01")
    assert inc.fanned_out and not inc.flagged and not inc.drill
    assert [a.node_id for a in hub.store.alarms.find(incident_id=inc.incident_id)] == ["na-sang-01"]

    # Every other gong of the hamlet strikes the fire pattern (rapid, continuous).
    for n in neighbours:
        assert_rhythm(wait_strikes(n, 5, since=t0), on_ms=FIRE_ON_MS, period_ms=FIRE_PERIOD_MS)
    # One command to the hamlet, started by all four of its nodes (the origin included).
    cmds = hub.store.commands.for_incident(inc.incident_id)
    assert [(c.action, c.target_kind, c.target) for c in cmds] == [("sound", "area", HAMLET)]
    wait_for(lambda: started_by(hub, cmds[0].cmd_id) >= {"na-sang-01", "na-sang-02",
                                                          "na-sang-03", "na-sang-04"},
             what="`started` from every node of the hamlet")
    # The household sees that the hub has it; its own gong carries on.
    wait_led(origin, LedState.RECEIVED)
    assert origin.is_sounding()
    # The neighbouring hamlet never heard a thing.
    assert not ever_sounded(other_hamlet)
    assert other_hamlet.stats.get("commands", 0) == 0


class DropFirstAck:
    """The hub's publisher, except that the first `received` to one node is lost on the way.

    Given to Hub(publisher=...): everything else goes out through the hub's own link.
    """

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.hub: Hub | None = None
        self.dropped: list[str] = []

    def _link(self) -> Link:
        assert self.hub is not None and self.hub.link is not None
        return self.hub.link

    def publish_area_cmd(self, area: str, cmd: Command) -> None:
        self._link().publish_area_cmd(area, cmd)

    def publish_node_cmd(self, node_id: str, cmd: Command) -> None:
        self._link().publish_node_cmd(node_id, cmd)

    def publish_ack(self, node_id: str, ack: Ack) -> None:
        if node_id == self.node_id and ack.status is AckStatus.RECEIVED and not self.dropped:
            self.dropped.append(ack.alarm_id)
            return
        self._link().publish_ack(node_id, ack)


def test_an_alarm_sent_again_after_a_lost_ack_makes_one_row(e2e: E2E) -> None:
    # (A network cut alone does not lose an ack: the node's session is persistent and
    # the broker delivers the queued ack on reconnect. So the first ack is lost on the
    # hub's side, and the node's network is also cut and restored before it arrives.)
    lossy = DropFirstAck("na-sang-01")
    hub = Hub(e2e.hub_settings(), publisher=lossy)
    lossy.hub = hub
    e2e.start_hub(hub=hub)
    village = e2e.village()
    origin = village["na-sang-01"]
    wait_hub_ready(origin)

    t0 = time.monotonic()
    origin.press("fire")
    first = wait_for(lambda: hub.store.alarms.find(node_id="na-sang-01"),
                     what="the stored alarm")[0]
    origin.cut_network()
    wait_for(lambda: not origin.wait_connected(0), what="the origin to lose its link")
    assert origin.led_state is not LedState.RECEIVED
    origin.restore_network()

    # The node re-sends the same alarm_id until it hears `received`; the hub answers
    # every copy and keeps one row.
    wait_led(origin, LedState.RECEIVED, timeout=15)
    assert lossy.dropped == [first.alarm_id]
    again = hub.store.alarms.get(first.alarm_id)
    assert again is not None and again.copies >= 2 and again.attempts >= 2
    assert hub.store.alarms.count() == 1
    assert len(hub.store.incidents.find()) == 1
    # ...and sounds the hamlet once: one command, one rhythm, not restarted.
    assert len(sound_cmds(hub, first.incident_id)) == 1
    assert_rhythm(wait_strikes(village["na-sang-02"], 5, since=t0),
                  on_ms=FIRE_ON_MS, period_ms=FIRE_PERIOD_MS)
    assert village["na-sang-02"].stats.get("commands", 0) == 1


def test_an_unknown_node_is_stored_flagged_received_and_never_fanned_out(e2e: E2E) -> None:
    hub = e2e.start_hub()
    village = e2e.village()
    stranger = e2e.node("la-01", HAMLET)     # not in the registry
    wait_hub_ready(stranger)

    t0 = time.monotonic()
    stranger.press("fire")
    wait_led(stranger, LedState.RECEIVED)
    assert stranger.is_sounding()            # its own gong: local first, whatever the hub says

    alarms = hub.store.alarms.find(node_id="la-01")
    assert len(alarms) == 1 and alarms[0].unknown_node
    inc = hub.store.incidents.get(alarms[0].incident_id)
    assert inc is not None and inc.flagged and not inc.fanned_out
    assert hub.store.commands.for_incident(inc.incident_id) == []
    assert [t.subject for t in hub.store.troubles.find(kind=TroubleKind.UNKNOWN_NODE.value)] \
        == ["la-01"]
    # The hub fans out before it acks, so a wrong `sound` would already be on the way:
    # give it a second to reach the gongs, then check that none struck.
    time.sleep(1.0)
    for n in village:
        assert not ever_sounded(n, since=t0), f"{n.node_id} sounded for an unknown node"


THEFT_LONG_GAP_MS = 1000   # theft: three quick strikes, then 1.2 s of quiet


def test_silencing_a_theft_leaves_the_fire_sounding(e2e: E2E) -> None:
    hub = e2e.start_hub()
    services = e2e.services(hub)
    village = e2e.village()
    fire_node, theft_node = village["na-sang-01"], village["na-sang-02"]
    listener = village["na-sang-03"]
    wait_hub_ready(fire_node)
    wait_hub_ready(theft_node)

    fire_node.press("fire")
    fire = wait_for(lambda: hub.store.incidents.active(), what="the fire incident")[0]
    fire_cmd = sound_cmds(hub, fire.incident_id)[0]
    wait_for(lambda: "na-sang-03" in started_by(hub, fire_cmd), what="the fire sounding")

    t_theft = time.monotonic()
    theft_node.press("theft")
    theft = wait_for(lambda: [i for i in hub.store.incidents.active() if i.kind == "theft"],
                     what="the theft incident")[0]
    assert theft.incident_id != fire.incident_id and theft.fanned_out
    # The newest of equal priority plays: the listener now strikes the theft rounds.
    wait_for(lambda: any(g > THEFT_LONG_GAP_MS for g in gaps_ms(strikes(listener, t_theft))),
             timeout=10, what="the theft pattern's rounds on the listener")

    cmd = services.silence("cong-an-xa", incident_id=theft.incident_id)
    wait_for(lambda: any(r.node_id == "na-sang-03" and r.status == "done"
                         for r in hub.store.commands.results_for(cmd.cmd_id)),
             what="the listener to carry out the silence")
    t_silenced = time.monotonic()
    # Back to the fire on the listener and on the theft's own node (its local theft
    # sound belongs to the silenced incident too), with no theft round left.
    for n in (listener, theft_node):
        got = wait_strikes(n, 6, since=t_silenced)
        assert_rhythm(got, on_ms=FIRE_ON_MS, period_ms=FIRE_PERIOD_MS)
        gaps = gaps_ms(got)
        assert max(gaps) < THEFT_LONG_GAP_MS, f"{n.node_id} still plays theft rounds: {gaps}"
    assert hub.store.incidents.get(fire.incident_id).is_open  # type: ignore[union-attr]
