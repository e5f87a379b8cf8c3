"""The hub's defaults that the command line shows before any setting is loaded.

Standard library only, so `tiengmo --help` can print them without importing the
settings machinery (pydantic) or anything else of the hub.
"""

from __future__ import annotations

import os
from pathlib import Path

BROKER_URL = "mqtt://127.0.0.1:1883"
HTTP_HOST, HTTP_PORT = "127.0.0.1", 8080
PRODUCTION_DATA_DIR = Path("/var/lib/tiengmo")
DB_FILE = "hub.db"


def default_data_dir(environment: str) -> Path:
    """/var/lib/tiengmo in production (the systemd unit's StateDirectory), else the user's
    XDG data directory, so `tiengmo hub` works for a developer without root."""
    if environment == "production":
        return PRODUCTION_DATA_DIR
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "tiengmo"


def default_db_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir.resolve() / DB_FILE}"
