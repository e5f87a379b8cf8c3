"""The operator dashboard: static files (HTML, native ES modules, CSS) shipped as package data.

No build step and no CDN: the hub serves the folder it is given as it is, and the
`tiengmo` command gives it `static_dir()`, so the board works on a commune office PC
with no internet. This package imports nothing of the project (ARCHITECTURE.md): the
demo's simulator routes that its panel calls live in `tiengmo.simpanel`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["static_dir"]


def static_dir() -> Path:
    """The folder holding index.html, js/, css/ and the icon (served at /static/)."""
    return Path(__file__).resolve().parent / "static"
