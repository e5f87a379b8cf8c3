"""`tiengmo hub`: run the hub against an existing broker (more subcommands later).

    tiengmo hub [run] --broker URL --db URL --registry FILE [--http HOST:PORT]
    tiengmo hub [run] --config FILE

`run` is the default, so `tiengmo hub --config hub.toml` runs the hub; later
management commands (e.g. `tiengmo hub create-user`) sit beside it. Options
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


def run(args: argparse.Namespace) -> int:
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

    from .app import create_app

    config = uvicorn.Config(create_app(hub), host=host, port=port, log_level="warning",
                            lifespan="off")
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

