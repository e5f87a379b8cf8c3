"""The `tiengmo` command: the edge where the parts meet (ARCHITECTURE.md).

Each subcommand's module is imported only when that subcommand runs, so a
Pi with only the `node` extra installed can run `tiengmo node` without the
hub's web and database packages.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

# name -> (module, one-line help). The module provides
# `add_arguments(parser)` and `run(args) -> int`.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "node": ("node.cli", "run the node agent on a Raspberry Pi (or check its config)"),
    "sim": ("firmware_sim.cli", "run simulated nodes (the real node code on mock pins)"),
    "hub": ("hub.cli", "run the hub against an MQTT broker, or manage it"),
    "sentinel": ("sentinel.cli", "watch the hub from outside it; text people when it dies"),
    "demo": ("tiengmo.demo", "run everything on this machine: broker, hub, simulated village"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tiengmo",
        description="Tiếng mõ an ninh: village security-gong alert network.",
        epilog="Run 'tiengmo COMMAND --help' for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:])
        if only is None or only == name:
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            p.set_defaults(_module=module)
            if name == "hub":
                # The hub serves the static folder it is given and imports nothing of
                # `dashboard/` (ARCHITECTURE.md); the edge gives it the dashboard's.
                p.set_defaults(static_dir=dashboard_static_dir())
    return parser


def dashboard_static_dir() -> Path | None:
    """The dashboard's package data folder (index.html, js/, css/), or None when the
    `dashboard` package is not installed (the hub then serves the API only)."""
    try:
        from dashboard import static_dir
    except ImportError:
        return None
    folder = static_dir()
    return folder if (folder / "index.html").is_file() else None


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if a in SUBCOMMANDS), None)
    try:
        parser = build_parser(only=chosen if chosen else "")
    except ImportError as exc:
        print(f"tiengmo {chosen}: a package it needs is not installed ({exc.name}). "
              f"Install the right extra, e.g. pip install 'tiengmo[hub]'.", file=sys.stderr)
        return 2
    args = parser.parse_args(args_list)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 0 if not args_list else 2
    return int(args._module.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
