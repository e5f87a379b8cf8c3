"""`tiengmo hub`: run the hub against an existing broker (more subcommands later).

    tiengmo hub [run] --broker URL --db URL --registry FILE [--http HOST:PORT]
    tiengmo hub [run] --config FILE
    tiengmo hub create-user (--db URL | --config FILE) --username NAME --role admin
                            [--password-file FILE] [--area PATH [--registry FILE]]
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

from . import defaults

RUN_HELP = "run the hub (the default when no subcommand is given)"


def _add_run_options(p: argparse.ArgumentParser, *, nested: bool) -> None:
    # In the nested `run` parser, SUPPRESS keeps its defaults from wiping out
    # options given before the word `run`.
    d: dict[str, Any] = {"default": argparse.SUPPRESS} if nested else {}
    g = p.add_argument_group("run options")
    g.add_argument("--config", metavar="FILE", help="hub settings file (TOML, see "
                   "docs/hub-config.md); also $TIENGMO_CONFIG (default: none, every "
                   "setting at its default)", **d)
    g.add_argument("--broker", metavar="URL", help="MQTT broker, mqtt://HOST[:PORT] or "
                   f"mqtts://HOST[:PORT] (default: {defaults.BROKER_URL})", **d)
    g.add_argument("--db", metavar="URL", help="database, sqlite:///PATH or "
                   "postgresql://USER@HOST/DB (default: sqlite:///DATA_DIR/"
                   f"{defaults.DB_FILE})", **d)
    g.add_argument("--registry", metavar="FILE", help="registry of areas and nodes (TOML); "
                   "required, here or as registry_file in the settings", **d)
    g.add_argument("--http", metavar="HOST:PORT", help="serve the HTTP app here (default: "
                   f"{defaults.HTTP_HOST}:{defaults.HTTP_PORT}, the settings' "
                   "http_host:http_port)", **d)
    g.add_argument("--no-http", action="store_true", help="do not serve HTTP", **d)
    g.add_argument("--hub-id", metavar="ID", help="this hub's id (default: the host name, "
                   "lower-cased)", **d)
    g.add_argument("--data-dir", metavar="DIR", help="where the hub keeps its secret and "
                   "default SQLite database (default: "
                   f"{defaults.default_data_dir('development')}; in production "
                   f"{defaults.PRODUCTION_DATA_DIR})", **d)
    g.add_argument("--shared-group", metavar="NAME", help="share the alarm stream with other "
                   "replicas through MQTT 5 shared subscriptions in this group", **d)
    g.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO (default), WARNING", **d)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Run the tiengmo hub against an MQTT broker: store every alarm, "
                          "sound the gongs, supervise the nodes. "
                          "Chạy máy chủ tiếng mõ: lưu báo động, đánh mõ, giám sát các nút.")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ("exit codes: 0 stopped cleanly; 2 misconfigured (bad setting or URL, "
                     "unknown host,\n  credentials refused), said in plain words; 1 could "
                     "not start otherwise.\n  A broker or database not reached yet is "
                     "waited for (see /healthz), not an error.\n"
                     "examples:\n"
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
    from .node_gate import add_command as add_node_gate

    add_node_gate(sub)         # node-gate: a rollout's health gate (hub/node_gate.py)


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
    p.add_argument("--area", metavar="PATH", default=None,
                   help="limit the user to this area subtree of the registry, e.g. "
                        "bach-thong/vi-huong (default: the whole hub) / chỉ một khu vực")
    p.add_argument("--registry", metavar="FILE", default=None,
                   help="registry to check --area against when the database has no areas "
                        "yet (default: the config's registry_file)")


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
    return load_settings(getattr(args, "config", None), overrides_source="command line",
                         **overrides)


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


def _plain(exc: BaseException, db_url: str | None) -> str:
    """A database that cannot be reached, in plain words, not SQLAlchemy's text."""
    cause = exc.__cause__
    if db_url and cause is not None and type(cause).__module__.startswith("sqlalchemy"):
        from .preflight import database_verdict

        return database_verdict(db_url, cause).why
    return str(exc)


def create_user(args: argparse.Namespace) -> int:
    """`tiengmo hub create-user`: one account, straight into the database."""
    from .api.accounts import check_area, check_new_account
    from .api.accounts import create_user as make
    from .errors import HubError, InvalidAction
    from .store import Store
    from .store.auth import UNSET

    db = getattr(args, "db", None)
    registry = args.registry
    try:
        if not db or (args.area and not registry and getattr(args, "config", None)):
            if not getattr(args, "config", None):
                raise ValueError("give --db URL or --config FILE")
            from .settings import load_settings

            settings = load_settings(args.config)
            db = db or settings.db_url
            registry = registry or settings.registry_file
        username = args.username.strip().lower()
        check_new_account(username, args.role, "x" * 64)   # fail fast, before the prompt
        with Store.open(db) as store:
            # No --area: a new user is hub-wide, an --update keeps the user's area.
            area = (check_area(args.area, _known_areas(store, registry))
                    if args.area is not None else UNSET)
            password = _read_password(args)
            user = make(store, username, args.role, password, actor="cli",
                        display_name=args.display_name, update=args.update, area=area)
    except (ValueError, HubError) as exc:
        hint = " (add --update to change it)" if isinstance(exc, InvalidAction) \
            and "already exists" in str(exc) else ""
        print(f"tiengmo hub create-user: {_plain(exc, db)}{hint}", file=sys.stderr)
        return 1
    where = f", {user.area}" if user.area else ""
    print(f"đã tạo / created: {user.username} ({user.role}{where})")
    return 0


def _known_areas(store: Any, registry: Any) -> set[str]:
    """The areas the hub knows (its database), and those of the registry file if given."""
    known = {a.path for a in store.nodes.areas()}
    if registry is not None:
        import protocol

        known |= {a.path for a in protocol.load_registry(registry).areas}
    return known


def run(args: argparse.Namespace) -> int:
    if getattr(args, "hub_command", None) == "create-user":
        return create_user(args)
    if getattr(args, "hub_command", None) in ("backup", "restore"):
        from .backup import run_command

        return run_command(args)
    if getattr(args, "hub_command", None) == "node-gate":
        from .node_gate import run_command as run_node_gate

        return run_node_gate(args)
    if getattr(args, "hub_command", None) not in (None, "run"):
        print(f"tiengmo hub: unknown subcommand {args.hub_command!r}", file=sys.stderr)
        return 2
    logging.basicConfig(level=(getattr(args, "log_level", None) or "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .errors import SettingsError

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
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        logging.getLogger("tiengmo.hub").info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from .serving import WaitingApp, serve_http

    app = WaitingApp("starting")
    server = serve_http(app, *http, settings) if http is not None else None
    try:
        return _run_hub(args, settings, app, stop)
    finally:
        if server is not None:
            server.should_exit = True


def _run_hub(args: argparse.Namespace, settings: Any, app: Any, stop: threading.Event) -> int:
    """Misconfiguration: exit 2 at once. Not reachable yet: wait, say so, keep trying."""
    import protocol
    from protocol import RegistryError

    from . import preflight
    from .errors import HubError
    from .serving import BrokerWatch, wait_for_database

    s = settings
    try:
        protocol.load_registry(s.registry_file)    # a bad file: refused before anything opens
        password = s.mqtt_password()
    except (HubError, RegistryError) as exc:
        print(f"tiengmo hub: {exc}", file=sys.stderr)
        return 2
    broker = preflight.check_broker(
        s.broker_url, client_id=s.hub_id, username=s.mqtt_username(),
        password=password, ca_file=str(s.ca_file) if s.ca_file else None,
        cert_file=str(s.cert_file) if s.cert_file else None,
        key_file=str(s.key_file) if s.key_file else None,
        mqtt5=bool(getattr(args, "shared_group", None) or s.shared_group))
    if broker.fatal:
        print(f"tiengmo hub: {broker.why}", file=sys.stderr)
        return 2
    db = wait_for_database(s, app, stop)
    if db is None:
        return 0                                   # stopped while waiting
    if db.fatal:
        print(f"tiengmo hub: {db.why}", file=sys.stderr)
        return 2
    from .runtime import Hub

    hub = Hub(s, shared_group=getattr(args, "shared_group", None))
    try:
        hub.start(wait_connected_s=10.0 if broker.ok else None)
    except (HubError, RegistryError, OSError) as exc:
        print(f"tiengmo hub: cannot start: {exc}", file=sys.stderr)
        hub.stop()
        return 1
    from protocol.sdnotify import SdNotify, watchdog_interval_s

    # systemd (Type=notify, WatchdogSec): ready now; pings only while the alarm lane and
    # the tick loop make progress (Hub.alive); hub.stop() says STOPPING=1.
    hub.tell_systemd(SdNotify.from_env(), watchdog_interval_s())
    watch = BrokerWatch(hub, s.broker_url, s.not_reached_log_s, first_why=broker.why)
    try:
        from .app import create_app

        # The web UI's folder is the edge's to give (`tiengmo` passes the dashboard's
        # package data): the hub imports nothing of `dashboard/`.
        app.ready(create_app(hub, static_dir=getattr(args, "static_dir", None)))
        watch.start()
        stop.wait()
    finally:
        watch.stop()
        hub.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="tiengmo hub")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))

