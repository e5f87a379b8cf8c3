"""Who may do what, for EVERY route of the app (generated from app.routes, so a new route
cannot escape): anonymous gets 401, a role below the route's gets 403, the route's role
and above get past the door; with a cookie, every change needs the CSRF header."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from hub.runtime import Hub
from tests.api.conftest import Browser, login

ROLES = ("viewer", "operator", "admin")

# The role each operation needs, written down here independently of the code: a route
# missing from this table fails the test, so nobody adds one without deciding.
EXPECTED: dict[str, str] = {
    "session_login": "public",
    "session_get": "viewer", "session_logout": "viewer",
    "areas_list": "viewer", "areas_all_clear": "operator",
    "nodes_list": "viewer", "nodes_get": "viewer",
    "nodes_register": "admin", "nodes_update": "admin",
    "nodes_test": "operator", "nodes_ping": "operator",
    "incidents_list": "viewer", "incidents_csv": "viewer", "incidents_get": "viewer",
    "incidents_acknowledge": "operator", "incidents_resolve": "operator",
    "incidents_silence": "operator",
    "alarms_list": "viewer", "alarms_csv": "viewer", "alarms_get": "viewer",
    "commands_list": "viewer", "commands_get": "viewer",
    "broadcasts_create": "operator", "drills_start": "operator", "drills_stop": "operator",
    "troubles_list": "viewer",
    "audit_list": "admin",
    "users_list": "admin", "users_create": "admin", "users_get": "admin",
    "users_update": "admin", "users_delete": "admin",
    "tokens_list": "admin", "tokens_create": "admin", "tokens_revoke": "admin",
    "stream_events": "viewer",
    "openapi_schema": "viewer",
}
PUBLIC_PATHS = {"/healthz", "/"}   # health for watchdogs; the dashboard's login page


def api_routes(app: FastAPI) -> Iterator[tuple[str, str, str]]:
    """(operation id, method, a concrete URL) for every API route of the app (routers
    included, as FastAPI itself walks them)."""
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or route.path in PUBLIC_PATHS:
            continue
        assert route.operation_id, f"{route.path} has no explicit operation id"
        url = re.sub(r"\{(\w+)(:path)?\}", lambda m: "999999" if m.group(1) == "token_id"
                     else "no-such-thing", route.path)
        if route.operation_id == "stream_events":
            url += "?last_event_id=-1"   # past the door, then refused: never streams here
        for method in sorted(route.methods):
            yield route.operation_id, method, url


def test_every_route_is_in_the_table_and_ids_are_unique(app: FastAPI) -> None:
    ids = [op for op, _m, _u in api_routes(app)]
    assert len(ids) == len(set(ids)), "operation ids must be unique"
    assert set(ids) == set(EXPECTED), (
        f"routes without a decided role: {sorted(set(ids) - set(EXPECTED))}; "
        f"table entries without a route: {sorted(set(EXPECTED) - set(ids))}")
    assert all(url.startswith("/api/v1/") for _o, _m, url in api_routes(app))


def test_anonymous_gets_401_everywhere_but_health_and_login(app: FastAPI,
                                                            anon: TestClient) -> None:
    for op, method, url in api_routes(app):
        if EXPECTED[op] == "public":
            continue
        r = anon.request(method, url, json={})
        assert r.status_code == 401, (op, r.status_code, r.text)
        assert r.json()["error"]["code"] == "unauthenticated"
        assert r.json()["error"]["message_vi"]
    assert anon.get("/healthz").status_code == 200
    assert anon.get("/").status_code == 200                 # the login page itself
    bad = anon.get("/api/v1/incidents", headers={"Authorization": "Bearer tgm_forged"})
    assert bad.status_code == 401


def test_role_matrix(app: FastAPI, hub: Hub, browsers: dict[str, Browser]) -> None:
    for op, method, url in api_routes(app):
        need = EXPECTED[op]
        if need == "public":
            continue
        for role in ROLES:
            who = browsers[role]
            if op == "session_logout":
                who = login(app, role, f"{role}-pass-123" if role != "admin"
                            else "admin-pass-1234")
            r = who.request(method, url, json={})
            if ROLES.index(role) < ROLES.index(need):
                assert r.status_code == 403, (op, role, r.status_code, r.text)
                assert r.json()["error"]["code"] == "forbidden"
            else:
                assert r.status_code not in (401, 403), (op, role, r.status_code, r.text)


def test_viewer_cannot_act_and_operator_cannot_manage_users(
        browsers: dict[str, Browser]) -> None:
    viewer, operator = browsers["viewer"], browsers["operator"]
    drill = {"area": "bach-thong/vi-huong/na-sang", "duration_s": 5}
    assert viewer.request("POST", "/api/v1/drills", json=drill).status_code == 403
    assert operator.request("POST", "/api/v1/drills", json=drill).status_code == 201
    new_user = {"username": "someone", "password": "long-enough-pw", "role": "admin"}
    assert operator.request("POST", "/api/v1/users", json=new_user).status_code == 403
    assert operator.client.get("/api/v1/users").status_code == 403
    assert browsers["admin"].request("POST", "/api/v1/users", json=new_user).status_code == 201


def test_every_change_with_a_cookie_needs_the_csrf_token(app: FastAPI,
                                                         browsers: dict[str, Browser]) -> None:
    admin = browsers["admin"]
    changes = [(op, m, u) for op, m, u in api_routes(app)
               if m not in ("GET", "HEAD") and EXPECTED[op] != "public"]
    assert len(changes) >= 15
    for op, method, url in changes:
        for headers in ({}, {"X-CSRF-Token": "0" * 64}):
            r = admin.client.request(method, url, json={}, headers=headers)
            assert r.status_code == 403, (op, headers, r.status_code, r.text)
            assert r.json()["error"]["code"] == "csrf"
    # Another session's token is no good either: it is bound to the session.
    other = login(app, "operator", "operator-pass-123")
    r = admin.client.post("/api/v1/drills", json={"area": "bach-thong"},
                          headers={"X-CSRF-Token": other.csrf})
    assert r.status_code == 403
    # And nothing was done by the refused requests.
    assert admin.client.get("/api/v1/incidents").json() == []


@pytest.mark.parametrize("role,status", [("viewer", 403), ("operator", 201)])
def test_bearer_tokens_carry_their_role_and_need_no_csrf(
        browsers: dict[str, Browser], anon: TestClient, role: str, status: int) -> None:
    made = browsers["admin"].request("POST", "/api/v1/tokens",
                                     json={"name": f"{role}-bot", "role": role})
    assert made.status_code == 201
    auth = {"Authorization": f"Bearer {made.json()['token']}"}
    assert anon.get("/api/v1/nodes", headers=auth).status_code == 200
    r = anon.post("/api/v1/drills", json={"area": "bach-thong/vi-huong/na-sang"},
                  headers=auth)
    assert r.status_code == status, r.text
