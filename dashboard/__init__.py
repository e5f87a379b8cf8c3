"""The operator dashboard: static files (HTML, native ES modules, CSS) shipped as package data.

No build step and no CDN: the hub serves `static_dir()` as it is, so the board
works on a commune office PC with no internet. `simpanel` adds the demo's
simulator routes; it is mounted by `tiengmo demo`, never by the hub itself.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["static_dir"]


def static_dir() -> Path:
    """The folder holding index.html, js/, css/ and the icon (served at /static/)."""
    return Path(__file__).resolve().parent / "static"
