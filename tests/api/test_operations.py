"""The operator's actions through the API, checked on the wire (real Mosquitto) and in the
store; history filters and the CSV export; bad input refused and nothing changed."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient

from hub.runtime import Hub
from tests.api.conftest import Browser
from tests.support.hub_harness import (
    HAMLET,
    OTHER_HAMLET,
    T,
    alarm,
    is_ack,
    is_area_cmd,
    send_alarm,
    wait_until,
    watch_all,
)
from tests.support.wire import Wire

API = "/api/v1"


def press(hub: Hub, wire: Wire, node: str, kind: str = "fire") -> str:
    """A household's alarm on the wire; returns its incident id once stored."""
    a = alarm(kind)
    send_alarm(wire, node, a)
    stored = wait_until(lambda: hub.store.alarms.get(a.alarm_id), what="alarm stored")
    return str(stored.incident_id)


def test_acknowledge_then_resolve_acks_the_nodes_and_silences(
        hub: Hub, wire: Wire, browsers: dict[str, Browser]) -> None:
    watch_all(wire)
    op = browsers["operator"]
    a = alarm("fire")
    send_alarm(wire, "na-sang-01", a)
    board = wait_until(lambda: op.client.get(f"{API}/incidents?state=open").json(),
                       what="incident on the board")
    inc = board[0]
    assert inc["kind"] == "fire" and inc["area_name"] == "Thôn Nà Sang"
    assert inc["origin_node"] == "na-sang-01" and inc["first_press_ms"] == a.ts_ms
    r = op.request("POST", f"{API}/incidents/{inc['id']}/acknowledge")
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert r.json()["acknowledged_by"] == "operator"
    wire.wait_for(is_ack("na-sang-01", a.alarm_id, "acknowledged"))
    again = op.request("POST", f"{API}/incidents/{inc['id']}/acknowledge")
    assert again.status_code == 200, "acknowledging twice is harmless"

    bad = op.request("POST", f"{API}/incidents/{inc['id']}/resolve",
                     json={"outcome": "maybe", "note": "?"})
    assert bad.status_code == 422 and "outcome" in bad.json()["error"]["message"]
    unchanged = hub.store.incidents.get(inc["id"])
    assert unchanged is not None and unchanged.state.value == "acknowledged"

    r = op.request("POST", f"{API}/incidents/{inc['id']}/resolve",
                   json={"outcome": "false_alarm", "note": "trẻ con bấm nhầm"})
    assert r.status_code == 200
    done = r.json()
    assert (done["state"], done["outcome"], done["note"], done["resolved_by"]) == (
        "resolved", "false_alarm", "trẻ con bấm nhầm", "operator")
    wire.wait_for(is_ack("na-sang-01", a.alarm_id, "resolved"))
    wire.wait_for(is_area_cmd(HAMLET, "silence"))
    late = op.request("POST", f"{API}/incidents/{inc['id']}/acknowledge")
    assert late.status_code == 409 and late.json()["error"]["message_vi"]
    missing = op.request("POST", f"{API}/incidents/no-such/resolve", json={"outcome": "real"})
    assert missing.status_code == 404
    detail = op.client.get(f"{API}/incidents/{inc['id']}").json()
    assert [x["id"] for x in detail["alarms"]] == [a.alarm_id]
    assert {c["action"] for c in detail["commands"]} >= {"sound", "silence"}


def test_silence_all_clear_and_broadcast_go_out_to_the_area(
        hub: Hub, wire: Wire, browsers: dict[str, Browser]) -> None:
    watch_all(wire)
    op = browsers["operator"]
    iid = press(hub, wire, "na-sang-02", "theft")
    r = op.request("POST", f"{API}/incidents/{iid}/silence")
    assert r.status_code == 200 and r.json()["action"] == "silence"
    wire.wait_for(is_area_cmd(HAMLET, "silence"))
    assert op.client.get(f"{API}/incidents/{iid}").json()["state"] == "open"

    wire.clear()
    encoded = HAMLET.replace("/", "%2F")
    r = op.request("POST", f"{API}/areas/{encoded}/all-clear")
    assert r.status_code == 200
    assert [c["action"] for c in r.json()] == ["silence", "sound"]
    wire.wait_for(is_area_cmd(HAMLET, "silence"))
    wire.wait_for(is_area_cmd(HAMLET, "sound"))
    assert op.request("POST", f"{API}/areas/nowhere/all-clear").status_code == 404

    wire.clear()
    r = op.request("POST", f"{API}/broadcasts", json={
        "area": OTHER_HAMLET, "signal": "flood", "duration_s": 20,
        "message": "Nước lên, di chuyển lên chỗ cao"})
    assert r.status_code == 201, r.text
    cmd = r.json()
    assert (cmd["action"], cmd["target"], cmd["duration_s"], cmd["note"]) == (
        "sound", OTHER_HAMLET, 20, "Nước lên, di chuyển lên chỗ cao")
    sent = wire.wait_for(is_area_cmd(OTHER_HAMLET, "sound"))[0].json()
    assert sent["cmd_id"] == cmd["id"] and sent["duration_s"] == 20


def test_bad_input_is_refused_and_changes_nothing(
        hub: Hub, wire: Wire, browsers: dict[str, Browser]) -> None:
    op, admin = browsers["operator"], browsers["admin"]
    before_cmds = op.client.get(f"{API}/commands").json()
    cases: list[tuple[Browser, str, str, Any, int]] = [
        (op, "POST", "/broadcasts", {"area": HAMLET, "signal": "no-such-signal"}, 422),
        (op, "POST", "/broadcasts", {"area": HAMLET, "signal": "fire", "duration_s": -5}, 422),
        (op, "POST", "/broadcasts", {"area": "Bad Area!", "signal": "fire"}, 422),
        (op, "POST", "/broadcasts", {"area": "bach-thong/nowhere", "signal": "fire"}, 404),
        (op, "POST", "/drills", {"area": HAMLET, "duration_s": "long"}, 422),
        (admin, "POST", "/nodes", {"id": "Bad Id", "area": HAMLET}, 422),
        (admin, "POST", "/nodes", {"id": "na-sang-01", "area": HAMLET}, 409),
        (admin, "PATCH", "/nodes/na-sang-01", {}, 422),
        (admin, "PATCH", "/nodes/na-sang-01", {"area": "../etc"}, 422),
        (admin, "PATCH", "/nodes/ghost", {"enabled": False}, 404),
        (op, "POST", "/nodes/ghost/ping", None, 404),
    ]
    for who, method, path, body, status in cases:
        r = who.request(method, API + path, json=body)
        assert r.status_code == status, (path, body, r.status_code, r.text)
        err = r.json()["error"]
        assert err["message"] and err["message_vi"] and err["code"]
    assert op.client.get(f"{API}/commands").json() == before_cmds
    assert op.client.get(f"{API}/incidents").json() == []
    node = op.client.get(f"{API}/nodes/na-sang-01").json()
    assert node["enabled"] is True and node["area"] == HAMLET


def test_drills_start_and_stop_and_are_kept_apart_in_history(
        hub: Hub, wire: Wire, browsers: dict[str, Browser]) -> None:
    watch_all(wire)
    op = browsers["operator"]
    r = op.request("POST", f"{API}/drills", json={"area": HAMLET, "duration_s": 30})
    assert r.status_code == 201
    drill = r.json()
    assert drill["incident"]["drill"] is True and drill["command"]["drill"] is True
    sent = wire.wait_for(is_area_cmd(HAMLET, "sound"))[0].json()
    assert sent["drill"] is True and sent["incident_id"] == drill["incident"]["id"]
    stop = op.request("POST", f"{API}/drills/{drill['incident']['id']}/stop")
    assert stop.status_code == 200 and stop.json()["action"] == "silence"
    wire.wait_for(is_area_cmd(HAMLET, "silence"))
    press(hub, wire, "na-sang-03", "fire")
    drills = op.client.get(f"{API}/incidents?drill=true").json()
    real = op.client.get(f"{API}/incidents?drill=false").json()
    assert [(d["kind"], d["state"], d["outcome"]) for d in drills] == [
        ("drill", "resolved", "test")]
    assert [d["kind"] for d in real] == ["fire"]
    not_a_drill = op.request("POST", f"{API}/drills/{real[0]['id']}/stop")
    assert not_a_drill.status_code == 409


def test_nodes_register_enable_disable_move_test_and_ping(
        hub: Hub, wire: Wire, browsers: dict[str, Browser]) -> None:
    watch_all(wire)
    admin, op = browsers["admin"], browsers["operator"]
    r = admin.request("POST", f"{API}/nodes", json={
        "id": "na-sang-05", "area": HAMLET, "name": "Nhà văn hoá", "households": 12,
        "lat": 22.25, "lon": 105.86})
    assert r.status_code == 201, r.text
    assert r.json()["registered"] is True and r.json()["status"] == "unknown"
    r = admin.request("PATCH", f"{API}/nodes/na-sang-05", json={"enabled": False})
    assert r.json()["enabled"] is False
    r = admin.request("PATCH", f"{API}/nodes/na-sang-05",
                      json={"enabled": True, "area": OTHER_HAMLET})
    assert (r.json()["enabled"], r.json()["area"]) == (True, OTHER_HAMLET)
    assert [n["id"] for n in op.client.get(f"{API}/nodes?area={OTHER_HAMLET}").json()] == [
        "na-cha-01", "na-cha-02", "na-sang-05"]
    assert op.request("PATCH", f"{API}/nodes/na-sang-05", json={"enabled": False}
                      ).status_code == 403
    r = op.request("POST", f"{API}/nodes/na-sang-01/test", json={"duration_s": 3})
    assert r.status_code == 202 and r.json()["action"] == "test"
    msg = wire.wait_for(lambda m: m.topic == T.node_cmd("na-sang-01"))[0].json()
    assert msg["action"] == "test" and msg["cmd_id"] == r.json()["id"]
    r = op.request("POST", f"{API}/nodes/na-sang-01/ping")
    assert r.status_code == 202
    wire.wait_for(lambda m: m.topic == T.node_cmd("na-sang-01")
                  and m.json()["action"] == "ping")
    actions = [e["action"] for e in admin.client.get(f"{API}/audit").json()]
    for a in ("register_node", "disable_node", "enable_node", "move_node", "test_node",
              "ping_node"):
        assert a in actions


def test_history_filters_and_csv_export(hub: Hub, wire: Wire,
                                        browsers: dict[str, Browser]) -> None:
    op = browsers["operator"]
    fire = press(hub, wire, "na-sang-01", "fire")
    theft = press(hub, wire, "na-cha-01", "theft")
    note = 'Ổ gà, "trộm" chó\nđã bắt được, =1+1'
    op.request("POST", f"{API}/incidents/{theft}/resolve", json={"outcome": "prank",
                                                                  "note": note})

    def ids(query: str) -> list[str]:
        return [i["id"] for i in op.client.get(f"{API}/incidents?{query}").json()]

    assert ids(f"area={HAMLET}") == [fire]
    assert ids("area=bach-thong") == [theft, fire]
    assert ids("kind=theft") == [theft]
    assert ids("outcome=prank") == [theft] and ids("outcome=real") == []
    found = hub.store.incidents.get(theft)
    assert found is not None
    opened = found.opened_ms
    assert ids(f"since_ms={opened}") == [theft]
    assert ids(f"until_ms={opened}") == [fire]
    assert ids("limit=1") == [theft] and ids(f"limit=1&before={opened}") == [fire]
    assert op.client.get(f"{API}/incidents?outcome=sure").status_code == 422
    alarms = op.client.get(f"{API}/alarms?node_id=na-cha-01").json()
    assert [a["incident_id"] for a in alarms] == [theft]
    assert [a["kind"] for a in op.client.get(f"{API}/alarms?area={HAMLET}").json()] == ["fire"]

    r = op.client.get(f"{API}/incidents.csv?area=bach-thong")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM, for Excel"
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row["incident_id"] for row in rows] == [theft, fire]
    assert rows[0]["note"] == note and rows[0]["outcome"] == "prank"
    assert rows[0]["area_name"] == "Thôn Nà Chá"
    r = op.client.get(f"{API}/alarms.csv?kind=fire")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row["node_id"] for row in rows] == ["na-sang-01"]


def test_csv_defuses_spreadsheet_formulas(hub: Hub, wire: Wire,
                                          browsers: dict[str, Browser]) -> None:
    op = browsers["operator"]
    iid = press(hub, wire, "na-sang-01", "fire")
    op.request("POST", f"{API}/incidents/{iid}/resolve",
               json={"outcome": "prank", "note": "=HYPERLINK(\"http://x\")"})
    text = op.client.get(f"{API}/incidents.csv").content.decode("utf-8-sig")
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["note"] == "'=HYPERLINK(\"http://x\")"


def test_troubles_and_unknown_nodes_are_listed(hub: Hub, wire: Wire, anon: TestClient,
                                               browsers: dict[str, Browser]) -> None:
    press(hub, wire, "stranger-01", "fire")      # a node nobody registered
    troubles = browsers["viewer"].client.get(f"{API}/troubles").json()
    assert any(t["kind"] == "unknown_node" and t["subject"] == "stranger-01"
               for t in troubles)
    nodes = {n["id"]: n for n in browsers["viewer"].client.get(f"{API}/nodes").json()}
    assert nodes["stranger-01"]["registered"] is False
    flagged = browsers["viewer"].client.get(f"{API}/incidents").json()[0]
    assert flagged["flagged"] is True
