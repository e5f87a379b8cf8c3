"""The phantom counter itself: a `sound` naming an incident the database does not hold
is counted; one naming a stored incident, a drill, or another action is not."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path

from protocol import Topics
from tests.faults.sounds import SoundWatch
from tests.support.broker import Mosquitto
from tests.support.wire import Wire

T = Topics()


def test_a_sound_for_an_incident_never_stored_is_a_phantom(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    held = str(uuid.uuid4())
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE incidents (incident_id TEXT PRIMARY KEY)")
    conn.execute("INSERT INTO incidents VALUES (?)", (held,))
    conn.commit()
    conn.close()
    broker = Mosquitto(tmp_path).start()
    watch = SoundWatch(broker.url)
    pub = Wire(broker.host, broker.port)
    try:
        def cmd(topic: str, incident: str, **extra: object) -> None:
            body = {"cmd_id": str(uuid.uuid4()), "action": "sound", "ts_ms": 1,
                    "expires_ts_ms": 2, "incident_id": incident, **extra}
            pub.publish(topic, json.dumps(body))

        cmd(T.area_cmd("xa/thon-1"), held)
        cmd(T.area_cmd("xa/thon-1"), str(uuid.uuid4()))                 # the phantom
        cmd(T.node_cmd("fn-001"), str(uuid.uuid4()), drill=True)        # a drill: not counted
        cmd(T.node_cmd("fn-001"), held, action="silence")
        deadline = time.monotonic() + 10
        while len(watch.wire.messages) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watch.phantoms(db) == (2, 1)
    finally:
        pub.close()
        watch.stop()
        broker.stop()
