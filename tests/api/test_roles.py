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

from hub.api import security
from hub.runtime import Hub
from tests.api.conftest import Browser, login

ROLES = ("viewer", "operator", "admin")
# Who may pass which door is decided before any query: one database is enough here
# (the login, session and token storage behind it runs on both in test_auth.py).
HUB_DATABASES = ("sqlite",)

# The role each operation needs, written down here independently of the code: a route
# missing from this table fails the test, so nobody adds one without deciding.
EXPECTED: dict[str, str] = {
    "session_login": "public",
    "session_get": "viewer", "session_logout": "viewer",
    "areas_list": "viewer", "areas_all_clear": "operator", "households_list": "admin",
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
    "system_get": "viewer",
    "audit_list": "admin",
    "users_list": "admin", "users_create": "admin", "users_get": "admin",
    "users_update": "admin", "users_delete": "admin",
    "tokens_list": "admin", "tokens_create": "admin", "tokens_revoke": "admin",
    "stream_events": "viewer",
    "openapi_schema": "viewer",
    # Routes of hub.integrations (plain Starlette routes, Bearer tokens only, see
    # docs/integrations.md), keyed by method and path.
    "GET /metrics": "public",         # Prometheus; a token is optional there, by design
    "GET /api/v1/cap": "viewer", "POST /api/v1/cap": "operator",
    "GET /api/v1/cap/alerts/no-such-thing": "viewer",
    "GET /api/v1/integrations/webhooks/deliveries": "admin",
}
PUBLIC_PATHS = {"/healthz", "/"}   # health for watchdogs; the dashboard's login page


def all_routes(app: FastAPI) -> Iterator[tuple[str, str, str, bool]]:
    """(key, method, a concrete URL, is an API route) for every route of the app (routers
    included, as FastAPI itself walks them); mounts (static files) aside."""
    for route in iter_route_contexts(app.routes):
        if route.path in PUBLIC_PATHS or not route.methods:
            continue
        url = re.sub(r"\{(\w+)(:path)?\}", lambda m: "999999" if m.group(1) == "token_id"
                     else "no-such-thing", route.path or "")
        is_api = isinstance(route.original_route, APIRoute)
        op = route.operation_id if is_api else None
        if is_api:
            assert op, f"{route.path} has no explicit operation id"
        if op == "stream_events":
            url += "?last_event_id=-1"   # past the door, then refused: never streams here
        for method in sorted(set(route.methods) - {"HEAD"}):
            yield op or f"{method} {url}", method, url, is_api


def api_routes(app: FastAPI) -> Iterator[tuple[str, str, str]]:
    for key, method, url, is_api in all_routes(app):
        if is_api:
            yield key, method, url


def test_every_route_is_in_the_table_and_ids_are_unique(app: FastAPI) -> None:
    ids = [key for key, _m, _u, _a in all_routes(app)]
    assert len(ids) == len(set(ids)), "operation ids must be unique"
    assert set(ids) == set(EXPECTED), (
        f"routes without a decided role: {sorted(set(ids) - set(EXPECTED))}; "
        f"table entries without a route: {sorted(set(EXPECTED) - set(ids))}")
    assert all(url.startswith("/api/v1/") for _o, _m, url in api_routes(app))


def test_the_routes_of_the_integrations_check_tokens_too(app: FastAPI, hub: Hub,
                                                         anon: TestClient) -> None:
    tokens = {}
    for role in ROLES:
        raw = security.new_api_token()
        hub.store.auth.create_token(f"{role}-matrix", role, security.digest(raw),
                                    "t", "test")
        tokens[role] = {"Authorization": f"Bearer {raw}"}
    for key, method, url, is_api in all_routes(app):
        if is_api or EXPECTED[key] == "public":
            continue
        assert anon.request(method, url).status_code == 401, key
        for role in ROLES:
            r = anon.request(method, url, headers=tokens[role], content=b"")
            if ROLES.index(role) < ROLES.index(EXPECTED[key]):
                assert r.status_code == 403, (key, role, r.status_code, r.text)
            else:
                assert r.status_code not in (401, 403), (key, role, r.status_code, r.text)


def test_anonymous_gets_401_everywhere_but_health_and_login(app: FastAPI,
                                                            anon: TestClient) -> None:
    for op, method, url, _is_api in all_routes(app):
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
