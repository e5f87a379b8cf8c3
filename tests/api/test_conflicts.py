"""Two officers acting on one incident at once (issue 13, point 4): over real HTTP
(uvicorn, httpx, one thread each) on SQLite and PostgreSQL, exactly one wins; the other is
told who did what and when (409), never silently overwritten, and a phone's retry of what
already happened stays 200."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hub.runtime import Hub
from tests.api.conftest import Browser, add_user
from tests.api.sse import serve
from tests.support.hub_harness import alarm

API = "/api/v1"
ROUNDS = 4


class Officer:
    """One browser session over real HTTP: cookie and CSRF token."""

    def __init__(self, base: str, username: str) -> None:
        self.name = username
        self.http = httpx.Client(base_url=base, timeout=30)
        r = self.http.post(f"{API}/session", json={"username": username,
                                                   "password": "duty-pass-1234"})
        assert r.status_code == 200, r.text
        self.csrf = r.json()["csrf_token"]

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post(API + path, json=body, headers={"X-CSRF-Token": self.csrf})


@pytest.fixture
def officers(hub: Hub, app: FastAPI) -> Iterator[tuple[Officer, Officer]]:
    for name in ("duty-a", "duty-b"):
        add_user(hub, name, "operator", "duty-pass-1234")
    with serve(app) as base:
        a, b = Officer(base, "duty-a"), Officer(base, "duty-b")
        yield a, b
        a.http.close()
        b.http.close()


def new_incident(hub: Hub) -> str:
    out = hub.store.alarms.record("na-sang-01", alarm("fire"), hub.store.now_ms(), window_s=600)
    return out.incident_id


Call = tuple[Officer, str, dict[str, Any] | None]


def race(calls: list[Call]) -> list[httpx.Response]:
    """POST the calls on threads released together; their answers in order."""
    gate = threading.Barrier(len(calls))
    got: list[httpx.Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        officer, path, body = calls[i]
        gate.wait()
        got[i] = officer.post(path, body)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in got)
    return [r for r in got if r is not None]


def winner_and_loser(answers: list[httpx.Response]) -> tuple[httpx.Response, httpx.Response]:
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 409], [r.text for r in answers]
    won = next(r for r in answers if r.status_code == 200)
    return won, next(r for r in answers if r.status_code == 409)


def test_racing_acknowledgements_one_wins_the_other_is_told_who(
        hub: Hub, officers: tuple[Officer, Officer]) -> None:
    a, b = officers
    for _ in range(ROUNDS):
        iid = new_incident(hub)
        answers = race([(a, f"/incidents/{iid}/acknowledge", {"expected_state": "open"}),
                        (b, f"/incidents/{iid}/acknowledge", None)])
        won, lost = winner_and_loser(answers)
        who = won.json()["acknowledged_by"]
        err = lost.json()["error"]
        assert err["code"] == "conflict" and err["current"] == "acknowledged"
        assert err["by"] == who and err["at_ms"] == won.json()["acknowledged_ms"]
        assert who in err["message"] and who in err["message_vi"]
        assert "tiếp nhận" in err["message_vi"]
        winner = a if who == a.name else b
        assert winner.post(f"/incidents/{iid}/acknowledge").status_code == 200   # a retry
        stored = hub.store.incidents.get(iid)
        assert stored is not None and stored.acknowledged_by == who
        audit = [e for e in hub.store.audit.entries(subject=iid) if e.action == "acknowledge"]
        assert [e.actor for e in audit] == [who]


def test_racing_resolutions_never_overwrite_the_outcome(
        hub: Hub, officers: tuple[Officer, Officer]) -> None:
    a, b = officers
    for _ in range(ROUNDS):
        iid = new_incident(hub)
        answers = race([(a, f"/incidents/{iid}/resolve", {"outcome": "real"}),
                        (b, f"/incidents/{iid}/resolve",
                         {"outcome": "false_alarm", "expected_state": "open"})])
        won, lost = winner_and_loser(answers)
        outcome, who = won.json()["outcome"], won.json()["resolved_by"]
        err = lost.json()["error"]
        assert (err["current"], err["by"], err["outcome"]) == ("resolved", who, outcome)
        assert err["at_ms"] == won.json()["resolved_ms"]
        assert err["attempted_outcome"] != outcome
        stored = hub.store.incidents.get(iid)
        assert stored is not None and stored.outcome == outcome and stored.resolved_by == who


def test_identical_retries_stay_200_and_another_outcome_is_409(
        hub: Hub, officers: tuple[Officer, Officer]) -> None:
    a, b = officers
    iid = new_incident(hub)
    # A flaky phone sends the same resolve twice at once: both 200, one change.
    same = race([(a, f"/incidents/{iid}/resolve", {"outcome": "prank"}),
                 (a, f"/incidents/{iid}/resolve", {"outcome": "prank"})])
    assert [r.status_code for r in same] == [200, 200], [r.text for r in same]
    assert same[0].json()["resolved_ms"] == same[1].json()["resolved_ms"]
    for officer, outcome in ((a, "real"), (b, "prank"), (b, "false_alarm")):
        again = officer.post(f"/incidents/{iid}/resolve", {"outcome": outcome})
        assert again.status_code == 409, again.text
        assert again.json()["error"]["outcome"] == "prank"
    late = b.post(f"/incidents/{iid}/acknowledge")
    assert late.status_code == 409 and late.json()["error"]["by"] == "duty-a"
    stored = hub.store.incidents.get(iid)
    assert stored is not None and stored.outcome is not None
    assert stored.outcome.value == "prank" and stored.resolved_by == "duty-a"
    audit = [e for e in hub.store.audit.entries(subject=iid) if e.action == "resolve"]
    assert len(audit) == 1


def test_a_stale_expected_state_is_409(hub: Hub, officers: tuple[Officer, Officer]) -> None:
    a, b = officers
    iid = new_incident(hub)
    assert a.post(f"/incidents/{iid}/acknowledge").status_code == 200
    stale = b.post(f"/incidents/{iid}/resolve", {"outcome": "real", "expected_state": "open"})
    assert stale.status_code == 409
    assert (stale.json()["error"]["current"], stale.json()["error"]["by"]) == (
        "acknowledged", "duty-a")
    # The officer who took it may resolve from the view they had before taking it.
    mine = a.post(f"/incidents/{iid}/resolve", {"outcome": "real", "expected_state": "open"})
    assert mine.status_code == 200 and mine.json()["outcome"] == "real"
    bad = a.post(f"/incidents/{iid}/resolve", {"outcome": "real", "expected_state": "gone"})
    assert bad.status_code == 422


def test_node_changes_compare_and_set_on_what_the_admin_saw(
        hub: Hub, browsers: dict[str, Browser]) -> None:
    admin = browsers["admin"]
    node = admin.client.get(f"{API}/nodes/na-sang-01").json()
    first = admin.request("PATCH", f"{API}/nodes/na-sang-01",
                          json={"area": "bach-thong/xa-hai", "expected_area": node["area"]})
    assert first.status_code == 200, first.text
    stale = admin.request("PATCH", f"{API}/nodes/na-sang-01",
                          json={"area": "bach-thong/xa-ba", "expected_area": node["area"]})
    assert stale.status_code == 409, stale.text
    err = stale.json()["error"]
    assert (err["current"], err["by"], err["field"]) == ("bach-thong/xa-hai", "admin", "area")
    assert err["at_ms"] and err["message_vi"]
    same = admin.request("PATCH", f"{API}/nodes/na-sang-01",
                         json={"area": "bach-thong/xa-hai", "expected_area": node["area"]})
    assert same.status_code == 200                    # already as asked: nothing to do
    off = admin.request("PATCH", f"{API}/nodes/na-sang-01",
                        json={"enabled": False, "expected_enabled": True})
    assert off.status_code == 200 and off.json()["enabled"] is False
    stored = hub.store.nodes.get("na-sang-01")
    assert stored is not None and stored.area == "bach-thong/xa-hai" and not stored.enabled


def test_user_changes_compare_and_set_on_what_the_admin_saw(
        hub: Hub, browsers: dict[str, Browser]) -> None:
    """Two admins change one officer's role from what each page showed: the second is
    409 saying who changed it and when, and the first's change stands."""
    admin = browsers["admin"]
    add_user(hub, "duty-x", "operator")
    first = admin.request("PATCH", f"{API}/users/duty-x",
                          json={"role": "viewer", "expected_role": "operator"})
    assert first.status_code == 200, first.text
    stale = admin.request("PATCH", f"{API}/users/duty-x",
                          json={"role": "admin", "expected_role": "operator"})
    assert stale.status_code == 409, stale.text
    err = stale.json()["error"]
    assert (err["current"], err["by"], err["field"]) == ("viewer", "admin", "role")
    assert err["at_ms"] and err["message_vi"]
    again = admin.request("PATCH", f"{API}/users/duty-x",
                          json={"role": "viewer", "expected_role": "operator"})
    assert again.status_code == 200                   # already as asked: a retry
    off = admin.request("PATCH", f"{API}/users/duty-x",
                        json={"active": False, "expected_active": False})
    assert off.status_code == 409 and off.json()["error"]["field"] == "active"
    user = hub.store.auth.user("duty-x")
    assert user is not None and (user.role, user.active) == ("viewer", True)
