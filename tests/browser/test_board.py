"""The incident board in a real browser: a household presses, the officer on duty sees the
row within a second, hears the gong, acknowledges, and the household's node shows it."""

from __future__ import annotations

import time
from typing import Any

from node.led import LedState
from tests.browser.stack import NA_SANG, Stack
from tests.support.hub_harness import wait_until

# Records, in the page, the wall-clock time the first incident card appears.
WATCH_ROWS = """() => {
  window.__rowAt = null;
  const seen = () => document.querySelector('#incident-list .incident');
  if (seen()) { window.__rowAt = performance.timeOrigin + performance.now(); return; }
  new MutationObserver((_, obs) => {
    if (seen()) { window.__rowAt = performance.timeOrigin + performance.now(); obs.disconnect(); }
  }).observe(document.body, {childList: true, subtree: true});
}"""


def press_and_time(page: Any, stack: Stack, node_id: str, kind: str = "fire") -> float:
    """Hold a button on a virtual node; seconds from the hold completing (the node raises
    its alarm then) to the incident's row in the DOM."""
    page.evaluate(WATCH_ROWS)
    node = stack.village[node_id]  # type: ignore[index]
    hold = next(b.hold_s for b in node.config.hardware.buttons if b.kind == kind)
    start = time.time()
    node.press(kind)  # blocks for hold_s + 0.1 s, like a household's hand
    raised = start + hold
    page.wait_for_function("window.__rowAt !== null", timeout=5000)
    row_at = page.evaluate("window.__rowAt") / 1000.0
    return float(row_at - raised)


def test_press_appears_within_a_second_then_ack_lights_the_node(page: Any, stack: Stack) -> None:
    page.login("operator")
    assert page.page.locator("#board-empty").is_visible()
    latency = press_and_time(page.page, stack, "na-sang-02", "fire")
    print(f"\npress (hold complete) -> row in the DOM: {latency * 1000:.0f} ms")
    assert latency < 1.0, f"the row took {latency:.3f} s"

    card = page.page.locator("#incident-list .incident").first
    assert card.get_attribute("data-state") == "open"
    assert "Cháy" in card.locator(".kind").inner_text()
    assert "Thôn Nà Sang" in card.inner_text()
    assert "na-sang-02" in card.inner_text()
    # The gong rang for it (Web Audio runs in headless Chromium) and the title flashes.
    page.page.wait_for_function("window.__tiengmoGongs >= 1", timeout=3000)
    page.page.wait_for_function("document.title.includes('BÁO ĐỘNG')", timeout=3000)
    assert "Báo động mới: Cháy tại Thôn Nà Sang" in page.page.locator("#live").inner_text()
    # The time since the press ticks.
    first = card.locator(".elapsed").inner_text()
    page.page.wait_for_function(
        f"document.querySelector('#incident-list .elapsed').textContent !== {first!r}",
        timeout=3000)
    page.shot("new-incident", keep=True)

    node = stack.village["na-sang-02"]  # type: ignore[index]
    assert node.led_state != LedState.ACKNOWLEDGED
    card.locator(".btn-ack").click()
    wait_until(lambda: node.led_state == LedState.ACKNOWLEDGED, 10,
               "the origin node's LED to show the acknowledgement")
    page.page.wait_for_selector('#incident-list .incident[data-state="acknowledged"]')
    assert "Test operator" in card.inner_text() or "operator" in card.inner_text()
    page.page.wait_for_function("!document.title.includes('BÁO ĐỘNG')", timeout=3000)

    # The simulator panel shows the same LED, read from the virtual node.
    page.view("sim")
    page.page.wait_for_selector('.sim-node[data-node="na-sang-02"] .led[data-led="acknowledged"]')
    page.shot("sim-acknowledged", keep=True)

    # Resolve: "Resolved...", a note, an explicit outcome, then the submit.
    page.view("board")
    card.locator(".btn-resolve").click()
    card.locator("textarea").fill("Cháy rơm, đã dập")
    assert card.locator(".btn-resolve-submit").is_disabled()
    card.locator('input[type=radio][value="real"]').check()
    card.locator(".btn-resolve-submit").click()
    page.page.wait_for_selector("#board-empty:not([hidden])")
    inc = stack.hub.store.incidents.find(state="resolved")  # type: ignore[union-attr]
    assert [(i.outcome, i.note) for i in inc] == [("real", "Cháy rơm, đã dập")]
    assert page.errors == []


def test_sim_panel_press_sounds_the_hamlet(page: Any, stack: Stack) -> None:
    page.login("operator")
    page.view("sim")
    page.page.wait_for_selector('.sim-node[data-node="na-sang-01"] .btn-press')
    assert page.page.locator(".sim-node.is-sounding").count() == 0
    page.page.click('.sim-node[data-node="na-sang-01"] .btn-press[data-kind="theft"]')
    # Every gong of Nà Sang lights up in the panel; Nà Chá stays quiet.
    for nid in ("na-sang-01", "na-sang-02", "na-sang-03"):
        page.page.wait_for_selector(f'.sim-node.is-sounding[data-node="{nid}"]', timeout=8000)
    assert page.page.locator('.sim-area[data-area="bach-thong/vi-huong/na-cha"] .is-sounding'
                             ).count() == 0
    assert all(n.is_sounding() for n in stack.village.in_area(NA_SANG))  # type: ignore[union-attr]
    page.shot("sim-sounding", keep=True)
    # The map shows them sounding too.
    page.view("map")
    page.page.wait_for_selector('#node-map .node-sounding[data-node="na-sang-03"]')
    page.shot("map-sounding", keep=True)
    assert page.errors == []


def test_keyboard_only_acknowledge(page: Any, stack: Stack) -> None:
    p = page.page
    p.goto(stack.url + "/")
    # Log in by keyboard: the user field has focus, Tab to the password, Enter submits.
    p.wait_for_selector("#login-user:focus")
    p.keyboard.type("operator")
    p.keyboard.press("Tab")
    p.keyboard.type("operator-pass-123")
    p.keyboard.press("Enter")
    p.wait_for_selector("#conn-pill.pill-ok")
    stack.village["na-cha-01"].press("theft")  # type: ignore[index]
    p.wait_for_selector("#incident-list .incident .btn-ack")

    # Focus goes to the main content after logging in; Tab from there to the button.
    assert p.evaluate("document.activeElement.id") == "main"
    for _ in range(40):
        p.keyboard.press("Tab")
        if p.evaluate("document.activeElement.classList.contains('btn-ack')"):
            break
    else:
        raise AssertionError("Tab never reached the acknowledge button")
    outline = p.evaluate("getComputedStyle(document.activeElement).outlineWidth")
    assert float(outline.rstrip("px")) >= 2, "no visible focus ring"
    page.shot("keyboard-focus", keep=True)
    p.keyboard.press("Enter")
    p.wait_for_selector('#incident-list .incident[data-state="acknowledged"]')
    (inc,) = stack.hub.store.incidents.active()  # type: ignore[union-attr]
    assert inc.state == "acknowledged"
    # On a fresh page the first Tab stop is the skip link, and it leads to the content.
    p.reload()
    p.wait_for_selector("#conn-pill.pill-ok")
    p.keyboard.press("Tab")
    assert p.evaluate("document.activeElement.className") == "skip-link"
    assert p.locator(".skip-link").is_visible()
    p.keyboard.press("Enter")
    assert p.evaluate("document.activeElement.id") == "main"
    assert page.errors == []


def test_viewer_sees_but_cannot_act(page: Any, stack: Stack) -> None:
    page.login("viewer")
    stack.village["na-sang-03"].press("fire")  # type: ignore[index]
    page.page.wait_for_selector("#incident-list .incident")
    assert page.page.locator(".btn-ack, .btn-resolve, .btn-silence").count() == 0
    assert not page.page.locator('.tab[data-view="actions"]').is_visible()
    assert not page.page.locator('.tab[data-view="users"]').is_visible()
    # The simulator panel is there to look at, but pressing needs an operator.
    page.view("sim")
    page.page.click('.sim-node[data-node="na-sang-01"] .btn-press[data-kind="fire"]')
    page.page.wait_for_selector('#toast[data-kind="error"]')
    assert "quyền" in page.page.locator("#toast").inner_text()
    page.errors[:] = [e for e in page.errors if "403" not in e]
    assert page.errors == []


def test_admin_manages_users(page: Any, stack: Stack) -> None:
    page.login("admin")
    page.view("users")
    page.page.wait_for_selector('#user-list tr[data-user="viewer"]')
    page.page.fill("#nu-username", "truong-thon")
    page.page.fill("#nu-display", "Trưởng thôn Nà Sang")
    page.page.select_option("#nu-role", "operator")
    page.page.fill("#nu-password", "mot-mat-khau-dai")
    page.page.click("#user-form button[type=submit]")
    page.page.wait_for_selector('#user-list tr[data-user="truong-thon"]')
    page.shot("users", keep=True)

    user = stack.hub.store.auth.user("truong-thon")  # type: ignore[union-attr]
    assert user is not None and user.role == "operator"
    assert page.errors == []


def test_a_late_alarm_shows_a_late_badge_and_rings_no_gong_in_the_village(
        page: Any, stack: Stack) -> None:
    from protocol import Alarm, Kind, Source, Topics, encode, new_id
    from tests.support.wire import Wire

    page.login("operator")
    wire = Wire(stack.broker.host, stack.broker.port)
    wire.subscribe(Topics().ack("na-sang-01"))
    try:
        # Held in na-sang-01's outbox for an hour (past `alarm_max_age_s`).
        old = Alarm(alarm_id=new_id(), kind=Kind.FIRE, ts_ms=int(time.time() * 1000) - 3_600_000,
                    source=Source.BUTTON, button=2, attempt=40)
        wire.publish(Topics().alarm("na-sang-01"), encode(old), qos=1)
        card = page.page.locator("#incident-list .incident").first
        card.wait_for(timeout=5000)
        badge = card.locator(".badge-late")
        assert badge.is_visible() and badge.inner_text() == "Muộn"
        assert "không phát mõ" in (badge.get_attribute("title") or "")
        assert not card.locator(".badge-drill").is_visible()
        # Stored (acked), but no sound was ever issued for it and no gong plays.
        ack = wire.wait_for(lambda m: m.topic == Topics().ack("na-sang-01"))[0].json()
        assert stack.hub is not None
        assert stack.hub.store.commands.for_incident(ack["incident_id"]) == []
        assert stack.village is not None
        assert not any(n.is_sounding() for n in stack.village.nodes)
        page.shot("late-incident")
    finally:
        wire.close()


def test_an_alarm_by_phone_names_the_number_it_came_from_not_a_node(
        page: Any, stack: Stack) -> None:
    from hub.store.phone import PhoneAlarm, PhoneSource, phone_origin
    from protocol import Kind, new_id

    page.login("operator")
    assert stack.hub is not None and stack.hub.ingest is not None
    now = int(time.time() * 1000)
    stack.hub.ingest.store_phone_alarm((phone_origin("+84900000201"), PhoneAlarm(
        new_id(), Kind.SOS, now, PhoneSource.CALL, NA_SANG), now))
    card = page.page.locator("#incident-list .incident").first
    card.wait_for(timeout=5000)
    text = card.inner_text()
    assert "điện thoại +84900000201" in text and "tel:" not in text, text
    page.shot("phone-incident")
