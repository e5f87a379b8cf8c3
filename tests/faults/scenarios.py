"""The six fault scenarios of issue 6, each a function returning its Figures.

The tests (tests/faults/test_*.py) run them at a small size and assert the
figures; bench/faults.py runs them at full size and prints the table. Each
scenario: a real Mosquitto, the hub as a real process on SQLite, the real node
agent; a burst of presses; the fault in the middle of it; then it waits until
every pressed alarm is stored in the database and acked, and counts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.faults.rig import (
    AckAudit,
    DbRef,
    Figures,
    HubProcess,
    Nodes,
    count_figures,
    db_alarm_ids,
    registry_text,
    wait_all_home,
)
from tests.faults.sounds import SoundWatch
from tests.support.broker import Mosquitto

HOME_TIMEOUT_S = 90.0


@dataclass
class Rig:
    workdir: Path
    broker: Mosquitto
    hub: HubProcess
    nodes: Nodes
    audit: AckAudit
    sounds: SoundWatch

    @property
    def db(self) -> DbRef:
        return self.hub.db_path

    def finish(self, fig: Figures, t_cleared: float, bound_s: float = HOME_TIMEOUT_S) -> Figures:
        """Wait for every alarm to be home, then count (recovery from `t_cleared`).

        Not home within `bound_s`: the hub did not heal by itself. It is restarted
        (restarts_needed = 1) so the rest can still be counted."""
        try:
            done = wait_all_home(self.nodes, self.db, bound_s)
        except AssertionError as exc:
            fig.restarts_needed = 1
            fig.notes["not_recovered"] = str(exc)[:200]
            self.hub.stop()
            self.hub.start()
            done = wait_all_home(self.nodes, self.db, HOME_TIMEOUT_S)
        fig.recover_s = round(max(0.0, done - t_cleared), 2)
        if not self.hub.alive:
            fig.hub_crashes += 1
        return count_figures(fig, self.nodes, self.db, self.audit, self.sounds)


@contextlib.contextmanager
def rig(workdir: Path, nodes: int, hamlets: int, *, broker_extra: str = "",
        db_dir: Path | None = None, headless: bool = True, db: DbRef | None = None,
        before_hub: Callable[[Mosquitto], None] | None = None,
        hub_prefix: list[str] | None = None, **hub_settings: Any) -> Iterator[Rig]:
    """`before_hub(broker)`: what the scenario does on the broker before the hub starts."""
    workdir.mkdir(parents=True, exist_ok=True)
    broker = Mosquitto(workdir, extra=broker_extra).start()
    registry = workdir / "registry.toml"
    registry.write_text(registry_text(nodes, hamlets), encoding="utf-8")
    hub = HubProcess(workdir, broker.url, registry,
                     db if db is not None else (db_dir or workdir) / "hub.db", prefix=hub_prefix,
                     **hub_settings)
    ns = Nodes(broker.url, workdir / "nodes", nodes, hamlets, headless=headless)
    audit: AckAudit | None = None
    sounds = SoundWatch(broker.url)
    try:
        if before_hub is not None:
            before_hub(broker)
        hub.start()
        ns.start()
        audit = AckAudit(ns, hub.db_path)
        yield Rig(workdir, broker, hub, ns, audit, sounds)
    finally:
        sounds.stop()
        if audit is not None:
            audit.stop()
        ns.stop()
        hub.stop()
        broker.stop()


def _burst_thread(r: Rig, total: int, spread_s: float) -> threading.Thread:
    t = threading.Thread(target=r.nodes.burst, args=(total, spread_s), daemon=True,
                         name="burst")
    t.start()
    return t


def _wait_stored(r: Rig, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(db_alarm_ids(r.db)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} alarms stored after {timeout} s")
        time.sleep(0.05)


# ---- 1. the hub killed mid-burst ----------------------------------------------------------

def hub_killed(workdir: Path, alarms: int = 300, nodes: int = 50,
               spread_s: float = 4.0) -> Figures:
    """SIGKILL the hub once a third of the burst is stored; start it again at once."""
    fig = Figures("hub SIGKILL mid-burst", nodes)
    with rig(workdir, nodes, max(1, nodes // 10)) as r:
        burst = _burst_thread(r, alarms, spread_s)
        _wait_stored(r, alarms // 3)
        r.hub.kill()
        fig.notes["stored_at_kill"] = len(db_alarm_ids(r.db))
        t0 = time.monotonic()
        r.hub.start()
        fig.notes["hub_restart_s"] = round(time.monotonic() - t0, 2)
        burst.join()
        r.nodes.wait_pressed(alarms)
        return r.finish(fig, t0)


# ---- 2. the broker restarted mid-burst ----------------------------------------------------

def broker_restarted(workdir: Path, alarms: int = 300, nodes: int = 50,
                     spread_s: float = 4.0, persistence: bool = True) -> Figures:
    """Restart Mosquitto (SIGTERM, start on the same port) with a third of the burst stored."""
    name = "with" if persistence else "without"
    fig = Figures(f"broker restart mid-burst ({name} persistence)", nodes)
    extra = ""
    if persistence:
        store = workdir / "mosquitto-db"
        store.mkdir(parents=True, exist_ok=True)
        extra = f"persistence true\npersistence_location {store}/\nautosave_interval 60"
    with rig(workdir, nodes, max(1, nodes // 10), broker_extra=extra) as r:
        burst = _burst_thread(r, alarms, spread_s)
        _wait_stored(r, alarms // 3)
        r.broker.stop()
        fig.notes["stored_at_stop"] = len(db_alarm_ids(r.db))
        time.sleep(1.0)   # presses go on while there is no broker
        r.broker.start()
        t0 = time.monotonic()
        burst.join()
        r.nodes.wait_pressed(alarms)
        return r.finish(fig, t0)


# ---- 4. a node cut off the network -------------------------------------------------------

def network_cut(workdir: Path, cut_s: float = 8.0, nodes: int = 6,
                presses_per_node: int = 3) -> Figures:
    """Half the nodes lose their network; they are pressed during the cut, then restored.

    Mock pins (gpiozero), so the gong is the real SafeOutput's pin."""
    fig = Figures(f"node network cut {cut_s:.0f} s", nodes)
    with rig(workdir, nodes, 1, headless=False) as r:
        cut = list(r.nodes.nodes)[: max(1, nodes // 2)]
        for nid in cut:
            r.nodes[nid].cut_network()   # type: ignore[union-attr]
        t_cut = time.monotonic()
        gap = max(0.3, (cut_s - 1.0) / presses_per_node)
        for i in range(presses_per_node):
            for nid in cut:
                r.nodes.press(nid, 1 + i % 2)
            time.sleep(gap)
        r.nodes.wait_pressed(len(cut) * presses_per_node)
        stored_during = len(db_alarm_ids(r.db))
        time.sleep(max(0.0, cut_s - (time.monotonic() - t_cut)))
        fig.notes["stored_during_cut"] = stored_during
        for nid in cut:
            r.nodes[nid].restore_network()   # type: ignore[union-attr]
        t0 = time.monotonic()
        return r.finish(fig, t0)


# ---- 5. the database locked -----------------------------------------------------------------

def database_locked(workdir: Path, lock_s: float = 6.0, alarms: int = 100,
                    nodes: int = 20) -> Figures:
    """Another connection holds an EXCLUSIVE transaction on the hub's SQLite for `lock_s`."""
    fig = Figures(f"database locked {lock_s:.0f} s", nodes)
    with rig(workdir, nodes, max(1, nodes // 10)) as r:
        conn = sqlite3.connect(str(r.db), isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            t_lock = time.monotonic()
            stored_before = len(db_alarm_ids(r.db))
            r.nodes.burst(alarms, min(2.0, lock_s / 2))
            r.nodes.wait_pressed(alarms)
            time.sleep(max(0.0, lock_s - (time.monotonic() - t_lock)))
            r.audit.check()   # while locked: nothing may be acked that is not stored
            _, acked = r.nodes.outbox_ids()
            fig.notes["acked_while_locked"] = len(acked)
            fig.notes["stored_while_locked"] = len(db_alarm_ids(r.db)) - stored_before
            fig.notes["health_while_locked"] = r.hub.health()[0]
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        t0 = time.monotonic()
        return r.finish(fig, t0)


# ---- 6. the hub's disk full ---------------------------------------------------------------

class Tmpfs:
    """A small tmpfs (root only), unmounted however the scenario ends."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       check=True, capture_output=True)

    def fill(self) -> Path:
        """Write zeros until the file system refuses; returns the filler file."""
        filler = self.path / "filler"
        chunk = b"\0" * 65536
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while True:
                try:
                    os.write(fd, chunk)
                except OSError:
                    break
            for size in (4096, 512, 1):   # the last crumbs too
                while True:
                    try:
                        os.write(fd, b"\0" * size)
                    except OSError:
                        break
        finally:
            os.close(fd)
        return filler

    def free(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)


def disk_full(workdir: Path, full_s: float = 6.0, alarms: int = 60, nodes: int = 10,
              size: str = "32M") -> Figures:
    """The hub's database on a tmpfs filled to the last byte, then freed.

    The tmpfs must hold more than SQLite's WAL grows to before its automatic
    checkpoint (1,000 pages, ~4 MB): on a 4 MB tmpfs the disk could still be
    genuinely full after the filler was freed, and the test failed in CI.
    """
    fig = Figures(f"hub disk full {full_s:.0f} s", nodes)
    fs = Tmpfs(workdir / "dbfs", size)
    try:
        with rig(workdir, nodes, max(1, nodes // 5), db_dir=fs.path) as r:
            filler = fs.fill()
            t_full = time.monotonic()
            stored_before = len(db_alarm_ids(r.db))
            r.nodes.burst(alarms, min(2.0, full_s / 2))
            r.nodes.wait_pressed(alarms)
            health: tuple[int, dict[str, Any]] = (0, {})
            while time.monotonic() - t_full < full_s:
                health = r.hub.health()
                if health[0] == 503:
                    break
                time.sleep(0.2)
            time.sleep(max(0.0, full_s - (time.monotonic() - t_full)))
            r.audit.check()
            _, acked = r.nodes.outbox_ids()
            fig.notes["acked_while_full"] = len(acked)
            fig.notes["stored_while_full"] = len(db_alarm_ids(r.db)) - stored_before
            fig.notes["health_while_full"] = health[0]
            fig.notes["health_status_while_full"] = health[1].get("status")
            fig.notes["store_error_while_full"] = str(health[1].get("store_error"))[:120]
            filler.unlink()
            t0 = time.monotonic()
            fig = r.finish(fig, t0)
            deadline = time.monotonic() + 30
            while r.hub.health()[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            fig.notes["health_after"] = r.hub.health()[0]
            fig.notes["logged_full"] = "full" in r.hub.log_text().lower()
            return fig
    finally:
        fs.unmount()
        shutil.rmtree(fs.path, ignore_errors=True)


def sigstop(hub: HubProcess) -> None:
    hub.signal(signal.SIGSTOP)


def sigcont(hub: HubProcess) -> None:
    hub.signal(signal.SIGCONT)
