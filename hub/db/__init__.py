"""The hub's database: engine (URL mapping, SQLite pragmas), typed models, migrations."""

from __future__ import annotations

from .engine import make_engine, normalize_url
from .migrate import current_revision, downgrade, head_revision, upgrade

__all__ = ["current_revision", "downgrade", "head_revision", "make_engine", "normalize_url",
           "upgrade"]
