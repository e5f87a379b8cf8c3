"""`tiengmo sentinel`: watch the hub over MQTT and text people when it is gone."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import textwrap
import threading
from typing import Any

from protocol.sdnotify import SdNotify, watchdog_interval_s

from .config import load_config
from .errors import ConfigError

DEFAULT_CONFIG = "/etc/tiengmo-sentinel/sentinel.toml"

DESCRIPTION = textwrap.dedent("""\
    Watch the alarm hub from outside it. When no hub has been online (its retained
    state and its hub/time beacon) for grace_s, text the admins and the commune
    police once through this machine's modem, and call the configured webhooks;
    text again once the hub is back. Runs beside the broker, never imports the hub.

    Canh gác trung tâm báo động: khi trung tâm mất liên lạc quá grace_s giây,
    nhắn tin cho quản trị viên và công an xã (một lần), và báo lại khi có lại.""")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "The config format is in docs/sentinel.md. Exit: 0 ok, 2 config error."
    parser.add_argument("--config", "-c", metavar="FILE", default=DEFAULT_CONFIG,
                        help=f"sentinel config (TOML), default {DEFAULT_CONFIG}")
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"tiengmo sentinel: {exc}", file=sys.stderr)
        return 2
    if args.check:
        sms = cfg.sms.numbers if cfg.sms else ()
        print(f"{cfg.source}: OK (sentinel {cfg.sentinel_id}, grace {cfg.grace_s:g} s, "
              f"{len(sms)} phone number(s), {len(cfg.webhooks)} webhook(s))")
        return 0
    from .notify import Notifier
    from .runner import Sentinel

    sentinel = Sentinel(cfg, Notifier(cfg), sd=SdNotify.from_env(),
                        watchdog_interval_s=watchdog_interval_s())
    done = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sentinel.start()
    while not done.wait(1.0):
        pass
    sentinel.stop()
    return 0
