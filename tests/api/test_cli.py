"""`tiengmo hub create-user` as an administrator runs it: a real process, a real database,
and the account it makes can log in through the API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from hub.api import security
from hub.store import Store


def create_user(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tiengmo.cli", "hub", "create-user", *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_create_user_makes_the_first_admin_with_a_hashed_password(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    pw = tmp_path / "pw"
    pw.write_text("Mật-khẩu-quản-trị-1\n", encoding="utf-8")
    r = create_user("--db", db, "--username", "Chief", "--role", "admin",
                    "--password-file", str(pw), "--display-name", "Công an xã")
    assert r.returncode == 0, r.stderr
    assert "chief (admin)" in r.stdout
    with Store.open(db) as store:
        found = store.auth.password_hash("chief")
        assert found is not None
        user, digest = found
        assert (user.role, user.display_name) == ("admin", "Công an xã")
        assert digest.startswith("$argon2id$")
        assert security.verify_password(digest, "Mật-khẩu-quản-trị-1")
        with store.engine.connect() as conn:
            actions = [row[0] for row in conn.execute(text("select action from audit"))]
        assert "create_user" in actions
    again = create_user("--db", db, "--username", "chief", "--password-file", str(pw))
    assert again.returncode == 1 and "already exists" in again.stderr
    assert "--update" in again.stderr
    pw.write_text("a-new-password-2\n", encoding="utf-8")
    updated = create_user("--db", db, "--username", "chief", "--password-file", str(pw),
                          "--update")
    assert updated.returncode == 0, updated.stderr
    with Store.open(db) as store:
        found = store.auth.password_hash("chief")
        assert found is not None and security.verify_password(found[1], "a-new-password-2")


def test_create_user_refuses_bad_input_and_makes_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    pw = tmp_path / "pw"
    pw.write_text("short\n", encoding="utf-8")
    cases = [
        (("--db", db, "--username", "x y", "--password-file", str(pw)), "user name"),
        (("--db", db, "--username", "ok-name", "--password-file", str(pw)), "at least 10"),
        (("--db", db, "--username", "ok-name", "--password-file", str(tmp_path / "none")),
         "none"),
        (("--db", db, "--username", "ok-name"), "--password-file"),   # no terminal to ask
        (("--username", "ok-name", "--password-file", str(pw)), "--db"),
    ]
    for args, says in cases:
        r = create_user(*args)
        assert r.returncode != 0, args
        assert says in r.stderr, (args, r.stderr)
    with Store.open(db) as store:
        assert store.auth.count_users() == 0


def test_create_user_reads_the_database_from_the_config_file(tmp_path: Path) -> None:
    db = tmp_path / "from-config.db"
    config = tmp_path / "hub.toml"
    config.write_text(f'db_url = "sqlite:///{db}"\ndata_dir = "{tmp_path / "data"}"\n',
                      encoding="utf-8")
    pw = tmp_path / "pw"
    pw.write_text("operator-password\n", encoding="utf-8")
    r = create_user("--config", str(config), "--username", "night", "--role", "operator",
                    "--password-file", str(pw))
    assert r.returncode == 0, r.stderr
    with Store.open(f"sqlite:///{db}") as store:
        user = store.auth.user("night")
        assert user is not None and user.role == "operator"


def test_create_user_limits_an_officer_to_an_area_of_the_registry(tmp_path: Path) -> None:
    from tests.support.hub_harness import COMMUNE, write_registry

    db = f"sqlite:///{tmp_path / 'hub.db'}"
    registry = write_registry(tmp_path)
    pw = tmp_path / "pw"
    pw.write_text("officer-password-1\n", encoding="utf-8")
    # The database knows no areas yet: the registry file is asked.
    bad = create_user("--db", db, "--username", "vh", "--role", "operator",
                      "--password-file", str(pw), "--area", "bach-thong/nowhere",
                      "--registry", str(registry))
    assert bad.returncode == 1
    assert "'bach-thong/nowhere' is not an area of the registry" in bad.stderr
    unknown = create_user("--db", db, "--username", "vh", "--password-file", str(pw),
                          "--area", COMMUNE)
    assert unknown.returncode == 1 and "--registry" in unknown.stderr
    r = create_user("--db", db, "--username", "vh", "--role", "operator",
                    "--password-file", str(pw), "--area", COMMUNE + "/",
                    "--registry", str(registry))
    assert r.returncode == 0, r.stderr
    assert f"vh (operator, {COMMUNE})" in r.stdout
    # A new password with --update keeps the area; --area "" makes the user hub-wide.
    again = create_user("--db", db, "--username", "vh", "--role", "operator",
                        "--password-file", str(pw), "--update")
    assert again.returncode == 0, again.stderr
    with Store.open(db) as store:
        user = store.auth.user("vh")
        assert user is not None and user.area == COMMUNE
        assert store.auth.count_users() == 1
    wide = create_user("--db", db, "--username", "vh", "--role", "operator",
                       "--password-file", str(pw), "--update", "--area", "")
    assert wide.returncode == 0, wide.stderr
    with Store.open(db) as store:
        user = store.auth.user("vh")
        assert user is not None and user.area is None
