"""`tiengmo demo`: the whole loop on one machine, with nothing to set up.

An embedded MQTT broker (pip only), the hub on SQLite in a data folder, and
the simulated village of Bạch Thông district (the real node agent on mock
pins). Now and then a simulated household presses a button; the terminal
tells what happens: the local gong, the incident, the hamlet's gongs, and
(until the dashboard has an operator at it) a simulated officer on duty who
acknowledges and resolves.

This module is the edge where broker, hub and simulator meet
(ARCHITECTURE.md), so it is the one place allowed to import all three.
"""

from __future__ import annotations

import argparse
import logging
import random
import secrets
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("tiengmo.demo")

DEMO_HUB_ID = "demo-hub"
KIND_VI = {"fire": "CHÁY / FIRE", "theft": "TRỘM CẮP / THEFT", "robbery": "CƯỚP / ROBBERY",
           "fight": "GÂY RỐI / FIGHT", "flood": "LŨ LỤT / FLOOD", "medical": "CẤP CỨU / MEDICAL",
           "sos": "KHẨN CẤP / SOS"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Run everything on this machine: an embedded MQTT broker, the hub on SQLite and a\n"
        "simulated village (Bạch Thông district: Vi Hương commune's nine hamlets and two\n"
        "residents' groups of Phủ Thông town). Simulated households press buttons now and\n"
        "then; watch the gongs of their hamlet sound. Ctrl-C stops it cleanly.")
    parser.add_argument("--data", type=Path, default=Path("tiengmo-data"), metavar="DIR",
                        help="data folder for the hub's database and the nodes' outboxes "
                             "(default: ./tiengmo-data)")
    parser.add_argument("--http", default="127.0.0.1:8080", metavar="HOST:PORT",
                        help="where the hub serves HTTP (default 127.0.0.1:8080; a free port "
                             "is used if that one is taken)")
    parser.add_argument("--press-every", type=float, default=45.0, metavar="S",
                        help="seconds between simulated presses (default 45; the first comes "
                             "after --first-press)")
    parser.add_argument("--first-press", type=float, default=8.0, metavar="S",
                        help="seconds from start to the first simulated press (default 8)")
    parser.add_argument("--operator", choices=("auto", "none"), default="auto",
                        help="auto: a simulated officer on duty acknowledges each incident "
                             "after --ack-after s and resolves it after --resolve-after s; "
                             "none: nobody does (watch escalation)")
    parser.add_argument("--ack-after", type=float, default=12.0, metavar="S")
    parser.add_argument("--resolve-after", type=float, default=25.0, metavar="S")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop by itself after S seconds (default: run until Ctrl-C)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the presses")
    parser.add_argument("--log-level", default="WARNING",
                        help="log level of the parts (default WARNING: alarms and troubles)")


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _say(text: str) -> None:
    # One write for the whole line: print() writes the text and its newline apart, and
    # with PYTHONUNBUFFERED (CI sets it) each is its own write(), so a log line on
    # stderr could land between them: "... / <password>10:25:15 DEBUG ..." (seen in CI).
    sys.stdout.write(f"{time.strftime('%H:%M:%S')}  {text}\n")
    sys.stdout.flush()


@dataclass
class _Pending:
    incident_id: str
    acked_at: float
    resolve_at: float
    acked: bool = False


class Demo:
    """Broker + hub + village, started and stopped together."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data: Path = args.data.resolve()
        self.rng = random.Random(args.seed)
        self.stop_event = threading.Event()
        self.broker: Any = None
        self.hub: Any = None
        self.village: Any = None
        self.services: Any = None
        self.server: Any = None
        self.pending: dict[str, _Pending] = {}
        self.area_names: dict[str, str] = {}

    def start(self) -> None:
        from firmware_sim.village import Village
        from hub.runtime import Hub
        from hub.settings import load_settings
        from protocol.registry import dump_registry
        from tiengmo.broker import EmbeddedBroker
        from tiengmo.village import load_demo_registry

        self.data.mkdir(parents=True, exist_ok=True)
        registry = load_demo_registry()
        self.area_names = {a.path: a.name for a in registry.areas}
        reg_file = self.data / "registry.toml"
        reg_file.write_text(dump_registry(registry), encoding="utf-8")

        # Credentials for every client: amqtt drops persistent sessions of
        # anonymous clients, and a broker open to anyone is a bad habit to
        # demonstrate. The demo's nodes share one password (a real deployment
        # has one per node, made by Ansible).
        hub_pw, node_pw = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        users = {DEMO_HUB_ID: hub_pw} | {n.id: node_pw for n in registry.nodes}
        self.broker = EmbeddedBroker("127.0.0.1", _free_port("127.0.0.1"), users).start()
        pw_file = self.data / "node-password"
        pw_file.write_text(node_pw + "\n", encoding="utf-8")
        pw_file.chmod(0o600)

        host, _, port_text = self.args.http.rpartition(":")
        host = host or "127.0.0.1"
        port = int(port_text)
        if port and not _port_free(host, port):
            new = _free_port(host)
            _say(f"cổng {port} đang bận / port {port} is taken: using {new}")
            port = new
        settings = load_settings(
            None, env={}, hub_id=DEMO_HUB_ID, data_dir=self.data / "hub",
            registry_file=reg_file, broker_url=self.broker.url, username=DEMO_HUB_ID,
            password=hub_pw, http_host=host, http_port=port or 8080)
        (self.data / "hub").mkdir(exist_ok=True)
        self.hub = Hub(settings).start()
        self.services = self.hub.services()
        self.server = self._serve_http(host, port)
        # An admin to log into the dashboard with; a new password every run.
        from hub.api.accounts import create_user
        from hub.api.security import random_password

        self.admin_password = random_password()
        create_user(self.hub.store, "admin", "admin", self.admin_password, actor="demo",
                    display_name="Quản trị viên (demo)", update=True)

        self.village = Village.from_registry(
            registry, broker_url=self.broker.url, data_root=self.data / "nodes",
            password_file=pw_file)
        _say(f"khởi động {len(self.village)} nút mô phỏng / starting {len(self.village)} "
             f"simulated nodes in {len(registry.areas)} areas ...")
        self.village.start(wait_s=30)
        homes = sum(n.households or 0 for n in registry.nodes)
        _say(f"SẴN SÀNG / READY: {len(self.village)} nodes online, {homes} households, "
             f"broker {self.broker.url}, hub {DEMO_HUB_ID}, database {settings.db_url}")
        if self.server is not None:
            _say(f"hub HTTP at http://{host}:{self._bound_port(port)}/  (health: /healthz)")
            _say(f"Đăng nhập / Log in at http://{host}:{self._bound_port(port)}/ as admin / "
                 f"{self.admin_password}")
        _say("Ctrl-C để dừng / Ctrl-C to stop")

    def _bound_port(self, asked: int) -> int:
        try:
            return int(self.server.servers[0].sockets[0].getsockname()[1])
        except (AttributeError, IndexError, TypeError):
            return asked

    def _serve_http(self, host: str, port: int) -> Any:
        import uvicorn

        from hub.app import create_app

        app = create_app(self.hub)
        try:  # the simulator panel, once the dashboard provides one
            from dashboard import simpanel

            simpanel.mount(app, self)
        except ImportError:
            pass
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                               lifespan="off"))
        threading.Thread(target=server.run, name="demo-http", daemon=True).start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return server if server.started else None

    def press_random(self) -> None:
        node = self.rng.choice(self.village.nodes)
        button = self.rng.choice(node.config.hardware.buttons)
        area = node.config.area
        name = self.area_names.get(area, area)
        _say(f"Hộ gia đình ở {name} bấm nút / a household in {name} holds the "
             f"{KIND_VI.get(button.kind, button.kind)} button on {node.node_id}")
        node.press(button.number, block=False)
        threading.Thread(target=self._report_sounding, args=(node, area, name), daemon=True,
                         name="demo-report").start()

    def _report_sounding(self, origin: Any, area: str, name: str) -> None:
        # Wait for the hold to complete and the hub's fan-out to arrive.
        deadline = time.monotonic() + origin.config.hardware.buttons[0].hold_s + 4
        hamlet = self.village.in_area(area)
        while time.monotonic() < deadline and not self.stop_event.is_set():
            if all(n.is_sounding() for n in hamlet):
                break
            time.sleep(0.1)
        sounding = [n.node_id for n in hamlet if n.is_sounding()]
        silent = [n.node_id for n in hamlet if not n.is_sounding()]
        _say(f"  mõ đang kêu ở {name} / gongs sounding: {', '.join(sounding) or '-'}"
             + (f"; im lặng / silent: {', '.join(silent)}" if silent else ""))

    def operator_tick(self) -> None:
        if self.args.operator != "auto":
            return
        now = time.monotonic()
        for inc in self.hub.store.incidents.active():
            iid = inc.incident_id
            if iid not in self.pending:
                self.pending[iid] = _Pending(iid, now + self.args.ack_after,
                                             now + self.args.resolve_after)
        for iid, p in list(self.pending.items()):
            try:
                if not p.acked and now >= p.acked_at:
                    self.services.acknowledge(iid, "demo-operator")
                    p.acked = True
                    _say(f"cán bộ trực ban đã tiếp nhận / the officer on duty acknowledged "
                         f"incident {iid[:8]}")
                elif p.acked and now >= p.resolve_at:
                    self.services.resolve(iid, "demo-operator", "real", "demo")
                    del self.pending[iid]
                    _say(f"đã xử lý / resolved incident {iid[:8]}: the gongs fall silent")
            except Exception as exc:  # the demo's operator must never stop the demo
                log.warning("demo operator: %s", exc)
                self.pending.pop(iid, None)

    def run(self) -> None:
        start = time.monotonic()
        next_press = start + self.args.first_press
        while not self.stop_event.is_set():
            now = time.monotonic()
            if self.args.duration is not None and now - start >= self.args.duration:
                break
            if now >= next_press:
                self.press_random()
                next_press = now + self.args.press_every
            self.operator_tick()
            self.stop_event.wait(0.5)

    def stop(self) -> None:
        _say("đang dừng / stopping ...")
        if self.village is not None:
            self.village.stop()
        if self.server is not None:
            self.server.should_exit = True
        if self.hub is not None:
            self.hub.stop()
        if self.broker is not None:
            self.broker.stop()
        _say("đã dừng / stopped")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    demo = Demo(args)

    def on_signal(signum: int, frame: Any) -> None:
        demo.stop_event.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        demo.start()
        demo.run()
    except Exception as exc:
        print(f"tiengmo demo: {exc}", file=sys.stderr)
        demo.stop()
        return 1
    demo.stop()
    return 0
