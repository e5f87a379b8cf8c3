"""Issue 13: axe-core (bundled by axe-playwright-python, no download) finds 0 violations
on every view, the simulator panel included, with an alarm, a drill, a trouble and an
open resolve box on screen; at desk width and on a 360-px phone, in both languages.
Also: the simulator panel works after a reload on #/sim and shows names, not paths."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.browser.duty import raw_data_in
from tests.browser.stack import NA_CHA, Stack

VIEWS = ("board", "map", "troubles", "history", "actions", "users", "sim")


def violations(p: Any) -> list[str]:
    # Animations stopped (the officer's "reduce motion"), so colours are read at rest.
    p.emulate_media(reduced_motion="reduce")
    result = Axe().run(p)
    return [f"{v['id']}: {v['help']} @ {[n['target'] for n in v['nodes']][:4]}"
            for v in result.response["violations"]]


def busy_board(page: Any, stack: Stack) -> None:
    p = page.page
    stack.village["na-sang-01"].press("fire")  # type: ignore[index]
    p.wait_for_selector("#incident-list .incident")
    p.evaluate("import('/static/js/api.js').then((m) => m.post('/drills', "
               f"{{area: '{NA_CHA}', duration_s: 30}}))")
    p.wait_for_selector("#incident-list .incident.is-drill")
    stack.village["na-cha-02"].kill()  # type: ignore[index]
    p.wait_for_selector("#conn-pill.pill-warn", timeout=10_000)
    p.locator("#incident-list .incident").first.locator(".btn-resolve").click()


@pytest.mark.parametrize("width", [1280, 360])
def test_axe_finds_nothing_on_any_view(page_factory: Any, stack: Stack, width: int) -> None:
    page = page_factory(width=width, height=800)
    p = page.page
    p.goto(stack.url + "/")
    p.wait_for_selector("#login-user:focus")
    found = [f"login: {v}" for v in violations(p)]
    page.login("admin")
    busy_board(page, stack)
    for lang in ("vi", "en"):
        if lang == "en":
            p.click("#btn-lang")
        for view in VIEWS:
            page.view(view)
            p.wait_for_timeout(400)  # lists fetched on opening are drawn
            found += [f"{lang} {view}: {v}" for v in violations(p)]
    assert found == [], "\n".join(found)
    assert page.errors == []


def test_sim_panel_after_a_reload_on_its_own_address(page: Any, stack: Stack) -> None:
    page.login("operator")
    p = page.page
    p.goto(stack.url + "/#/sim")
    p.reload()
    p.wait_for_selector("#view-sim:not([hidden]) .sim-node .btn-press", timeout=10_000)
    assert p.locator('.tab[data-view="sim"]').get_attribute("aria-current") == "page"
    text = p.locator("#view-sim").inner_text()
    assert "Thôn Nà Sang" in text and "Nhà văn hoá Nà Sang" in text
    assert raw_data_in(text) == [], text
    p.click('.sim-node[data-node="na-sang-01"] .btn-press[data-kind="theft"]')
    p.wait_for_selector('.sim-node.is-sounding[data-node="na-sang-01"] .gong-lamp.on',
                        timeout=8000)
    # The lamp's words are readable: white on the darker orange (was 3.06:1 on #e07800).
    colours = p.evaluate("""() => { const s = getComputedStyle(
        document.querySelector('.gong-lamp.on')); return [s.color, s.backgroundColor]; }""")
    assert colours == ["rgb(255, 255, 255)", "rgb(154, 71, 0)"]
    assert page.errors == []
