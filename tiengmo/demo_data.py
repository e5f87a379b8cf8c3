"""The demo's data folder (./tiengmo-data by default): what is in it, and a clean start.

    TIENGMO-DEMO.txt   says the folder is the demo's (a re-run may clear it)
    registry.toml      the demo district's registry, as the hub reads it
    passwords/         one MQTT password per node and one for the hub (mode 0600)
    hub/               the hub's SQLite database (hub.db) and its secret
    nodes/<id>/        each simulated node's outbox
    broker/            Mosquitto's generated config, logins, ACL and log

A re-run starts clean by default: the previous run's entries above are removed
(alarms, incidents and troubles of a run a user has stopped watching).
`--resume` keeps the database and the outboxes instead and says so. Only a
folder the demo made is ever cleared:
anything else in it stays, and a non-empty folder that is not the demo's is
refused, untouched.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

MARKER = "TIENGMO-DEMO.txt"
# What the demo writes, and so what a fresh start removes ("node-password": the
# single shared node password of earlier versions).
OWNED = ("registry.toml", "node-password", "passwords", "hub", "nodes", "broker")
KEPT_ON_RESUME = ("hub", "nodes")
_MARKER_TEXT = (
    "Thư mục này do `tiengmo demo` tạo ra; mỗi lần chạy lại, dữ liệu của lần trước bị xoá\n"
    "(trừ khi chạy với --resume).\n"
    "This folder is written by `tiengmo demo`; a re-run clears the previous run's data\n"
    "(unless run with --resume). Files of your own here are left alone.\n")


class DemoDataError(ValueError):
    """The data folder cannot be used by the demo (it is someone else's)."""


@dataclass(frozen=True)
class PreviousRun:
    """What the previous run left in the hub's database (None: unreadable or absent)."""

    alarms: int | None
    incidents: int | None

    def describe(self) -> str:
        if self.alarms is None or self.incidents is None:
            return "its database"
        return f"its database (alarms: {self.alarms}, incidents: {self.incidents})"


def _is_demo_folder(data: Path) -> bool:
    # Folders of earlier versions have no marker but the registry and hub/.
    return (data / MARKER).is_file() or ((data / "registry.toml").is_file()
                                         and (data / "hub").is_dir())


def _previous(data: Path) -> PreviousRun | None:
    db = data / "hub" / "hub.db"
    if not db.is_file():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            alarms = int(con.execute("select count(*) from alarms").fetchone()[0])
            incidents = int(con.execute("select count(*) from incidents").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return PreviousRun(None, None)
    return PreviousRun(alarms, incidents)


def prepare(data: Path, *, resume: bool) -> str | None:
    """Make `data` ready for a run; return what to tell the user about it (None: new)."""
    if data.exists() and not data.is_dir():
        raise DemoDataError(f"--data {data}: not a folder")
    if data.is_dir() and any(data.iterdir()) and not _is_demo_folder(data):
        raise DemoDataError(f"--data {data}: the folder is not empty and was not made by "
                            "tiengmo demo; nothing was changed (choose an empty or new folder)")
    data.mkdir(parents=True, exist_ok=True)
    previous = _previous(data)
    had_run = any((data / name).exists() for name in OWNED)
    (data / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
    if resume:
        if previous is None:
            return (f"--resume: không có lần chạy trước / no previous run in {data}: "
                    "starting fresh")
        return (f"TIẾP TỤC lần chạy trước / RESUMING the previous run in {data}: "
                f"{previous.describe()} and the nodes' outboxes are kept; every node gets a "
                "fresh grace from the hub's connect, so none is reported lost unless it "
                "stays away")
    for name in OWNED:
        path = data / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    if not had_run:
        return None
    what = previous.describe() if previous is not None else "its files"
    return (f"bắt đầu mới / starting fresh in {data}: the previous run's data was removed "
            f"({what}; outboxes, logins); --resume keeps it")
