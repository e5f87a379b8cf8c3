"""Run by test_sqlite_readonly.py in a process WITHOUT CAP_DAC_OVERRIDE (setpriv), so the
file modes bite even though the tests run as root: the hub's store on a real SQLite
file; the files and their folder made read-only (as a failing SD card's file system
is); a write; the files writable again; writes go on. Prints one JSON line."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from hub.store import Store


def _modes(folder: Path, file_mode: int, dir_mode: int) -> None:
    for f in folder.iterdir():
        os.chmod(f, file_mode)
    os.chmod(folder, dir_mode)


def main(folder: Path) -> dict[str, object]:
    store = Store.open(f"sqlite:///{folder / 'hub.db'}")
    out: dict[str, object] = {}

    def write(tag: str) -> bool:
        try:
            store.troubles.open("probe", tag, {}, 1)
            return True
        except Exception as exc:   # the store's errors are what is measured
            out.setdefault("errors", []).append(f"{type(exc).__name__}: {exc}"[:200])  # type: ignore[union-attr]
            return False

    out["before"] = write("before")
    _modes(folder, 0o444, 0o555)
    # A connection opened now (the pool opens one whenever more threads write or read
    # at once than it holds) is opened READ-ONLY by SQLite, silently.
    store.engine.dispose()
    out["during"] = [write(f"during-{i}") for i in range(3)]
    out["health_during"] = store.db.health.error
    _modes(folder, 0o644, 0o755)
    t0 = time.monotonic()
    ok = False
    while time.monotonic() - t0 < 10 and not ok:
        ok = write("after")
        if not ok:
            time.sleep(0.1)
    out["after"] = ok
    out["recover_s"] = round(time.monotonic() - t0, 3)
    out["health_after"] = store.db.health.error
    out["stored"] = sorted(t.subject for t in store.troubles.find(open_only=True))
    store.close()
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
