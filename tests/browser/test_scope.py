"""Officers see their own commune, in a real browser: alarms fire in two communes; the
officer limited to Vi Hương sees only Vi Hương's incident live (and the header names the
area), while a hub-wide officer sees both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.api import security
from tests.browser.conftest import Page
from tests.browser.stack import REGISTRY, USERS, Stack
from tests.support.broker import Mosquitto
from tests.support.hub_harness import wait_until
from tests.support.second_commune import with_second_commune

TWO_COMMUNES = with_second_commune(REGISTRY, "households = 11\nlat = 22.2210\nlon = 105.8800\n")
OFFICER = ("officer-vh", "officer-pass-123")


@pytest.fixture
def stack(broker: Mosquitto, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(broker, tmp_path, registry=TWO_COMMUNES).start()
    assert s.hub is not None
    s.hub.store.auth.create_user(OFFICER[0], security.hash_password(OFFICER[1]), "operator",
                                 "test", display_name="Công an xã Vi Hương",
                                 area="bach-thong/vi-huong")
    USERS["scoped"] = OFFICER
    yield s
    USERS.pop("scoped", None)
    s.stop()


def press(stack: Stack, node_id: str) -> None:
    """A household holds the fire button; returns once the hub has stored the alarm."""
    assert stack.hub is not None
    before = len(stack.hub.store.alarms.find(node_id=node_id))
    stack.village[node_id].press("fire")  # type: ignore[index]
    wait_until(lambda: len(stack.hub.store.alarms.find(node_id=node_id)) > before,  # type: ignore[union-attr]
               10, f"{node_id}'s alarm stored")


def test_a_scoped_officer_sees_only_their_communes_incident_live(
        page_factory: Any, stack: Stack) -> None:
    scoped: Page = page_factory(suffix="-scoped")
    wide: Page = page_factory(suffix="-wide")
    scoped.login("scoped")
    wide.login("operator")
    area = scoped.page.locator("#who-area")
    assert area.is_visible() and area.inner_text() == "Khu vực: Xã Vi Hương"
    assert not wide.page.locator("#who-area").is_visible()
    assert not scoped.page.locator('.tab[data-view="users"]').is_visible()

    # Sỹ Bình first, then Vi Hương: the live stream sends events in order, so once Vi
    # Hương's card is on the scoped board, Sỹ Bình's alarm has been through its stream.
    press(stack, "na-ca-01")
    press(stack, "na-sang-02")
    wide.page.wait_for_function(
        "document.querySelectorAll('#incident-list .incident').length === 2", timeout=5000)
    scoped.page.wait_for_selector("#incident-list .incident", timeout=5000)
    cards = scoped.page.locator("#incident-list .incident")
    assert cards.count() == 1
    assert "Thôn Nà Sang" in cards.first.inner_text()
    board = scoped.page.locator("#view-board").inner_text()
    assert "Nà Ca" not in board and "Sỹ Bình" not in board and "na-ca-01" not in board
    assert "Nà Ca" in wide.page.locator("#view-board").inner_text()
    scoped.shot("scoped-board", keep=True)

    # The map and troubles views: no node of the other commune either.
    scoped.view("map")
    scoped.page.wait_for_timeout(500)
    assert "na-ca-01" not in scoped.page.locator("#view-map").inner_text()
    assert "na-sang-02" in scoped.page.locator("#view-map").inner_text()
    wide.view("map")
    wide.page.wait_for_timeout(500)
    assert "na-ca-01" in wide.page.locator("#view-map").inner_text()
    # Broadcasts are offered for their own commune and its hamlets only.
    scoped.view("actions")
    options = scoped.page.locator("#bc-area option")
    names = [o.strip() for o in options.all_inner_texts()]
    assert names == ["Xã Vi Hương", "Thôn Nà Chá", "Thôn Nà Sang"], names
    # Acting on their own incident works as for anyone.
    scoped.view("board")
    cards.first.locator(".btn-ack").click()
    scoped.page.wait_for_selector('#incident-list .incident[data-state="acknowledged"]')
    assert not scoped.errors, scoped.errors
