"""Issue 13, points 5-6: a new alarm reaches a phone on another view (a banner that stays
until seen, a vibration, a compact header, 44-px targets); muting the reminder never
silences the first alert of a NEW incident; resolving needs an explicit outcome, counts
the note, and the keyboard-only path from the alert to the resolve keeps the focus
somewhere sensible; a 409 from the hub is said in words and the typed note is kept."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.duty import SPIES, save, strikes
from tests.browser.stack import Stack

STRIKES_PER_GONG = 15  # three strikes of five partials (sound.js)


def test_new_alarm_reaches_a_phone_on_another_view(page_factory: Any, stack: Stack) -> None:
    page = page_factory(width=360, height=740)
    p = page.page
    p.add_init_script(SPIES)
    page.login("operator")
    # The header leaves room for the cards, and its buttons are finger-sized.
    header = p.locator(".topbar").bounding_box()
    assert header is not None and header["height"] <= 56, header
    print(f"\n360-px header: {header['height']:.0f} px tall")
    for sel in ("#btn-lang", "#btn-logout", ".tab >> nth=0"):
        box = p.locator(sel).bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 44, (sel, box)
    page.view("map")
    stack.village["na-sang-02"].press("fire")  # type: ignore[index]
    banner = p.locator("#banner-alarm")
    banner.wait_for(state="visible", timeout=3000)
    assert "BÁO ĐỘNG MỚI: Cháy tại Thôn Nà Sang" in banner.inner_text()
    assert p.evaluate("window.__vibrations.length") == 1
    assert p.locator("#view-map").is_visible()  # nothing was taken from the officer
    save(p, "phone-new-alarm.png")
    # It stays until seen: not a toast that fades.
    p.wait_for_timeout(4000)
    assert banner.is_visible()
    box = p.locator("#btn-alarm-seen").bounding_box()
    assert box is not None and box["height"] >= 44
    p.click("#btn-alarm-seen")
    p.wait_for_selector("#view-board:not([hidden])")
    assert not banner.is_visible()
    assert p.evaluate("document.activeElement.classList.contains('btn-ack')")
    # The sim's nodes on the map at 360 px: every hamlet is drawn apart from the other.
    page.view("map")
    circles = p.evaluate("""() => [...document.querySelectorAll('#node-map circle.hamlet')]
      .map((c) => { const b = c.getBoundingClientRect(); return [b.x, b.y, b.width]; })""")
    assert len(circles) == 2
    (x1, y1, w1), (x2, y2, w2) = circles
    gap = ((x1 + w1 / 2 - x2 - w2 / 2) ** 2 + (y1 + w1 / 2 - y2 - w2 / 2) ** 2) ** 0.5
    assert gap >= (w1 + w2) / 2, "hamlet circles overlap"
    assert page.errors == []


def test_new_alarm_reaches_a_phone_whose_board_is_a_background_tab(
        page_factory: Any, stack: Stack) -> None:
    """The officer's phone browser shows another tab: the board's tab is hidden. The
    alarm still reaches it: its title (what the tab strip shows) says ALARM with the
    count, the phone vibrates, and the banner waits for the officer's return."""
    page = page_factory(width=360, height=740)
    p = page.page
    p.add_init_script(SPIES)
    page.login("operator")
    other = p.context.new_page()          # another tab of the same browser, in front
    other.set_content("<title>Tin tức</title><p>another site</p>")
    other.bring_to_front()
    # Headless Chromium never hides a background tab (visibilityState stays "visible"),
    # so the page is told it is hidden as a phone's browser would tell it, and its
    # timers are slowed as Chromium slows a background tab's (at most once a second).
    p.evaluate("""() => {
      Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
      Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
      const si = window.setInterval;
      window.setInterval = (f, ms, ...a) => si(f, Math.max(ms || 0, 1000), ...a);
      document.dispatchEvent(new Event('visibilitychange'));
    }""")
    assert p.evaluate("document.visibilityState") == "hidden"
    stack.village["na-sang-01"].press("theft")  # type: ignore[index]
    titles: set[str] = set()
    for _ in range(60):                  # the title flashes: both forms within 3 s
        titles.add(p.title())
        if len(titles) >= 3:
            break
        p.wait_for_timeout(100)
    assert "⚠ BÁO ĐỘNG (1) – Tiếng mõ" in titles, titles
    assert any(re.fullmatch(r"\(1\) .+", x) for x in titles), titles
    assert p.evaluate("window.__vibrations.length") == 1
    p.bring_to_front()                   # the officer comes back to the board's tab
    p.evaluate("""() => {
      delete document.visibilityState; delete document.hidden;
      document.dispatchEvent(new Event('visibilitychange'));
    }""")
    banner = p.locator("#banner-alarm")
    assert banner.is_visible()
    assert "BÁO ĐỘNG MỚI: Trộm cắp tại Thôn Nà Sang" in banner.inner_text()
    p.click("#btn-alarm-seen")
    p.wait_for_selector("#view-board:not([hidden])")
    other.close()
    assert page.errors == []


def test_muting_the_reminder_never_silences_a_new_incident(page: Any, stack: Stack) -> None:
    p = page.page
    p.add_init_script(SPIES)
    # The reminder every 1.5 s instead of 6 s (a setting the page reads), for a short test.
    p.add_init_script("localStorage.setItem('tiengmo.repeatMs', '1500')")
    page.login("operator")
    stack.village["na-sang-01"].press("fire")  # type: ignore[index]
    p.wait_for_selector("#incident-list .incident")
    p.wait_for_function(f"window.__strikes >= {STRIKES_PER_GONG}", timeout=3000)
    # The reminder repeats while nobody has taken the incident.
    before = strikes(p)
    p.wait_for_function(f"window.__strikes > {before}", timeout=4000)

    p.click("#btn-snooze")
    countdown = p.locator("#btn-snooze").inner_text()
    assert re.search(r"Tiếng nhắc đang tắt: còn (5:00|4:5\d)", countdown), countdown
    assert "đang tạm tắt" in p.locator("#incident-list .incident .snoozed").inner_text()
    p.wait_for_timeout(1600)  # a reminder already scheduled may still be ringing out
    muted = strikes(p)
    p.wait_for_timeout(4000)
    assert strikes(p) == muted, "the muted reminder still sounded"
    # Remembered per browser: a reload keeps it muted, with the countdown.
    p.reload()
    p.wait_for_selector("#incident-list .incident")
    assert "Tiếng nhắc đang tắt" in p.locator("#btn-snooze").inner_text()
    # A reloaded page may sound only after a gesture: the officer clicks the banner.
    if p.locator("#btn-enable-sound").is_visible():
        p.click("#btn-enable-sound")
    p.wait_for_function("window.__tiengmoAudio.state === 'running'")
    muted = strikes(p)
    p.wait_for_timeout(3500)
    assert strikes(p) == muted

    # A NEW incident: its first alert sounds at once, and its own reminder too.
    stack.village["na-cha-01"].press("theft")  # type: ignore[index]
    p.wait_for_function("document.querySelectorAll('#incident-list .incident').length === 2")
    # Sounded as the card appeared (the same task), not at the next reminder.
    first = strikes(p)
    assert first >= muted + STRIKES_PER_GONG, "the new incident's first alert was silenced"
    p.wait_for_function(f"window.__strikes > {first}", timeout=4000)
    # Unmuting brings the reminder back for all.
    p.click("#btn-snooze")
    assert p.locator("#btn-snooze").inner_text() == "Tạm tắt tiếng nhắc 5 phút"
    assert p.locator("#incident-list .snoozed:visible").count() == 0
    assert page.errors == []


def focused(p: Any) -> str:
    return str(p.evaluate("""() => { const a = document.activeElement;
      return a === document.body ? 'BODY' : (a.id || a.className || a.tagName); }"""))


def test_keyboard_only_from_alert_to_resolve(page: Any, stack: Stack) -> None:
    p = page.page
    p.goto(stack.url + "/")
    p.wait_for_selector("#login-user:focus")
    p.keyboard.type("operator")
    p.keyboard.press("Tab")
    p.keyboard.type("operator-pass-123")
    p.keyboard.press("Enter")
    p.wait_for_selector("#conn-pill.pill-ok")
    stack.village["na-cha-01"].press("theft")  # type: ignore[index]
    stack.village["na-sang-01"].press("fire")  # type: ignore[index]
    p.wait_for_function("document.querySelectorAll('#incident-list .btn-ack').length === 2")
    first_id = p.locator("#incident-list .incident").first.get_attribute("data-id")
    second_id = p.locator("#incident-list .incident").nth(1).get_attribute("data-id")
    for _ in range(40):
        p.keyboard.press("Tab")
        if p.evaluate("document.activeElement.classList.contains('btn-ack')"):
            break
    else:
        raise AssertionError("Tab never reached the acknowledge button")
    p.keyboard.press("Enter")
    # Taken; the focus goes on to the next card still waiting, never to <body>.
    p.wait_for_selector(f'.incident[data-id="{first_id}"][data-state="acknowledged"]')
    p.wait_for_function(f"document.activeElement.closest('.incident')?.dataset.id === "
                        f"'{second_id}'", timeout=3000)
    assert p.evaluate("document.activeElement.classList.contains('btn-ack')")
    p.keyboard.press("Enter")
    p.wait_for_selector(f'.incident[data-id="{second_id}"][data-state="acknowledged"]')
    # Nothing else waits: the focus is on this incident's own "resolve".
    p.wait_for_function("document.activeElement.classList.contains('btn-resolve')",
                        timeout=3000)
    resolve_of = p.evaluate("document.activeElement.closest('.incident').dataset.id")
    p.keyboard.press("Enter")
    # The box opens on the note, not on an outcome: Enter, Enter never closes it as real.
    assert p.evaluate("document.activeElement.tagName") == "TEXTAREA"
    p.keyboard.press("Enter")
    p.keyboard.press("Enter")
    p.wait_for_timeout(500)
    assert len(stack.hub.store.incidents.active()) == 2  # type: ignore[union-attr]
    card = p.locator(f'.incident[data-id="{resolve_of}"]')
    assert card.locator(".btn-resolve-submit").is_disabled()
    p.keyboard.type("Kẻ gian đã bỏ chạy")
    assert "20/2000" in card.locator(".note-count").inner_text()
    p.keyboard.press("Tab")  # to the outcomes: none is chosen for the officer
    assert p.evaluate("document.activeElement.type") == "radio"
    assert card.locator("input[type=radio]:checked").count() == 0
    p.keyboard.press("ArrowDown")  # the second outcome: "false alarm"
    assert card.locator("input[type=radio]:checked").get_attribute("value") == "false_alarm"
    p.keyboard.press("Tab")
    assert "btn-resolve-submit" in focused(p)
    p.keyboard.press("Enter")
    p.wait_for_function(f"!document.querySelector('.incident[data-id=\"{resolve_of}\"]')",
                        timeout=5000)
    # The card went: the focus is on the other card, not on <body>.
    assert focused(p) != "BODY"
    assert p.evaluate("document.activeElement.closest('.incident')?.dataset.id") != resolve_of
    inc = stack.hub.store.incidents.get(resolve_of)  # type: ignore[union-attr,arg-type]
    assert inc is not None and (inc.outcome, inc.note) == ("false_alarm",
                                                           "Kẻ gian đã bỏ chạy")
    assert page.errors == []


def test_a_conflict_is_said_in_words_and_the_note_is_kept(page_factory: Any,
                                                          stack: Stack) -> None:
    page = page_factory(width=360, height=600)  # a phone: the cards fill the screen
    page.login("operator")
    p = page.page
    stack.village["na-sang-03"].press("fire")  # type: ignore[index]
    card = p.locator("#incident-list .incident").first
    card.wait_for()
    # "Silence gongs" leaves its trace on the card, and its toast covers no card's button.
    card.locator(".btn-silence").click()
    card.locator(".silenced").wait_for(state="visible")
    assert card.locator(".silenced").inner_text().startswith("Đã tắt mõ lúc ")
    assert "(operator)" in card.locator(".silenced").inner_text()
    toast = p.locator("#toast").bounding_box()
    assert toast is not None
    for box in p.evaluate("""() => [...document.querySelectorAll('.incident .btn')]
        .map((b) => { const r = b.getBoundingClientRect();
                      return {x: r.x, y: r.y, width: r.width, height: r.height}; })"""):
        apart = (toast["y"] + toast["height"] <= box["y"] or box["y"] + box["height"] <= toast["y"]
                 or toast["x"] + toast["width"] <= box["x"]
                 or box["x"] + box["width"] <= toast["x"])
        assert apart, ("the toast covers a card's button", toast, box)
    # Another officer closed it a moment before this one submits: the hub answers 409.
    body = ('{"error": {"code": "conflict", "message": "incident already resolved",'
            ' "message_vi": "Vụ việc đã được kết thúc"}}')
    p.route("**/resolve", lambda route: route.fulfill(
        status=409, content_type="application/json", body=body))
    card.locator(".btn-resolve").click()
    card.locator("textarea").fill("Đã gọi trưởng thôn")
    card.locator("input[value=real]").check()
    card.locator(".btn-resolve-submit").click()
    err = card.locator(".card-error")
    err.wait_for(state="visible")
    assert err.inner_text() == ("Không thực hiện được vì vụ việc vừa thay đổi: "
                                "Vụ việc đã được kết thúc")
    assert card.locator("textarea").input_value() == "Đã gọi trưởng thôn"
    page.errors[:] = [e for e in page.errors if "409" not in e]
    assert page.errors == []
