"""Backup and restore of the hub's database, while the hub runs.

    tiengmo hub backup  --db URL --out FILE
    tiengmo hub restore --db URL --from FILE [--force]

SQLite: SQLite's online backup API (`sqlite3.Connection.backup`, in one step),
which copies a consistent snapshot as of its start while the hub keeps writing
(WAL: the hub's writer is never blocked by the copy's read transaction). Every
alarm the hub acked before the backup began is in it, since an ack follows the
commit. The copy is written beside FILE, switched out of WAL mode (one
self-contained file), checked with `PRAGMA integrity_check`, fsynced and then
renamed into place, so a FILE that exists is a whole backup.

PostgreSQL: `pg_dump --format=custom` (one repeatable-read snapshot of a running
database) and `pg_restore --clean --if-exists`; both must be installed (the
postgresql-client package).

Restore refuses a database that already holds tiengmo tables unless `--force`:
restoring over a live alarm log is never done by accident. Stop the hub first;
a restore into a database a running hub uses is refused (its leader lock is held).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from .db.engine import normalize_url
from .errors import HubError

# Owner only: a backup holds webhook secrets and password hashes in clear.
BACKUP_MODE = 0o600

SQLITE_TABLES = ("alembic_version", "alarms", "incidents", "nodes")


class BackupError(HubError):
    """A backup or restore could not be done; the message says why."""


@dataclass(frozen=True)
class Target:
    backend: str           # "sqlite" or "postgresql"
    path: Path | None      # SQLite file
    libpq_url: str | None  # PostgreSQL URL for pg_dump/pg_restore


def target(db_url: str) -> Target:
    try:
        url = make_url(normalize_url(db_url))
    except Exception as exc:  # sqlalchemy's ArgumentError and friends
        raise BackupError(f"--db {db_url!r} is not a database URL: {exc}") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise BackupError("--db: give a SQLite file (sqlite:////var/lib/tiengmo/hub.db)")
        return Target("sqlite", Path(url.database).expanduser(), None)
    if backend == "postgresql":
        plain = url.set(drivername="postgresql")
        return Target("postgresql", None, plain.render_as_string(hide_password=False))
    raise BackupError(f"--db {db_url!r}: only sqlite and postgresql are supported")


# ---- SQLite --------------------------------------------------------------------------------

def _sqlite_tables(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    finally:
        conn.close()


def _check_sqlite_file(path: Path) -> None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not a SQLite database ({exc})") from None
    finally:
        conn.close()
    if not result or result[0] != "ok":
        raise BackupError(f"{path}: integrity check failed: {result}")
    missing = [t for t in SQLITE_TABLES if t not in tables]
    if missing:
        raise BackupError(f"{path}: not a tiengmo hub database (no {', '.join(missing)} table)")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _private_part(out: Path) -> Path:
    """An empty FILE.part readable by its owner only, made before a byte is written.

    A backup holds webhook secrets and password hashes in clear: it is never
    0644, not even for the moment between writing and a chmod.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    part.unlink(missing_ok=True)
    os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, BACKUP_MODE))
    os.chmod(part, BACKUP_MODE)   # whatever the umask did to the mode above
    return part


def backup_sqlite(src: Path, out: Path) -> int:
    if not src.exists():
        raise BackupError(f"{src}: no such database")
    part = _private_part(out)
    source = sqlite3.connect(str(src), timeout=30)
    dest = sqlite3.connect(str(part))
    try:
        source.backup(dest)   # pages=-1: all at once, one consistent snapshot
        dest.execute("PRAGMA journal_mode=DELETE")   # one self-contained file
    except sqlite3.Error as exc:
        part.unlink(missing_ok=True)
        raise BackupError(f"backup of {src} failed: {exc}") from None
    finally:
        dest.close()
        source.close()
    _check_sqlite_file(part)
    os.chmod(part, BACKUP_MODE)
    _fsync(part)
    part.replace(out)
    return out.stat().st_size


def _hub_running_on(path: Path) -> bool:
    """True if a hub holds the leader lock beside this SQLite file (hub.leadership)."""
    lock = path.with_name(path.name + ".leader")
    if not lock.exists():
        return False
    with open(lock, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return False


def restore_sqlite(src: Path, dst: Path, force: bool) -> None:
    if not src.exists():
        raise BackupError(f"{src}: no such backup file")
    _check_sqlite_file(src)
    if dst.exists() and dst.stat().st_size > 0:
        if _hub_running_on(dst):
            raise BackupError(f"{dst}: a hub is running on this database; stop it first")
        if _sqlite_tables(dst) and not force:
            raise BackupError(f"{dst}: the database is not empty; add --force to replace it "
                              "with the backup")
    dst.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    dest = sqlite3.connect(str(dst), timeout=30)
    try:
        source.backup(dest)
    except sqlite3.Error as exc:
        raise BackupError(f"restore into {dst} failed: {exc}") from None
    finally:
        dest.close()
        source.close()


# ---- PostgreSQL ----------------------------------------------------------------------------

def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise BackupError(f"{name} is not installed (apt-get install postgresql-client)")
    return exe


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} failed: {proc.stderr.strip()[-500:]}")


def backup_postgres(url: str, out: Path) -> int:
    part = _private_part(out)   # pg_dump truncates it and keeps its mode
    _run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={part}", url])
    os.chmod(part, BACKUP_MODE)
    _fsync(part)
    part.replace(out)
    return out.stat().st_size


def restore_postgres(src: Path, url: str, force: bool) -> None:
    if not src.exists():
        raise BackupError(f"{src}: no such backup file")
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM information_schema.tables "
                           "WHERE table_schema = 'public'").fetchone()
    if row and row[0] and not force:
        raise BackupError("the database is not empty; add --force to replace it with the "
                          "backup")
    _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
          f"--dbname={url}", str(src)])


# ---- the commands ----------------------------------------------------------------------------

def backup(db_url: str, out: Path) -> int:
    """Back the database up into `out`; returns the size in bytes."""
    t = target(db_url)
    if t.path is not None:
        return backup_sqlite(t.path, out)
    assert t.libpq_url is not None
    return backup_postgres(t.libpq_url, out)


def restore(db_url: str, src: Path, *, force: bool = False) -> None:
    t = target(db_url)
    if t.path is not None:
        restore_sqlite(src, t.path, force)
    else:
        assert t.libpq_url is not None
        restore_postgres(src, t.libpq_url, force)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser("backup", help="back the database up while the hub runs",
                       description="Copy a consistent snapshot of the hub's database into "
                       "FILE (SQLite online backup, or pg_dump). Sao lưu cơ sở dữ liệu.")
    b.add_argument("--db", required=True, metavar="URL", help="the hub's database URL")
    b.add_argument("--out", required=True, metavar="FILE", help="backup file to write")
    r = sub.add_parser("restore", help="restore a backup into a database (hub stopped)",
                       description="Restore FILE into the database; refuses a non-empty "
                       "database without --force. Khôi phục cơ sở dữ liệu.")
    r.add_argument("--db", required=True, metavar="URL", help="the database to restore into")
    r.add_argument("--from", dest="src", required=True, metavar="FILE", help="backup file")
    r.add_argument("--force", action="store_true",
                   help="replace what the database holds with the backup")


def run_command(args: argparse.Namespace) -> int:
    try:
        if args.hub_command == "backup":
            size = backup(args.db, Path(args.out))
            print(f"backup of {_safe(args.db)} written to {args.out} ({size:,} bytes)")
        else:
            restore(args.db, Path(args.src), force=args.force)
            print(f"{args.src} restored into {_safe(args.db)}")
    except BackupError as exc:
        print(f"tiengmo hub {args.hub_command}: {exc}", file=sys.stderr)
        return 1
    return 0


def _safe(url: str) -> str:
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, cred = head.partition("://")
    return f"{scheme}://{cred.split(':', 1)[0]}:***@{tail}"
