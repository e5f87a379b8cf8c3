"""A secret kept in a file of its own (a broker password): its first line, read when needed.

Standard library only, so the node and the sentinel read password files the same way
without importing each other. An empty file is an empty password, not an error.
"""

from __future__ import annotations

from pathlib import Path


def first_line(path: Path) -> str:
    """The file's first line, stripped ("" for an empty file); OSError if unreadable."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].strip() if lines else ""
