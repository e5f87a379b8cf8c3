"""The live stream over a real uvicorn: a new incident arrives at once; a client that
reconnects with Last-Event-ID (also to a restarted hub) gets every event it missed,
once and in order; one that is too far behind is told to reload."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from hub.app import create_app
from hub.runtime import Hub
from tests.api.conftest import PASSWORDS, add_user
from tests.api.sse import Reader, Sse, serve
from tests.support.broker import Mosquitto
from tests.support.hub_harness import (
    HAMLET,
    alarm,
    hub_settings,
    running_hub,
    send_alarm,
    wait_until,
)
from tests.support.wire import Wire

STREAM = "/api/v1/stream"


def token(app: FastAPI, hub: Hub) -> dict[str, str]:
    from hub.api import security

    raw = security.new_api_token()
    hub.store.auth.create_token("stream-test", "viewer", security.digest(raw), "t", "t")
    return {"Authorization": f"Bearer {raw}"}


def event_ids(hub: Hub, after: int = 0) -> list[int]:
    with hub.store.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("select id from events where id > :a "
                                                "order by id"), {"a": after})]


def settled_event_ids(hub: Hub, quiet_s: float = 0.5, timeout_s: float = 15.0) -> list[int]:
    """The event ids once no new event has come for `quiet_s`: an alarm stored is not the
    last event it makes (its incident and fan-out follow, later on a loaded machine)."""
    ids, deadline = event_ids(hub), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = event_ids(hub)
        if now == ids:
            return ids
        ids = now
    raise AssertionError(f"events still coming after {timeout_s} s: {ids[-5:]}")


def is_incident(kind: str, state: str = "open") -> Any:
    return lambda e: e.event == "incident" and e.data["kind"] == kind \
        and e.data["state"] == state


def test_a_new_incident_reaches_a_logged_in_browser_at_once(
        hub: Hub, app: FastAPI, wire: Wire) -> None:
    add_user(hub, "duty", "viewer", PASSWORDS["viewer"])
    with serve(app) as base:
        import httpx

        login = httpx.post(base + "/api/v1/session",
                           json={"username": "duty", "password": PASSWORDS["viewer"]})
        cookie = login.cookies["tiengmo_session"]
        reader = Reader(base + STREAM, {"Cookie": f"tiengmo_session={cookie}"})
        assert reader.status == 200
        hello = reader.next()
        assert hello.event == "hello" and hello.id == hello.data["last_id"]
        a = alarm("fire")
        send_alarm(wire, "na-sang-01", a)
        seen = reader.until(is_incident("fire"))
        got = seen[-1]
        stored = wait_until(lambda: hub.store.alarms.get(a.alarm_id), what="alarm")
        lag_ms = got.at * 1000 - stored.received_ms
        print(f"stored -> stream event: {lag_ms:.0f} ms")
        assert lag_ms < 1000, f"the incident took {lag_ms:.0f} ms to reach the stream"
        assert got.data["area_name"] == "Thôn Nà Sang" and got.data["origin_node"] == "na-sang-01"
        alarm_ev = reader.until(lambda e: e.event == "alarm")[-1]
        assert alarm_ev.data["id"] == a.alarm_id
        assert alarm_ev.id is not None and got.id is not None and alarm_ev.id > got.id
        # The other kinds ride the same stream: a node's change, a trouble.
        hub.store.troubles.open("node_offline", "na-sang-02", {"area": HAMLET})
        trouble = reader.until(lambda e: e.event == "trouble")[-1]
        assert trouble.data["subject"] == "na-sang-02" and trouble.data["state"] == "open"
        reader.close()


def _drain(reader: Reader, quiet_s: float = 1.5) -> list[Sse]:
    """Everything until the stream has been quiet (pings aside) for `quiet_s`."""
    out: list[Sse] = []
    while True:
        try:
            out.append(reader.next(quiet_s))
        except AssertionError:
            return out


def test_resume_with_last_event_id_misses_nothing_even_across_a_restart(
        broker: Mosquitto, wire: Wire, tmp_path: Path) -> None:
    settings = hub_settings(broker, tmp_path)
    received: list[Sse] = []
    with running_hub(settings) as hub1:
        app1 = create_app(hub1, ping_s=1.0, gap_wait_s=0.5)
        auth = token(app1, hub1)
        with serve(app1) as base:
            reader = Reader(base + STREAM, auth)
            assert reader.next().event == "hello"
            send_alarm(wire, "na-sang-01", alarm("fire"))
            received += reader.until(is_incident("fire"))
            reader.close()
            # While the client is away: an operator acts, more alarms come in.
            iid = received[-1].data["id"]
            from hub.services import Services

            services = Services(hub1.store, hub1.link, settings)  # type: ignore[arg-type]
            services.acknowledge(iid, "someone")
            send_alarm(wire, "na-cha-01", alarm("theft"))
            wait_until(lambda: hub1.store.alarms.count() == 2, what="second alarm")
        app1.state.api.feed.stop()
    last_seen = max(e.id for e in received if e.id is not None)
    with running_hub(settings) as hub2:       # the hub restarts on the same database
        send_alarm(wire, "na-cha-01", alarm("flood"))
        wait_until(lambda: hub2.store.alarms.count() == 3, what="third alarm")
        app2 = create_app(hub2, ping_s=1.0, gap_wait_s=0.5)
        with serve(app2) as base:
            reader = Reader(base + STREAM, {**auth, "Last-Event-ID": str(last_seen)})
            hello = reader.next()
            assert hello.event == "hello" and hello.data["resumed_from"] == last_seen
            replay = _drain(reader)
            reader.close()
            all_ids = event_ids(hub2)
        app2.state.api.feed.stop()
    got = [e.id for e in received + replay if e.id is not None and e.event != "hello"]
    assert got == sorted(set(got)), "in order, nothing twice"
    assert [i for i in got if i > last_seen] == [i for i in all_ids if i > last_seen]
    kinds = {(e.event, e.data.get("kind"), e.data.get("state")) for e in replay}
    assert ("incident", "fire", "acknowledged") in kinds
    assert ("incident", "theft", "open") in kinds and ("incident", "flood", "open") in kinds


def test_a_client_too_far_behind_is_told_to_reload(hub: Hub, app: FastAPI,
                                                   wire: Wire) -> None:
    send_alarm(wire, "na-sang-01", alarm("fire"))
    send_alarm(wire, "na-cha-01", alarm("theft"))
    wait_until(lambda: hub.store.alarms.count() == 2, what="alarms")
    ids = settled_event_ids(hub)
    hub.store.history.prune_events(hub.store.now_ms() + 1)   # keeps only the newest
    assert event_ids(hub) == [ids[-1]]
    with serve(app) as base:
        wait_until(lambda: app.state.api.feed.cursor >= ids[-1], what="feed caught up")
        reader = Reader(base + STREAM + f"?last_event_id={ids[0]}", token(app, hub))
        hello, reset = reader.next(), reader.next()
        assert hello.event == "hello" and reset.event == "reset"
        assert reset.id == reset.data["last_id"] >= ids[-1]   # where to go on from
        # A client ahead of the log (another database, a wiped hub) is reset as well.
        ahead = Reader(base + STREAM, {**token(app, hub), "Last-Event-ID": str(ids[-1] + 99)})
        assert [ahead.next().event, ahead.next().event] == ["hello", "reset"]
        reader.close()
        ahead.close()


def test_pings_keep_an_idle_stream_visibly_alive(hub: Hub, app: FastAPI) -> None:
    with serve(app) as base:
        reader = Reader(base + STREAM, token(app, hub))
        start = time.monotonic()
        assert reader.next().event == "hello"
        ping = reader.next(timeout=5, skip=())
        assert ping.event == "ping" and "server_time_ms" in ping.data
        assert time.monotonic() - start < 5
        reader.close()
