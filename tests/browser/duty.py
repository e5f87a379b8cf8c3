"""Helpers for the duty officer's board tests: spies put in the page before it loads
(audio strikes, vibration), and checks that text on screen is words, not raw data."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ARTIFACTS = Path(__file__).parent / "artifacts"

# Counts every oscillator the page starts (each gong strike starts several): the
# boundary where the page asks the browser to make a sound. Also records vibrations.
SPIES = """
(() => {
  window.__strikes = 0;
  window.__vibrations = [];
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...a) {
    window.__strikes += 1;
    return start.apply(this, a);
  };
  Object.defineProperty(Navigator.prototype, 'vibrate', {
    configurable: true, value: function (p) { window.__vibrations.push(p); return true; } });
})();
"""

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
EPOCH_MS = re.compile(r"\b1[6-9]\d{11}\b")
RAW_KEY = re.compile(r"\b(since_ms|cmd_id|incident_id|nodes):")


def raw_data_in(text: str) -> list[str]:
    """Ids, area paths and epoch milliseconds that leaked onto the screen."""
    found = UUID.findall(text) + EPOCH_MS.findall(text) + RAW_KEY.findall(text)
    found += [w for w in text.split() if w.count("/") >= 1 and "bach-thong" in w]
    return found


def strikes(page: Any) -> int:
    return int(page.evaluate("window.__strikes"))


def save(page: Any, name: str) -> Path:
    """A small PNG (the viewport only) in the artifacts; with TIENGMO_UPDATE_SCREENSHOTS=1
    also in docs/screenshots/ (the committed ones docs/operator.md shows), so an ordinary
    test run leaves the working tree clean."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=False)
    if os.environ.get("TIENGMO_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / name)
    return path
