"""Issue 12 points 2 and 3, as fault scenarios: input that must never be live.

- `retained_stale`: a 30-day-old alarm left *retained* on a registered node's alarm
  topic (published with a bare paho client before the hub starts, on a fresh
  database); the hub must sound nothing for it and store nothing, while the nodes'
  real presses afterwards are stored and sound as usual;
- `share_hijack`: two hub replicas with `--shared-group` on the production broker
  (dynamic security); a node credential subscribes to every `$share/...` form it can
  make while another node sends alarms once each (never re-sent) and cancels them.
  Stored must equal sent with 0 re-sends, and 0 cancels lost.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from protocol import Topics, encode
from tests.faults.rig import Figures, db_alarm_ids, node_ids
from tests.faults.scenarios import rig
from tests.support.broker import Mosquitto
from tests.support.hub_harness import alarm
from tests.support.wire import Wire

T = Topics()
DAY_MS = 86_400_000


def retained_stale(workdir: Path, age_days: int = 30, nodes: int = 4,
                   watch_s: float = 3.0) -> Figures:
    """A retained stale alarm waiting on the broker when a hub starts on a fresh database."""
    fig = Figures(f"retained alarm {age_days} days old, hub on a fresh database", nodes)
    victim = node_ids(nodes)[0]
    stale = dataclasses.replace(alarm("theft"), ts_ms=time.time_ns() // 10**6 - age_days * DAY_MS)

    def leave_retained(broker: Mosquitto) -> None:
        w = Wire(broker.host, broker.port, client_id="faults-stale-publisher")
        try:
            w.publish(T.alarm(victim), encode(stale), qos=1, retain=True)
        finally:
            w.close()

    with rig(workdir, nodes, 1, before_hub=leave_retained) as r:
        time.sleep(watch_s)   # the retained copy reached the hub as it subscribed
        fig.notes["sounds_for_the_stale_alarm"] = len(r.sounds.sounds())
        code, body = r.hub.health()
        fig.notes["health"] = code
        fig.notes["rejected"] = body.get("rejected")
        t0 = time.monotonic()
        for i, nid in enumerate(r.nodes.nodes):
            r.nodes.press(nid, 1 + i % 2)
        r.nodes.wait_pressed(nodes)
        fig = r.finish(fig, t0)
        fig.notes["stale_stored"] = stale.alarm_id in db_alarm_ids(r.db)
        return fig


def share_hijack(workdir: Path) -> Figures:
    """The replicas-and-thief run of tests/security/test_dynsec_roles.py, as figures."""
    from tests.security.test_dynsec_roles import ALARMS, replicas_keep

    fig = Figures("node takes $share of the replicas' stream (dynsec)", 2)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    got = replicas_keep(workdir, production=True)
    fig.recover_s = 0.0
    fig.pressed = ALARMS
    fig.stored = got["stored"]
    fig.lost = ALARMS - got["stored"]
    fig.local_gongs = fig.pressed   # a bare client sends: no local gong to miss
    fig.acked_not_stored = 0 if got["acked"] <= got["stored"] else got["acked"] - got["stored"]
    fig.notes = {**got, "not_counted": ["incidents", "duplicate_incidents"],
                 "resends_needed": ALARMS - got["acked"],
                 "cancels_lost": got["cancels_sent"] - got["cancels_stored"],
                 "seconds": round(time.monotonic() - t0, 1)}
    return fig
