"""Issue 15, point 3, in the browser: a commune's power cut (the simulated nodes' mains
input dropped) is ONE power event on the board, in words, in both languages; the
map shows each node's battery beside it, and a low one in red."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.duty import save
from tests.browser.stack import Stack
from tests.support.broker import Mosquitto

COMMUNE = "bach-thong/vi-huong"


@pytest.fixture
def stack(broker: Mosquitto, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(broker, tmp_path,
              hub_overrides={"heartbeat_s": 1.0, "power_cut_window_s": 3.0,
                             "low_battery_pct": 20.0},
              node_timers={"heartbeat_s": 1.0}).start()
    yield s
    s.stop()


def test_a_communes_power_cut_is_one_event_in_words_with_batteries_on_the_map(
        page: Any, stack: Stack) -> None:
    assert stack.village is not None
    page.login("operator")
    p = page.page
    nodes = stack.village.in_area(COMMUNE)
    for i, node in enumerate(nodes):
        node.set_battery(15.0 if node.node_id == "na-sang-01" else 80.0 - i)
    # The simulator panel cuts the commune's grid feeder, as the demo lets anyone do.
    page.view("sim")
    cut_button = p.locator(f'#sim-power button[data-area="{COMMUNE}"]')
    cut_button.wait_for(timeout=10_000)
    assert cut_button.inner_text() == "Cắt điện lưới Xã Vi Hương"
    t0 = time.monotonic()
    cut_button.click()
    p.wait_for_function("document.querySelectorAll('#sim-grid .sim-node.on-battery').length"
                        " === 5", timeout=5_000)
    assert all(not n.mains for n in nodes)
    words = "Mất điện lưới ở Xã Vi Hương, 5 nút chạy pin"
    p.wait_for_function(
        f"[...document.querySelectorAll('#sys-items .sys-power')].map(e => e.textContent)"
        f".some(t => t.includes({words!r}))", timeout=10_000)
    print(f"\npower cut -> on the board: {time.monotonic() - t0:.1f} s")
    assert p.locator("#sys-items .sys-power").count() == 1   # ONE event, not five

    page.view("troubles")
    cut = p.locator('#trouble-list li.trouble.open[data-kind="power_cut"]')
    cut.wait_for(timeout=10_000)
    assert words in cut.locator(".trouble-what").inner_text()
    # The nodes and their batteries under it (batteries follow with the next heartbeats).
    p.wait_for_function(
        "document.querySelector('#trouble-list li.trouble.open[data-kind=\"power_cut\"] "
        ".trouble-where').textContent.includes('Nhà văn hoá Nà Sang (15%)')", timeout=10_000)
    time.sleep(3.0 + 2)   # past the window: still no per-node on_battery beside it
    assert p.locator('#trouble-list li.trouble.open[data-kind="on_battery"]').count() == 0
    low = p.locator('#trouble-list li.trouble.open[data-kind="low_battery"]')
    low.wait_for(timeout=10_000)
    assert "Pin yếu (pin 15%)" in low.locator(".trouble-what").inner_text()

    page.view("map")
    p.wait_for_function("document.querySelectorAll('#node-map g.node-on-battery').length === 5",
                        timeout=10_000)
    low_dot = p.locator('#node-map g[data-node="na-sang-01"] text.battery-low')
    assert low_dot.text_content() == "pin 15%"
    row = p.locator('#health tr[data-node="na-sang-01"]')
    assert "Đang chạy pin" in row.inner_text() and "15%" in row.inner_text()
    save(p, "power-cut-map.png")

    p.click("#btn-lang")
    page.view("troubles")
    assert "Mains power lost in Xã Vi Hương, 5 nodes on battery" in cut.locator(
        ".trouble-what").inner_text()

    # Mains back, from the panel: the event clears; on the map only the low battery
    # stays marked (it is still low until it charges past the threshold).
    page.view("sim")
    p.locator(f'#sim-power button[data-area="{COMMUNE}"][data-cut="0"]').click()
    p.wait_for_function("document.querySelectorAll('#sys-items .sys-power').length === 0",
                        timeout=10_000)
    page.view("map")
    p.wait_for_function("[...document.querySelectorAll('#node-map g.node-on-battery')]"
                        ".map(g => g.dataset.node).join() === 'na-sang-01'", timeout=10_000)
    assert page.errors == []
