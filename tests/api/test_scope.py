"""Officers see their own commune: the scope dimension of the role matrix, for EVERY route
of the app (generated from app.routes like tests/api/test_roles.py, so a new route without
a scope decision fails here).

Two communes: Vi Hương (A, the test registry) and Sỹ Bình (B, added here). Each of A's
officers, hub-wide otherwise, is limited to A; every route is asked for B's objects:
lists leave them out (while a hub-wide account sees them: the check is not vacuous),
by-id routes and actions answer 404 exactly as for an id that does not exist, account
routes 403, and nothing of B changed. Once through cookies (users), once through Bearer
tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from hub.api import security
from hub.runtime import Hub
from tests.api.conftest import PASSWORDS, Browser, login
from tests.api.sse import Reader, serve
from tests.api.test_roles import EXPECTED, PUBLIC_PATHS, ROLES
from tests.integrations.cap_docs import flood_warning
from tests.support.hub_harness import COMMUNE, HAMLET, REGISTRY, alarm, send_alarm, wait_until
from tests.support.second_commune import NA_CA, SY_BINH, with_second_commune
from tests.support.wire import Wire

API = "/api/v1"
TWO_COMMUNES = with_second_commune(REGISTRY)

# What every route does for an account limited to an area, written down here apart from
# the code: a route missing from this table fails the test.
#   list     its answer leaves out what lies outside (filtered in the query)
#   object   an id of another commune in its path: 404, as for one that does not exist
#   area     an area of another commune in its body: 404 (CAP intake: 422, "no area of
#            this hub matches", as for an area it does not have)
#   stream   the live stream: only events of the account's area
#   hub      accounts, tokens, audit, the webhook log: 403 to anyone with an area
#   agnostic nothing of any commune in it (the session, the schema, metrics)
SCOPE: dict[str, str] = {
    "session_login": "agnostic", "session_get": "agnostic", "session_logout": "agnostic",
    "areas_list": "list", "areas_all_clear": "object", "households_list": "hub",
    "nodes_list": "list", "nodes_get": "object", "nodes_register": "area",
    "nodes_update": "object", "nodes_test": "object", "nodes_ping": "object",
    "incidents_list": "list", "incidents_csv": "list", "incidents_get": "object",
    "incidents_acknowledge": "object", "incidents_resolve": "object",
    "incidents_silence": "object",
    "alarms_list": "list", "alarms_csv": "list", "alarms_get": "object",
    "commands_list": "list", "commands_get": "object",
    "broadcasts_create": "area", "drills_start": "area", "drills_stop": "object",
    "troubles_list": "list",
    "system_get": "list",
    "audit_list": "hub",
    "users_list": "hub", "users_create": "hub", "users_get": "hub", "users_update": "hub",
    "users_delete": "hub",
    "tokens_list": "hub", "tokens_create": "hub", "tokens_revoke": "hub",
    "stream_events": "stream",
    "openapi_schema": "agnostic",
    "GET /metrics": "agnostic",
    "GET /api/v1/cap": "list", "POST /api/v1/cap": "area",
    "GET /api/v1/cap/alerts/{identifier}": "object",
    "GET /api/v1/integrations/webhooks/deliveries": "hub",
}

# Valid bodies, so a refusal is the scope's and not the input's.
BODIES: dict[str, Any] = {
    "incidents_resolve": {"outcome": "real", "note": "x"},
    "nodes_update": {"enabled": False},
    "broadcasts_create": {"area": NA_CA, "signal": "fire", "duration_s": 5},
    "drills_start": {"area": NA_CA, "duration_s": 5},
    "nodes_register": {"id": "na-ca-09", "area": NA_CA},
    "users_create": {"username": "someone", "password": "long-enough-pw", "role": "admin"},
    "users_update": {"area": None},
    "tokens_create": {"name": "wide", "role": "admin"},
}


@pytest.fixture
def hub_overrides(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "two-communes.toml"
    path.write_text(TWO_COMMUNES, encoding="utf-8")
    return {"registry_file": str(path)}


def routes(app: FastAPI) -> Iterator[tuple[str, str, str]]:
    """(key, method, path template) of every route but the public pages."""
    for route in iter_route_contexts(app.routes):
        if route.path in PUBLIC_PATHS or not route.methods:
            continue
        is_api = isinstance(route.original_route, APIRoute)
        for method in sorted(set(route.methods) - {"HEAD"}):
            yield (route.operation_id if is_api else f"{method} {route.path}"), method, \
                route.path or ""


class World:
    """Both communes' objects, and who asks."""

    def __init__(self, hub: Hub, app: FastAPI, wire: Wire) -> None:
        self.hub = hub
        self.inc_a, self.alarm_a = self._press(wire, "na-sang-01")
        self.inc_b, self.alarm_b = self._press(wire, "na-ca-01")
        self.cmd_b = wait_until(lambda: hub.store.history.commands(incident_id=self.inc_b),
                                what="B's sound")[0].cmd_id
        troubles = hub.store.troubles
        troubles.open("node_offline", "na-ca-01", {"area": NA_CA})
        troubles.open("area_loss", SY_BINH, {"nodes": ["na-ca-01"]})
        troubles.open("node_offline", "na-sang-02", {"area": HAMLET})
        troubles.open("no_broker", "broker", {})
        self.b_marks = (self.inc_b, self.alarm_b, self.cmd_b, "na-ca-01", "sy-binh")
        auth = hub.store.auth
        auth.create_user("wide", security.hash_password(PASSWORDS["admin"]), "admin", "test")
        self.wide = login(app, "wide", PASSWORDS["admin"])
        self.users: dict[str, Browser] = {}
        self.tokens: dict[str, dict[str, str]] = {}
        self.wide_token = self._token("wide-token", "admin", None)
        for role in ROLES:
            name = f"a-{role}"
            auth.create_user(name, security.hash_password(PASSWORDS[role]), role, "test",
                             area=COMMUNE)
            self.users[role] = login(app, name, PASSWORDS[role])
            self.tokens[role] = self._token(f"a-{role}-token", role, COMMUNE)
        self.path_values = {"incident_id": self.inc_b, "alarm_id": self.alarm_b,
                            "node_id": "na-ca-01", "cmd_id": self.cmd_b, "path": NA_CA,
                            "identifier": self.cap_id_b(app)}

    def _press(self, wire: Wire, node: str) -> tuple[str, str]:
        a = alarm("fire")
        send_alarm(wire, node, a)
        stored = wait_until(lambda: self.hub.store.alarms.get(a.alarm_id), what="alarm")
        return str(stored.incident_id), a.alarm_id

    def _token(self, name: str, role: str, area: str | None) -> dict[str, str]:
        raw = security.new_api_token()
        self.hub.store.auth.create_token(name, role, security.digest(raw), "t", "test",
                                         area=area)
        return {"Authorization": f"Bearer {raw}"}

    def cap_id_b(self, app: FastAPI) -> str:
        feed = TestClient(app).get(f"{API}/cap", headers=self.wide_token).text
        found = re.search(rf"urn:tiengmo:incident:{self.inc_b}:\w+", feed)
        assert found, feed
        return found.group(0)

    def url(self, template: str) -> str:
        def fill(m: re.Match[str]) -> str:
            name = m.group(1)
            values: dict[str, str] = {"username": "wide", "token_id": "1", **self.path_values}
            assert name in values, name
            return values[name]
        return re.sub(r"\{(\w+)(:path)?\}", fill, template)


def ask(app: FastAPI, world: World, via: str, role: str, method: str, url: str,
        body: Any) -> Any:
    """One request as A's account of `role` (a user or a token); a CAP post is XML."""
    integration = not url.startswith(API) or url.startswith(f"{API}/cap") or \
        url.startswith(f"{API}/integrations")
    kw: dict[str, Any] = {"json": body} if body is not None else {}
    if url == f"{API}/cap" and method == "POST":
        kw = {"content": flood_warning("SCOPE-1", area_desc="Thôn Nà Ca, Xã Sỹ Bình",
                                       geocode=NA_CA)}
    if via == "token" or integration:
        return TestClient(app).request(method, url, headers=world.tokens[role], **kw)
    return world.users[role].request(method, url, **kw)


def b_state(hub: Hub, world: World) -> tuple[Any, ...]:
    """What an action on B could have changed."""
    inc = hub.store.incidents.get(world.inc_b)
    node = hub.store.nodes.get("na-ca-01")
    assert inc is not None and node is not None
    cmds = [(c.cmd_id, c.issued_by) for c in hub.store.history.commands(limit=1000)]
    return (inc.state, inc.acknowledged_by, node.enabled, node.area,
            hub.store.nodes.get("na-ca-09"), sorted(cmds))


@pytest.fixture
def world(hub: Hub, app: FastAPI, wire: Wire) -> World:
    return World(hub, app, wire)


def test_every_route_has_a_scope_decision(app: FastAPI) -> None:
    keys = {key for key, _m, _p in routes(app)}
    assert keys == set(SCOPE), (
        f"routes without a scope decision: {sorted(keys - set(SCOPE))}; "
        f"table entries without a route: {sorted(set(SCOPE) - keys)}")
    assert set(SCOPE.values()) <= {"list", "object", "area", "stream", "hub", "agnostic"}


@pytest.mark.parametrize("via", ["user", "token"])
def test_an_officer_of_one_commune_gets_nothing_of_another_by_any_route(
        app: FastAPI, hub: Hub, world: World, via: str) -> None:
    before = b_state(hub, world)
    checked: dict[str, int] = {}
    for key, method, template in routes(app):
        category = SCOPE[key]
        need = EXPECTED.get(key, EXPECTED.get(f"{method} {template}", "viewer"))
        role = need if need in ROLES else "viewer"
        url = world.url(template)
        if category in ("stream", "agnostic"):
            continue   # the stream: below, on a real server; the rest says nothing of B
        r = ask(app, world, via, role, method, url, BODIES.get(key))
        checked[key] = r.status_code
        if category == "hub":
            assert r.status_code == 403, (key, r.status_code, r.text)
        elif category == "list":
            assert r.status_code == 200, (key, r.status_code, r.text)
            leaked = [m for m in world.b_marks if m in r.text]
            assert not leaked, (key, leaked)
            # ... while a hub-wide account sees B there: the check means something.
            wide = TestClient(app).request(method, url, headers=world.wide_token)
            assert any(m in wide.text for m in world.b_marks), (key, wide.text[:300])
        elif category == "object":
            assert r.status_code == 404, (key, r.status_code, r.text)
            if r.headers.get("content-type", "").startswith("application/json"):
                err = r.json()["error"]
                assert err["code"] == "not_found"
                # Word for word what an id that does not exist gets: nothing leaks.
                ghost = ask(app, world, via, role, method,
                            url.replace(str(_param(world, template)), "no-such-thing"),
                            BODIES.get(key))
                assert ghost.status_code == 404, (key, ghost.text)
                assert ghost.json()["error"]["message"].replace("no-such-thing", "X") == \
                    err["message"].replace(str(_param(world, template)), "X"), key
        elif category == "area":
            assert r.status_code in (404, 422), (key, r.status_code, r.text)
        assert b_state(hub, world) == before, f"{key} changed commune B"
    assert len(checked) >= 35, checked
    # A node of another commune is never taken over, nor one of A's moved into B.
    admin = world.users["admin"] if via == "user" else None
    take = {"id": "na-ca-01", "area": HAMLET}
    move = {"area": NA_CA}
    for method, url, body in (("POST", f"{API}/nodes", take),
                              ("PATCH", f"{API}/nodes/na-sang-04", move)):
        r = (admin.request(method, url, json=body) if admin else
             TestClient(app).request(method, url, json=body, headers=world.tokens["admin"]))
        assert r.status_code in (404, 409), (url, r.status_code, r.text)
    assert b_state(hub, world) == before
    node = hub.store.nodes.get("na-sang-04")
    assert node is not None and node.area == HAMLET


def _param(world: World, template: str) -> str:
    name = re.search(r"\{(\w+)(:path)?\}", template)
    assert name, template
    return str(world.path_values[name.group(1)])


def test_inside_their_commune_they_see_and_act(app: FastAPI, hub: Hub, world: World) -> None:
    op = world.users["operator"]
    board = op.client.get(f"{API}/incidents").json()
    assert [i["id"] for i in board] == [world.inc_a]
    assert op.client.get(f"{API}/incidents/{world.inc_a}").status_code == 200
    r = op.request("POST", f"{API}/incidents/{world.inc_a}/acknowledge")
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "a-operator"
    assert {n["id"] for n in op.client.get(f"{API}/nodes").json()} == {
        "na-sang-01", "na-sang-02", "na-sang-03", "na-sang-04", "na-cha-01", "na-cha-02"}
    troubles = {(t["kind"], t["subject"]) for t in op.client.get(f"{API}/troubles").json()}
    assert troubles == {("node_offline", "na-sang-02"), ("no_broker", "broker")}
    system = op.client.get(f"{API}/system").json()
    assert system["nodes"]["expected"] == 5 and system["areas_lost"] == []
    wide = world.wide.client.get(f"{API}/system").json()
    assert wide["nodes"]["expected"] == 6 and wide["areas_lost"] == [SY_BINH]
    areas = [a["path"] for a in op.client.get(f"{API}/areas").json()]
    assert "bach-thong" in areas and COMMUNE in areas and SY_BINH not in areas
    me = op.client.get(f"{API}/session").json()["user"]
    assert (me["area"], me["area_name"]) == (COMMUNE, "Xã Vi Hương")
    r = op.request("POST", f"{API}/broadcasts", json={"area": HAMLET, "signal": "fire",
                                                       "duration_s": 5})
    assert r.status_code == 201, r.text


def test_the_live_stream_of_a_scoped_officer_carries_only_their_commune(
        app: FastAPI, hub: Hub, world: World, wire: Wire) -> None:
    cookie = world.users["viewer"].client.cookies.get("tiengmo_session")
    with serve(app) as base:
        scoped = Reader(f"{base}{API}/stream?last_event_id=0",
                        {"Cookie": f"tiengmo_session={cookie}"})
        wide = Reader(f"{base}{API}/stream?last_event_id=0", world.wide_token)
        try:
            a2 = world._press(wire, "na-sang-03")[1]
            b2 = world._press(wire, "na-ca-01")[1]
            hub.store.troubles.open("node_missing", "na-ca-01", {"area": NA_CA})
            # The hub-wide stream gets both presses; by then the scoped one has had its
            # chance at B's (events go out in id order, A's press first).
            seen_wide = wide.until(lambda e: e.event == "trouble"
                                   and e.data.get("kind") == "node_missing")
            assert any(e.event == "alarm" and e.data["id"] == b2 for e in seen_wide)
            seen = scoped.until(lambda e: e.event == "alarm" and e.data.get("id") == a2)
            hub.store.troubles.open("node_missing", "na-sang-04", {"area": HAMLET})
            seen += scoped.until(lambda e: e.event == "trouble"
                                 and e.data.get("subject") == "na-sang-04")
        finally:
            scoped.close()
            wide.close()
    text = repr([(e.event, e.data) for e in seen])
    leaked = [m for m in (*world.b_marks, b2) if m in text]
    assert not leaked, leaked
    assert world.inc_a in text and "node_offline" in text   # A's replayed, and live


def test_accounts_take_an_area_of_the_registry_only(app: FastAPI, hub: Hub,
                                                    world: World) -> None:
    wide = world.wide
    bad = wide.request("POST", f"{API}/users", json={
        "username": "lost", "password": "long-enough-pw", "role": "operator",
        "area": "bach-thong/nowhere"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_area"
    assert "bach-thong/nowhere" in bad.json()["error"]["message"]
    assert hub.store.auth.user("lost") is None
    made = wide.request("POST", f"{API}/users", json={
        "username": "sb", "password": "long-enough-pw", "role": "operator", "area": SY_BINH})
    assert made.status_code == 201 and made.json()["area"] == SY_BINH
    sb = login(app, "sb", "long-enough-pw")
    assert [i["id"] for i in sb.client.get(f"{API}/incidents").json()] == [world.inc_b]
    moved = wide.request("PATCH", f"{API}/users/sb", json={"area": "nowhere"})
    assert moved.status_code == 422
    moved = wide.request("PATCH", f"{API}/users/sb", json={"area": None})
    assert moved.status_code == 200 and moved.json()["area"] is None
    # A new area ends the user's sessions: the next request logs in again.
    assert sb.client.get(f"{API}/incidents").status_code == 401
    token = wide.request("POST", f"{API}/tokens", json={"name": "b-bot", "role": "viewer",
                                                        "area": NA_CA})
    assert token.status_code == 201 and token.json()["area"] == NA_CA
    auth = {"Authorization": f"Bearer {token.json()['token']}"}
    seen = TestClient(app).get(f"{API}/incidents", headers=auth).json()
    assert [i["id"] for i in seen] == [world.inc_b]
    bad = wide.request("POST", f"{API}/tokens", json={"name": "x", "role": "viewer",
                                                      "area": "x/y"})
    assert bad.status_code == 422
    # The last admin without an area stays so.
    last = [u for u in hub.store.auth.users() if u.role == "admin" and u.area is None]
    assert [u.username for u in last] == ["wide"]
    r = wide.request("PATCH", f"{API}/users/wide", json={"area": COMMUNE})
    assert r.status_code == 409 and "without an area" in r.json()["error"]["message"]
