"""CAP 1.2 end to end: a press becomes an Alert in the feed, acknowledging it an Update,
resolving it a final Update (or a Cancel for a false alarm), a drill an Exercise, an
operator's broadcast an Alert; every document validates against the OASIS XSD. And the
other way: a provincial flood warning posted with an operator's token sounds a broadcast
in the areas it names, which the hamlet's gongs play."""

from __future__ import annotations

import time

from lxml import etree

from tests.e2e.harness import HAMLET, ever_sounded, wait_for, wait_hub_ready, wait_strikes
from tests.integrations.cap_docs import CAP_NS, assert_valid, flood_warning
from tests.integrations.support import Stack, bearer

ATOM = "{http://www.w3.org/2005/Atom}"
C = "{" + CAP_NS + "}"
CAP_TOKEN = "cap-intake-token-0123456789"


def feed_alerts(stack: Stack, token: str) -> list[etree._Element]:
    assert stack.client is not None
    r = stack.client.get("/api/v1/cap", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/atom+xml")
    feed = etree.fromstring(r.content, etree.XMLParser(resolve_entities=False,
                                                       no_network=True))
    out = []
    for entry in feed.iter(f"{ATOM}entry"):
        alert = entry.find(f"{ATOM}content/{C}alert")
        assert alert is not None
        out.append(assert_valid(etree.tostring(alert)))
    return out


def t(el: etree._Element, path: str) -> str:
    found = el.find(path.replace("c:", C))
    assert found is not None, path
    return str(found.text)


def test_a_press_is_a_valid_cap_alert_then_update_then_all_clear(stack: Stack) -> None:
    stack.start()
    hub = stack.hub
    assert hub is not None and stack.client is not None
    viewer = stack.token("viewer")
    village = stack.e2e.village()
    wait_hub_ready(village["na-sang-01"])
    village["na-sang-01"].press("fire")
    inc = wait_for(lambda: hub.store.incidents.active(), what="the incident")[0]

    [alert] = feed_alerts(stack, viewer)
    assert t(alert, "c:identifier") == f"urn:tiengmo:incident:{inc.incident_id}:opened"
    assert t(alert, "c:sender") == "hub-test@tiengmo.local"
    assert t(alert, "c:sent").endswith("+07:00")
    assert (t(alert, "c:status"), t(alert, "c:msgType")) == ("Actual", "Alert")
    vi, en = alert.findall(f"{C}info")
    assert (t(vi, "c:language"), t(en, "c:language")) == ("vi-VN", "en-US")
    assert t(vi, "c:category") == "Fire" and t(vi, "c:event") == "Cháy"
    assert "BÁO ĐỘNG CHÁY tại Thôn Nà Sang" in t(vi, "c:headline")
    assert t(en, "c:headline").startswith("Fire alarm at Thôn Nà Sang")
    assert t(vi, "c:area/c:areaDesc") == "Thôn Nà Sang, Xã Vi Hương, Huyện Bạch Thông"
    assert t(vi, "c:area/c:geocode/c:value") == HAMLET

    services = stack.e2e.services(hub)
    services.acknowledge(inc.incident_id, "officer")
    [alert] = feed_alerts(stack, viewer)
    assert t(alert, "c:msgType") == "Update"
    assert t(alert, "c:identifier").endswith(":acknowledged")
    assert f"urn:tiengmo:incident:{inc.incident_id}:opened" in t(alert, "c:references")

    services.resolve(inc.incident_id, "officer", "real")
    [alert] = feed_alerts(stack, viewer)
    assert t(alert, "c:msgType") == "Update"
    assert t(alert.find(f"{C}info"), "c:responseType") == "AllClear"
    assert len(t(alert, "c:references").split()) == 2
    # Each earlier message stays retrievable by its identifier, and valid.
    first = f"urn:tiengmo:incident:{inc.incident_id}:opened"
    r = stack.client.get(f"/api/v1/cap/alerts/{first}", headers=bearer(viewer))
    assert r.status_code == 200 and r.headers["content-type"] == "application/cap+xml"
    assert t(assert_valid(r.content), "c:msgType") == "Alert"


def test_drill_is_exercise_false_alarm_is_cancel_broadcast_is_alert(stack: Stack) -> None:
    stack.start()
    hub = stack.hub
    assert hub is not None
    viewer = stack.token("viewer")
    services = stack.e2e.services(hub)
    drill, _cmd = services.start_drill(HAMLET, "officer")
    services.broadcast("bach-thong/vi-huong", "officer", "flood", 30,
                       message="Nước sông Cầu lên nhanh")
    alerts = feed_alerts(stack, viewer)
    by_id = {t(a, "c:identifier"): a for a in alerts}
    ex = by_id[f"urn:tiengmo:incident:{drill.incident_id}:opened"]
    assert t(ex, "c:status") == "Exercise"
    assert "DIỄN TẬP" in t(ex, "c:info/c:headline")
    [bc] = [a for i, a in by_id.items() if i.startswith("urn:tiengmo:broadcast:")]
    assert t(bc, "c:status") == "Actual" and t(bc, "c:info/c:category") == "Met"
    assert "Nước sông Cầu lên nhanh" in t(bc, "c:info/c:description")
    assert t(bc, "c:info/c:expires").endswith("+07:00")

    services.all_clear(HAMLET, "officer")
    by_id = {t(a, "c:identifier"): a for a in feed_alerts(stack, viewer)}
    [clear] = [a for a in by_id.values() if t(a, "c:info/c:event") == "Hết báo động"]
    assert t(clear, "c:info/c:responseType") == "AllClear"

    services.stop_drill(drill.incident_id, "officer")
    inc_id = _false_alarm(stack)
    services.resolve(inc_id, "officer", "false_alarm")
    by_id = {t(a, "c:identifier"): a for a in feed_alerts(stack, viewer)}
    cancel = by_id[f"urn:tiengmo:incident:{inc_id}:resolved"]
    assert t(cancel, "c:msgType") == "Cancel"


def _false_alarm(stack: Stack) -> str:
    hub = stack.hub
    assert hub is not None
    village = stack.e2e.village()
    wait_hub_ready(village["na-cha-01"])
    village["na-cha-01"].press("theft")
    return str(wait_for(lambda: [i for i in hub.store.incidents.active() if not i.drill],
                        what="the theft incident")[0].incident_id)


def test_the_feed_needs_a_token(stack: Stack) -> None:
    stack.start({"cap": {"token": CAP_TOKEN}})
    assert stack.client is not None
    assert stack.client.get("/api/v1/cap").status_code == 401
    assert stack.client.get("/api/v1/cap", headers=bearer("nope")).status_code == 401
    assert stack.client.get("/api/v1/cap", headers=bearer(CAP_TOKEN)).status_code == 200


def test_a_posted_flood_warning_sounds_the_hamlet_it_names(stack: Stack) -> None:
    stack.start()
    hub = stack.hub
    client = stack.client
    assert hub is not None and client is not None
    doc = flood_warning()
    assert_valid(doc)   # the test's own document is real CAP
    village = stack.e2e.village()
    for n in village:
        wait_hub_ready(n)
    operator = stack.token("operator")
    assert client.post("/api/v1/cap", content=doc,
                       headers=bearer(stack.token("viewer"))).status_code == 403
    t0 = time.monotonic()
    r = client.post("/api/v1/cap", content=doc, headers=bearer(operator))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["areas"] == [HAMLET] and body["action"] == "broadcast"
    # The hamlet's gongs play the flood warning; the neighbouring hamlet stays quiet.
    for node_id in ("na-sang-01", "na-sang-02"):
        wait_strikes(village[node_id], 2, since=t0, timeout=15)
    assert not ever_sounded(village["na-cha-01"], since=t0)
    [cmd] = [c for c in hub.store.audit.entries(action="broadcast")]
    assert cmd.actor.startswith("token:") and cmd.subject == HAMLET
    # Posted again: nothing sounds twice.
    again = client.post("/api/v1/cap", content=doc, headers=bearer(operator))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert len(hub.store.audit.entries(action="broadcast")) == 1


def test_intake_maps_geocodes_and_names_exercises_and_refuses_what_it_cannot_place(
        stack: Stack) -> None:
    stack.start({"cap": {"token": CAP_TOKEN}})
    hub = stack.hub
    client = stack.client
    assert hub is not None and client is not None
    h = bearer(CAP_TOKEN)
    # Our own geocode: the commune, exactly.
    r = client.post("/api/v1/cap", content=flood_warning(
        "A1", area_desc="somewhere", geocode="bach-thong/vi-huong"), headers=h)
    assert r.status_code == 201 and r.json()["areas"] == ["bach-thong/vi-huong"]
    # Names without diacritics and level words still match; Exercise is a drill.
    r = client.post("/api/v1/cap", content=flood_warning(
        "A2", status="Exercise", area_desc="Na Cha"), headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["action"] == "drill" and r.json()["areas"] == ["bach-thong/vi-huong/na-cha"]
    assert any(i.drill for i in hub.store.incidents.active())
    # Nowhere we know: a clear error, nothing sounded.
    r = client.post("/api/v1/cap", content=flood_warning("A3", area_desc="Hà Nội"), headers=h)
    assert r.status_code == 422 and "Hà Nội" in r.json()["error"]["message"]
    # Expired: never sounds.
    r = client.post("/api/v1/cap", content=flood_warning(
        "A4", expires="2020-01-01T00:00:00+07:00"), headers=h)
    assert r.status_code == 422 and "expired" in r.json()["error"]["message"]
    # Cancel: recorded, nothing sounds.
    r = client.post("/api/v1/cap", content=flood_warning("A5", msg_type="Cancel"), headers=h)
    assert r.status_code == 202 and r.json()["cmd_ids"] == []
    assert len(hub.store.audit.entries(action="broadcast")) == 1


BAD = {
    "not xml": b"hello",
    "xxe": (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&x;</alert>'),
    "billion laughs": (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaa">'
                       b'<!ENTITY b "&a;&a;&a;">]><a>&b;</a>'),
    "wrong namespace": flood_warning().replace(b"cap:1.2", b"cap:1.1"),
    "bad status": flood_warning(status="Real"),
    "missing sender": flood_warning().replace(b"<sender>pccc@backan.gov.vn</sender>", b""),
    "out of order": flood_warning().replace(b"<scope>Public</scope>", b"").replace(
        b"<sender>", b"<scope>Public</scope><sender>"),
    "bad date": flood_warning().replace(b"2026-11-30T14:00:00+07:00", b"2026-11-30 14:00"),
}
# Well-formed by the schema's pattern but impossible: once a 500, now a 422 naming it.
IMPOSSIBLE = {
    "month 13": (flood_warning(expires="2027-13-45T25:00:00+07:00"), "not a real date"),
    "infinite circle": (flood_warning(area_desc="Nowhere", circle="0,0 inf"), "finite"),
    "nan circle": (flood_warning(area_desc="Nowhere", circle="nan,0 5"), "finite"),
    "huge circle": (flood_warning(area_desc="Nowhere", circle="22.2,105.8 20000"), "radius"),
    "centre off Earth": (flood_warning(area_desc="Nowhere", circle="95,105.8 5"), "latitude"),
    "not a circle": (flood_warning(area_desc="Nowhere", circle="22.2 105.8"), "lat,lon"),
}


def test_impossible_dates_and_circles_are_422_naming_the_problem(stack: Stack) -> None:
    stack.start({"cap": {"token": CAP_TOKEN}})
    assert stack.client is not None and stack.hub is not None
    for name, (doc, words) in IMPOSSIBLE.items():
        r = stack.client.post("/api/v1/cap", content=doc, headers=bearer(CAP_TOKEN))
        assert r.status_code == 422, (name, r.text)
        err = r.json()["error"]
        assert err["code"] == "invalid_cap" and words in err["message"], (name, err)
        assert ("expires" if name == "month 13" else "circle") in err["message"], name
    assert stack.hub.store.audit.entries(action="broadcast") == []


def test_bad_documents_are_refused_with_a_clear_error(stack: Stack) -> None:
    stack.start({"cap": {"token": CAP_TOKEN}})
    assert stack.client is not None and stack.hub is not None
    for name, doc in BAD.items():
        r = stack.client.post("/api/v1/cap", content=doc, headers=bearer(CAP_TOKEN))
        assert r.status_code == 422, (name, r.text)
        err = r.json()["error"]
        assert err["code"] == "invalid_cap" and err["message_vi"], name
    assert stack.hub.store.audit.entries(action="broadcast") == []


def test_the_strict_parser_and_the_xsd_agree() -> None:
    from hub.integrations.cap_intake import CapError, parse_cap

    good = [flood_warning(), flood_warning(geocode=HAMLET, circle="22.25,105.86 2.5")]
    for doc in good:
        assert_valid(doc)
        parse_cap(doc)
    for name in ("wrong namespace", "bad status", "missing sender", "out of order",
                 "bad date"):
        root = etree.fromstring(BAD[name])
        from tests.integrations.cap_docs import schema
        assert not schema().validate(root), name
        try:
            parse_cap(BAD[name])
        except CapError:
            continue
        raise AssertionError(f"{name}: the parser took what the schema refuses")
