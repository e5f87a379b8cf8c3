"""`tiengmo demo`: the whole loop on one machine, with nothing to set up.

An MQTT broker (Mosquitto when it is installed, with per-node logins and the
production ACL; else an embedded amqtt one, pip only), the hub on SQLite in a
data folder (tiengmo/demo_data.py says what is in it), and the simulated
village of Bạch Thông district (the real node agent on mock pins). Now and
then a simulated household presses a button; the terminal
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
import re
import secrets
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.logins import alarm_login

log = logging.getLogger("tiengmo.demo")

DEMO_HUB_ID = "demo-hub"
DEMO_ALARM_LOGIN = alarm_login(DEMO_HUB_ID)
DEMO_POLICE = "+84900000113"   # the commune police's phone in the demo (made up)
# The demo's batteries: a node on battery loses this much charge a minute (a real UPS
# HAT lasts hours; the demo's should visibly move), and one node starts on battery.
DRAIN_PCT_PER_MIN = 1.0
ON_BATTERY_START_PCT = 46.0
KIND_VI = {"fire": "CHÁY / FIRE", "theft": "TRỘM CẮP / THEFT", "robbery": "CƯỚP / ROBBERY",
           "fight": "GÂY RỐI / FIGHT", "flood": "LŨ LỤT / FLOOD", "medical": "CẤP CỨU / MEDICAL",
           "sos": "KHẨN CẤP / SOS"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Run everything on this machine: an MQTT broker, the hub on SQLite and a\n"
        "simulated village (Bạch Thông district: Vi Hương commune's nine hamlets and two\n"
        "residents' groups of Phủ Thông town). Simulated households press buttons now and\n"
        "then; watch the gongs of their hamlet sound. Ctrl-C stops it cleanly.\n\n"
        "It writes into --data (default ./tiengmo-data): the hub's database and secret,\n"
        "one MQTT password per node and for the hub, the nodes' outboxes and the broker's\n"
        "config. A re-run there starts fresh (the previous run's data is removed) unless\n"
        "--resume is given.")
    parser.add_argument("--data", type=Path, default=Path("tiengmo-data"), metavar="DIR",
                        help="data folder: the hub's database and secret, the MQTT "
                             "passwords, the nodes' outboxes, the broker's config "
                             "(default: ./tiengmo-data)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the previous run's database and outboxes in --data and "
                             "go on from them (default: start fresh, removing them)")
    parser.add_argument("--broker-backend", choices=("auto", "mosquitto", "amqtt"),
                        default="auto",
                        help="auto (default): Mosquitto if the `mosquitto` program is "
                             "installed, else the embedded amqtt broker; mosquitto or amqtt: "
                             "that one (mosquitto fails if it is not installed)")
    parser.add_argument("--http", default="127.0.0.1:8080", metavar="HOST:PORT",
                        help="where the hub serves HTTP (default 127.0.0.1:8080; a free port "
                             "is used if that one is taken)")
    parser.add_argument("--press-every", type=float, default=45.0, metavar="S",
                        help="seconds between simulated presses (default 45; the first comes "
                             "after --first-press)")
    parser.add_argument("--first-press", type=float, default=8.0, metavar="S",
                        help="seconds from start to the first simulated press (default 8)")
    parser.add_argument("--first-call", type=float, default=20.0, metavar="S",
                        help="seconds from start until a household alarms by phone: a "
                             "missed call to the hub's (simulated) modem, confirmed by an "
                             "SMS '1' (default 20; negative: never)")
    parser.add_argument("--call-every", type=float, default=90.0, metavar="S",
                        help="seconds between households calling in (default 90)")
    parser.add_argument("--operator", choices=("auto", "none"), default="auto",
                        help="auto: a simulated officer on duty acknowledges each incident "
                             "after --ack-after s and resolves it after --resolve-after s; "
                             "none: nobody does (watch escalation)")
    parser.add_argument("--ack-after", type=float, default=12.0, metavar="S",
                        help="with --operator auto: seconds from an incident's opening to "
                             "its acknowledgement (default 12)")
    parser.add_argument("--resolve-after", type=float, default=25.0, metavar="S",
                        help="with --operator auto: seconds from an incident's opening to "
                             "its resolution (default 25; the gongs fall silent)")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop by itself after S seconds (default: run until Ctrl-C)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the presses")
    parser.add_argument("--log-level", default="WARNING", metavar="LEVEL",
                        help="log level of the parts: DEBUG, INFO, WARNING (default: alarms "
                             "and troubles), ERROR")


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


def _write_passwords(folder: Path, users: dict[str, str]) -> dict[str, Path]:
    """One file per broker user (mode 0600, in a 0700 folder): what a node reads."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    files = {}
    for user, password in users.items():
        path = folder / user
        path.write_text(password + "\n", encoding="utf-8")
        path.chmod(0o600)
        files[user] = path
    return files


def _village(nodes: list[Any], broker_url: str, root: Path, pw_files: dict[str, Path]) -> Any:
    """The simulated village, each node logging in with its own password."""
    from firmware_sim.village import Village, node_config
    from firmware_sim.virtual import VirtualNode

    return Village([VirtualNode(node_config(n.id, n.area, broker_url=broker_url,
                                            data_dir=root / n.id, password_file=pw_files[n.id]))
                    for n in nodes])


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
        self.backend = ""
        self.modem: Any = None      # the hub's simulated 4G modem (households call in)
        self._sms_told = 0
        self._parts: dict[str, list[str]] = {}
        self._confirm: tuple[float, str] | None = None

    def start(self) -> None:
        from hub.runtime import Hub
        from hub.settings import load_settings
        from protocol.registry import dump_registry
        from tiengmo.demo_data import prepare
        from tiengmo.village import load_demo_registry

        use_mosquitto = self._use_mosquitto()   # before the data folder is touched
        note = prepare(self.data, resume=self.args.resume)
        if note:
            _say(note)
        registry = load_demo_registry()
        self.area_names = {a.path: a.name for a in registry.areas}
        reg_file = self.data / "registry.toml"
        reg_file.write_text(dump_registry(registry), encoding="utf-8")

        # One login per node and two for the hub (its own, and its alarm lane's own
        # connection, docs/alarm-lane.md), as in production (client id = username, so a
        # node cannot pose as another); new passwords every run.
        nodes = [n for n in registry.nodes if n.enabled]
        users = {DEMO_HUB_ID: secrets.token_urlsafe(16),
                 DEMO_ALARM_LOGIN: secrets.token_urlsafe(16)} | {
            n.id: secrets.token_urlsafe(16) for n in nodes}
        pw_files = _write_passwords(self.data / "passwords", users)
        self.broker = self._start_broker(registry, users, use_mosquitto)

        host, _, port_text = self.args.http.rpartition(":")
        host = host or "127.0.0.1"
        port = int(port_text)
        if port and not _port_free(host, port):
            new = _free_port(host)
            _say(f"cổng {port} đang bận / port {port} is taken: using {new}")
            port = new
        from modem.sim import SimModem

        # The hub's 4G modem, simulated on a pty: SMS out to the police, and households
        # texting or ringing in (docs/phone-alarms.md).
        self.modem = SimModem()
        integrations = {"sms": {
            "enabled": True, "port": self.modem.port, "timeout_s": 3.0,
            "responders": [{"area": "bach-thong/vi-huong", "phone": DEMO_POLICE,
                            "role": "công an xã"}],
            "inbound": {"enabled": True, "poll_s": 0.3}}}
        settings = load_settings(
            None, env={}, hub_id=DEMO_HUB_ID, data_dir=self.data / "hub",
            registry_file=reg_file, broker_url=self.broker.url, username=DEMO_HUB_ID,
            password=users[DEMO_HUB_ID], http_host=host, http_port=port or 8080,
            alarm_connection=True, alarm_username=DEMO_ALARM_LOGIN,
            alarm_password_file=pw_files[DEMO_ALARM_LOGIN], integrations=integrations)
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

        self.village = _village(nodes, self.broker.url, self.data / "nodes", pw_files)
        _say(f"khởi động {len(self.village)} nút mô phỏng / starting {len(self.village)} "
             f"simulated nodes in {len(registry.areas)} areas ...")
        self.village.start(wait_s=30)
        self._power_story()
        homes = sum(n.households or 0 for n in registry.nodes)
        _say(f"SẴN SÀNG / READY: {len(self.village)} nodes online, {homes} households, "
             f"broker {self.broker.url} ({self.backend}), hub {DEMO_HUB_ID}, "
             f"database {settings.db_url}")
        lane = self.hub.link is not None and self.hub.link.alarm_lane_connected
        _say(f"luồng báo động / alarm lane: its own connection {DEMO_ALARM_LOGIN} "
             f"({'đã kết nối / connected' if lane else 'CHƯA kết nối / NOT connected'})")
        if self.server is not None:
            _say(f"hub HTTP at http://{host}:{self._bound_port(port)}/  (health: /healthz)")
            _say(f"Đăng nhập / Log in at http://{host}:{self._bound_port(port)}/ as admin / "
                 f"{self.admin_password}")
        _say("Ctrl-C để dừng / Ctrl-C to stop")

    def _power_story(self) -> None:
        """Every node's UPS HAT drains on battery and charges on mains (fast enough to see
        in a demo), and one node, at the end of the village, runs on battery from the
        start: its mains adapter has failed. The simulator panel can cut a commune."""
        for n in self.village:
            n.gauge.drain_pct_per_min, n.gauge.charge_pct_per_min = DRAIN_PCT_PER_MIN, 0.5
        node = self.village.nodes[-1]
        node.set_battery(ON_BATTERY_START_PCT)
        node.set_power(False)
        _say(f"nút {node.node_id} chạy pin (hỏng bộ nguồn) / {node.node_id} runs on battery "
             f"(its mains adapter failed), {ON_BATTERY_START_PCT:.0f}% and draining")

    def _use_mosquitto(self) -> bool:
        from tiengmo.local_mosquitto import LocalMosquittoError, find_mosquitto

        choice = self.args.broker_backend
        found = find_mosquitto() is not None
        if choice == "mosquitto" and not found:
            raise LocalMosquittoError("--broker-backend mosquitto: mosquitto is not installed "
                                      "(e.g. apt-get install mosquitto); nothing was changed")
        return choice == "mosquitto" or (choice == "auto" and found)

    def _start_broker(self, registry: Any, users: dict[str, str], use_mosquitto: bool) -> Any:
        from tiengmo.local_mosquitto import LocalMosquitto

        choice = self.args.broker_backend
        if use_mosquitto:
            from tiengmo.acl import render_acl

            self.backend = "Mosquitto"
            acl = render_acl(registry, [DEMO_HUB_ID])
            return LocalMosquitto(self.data / "broker", users, acl).start()
        from tiengmo.broker import EmbeddedBroker

        self.backend = "amqtt, embedded: no ACL" if choice == "amqtt" else (
            "amqtt, embedded: no ACL; install mosquitto for the production broker")
        return EmbeddedBroker("127.0.0.1", _free_port("127.0.0.1"), users).start()

    def _bound_port(self, asked: int) -> int:
        try:
            return int(self.server.servers[0].sockets[0].getsockname()[1])
        except (AttributeError, IndexError, TypeError):
            return asked

    def _serve_http(self, host: str, port: int) -> Any:
        from hub.app import create_app
        from hub.serving import serve_http
        from tiengmo import simpanel
        from tiengmo.cli import dashboard_static_dir

        app = create_app(self.hub, static_dir=dashboard_static_dir())
        simpanel.mount(app, self)   # the dashboard's simulator panel calls these routes
        # The same bounded server as `tiengmo hub` (hub.serving, hub.api.limits).
        server = serve_http(app, host, port, self.hub.settings, name="demo-http")
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

    def call_in(self) -> None:
        """A household rings the hub (a missed call), then confirms it with "1"."""
        households = self.hub.registry.households if self.hub.registry else ()
        if not households:
            return
        h = self.rng.choice(households)
        name = self.area_names.get(h.area, h.area)
        _say(f"{h.name or h.id} ở {name} gọi nhỡ tới hub / a household in {name} rings the "
             f"hub from {h.phones[0]} (missed call)")
        self.modem.ring(h.phones[0])
        self._confirm = (time.monotonic() + 2.0, h.phones[0])

    def report_sms(self) -> None:
        """Say each SMS the hub's modem sent (its replies to households, the police's)."""
        if self.modem is None:
            return
        if self._confirm is not None and time.monotonic() >= self._confirm[0]:
            number = self._confirm[1]
            self._confirm = None
            _say(f"  hộ nhắn 1 để xác nhận / the household replies 1 from {number}")
            self.modem.deliver_sms(number, "1")
        msgs = self.modem.messages
        for m in msgs[self._sms_told:]:
            # A long SMS goes as parts "(i/n) ..."; said once whole.
            part = re.match(r"^\((\d+)/(\d+)\) ", m.text)
            if part is None:
                _say(f"  SMS → {m.number}: {m.text}")
                continue
            got = self._parts.setdefault(m.number, [])
            got.append(m.text[part.end():])
            if part.group(1) == part.group(2):
                _say(f"  SMS → {m.number}: {' '.join(self._parts.pop(m.number))}")
        self._sms_told = len(msgs)

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
        next_call = None if self.args.first_call < 0 else start + self.args.first_call
        while not self.stop_event.is_set():
            now = time.monotonic()
            if self.args.duration is not None and now - start >= self.args.duration:
                break
            if now >= next_press:
                self.press_random()
                next_press = now + self.args.press_every
            if next_call is not None and now >= next_call:
                self.call_in()
                next_call = now + self.args.call_every
            self.report_sms()
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
        if self.modem is not None:
            self.modem.close()
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
