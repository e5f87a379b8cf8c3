"""`tiengmo node`: run the node agent, check its config, or drive every output off."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import textwrap
import threading
from typing import TYPE_CHECKING, Any

from .config import NodeConfig, check_files, load_config
from .errors import ConfigError, NodeError

if TYPE_CHECKING:   # the agent (paho, gpiozero) is imported only when the node runs
    from .agent import NodeAgent

DEFAULT_CONFIG = "/etc/tiengmo/node.toml"

DESCRIPTION = textwrap.dedent("""\
    Run the node agent of a Raspberry Pi village gong (Tiếng mõ an ninh).

    A held button sounds the node's own gong at once, then the alarm is
    written to the durable outbox and sent to the hub until the hub confirms
    it. The agent also plays the hub's sound commands, reports heartbeats and
    drives the status LED. SIGTERM stops it cleanly (death published,
    outputs off, exit 0). Under systemd it says READY=1 when started and
    WATCHDOG=1 while its main loop makes progress (Type=notify, WatchdogSec=).

    Chạy tác tử của nút mõ (Raspberry Pi): giữ nút là mõ kêu ngay, báo động
    được lưu rồi gửi về trung tâm cho đến khi được xác nhận.""")

EPILOG = textwrap.dedent("""\
    examples:
      tiengmo node --config /etc/tiengmo/node.toml
      tiengmo node --config node.toml --check               # config + pins + files
      tiengmo node --config node.toml --check --no-hardware # config + pins, no files
      tiengmo node --config /etc/tiengmo/node.toml --outputs-off   # ExecStopPost

    exit status: 0 ok, 1 hardware/runtime problem, 2 config error.
    The config format is in docs/node-config.md.""")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--config", "-c", metavar="FILE", default=DEFAULT_CONFIG,
                        help=f"node config (TOML), default {DEFAULT_CONFIG}")
    parser.add_argument("--check", action="store_true",
                        help="validate the config, the pins (no output on GPIO 0-8, no pin "
                             "used twice) and the files it names, then exit")
    parser.add_argument("--no-hardware", action="store_true",
                        help="with --check: validate the config file and its pin rules, "
                             "not the files it names (for image builds)")
    parser.add_argument("--outputs-off", action="store_true",
                        help="drive every configured output (and the enable line) off, then "
                             "exit; for systemd ExecStopPost=")
    parser.add_argument("--mock-pins", action="store_true",
                        help="for tests and simulation only: use gpiozero's MockFactory "
                             "instead of real GPIO pins")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"],
                        help="log detail (default info)")


def _factory(args: argparse.Namespace) -> Any:
    if not args.mock_pins:
        return None
    from gpiozero.pins.mock import MockFactory
    return MockFactory()


def _check(cfg: NodeConfig, hardware: bool) -> int:
    from .hwconfig import check_hardware_config

    # The pin rules (no output on a pin that boots high, no pin used twice) are
    # rules of the file, so an image build with --no-hardware refuses them too:
    # a gong that strikes while the Pi boots must never get as far as a node.
    # Only the files the config names (password, certificates, data_dir) are
    # skipped there, since an image is built before they exist.
    problems = [f"{cfg.source}: {p}" for p in check_hardware_config(cfg.hardware)]
    if hardware:
        problems += check_files(cfg)
    for p in problems:
        print(f"tiengmo node: {p}", file=sys.stderr)
    if problems:
        return 1
    what = "config and pins" if not hardware else "config, pins and files"
    print(f"{cfg.source}: {what} OK (node {cfg.node_id}, area {cfg.area}, "
          f"{len(cfg.hardware.buttons)} button(s), {len(cfg.hardware.outputs)} output(s))")
    return 0


def _outputs_off(cfg: NodeConfig, factory: Any) -> int:
    """Drive each output to its off level with plain devices, even if the agent is broken."""
    from gpiozero import DigitalOutputDevice

    failed = 0
    pins = [(o.name, o.pin, o.active_high) for o in cfg.hardware.outputs]
    if cfg.hardware.enable_pin is not None:
        pins.append(("enable", cfg.hardware.enable_pin, True))
    for name, pin, active_high in pins:
        try:
            dev = DigitalOutputDevice(pin, active_high=active_high, initial_value=False,
                                      pin_factory=factory)
            dev.off()
            dev.close()
            print(f"{name}: GPIO {pin} off")
        except Exception as exc:   # keep going: every other output must still go off
            failed += 1
            print(f"tiengmo node: {name}: GPIO {pin} could not be driven off: {exc}",
                  file=sys.stderr)
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                        stream=sys.stderr)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"tiengmo node: {exc}", file=sys.stderr)
        return 2
    if args.check:
        return _check(cfg, hardware=not args.no_hardware)
    if args.no_hardware:
        print("tiengmo node: --no-hardware only goes with --check", file=sys.stderr)
        return 2
    factory = _factory(args)
    if args.outputs_off:
        return _outputs_off(cfg, factory)
    from protocol.sdnotify import SdNotify, watchdog_interval_s

    from .agent import NodeAgent
    from .hwconfig import HardwareConfigError

    try:
        # Under systemd (Type=notify, WatchdogSec=): READY=1 once started, WATCHDOG=1
        # only while the main loop makes progress. Elsewhere both are no-ops.
        agent = NodeAgent(cfg, pin_factory=factory, notifier=SdNotify.from_env(),
                          watchdog_interval_s=watchdog_interval_s())
    except (HardwareConfigError, NodeError) as exc:
        print(f"tiengmo node: {cfg.source}: {exc}", file=sys.stderr)
        return 1
    return _run_until_signalled(agent)


def _run_until_signalled(agent: NodeAgent) -> int:
    """Start and run until SIGTERM/SIGINT; then stop gracefully and return 0."""
    done = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        logging.getLogger("tiengmo.node.agent").info("signal %d: stopping", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.start()
    while not done.wait(1.0):
        pass
    agent.stop()
    return 0
