"""Phantom sounds: every `sound` command the hub sends during a fault run, checked
against the incidents the database holds once everything has settled.

A `sound` naming an incident the database does not hold at the end is a phantom
(issue 12 point 4): a gong striking for an incident no officer can see or resolve.
The watcher is a bare paho client on the run's broker subscribed to every node's
and every area's `cmd` topic for the whole run.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any
from urllib.parse import urlsplit

import psycopg

from protocol import Topics
from tests.support.wire import Wire

T = Topics()


def db_incident_ids(db: Any) -> set[str]:
    """Every incident id in the hub's database (SQLite path or PostgreSQL URL)."""
    text = str(db)
    if text.startswith(("postgresql://", "postgres://")):
        try:
            with psycopg.connect(text, connect_timeout=5) as conn:
                return {r[0] for r in conn.execute("SELECT incident_id FROM incidents")}
        except psycopg.Error:
            return set()
    lite = sqlite3.connect(text, timeout=30)
    try:
        return {r[0] for r in lite.execute("SELECT incident_id FROM incidents")}
    except sqlite3.OperationalError:   # not migrated
        return set()
    finally:
        lite.close()


class SoundWatch:
    """Collects the incident ids of every `sound` command seen on the broker."""

    def __init__(self, broker_url: str) -> None:
        u = urlsplit(broker_url)
        self.wire = Wire(u.hostname or "127.0.0.1", u.port or 1883,
                         client_id="faults-sound-watch")
        self.wire.subscribe(f"{T.prefix}/areas/#")
        self.wire.subscribe(T.node_wildcard("cmd"))
        # A broker restarted mid-run forgets the watcher's subscriptions: take them again.
        self.wire.client.on_connect = lambda c, *_: c.subscribe(
            [(f"{T.prefix}/areas/#", 1), (T.node_wildcard("cmd"), 1)])

    def sounds(self) -> list[str]:
        """The incident id of every non-drill `sound` seen so far (one per command)."""
        out: list[str] = []
        seen: set[str] = set()
        for m in list(self.wire.messages):
            if not m.topic.endswith("/cmd"):
                continue
            try:
                body = json.loads(m.payload)
            except ValueError:
                continue
            if not isinstance(body, dict) or body.get("action") != "sound" or body.get("drill"):
                continue
            cmd_id = str(body.get("cmd_id"))
            if cmd_id in seen:   # QoS 1 may deliver one command twice
                continue
            seen.add(cmd_id)
            out.append(str(body.get("incident_id")))
        return out

    def phantoms(self, db: Any) -> tuple[int, int]:
        """(sounds seen, sounds naming an incident the database does not hold)."""
        got = self.sounds()
        held = db_incident_ids(db)
        return len(got), sum(1 for i in got if i not in held)

    def stop(self) -> None:
        self.wire.close()
