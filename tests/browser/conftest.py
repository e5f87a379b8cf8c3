"""Fixtures for the dashboard's browser tests: the whole loop (tests/browser/stack.py) and
Debian's headless Chromium driven by Playwright (never `playwright install`: no downloads).

Screenshots go to tests/browser/artifacts/ (gitignored); a few are copied to
/tmp/tiengmo-shots/ for a human to look at.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.stack import USERS, Stack
from tests.support.broker import Mosquitto

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"
SHOTS = Path("/tmp/tiengmo-shots")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def stack(broker: Mosquitto, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(broker, tmp_path).start()
    yield s
    s.stop()


class Page:
    """A Playwright page plus what the tests need around it: errors seen, screenshots."""

    def __init__(self, page: Any, stack: Stack, name: str) -> None:
        self.page = page
        self.stack = stack
        self.name = name
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", self._console)

    def _console(self, msg: Any) -> None:
        # The first GET /api/v1/session answers 401 before login: that one is expected.
        if msg.type == "error" and "401" not in msg.text:
            self.errors.append(f"console: {msg.text}")

    def login(self, role: str = "operator") -> None:
        name, password = USERS[role]
        p = self.page
        p.goto(self.stack.url + "/")
        p.fill("#login-user", name)
        p.fill("#login-pass", password)
        p.click("#login-form button[type=submit]")
        p.wait_for_selector("#tabs:not([hidden])")
        p.wait_for_selector("#conn-pill.pill-ok")

    def view(self, name: str) -> None:
        self.page.click(f'.tab[data-view="{name}"]')
        self.page.wait_for_selector(f"#view-{name}:not([hidden])")

    def shot(self, label: str, keep: bool = False) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        if keep:
            SHOTS.mkdir(exist_ok=True)
            shutil.copy(path, SHOTS / path.name)
        return path


@pytest.fixture
def page_factory(chromium: Any, stack: Stack,
                 request: pytest.FixtureRequest) -> Iterator[Any]:
    contexts: list[Any] = []
    pages: list[Page] = []

    def make(width: int = 1280, height: int = 860, suffix: str = "") -> Page:
        ctx = chromium.new_context(viewport={"width": width, "height": height},
                                   locale="vi-VN")
        contexts.append(ctx)
        page = Page(ctx.new_page(), stack, request.node.name + suffix)
        pages.append(page)
        return page

    yield make
    for p in pages:
        with contextlib.suppress(Exception):  # a page the test closed has nothing to show
            p.shot("end")
    for c in contexts:
        c.close()


@pytest.fixture
def page(page_factory: Any) -> Page:
    return page_factory()  # type: ignore[no-any-return]
