"""Logging in and out, sessions that expire, throttled guessing, hashes never plaintext,
tokens that work until revoked, users managed by admins only, all of it audited."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from hub.runtime import Hub
from tests.api.conftest import PASSWORDS, Browser, OffsetClock, add_user, login

LOGIN = "/api/v1/session"


def raw(hub: Hub, sql: str) -> list[Any]:
    with hub.store.engine.connect() as conn:
        return list(conn.execute(text(sql)))


def audit_actions(browser: Browser) -> list[str]:
    return [e["action"] for e in browser.client.get("/api/v1/audit?limit=1000").json()]


@pytest.fixture
def hub_overrides() -> dict[str, Any]:
    return {"session_idle_s": 600.0, "session_max_s": 3600.0, "login_max_failures": 5,
            "login_ip_max_failures": 8, "login_lockout_s": 30.0, "login_slowdown_s": 0.5}


def test_login_sets_a_strict_httponly_cookie_and_logout_ends_the_session(
        app: FastAPI, hub: Hub) -> None:
    add_user(hub, "op", "operator")
    client = TestClient(app)
    r = client.post(LOGIN, json={"username": "op", "password": PASSWORDS["operator"]})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "tiengmo_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie          # plain http in development; see the https test
    body = r.json()
    assert body["user"] == {"username": "op", "role": "operator", "display_name": None,
                            "active": True, "created_ms": body["user"]["created_ms"],
                            "last_login_ms": body["user"]["last_login_ms"],
                            "area": None, "area_name": None}   # hub-wide
    me = client.get(LOGIN).json()
    assert me["csrf_token"] == body["csrf_token"] and me["user"]["username"] == "op"
    old_cookie = client.cookies.get("tiengmo_session")
    assert client.delete(LOGIN, headers={"X-CSRF-Token": body["csrf_token"]}).status_code == 204
    assert client.get(LOGIN).status_code == 401
    # The old cookie is dead on the hub, not just forgotten by the browser.
    again = TestClient(app, cookies={"tiengmo_session": old_cookie or ""})
    assert again.get("/api/v1/nodes").status_code == 401


def test_secure_cookie_over_https(app: FastAPI, hub: Hub) -> None:
    add_user(hub, "op", "operator")
    client = TestClient(app, base_url="https://hub.example")
    r = client.post(LOGIN, json={"username": "op", "password": PASSWORDS["operator"]})
    assert "secure" in r.headers["set-cookie"].lower()


def test_wrong_password_and_unknown_user_look_the_same(app: FastAPI, hub: Hub) -> None:
    add_user(hub, "op", "operator")
    client = TestClient(app)
    a = client.post(LOGIN, json={"username": "op", "password": "wrong-password"})
    b = client.post(LOGIN, json={"username": "nobody", "password": "wrong-password"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()
    assert a.json()["error"]["message_vi"] == "Sai tên đăng nhập hoặc mật khẩu."


def test_sessions_expire_when_idle_and_at_their_maximum_age(
        app: FastAPI, hub: Hub, clock: OffsetClock) -> None:
    add_user(hub, "op", "operator")
    idle = login(app, "op", PASSWORDS["operator"])
    clock.advance(599)
    assert idle.client.get("/api/v1/nodes").status_code == 200   # activity keeps it alive
    clock.advance(599)
    assert idle.client.get("/api/v1/nodes").status_code == 200
    clock.advance(601)
    assert idle.client.get("/api/v1/nodes").status_code == 401   # idle too long
    busy = login(app, "op", PASSWORDS["operator"])
    for _ in range(6):
        clock.advance(590)
        assert busy.client.get("/api/v1/nodes").status_code == 200
    clock.advance(100)      # 3640 s after login: past the absolute maximum, however busy
    assert busy.client.get("/api/v1/nodes").status_code == 401


def test_five_failures_lock_the_user_out_with_retry_after(
        app: FastAPI, hub: Hub, clock: OffsetClock) -> None:
    add_user(hub, "op", "operator")
    client = TestClient(app)
    for _ in range(5):
        assert client.post(LOGIN, json={"username": "op", "password": "guess-guess"}
                           ).status_code == 401
    good = {"username": "op", "password": PASSWORDS["operator"]}
    r = client.post(LOGIN, json=good)
    assert r.status_code == 429, "even the right password waits out the lockout"
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    assert r.json()["error"]["code"] == "throttled"
    clock.advance(31)
    assert client.post(LOGIN, json={"username": "op", "password": "guess-again"}
                       ).status_code == 401
    r = client.post(LOGIN, json=good)
    assert r.status_code == 429 and 31 <= int(r.headers["Retry-After"]) <= 60, \
        "the next failure doubles the lockout"
    clock.advance(61)
    assert client.post(LOGIN, json=good).status_code == 200
    # A success forgets the user's failures.
    assert client.post(LOGIN, json={"username": "op", "password": "x-x-x-x-x"}
                       ).status_code == 401
    assert client.post(LOGIN, json=good).status_code == 200


def test_one_address_guessing_many_names_is_slowed_down_not_locked_out(
        app: FastAPI, hub: Hub) -> None:
    # One address may be a whole office behind a NAT: its logins are slowed, never refused.
    add_user(hub, "op", "operator")
    client = TestClient(app)
    for i in range(8):
        assert client.post(LOGIN, json={"username": f"name{i}", "password": "guess-guess"}
                           ).status_code == 401
    started = time.monotonic()
    r = client.post(LOGIN, json={"username": "op", "password": PASSWORDS["operator"]})
    assert r.status_code == 200 and time.monotonic() - started >= 0.5


def test_passwords_are_stored_as_argon2_hashes_only(app: FastAPI, hub: Hub,
                                                    browsers: dict[str, Browser]) -> None:
    browsers["admin"].request("POST", "/api/v1/users", json={
        "username": "hamlet-head", "password": "Mật khẩu dài 123", "role": "viewer",
        "display_name": "Trưởng thôn Nà Sang"})
    rows = raw(hub, "select username, password_hash from users")
    assert len(rows) == 4
    for username, digest in rows:
        assert digest.startswith("$argon2id$"), username
        assert "pass" not in digest and "Mật" not in digest
    dump = "\n".join(str(r) for t in ("users", "sessions", "audit", "api_tokens")
                     for r in raw(hub, f"select * from {t}"))
    assert "Mật khẩu dài 123" not in dump and PASSWORDS["admin"] not in dump
    assert login(app, "hamlet-head", "Mật khẩu dài 123").role == "viewer"


def test_tokens_work_until_revoked_and_are_stored_hashed(
        hub: Hub, anon: TestClient, browsers: dict[str, Browser]) -> None:
    admin = browsers["admin"]
    made = admin.request("POST", "/api/v1/tokens", json={"name": "zalo-bridge",
                                                         "role": "viewer"})
    assert made.status_code == 201
    token = made.json()["token"]
    assert token.startswith("tgm_") and len(token) > 40
    listed = admin.client.get("/api/v1/tokens").json()
    assert [t["name"] for t in listed] == ["zalo-bridge"] and "token" not in listed[0]
    assert token not in str(raw(hub, "select * from api_tokens"))
    auth = {"Authorization": f"Bearer {token}"}
    assert anon.get("/api/v1/incidents", headers=auth).status_code == 200
    assert anon.get(LOGIN, headers=auth).json()["user"]["username"] == "token:zalo-bridge"
    assert admin.request("DELETE", f"/api/v1/tokens/{made.json()['id']}").status_code == 204
    assert anon.get("/api/v1/incidents", headers=auth).status_code == 401
    assert {"create_token", "revoke_token"} <= set(audit_actions(admin))


def test_admins_manage_users_and_every_change_is_audited(
        app: FastAPI, browsers: dict[str, Browser]) -> None:
    admin = browsers["admin"]
    new = {"username": "duty-2am", "password": "night-shift-pw", "role": "viewer",
           "display_name": "Cán bộ trực ban"}
    assert admin.request("POST", "/api/v1/users", json=new).status_code == 201
    dup = admin.request("POST", "/api/v1/users", json=new)
    assert dup.status_code == 409 and dup.json()["error"]["message_vi"]
    weak = admin.request("POST", "/api/v1/users", json={**new, "username": "weak",
                                                        "password": "short"})
    assert weak.status_code == 422 and weak.json()["error"]["code"] == "weak_password"
    assert admin.client.get("/api/v1/users/weak").status_code == 404   # nothing made
    duty = login(app, "duty-2am", "night-shift-pw")
    r = admin.request("PATCH", "/api/v1/users/duty-2am", json={"role": "operator"})
    assert r.status_code == 200 and r.json()["role"] == "operator"
    assert duty.client.get("/api/v1/nodes").status_code == 401, "new rights: log in again"
    duty = login(app, "duty-2am", "night-shift-pw")
    assert duty.role == "operator"
    assert admin.request("DELETE", "/api/v1/users/duty-2am").status_code == 204
    assert duty.client.get("/api/v1/nodes").status_code == 401
    assert admin.request("DELETE", "/api/v1/users/duty-2am").status_code == 404
    # The last admin cannot lock everybody out.
    last = admin.request("PATCH", "/api/v1/users/admin", json={"role": "viewer"})
    assert last.status_code == 409
    assert admin.request("DELETE", "/api/v1/users/admin").status_code == 409
    actions = audit_actions(admin)
    for action in ("create_user", "update_user", "delete_user", "login", "logout"
                   if "logout" in actions else "login"):
        assert action in actions
    entry = next(e for e in admin.client.get("/api/v1/audit").json()
                 if e["action"] == "update_user")
    assert entry["actor"] == "admin" and entry["subject"] == "duty-2am"
    assert entry["detail"] == {"role": "operator"}


def test_logout_is_audited(app: FastAPI, browsers: dict[str, Browser]) -> None:
    op = browsers["operator"]
    assert op.request("DELETE", LOGIN).status_code == 204
    assert "logout" in audit_actions(browsers["admin"])
