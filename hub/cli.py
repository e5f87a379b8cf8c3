"""`tiengmo hub`: run the hub against an existing broker (more subcommands later).

    tiengmo hub [run] --broker URL --db URL --registry FILE [--http HOST:PORT]
    tiengmo hub [run] --config FILE
    tiengmo hub create-user (--db URL | --config FILE) --username NAME --role admin
                            [--password-file FILE]
    tiengmo hub backup --db URL --out FILE             (while the hub runs; hub/backup.py)
    tiengmo hub restore --db URL --from FILE [--force] (hub stopped)

`run` is the default, so `tiengmo hub --config hub.toml` runs the hub;
`create-user` makes an account (the first admin) straight in the database. Options
override the config file, which overrides the defaults. SIGTERM or Ctrl-C
stops the hub cleanly: its death is published, the database closed.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

RUN_HELP = "run the hub (the default when no subcommand is given)"


def _add_run_options(p: argparse.ArgumentParser, *, nested: bool) -> None:
    # In the nested `run` parser, SUPPRESS keeps its defaults from wiping out
    # options given before the word `run`.
    d: dict[str, Any] = {"default": argparse.SUPPRESS} if nested else {}
    g = p.add_argument_group("run options")
    g.add_argument("--config", metavar="FILE", help="hub settings file (TOML, see "
                   "docs/hub-config.md); also $TIENGMO_CONFIG", **d)
    g.add_argument("--broker", metavar="URL", help="MQTT broker, e.g. mqtt://127.0.0.1:1883 "
                   "or mqtts://broker:8883", **d)
    g.add_argument("--db", metavar="URL", help="database, e.g. sqlite:////var/lib/tiengmo/hub.db"
                   " or postgresql+psycopg://user@host/tiengmo", **d)
    g.add_argument("--registry", metavar="FILE", help="registry of areas and nodes (TOML)", **d)
    g.add_argument("--http", metavar="HOST:PORT", help="serve the HTTP app here "
                   "(default: the settings' http_host:http_port)", **d)
    g.add_argument("--no-http", action="store_true", help="do not serve HTTP", **d)
    g.add_argument("--hub-id", metavar="ID", help="this hub's id (default: the host name)", **d)
    g.add_argument("--data-dir", metavar="DIR", help="where the hub keeps its secret and "
                   "default SQLite database", **d)
    g.add_argument("--shared-group", metavar="NAME", help="share the alarm stream with other "
                   "replicas through MQTT 5 shared subscriptions in this group", **d)
    g.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO (default), WARNING", **d)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Run the tiengmo hub against an MQTT broker: store every alarm, "
                          "sound the gongs, supervise the nodes. "
                          "Chạy máy chủ tiếng mõ: lưu báo động, đánh mõ, giám sát các nút.")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ("examples:\n"
                     "  tiengmo hub --broker mqtt://127.0.0.1:1883 --db sqlite:///hub.db "
                     "--registry village.toml --http 127.0.0.1:8080\n"
                     "  tiengmo hub run --config /etc/tiengmo/hub.toml")
    _add_run_options(parser, nested=False)
    sub = parser.add_subparsers(dest="hub_command", metavar="SUBCOMMAND")
    run_p = sub.add_parser("run", help=RUN_HELP, description=RUN_HELP)
    _add_run_options(run_p, nested=True)
    _add_create_user(sub)
    from .backup import add_commands as add_backup_commands

    add_backup_commands(sub)   # backup, restore (hub/backup.py)


CREATE_USER_HELP = ("create a dashboard user, e.g. the first admin / tạo người dùng, "
                    "ví dụ quản trị viên đầu tiên")


def _add_create_user(sub: Any) -> None:
    p = sub.add_parser("create-user", help=CREATE_USER_HELP, description=CREATE_USER_HELP)
    quiet: dict[str, Any] = {"default": argparse.SUPPRESS}
    p.add_argument("--config", metavar="FILE", help="hub settings file (its db_url is used)",
                   **quiet)
    p.add_argument("--db", metavar="URL", help="database URL (overrides the config's)", **quiet)
    p.add_argument("--username", required=True, help="2-64 of a-z 0-9 . _ -")
    p.add_argument("--role", choices=("viewer", "operator", "admin"), default="admin")
    p.add_argument("--display-name", metavar="TEXT", default=None)
    p.add_argument("--password-file", metavar="FILE", default=None,
                   help="read the password from the first line of FILE (default: prompt)")
    p.add_argument("--update", action="store_true",
                   help="if the user exists, set this role and password instead of failing")


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--http {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)


def _settings(args: argparse.Namespace) -> Any:
    from .settings import load_settings

    overrides: dict[str, Any] = {}
    for opt, key in (("broker", "broker_url"), ("db", "db_url"), ("registry", "registry_file"),
                     ("hub_id", "hub_id"), ("data_dir", "data_dir")):
        value = getattr(args, opt, None)
        if value:
            overrides[key] = value
    http = getattr(args, "http", None)
    if http:
        overrides["http_host"], port = _host_port(http)
        if port:  # port 0 ("any free port") is for tests; settings insist on 1..65535
            overrides["http_port"] = port
    return load_settings(getattr(args, "config", None), **overrides)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file:
        from pathlib import Path

        try:
            lines = Path(args.password_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"--password-file {args.password_file}: {exc}") from None
        if not lines or not lines[0].strip():
            raise ValueError(f"--password-file {args.password_file}: the first line is empty")
        return lines[0].strip()
    if not sys.stdin.isatty():
        raise ValueError("no terminal to ask for the password: give --password-file FILE")
    import getpass

    first = getpass.getpass("Mật khẩu / Password: ")
    if getpass.getpass("Nhập lại / Again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def create_user(args: argparse.Namespace) -> int:
    """`tiengmo hub create-user`: one account, straight into the database."""
    from .api.accounts import check_new_account
    from .api.accounts import create_user as make
    from .errors import HubError, InvalidAction
    from .store import Store

    try:
        db = getattr(args, "db", None)
        if not db:
            if not getattr(args, "config", None):
                raise ValueError("give --db URL or --config FILE")
            from .settings import load_settings

            db = load_settings(args.config).db_url
        username = args.username.strip().lower()
        check_new_account(username, args.role, "x" * 64)   # fail fast, before the prompt
        password = _read_password(args)
        with Store.open(db) as store:
            user = make(store, username, args.role, password, actor="cli",
                        display_name=args.display_name, update=args.update)
    except (ValueError, HubError) as exc:
        hint = " (add --update to change it)" if isinstance(exc, InvalidAction) \
            and "already exists" in str(exc) else ""
        print(f"tiengmo hub create-user: {exc}{hint}", file=sys.stderr)
        return 1
    print(f"đã tạo / created: {user.username} ({user.role})")
    return 0


def run(args: argparse.Namespace) -> int:
    if getattr(args, "hub_command", None) == "create-user":
        return create_user(args)
    if getattr(args, "hub_command", None) in ("backup", "restore"):
        from .backup import run_command

        return run_command(args)
    if getattr(args, "hub_command", None) not in (None, "run"):
        print(f"tiengmo hub: unknown subcommand {args.hub_command!r}", file=sys.stderr)
        return 2
    logging.basicConfig(level=(getattr(args, "log_level", None) or "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from protocol import RegistryError

    from .errors import HubError, SettingsError

    try:
        settings = _settings(args)
        if settings.registry_file is None:
            print("tiengmo hub: no registry file: give --registry FILE or registry_file in "
                  "the settings (the hub must know its nodes to trust them)", file=sys.stderr)
            return 2
        http = None if getattr(args, "no_http", False) else _host_port(
            getattr(args, "http", None) or f"{settings.http_host}:{settings.http_port}")
    except (SettingsError, ValueError) as exc:
        print(f"tiengmo hub: {exc}", file=sys.stderr)
        return 2
    from .runtime import Hub

    hub = Hub(settings, shared_group=getattr(args, "shared_group", None))
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        logging.getLogger("tiengmo.hub").info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        hub.start()
    except (HubError, RegistryError, OSError) as exc:
        print(f"tiengmo hub: cannot start: {exc}", file=sys.stderr)
        hub.stop()
        return 1
    server = None
    try:
        if http is not None:
            server = _serve_http(hub, *http)
        stop.wait()
    finally:
        if server is not None:
            server.should_exit = True
        hub.stop()
    return 0


def _serve_http(hub: Any, host: str, port: int) -> Any:
    """uvicorn on a thread of its own, so the main thread owns the signals and can
    publish the hub's death before the process ends."""
    import uvicorn

    from .api.limits import server_options
    from .app import create_app

    config = uvicorn.Config(create_app(hub), host=host, port=port, log_level="warning",
                            lifespan="off", **server_options(hub.settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="hub-http", daemon=True)
    thread.start()
    log = logging.getLogger("tiengmo.hub")
    for _ in range(100):
        if server.started:
            bound = [s.getsockname() for srv in (server.servers or []) for s in srv.sockets]
            where = ", ".join(f"{a[0]}:{a[1]}" for a in bound) or f"{host}:{port}"
            log.info("HTTP at http://%s", where)
            break
        threading.Event().wait(0.05)
    return server


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="tiengmo hub")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))

