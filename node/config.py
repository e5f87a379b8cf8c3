"""The node's TOML config (docs/node-config.md): parsed once, refused loudly.

Unknown keys are refused at every level and every error names the file, the
key as a dotted path (`outputs[1].pin`) and the problem, so a technician in
the rain sees exactly which line to fix.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import protocol
from protocol import DEFAULT_PATTERNS, Kind, Pattern, PayloadError
from protocol.patterns import DEFAULT_ALARM_DURATION_S, DEFAULT_DRILL_DURATION_S
from protocol.secretfile import first_line
from protocol.tomltable import Table, TableError

from .battery import GAUGES, GaugeConfig
from .errors import ConfigError
from .hwconfig import ButtonConfig, HardwareConfig, InputConfig, OutputConfig, RemoteConfig

_Input = TypeVar("_Input", ButtonConfig, RemoteConfig)

DEFAULT_DATA_DIR = "/var/lib/tiengmo"
MAX_PIN = 27
OUTPUT_TYPES = ("gong", "siren")
LOCAL_PATTERN_NAMES = (*[k.value for k in Kind], "drill")


@dataclass(frozen=True, slots=True)
class MqttConfig:
    host: str
    port: int
    tls: bool
    username: str
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    prefix: str = protocol.DEFAULT_PREFIX
    keepalive_s: int = 15
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 10.0

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def password(self) -> str | None:
        """The password from `password_file` (first line), read when connecting."""
        if self.password_file is None:
            return None
        return first_line(self.password_file)


@dataclass(frozen=True, slots=True)
class LocalPattern:
    """What the node plays by itself for an alarm kind (or a drill)."""

    pattern: Pattern
    duration_s: float


@dataclass(frozen=True, slots=True)
class Timers:
    heartbeat_s: float = 10.0
    resend_first_s: float = 5.0
    resend_max_s: float = 30.0
    resend_jitter: float = 0.2
    hub_time_stale_s: float = 30.0
    clock_hold_s: float = 15.0
    test_duration_s: float = 5.0
    stop_timeout_s: float = 3.0
    cmd_memory: int = 512
    # Longest the agent's loop sleeps with nothing due. Everything the loop does
    # is scheduled to its own deadline or woken by an event, so this is only a
    # safety net; a fleet of thousands of simulated nodes sets it long.
    idle_tick_s: float = 1.0
    # Longest the agent's main loop may be busy with one turn (an event and its timed
    # duties) before it counts as hung: the dead-man enable line stops toggling (every
    # output drops within the monostable's time) and the systemd watchdog pings stop.
    # A loop waiting for its next event is not hung, however long it waits.
    watchdog_s: float = 10.0


@dataclass(frozen=True, slots=True)
class NodeConfig:
    node_id: str
    area: str
    mqtt: MqttConfig
    hardware: HardwareConfig
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    log_keep_days: float = 30.0
    patterns: Mapping[str, LocalPattern] = field(default_factory=dict)
    timers: Timers = field(default_factory=Timers)
    source: str = "<memory>"
    battery: GaugeConfig | None = None   # a UPS HAT's fuel gauge, when fitted

    def local_pattern(self, name: str) -> LocalPattern:
        """The configured or default local pattern for a kind or `drill`."""
        if name in self.patterns:
            return self.patterns[name]
        dur = DEFAULT_DRILL_DURATION_S if name == "drill" else DEFAULT_ALARM_DURATION_S
        return LocalPattern(DEFAULT_PATTERNS[name], float(dur))


def _pin(t: Table, name: str, *, required: bool = True) -> Any:
    return t.integer(name, lo=0, hi=MAX_PIN, required=required)


def _path(t: Table, name: str, base: Path) -> Path | None:
    v = t.string(name)
    return None if v is None else (base / v if not os.path.isabs(v) else Path(v))


def _mqtt(t: Table, node_id: str, base: Path) -> MqttConfig:
    url = t.string("url", required=True)
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise t.fail("url", f"must be mqtt://host:port or mqtts://host:port, not {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise t.fail("url", "must hold only scheme, host and port (credentials go in "
                            "username/password_file)")
    try:
        port = parts.port
    except ValueError:
        raise t.fail("url", f"has a bad port: {url!r}") from None
    tls = parts.scheme == "mqtts"
    prefix = t.string("prefix", protocol.DEFAULT_PREFIX)
    try:
        protocol.Topics(prefix)
    except protocol.TopicError as exc:
        raise t.fail("prefix", str(exc)) from None
    cfg = MqttConfig(
        host=parts.hostname, port=port or (8883 if tls else 1883), tls=tls,
        username=t.string("username", node_id),
        password_file=_path(t, "password_file", base), ca_file=_path(t, "ca_file", base),
        cert_file=_path(t, "cert_file", base), key_file=_path(t, "key_file", base),
        prefix=prefix, keepalive_s=t.integer("keepalive_s", 15, lo=1, hi=3600),
        reconnect_min_s=t.number("reconnect_min_s", 1.0, lo=0.05, hi=10),
        reconnect_max_s=t.number("reconnect_max_s", 10.0, lo=0.05, hi=10),
    )
    if cfg.reconnect_max_s < cfg.reconnect_min_s:
        raise t.fail("reconnect_max_s", "must not be less than reconnect_min_s")
    if (cfg.cert_file is None) != (cfg.key_file is None):
        raise t.fail("cert_file" if cfg.cert_file is None else "key_file",
                     "cert_file and key_file go together")
    if not tls and (cfg.ca_file or cfg.cert_file):
        raise t.fail("ca_file" if cfg.ca_file else "cert_file",
                     "TLS files need an mqtts:// url")
    t.done()
    return cfg


def _buttons(root: Table) -> tuple[ButtonConfig, ...]:
    return _inputs(root, "buttons", ButtonConfig, "button", hold_s=(1.5, 0.0, 60))


def _remotes(root: Table) -> tuple[RemoteConfig, ...]:
    # A receiver's relay output is short and clean: a shorter hold than a button's.
    return _inputs(root, "remotes", RemoteConfig, "remote input", hold_s=(0.5, 0.05, 30))


def _inputs(root: Table, table: str, cls: type[_Input], what: str, *,
            hold_s: tuple[float, float, float]) -> tuple[_Input, ...]:
    """The `[[buttons]]` or `[[remotes]]` tables: each a pin, a number, a kind, a hold."""
    out: list[_Input] = []
    default, lo, hi = hold_s
    for t in root.tables(table):
        kind = t.string("kind", required=True)
        if kind not in {k.value for k in Kind}:
            raise t.fail("kind", f"{kind!r} is not one of {', '.join(k.value for k in Kind)}")
        i = cls(pin=_pin(t, "pin"), number=t.integer("number", lo=1, hi=999, required=True),
                kind=kind, hold_s=t.number("hold_s", default, lo=lo, hi=hi),
                active_low=t.boolean("active_low", True))
        if any(o.number == i.number for o in out):
            raise t.fail("number", f"{what} number {i.number} is used twice")
        t.done()
        out.append(i)
    return tuple(out)


def _battery(root: Table) -> GaugeConfig | None:
    t = root.sub("battery")
    if t is None:
        return None
    gauge = t.string("gauge", "max17048")
    if gauge not in GAUGES:
        raise t.fail("gauge", f"{gauge!r} is not one of {', '.join(GAUGES)}")
    cfg = GaugeConfig(gauge=gauge, bus=t.integer("bus", 1, lo=0, hi=255),
                      address=t.integer("address", 0x36, lo=0x03, hi=0x77))
    t.done()
    return cfg


def _outputs(root: Table) -> tuple[OutputConfig, ...]:
    out: list[OutputConfig] = []
    for t in root.tables("outputs"):
        name = t.string("name", required=True)
        if not protocol.is_node_id(name):
            raise t.fail("name", f"{name!r} must be lower-case letters, digits and '-'")
        typ = t.string("type", required=True)
        if typ not in OUTPUT_TYPES:
            raise t.fail("type", f"{typ!r} must be one of {', '.join(OUTPUT_TYPES)}")
        fb = _pin(t, "feedback_pin", required=False)
        o = OutputConfig(
            name=name, type=typ, pin=_pin(t, "pin"), active_high=t.boolean("active_high", True),
            pulse_ms=t.integer("pulse_ms", 60, lo=1, hi=10_000),
            roll_gap_ms=t.integer("roll_gap_ms", 60, lo=1, hi=10_000),
            max_on_s=t.number("max_on_s", 30.0, lo=0.0, hi=3600, above=True),
            max_total_s=t.number("max_total_s", 600.0, lo=0.0, hi=86_400, above=True),
            total_window_s=t.number("total_window_s", 3600.0, lo=0.0, hi=7 * 86_400, above=True),
            feedback_pin=fb, feedback_grace_ms=t.integer("feedback_grace_ms", 150, lo=1,
                                                         hi=10_000),
        )
        if any(p.name == name for p in out):
            raise t.fail("name", f"output name {name!r} is used twice")
        t.done()
        out.append(o)
    return tuple(out)


def _patterns(root: Table) -> dict[str, LocalPattern]:
    table = root.sub("patterns")
    if table is None:
        return {}
    out: dict[str, LocalPattern] = {}
    for name in list(table.data):
        if name not in LOCAL_PATTERN_NAMES:
            raise table.fail(name, f"unknown pattern; use one of {', '.join(LOCAL_PATTERN_NAMES)}")
        t = table.sub(name)
        assert t is not None
        steps = t.raw("steps", True)
        try:
            pattern = Pattern(name, steps)
        except PayloadError as exc:
            raise t.fail("steps", f"{exc} (steps are [[on_ms, off_ms], ...])") from None
        default = DEFAULT_DRILL_DURATION_S if name == "drill" else DEFAULT_ALARM_DURATION_S
        out[name] = LocalPattern(pattern, t.number("duration_s", float(default), lo=0.0,
                                                   hi=86_400, above=True))
        t.done()
    table.done()
    return out


def _timers(root: Table) -> Timers:
    t = root.sub("timers")
    if t is None:
        return Timers()
    d = Timers()
    timers = Timers(
        heartbeat_s=t.number("heartbeat_s", d.heartbeat_s, lo=0.0, hi=3600, above=True),
        resend_first_s=t.number("resend_first_s", d.resend_first_s, lo=0.0, hi=3600, above=True),
        resend_max_s=t.number("resend_max_s", d.resend_max_s, lo=0.0, hi=3600, above=True),
        resend_jitter=t.number("resend_jitter", d.resend_jitter, lo=0.0, hi=0.5),
        hub_time_stale_s=t.number("hub_time_stale_s", d.hub_time_stale_s, lo=0.0, hi=3600,
                                  above=True),
        clock_hold_s=t.number("clock_hold_s", d.clock_hold_s, lo=0.0, hi=3600),
        test_duration_s=t.number("test_duration_s", d.test_duration_s, lo=0.0, hi=600,
                                 above=True),
        stop_timeout_s=t.number("stop_timeout_s", d.stop_timeout_s, lo=0.0, hi=60),
        cmd_memory=t.integer("cmd_memory", d.cmd_memory, lo=1, hi=100_000),
        idle_tick_s=t.number("idle_tick_s", d.idle_tick_s, lo=0.0, hi=3600, above=True),
        watchdog_s=t.number("watchdog_s", d.watchdog_s, lo=0.0, hi=600, above=True),
    )
    if timers.resend_max_s < timers.resend_first_s:
        raise t.fail("resend_max_s", "must not be less than resend_first_s")
    t.done()
    return timers


def _pins_used_once(root: Table, hw: HardwareConfig, battery: GaugeConfig | None) -> None:
    seen: dict[int, str] = {}
    if battery is not None and battery.bus == 1:
        # The gauge talks on the header's I2C bus: SDA and SCL are GPIO 2 and 3.
        seen.update({2: "battery (I2C SDA)", 3: "battery (I2C SCL)"})
    uses: list[tuple[int | None, str]] = [(b.pin, f"buttons[{i}].pin")
                                           for i, b in enumerate(hw.buttons)]
    uses += [(r.pin, f"remotes[{i}].pin") for i, r in enumerate(hw.remotes)]
    for i, o in enumerate(hw.outputs):
        uses += [(o.pin, f"outputs[{i}].pin"), (o.feedback_pin, f"outputs[{i}].feedback_pin")]
    uses += [(hw.cancel.pin if hw.cancel else None, "cancel.pin"),
             (hw.enable_pin, "enable.pin"), (hw.power_good_pin, "power.good_pin"),
             (hw.led_pin, "led.pin")]
    for pin, key in uses:
        if pin is None:
            continue
        if pin in seen:
            raise ConfigError(root.source, key, f"GPIO {pin} is already used by {seen[pin]}")
        seen[pin] = key


def parse_config(data: dict[str, Any], source: str = "<memory>",
                 base_dir: Path | None = None) -> NodeConfig:
    """Validate a decoded config document; relative paths resolve against `base_dir`."""
    try:
        return _parse(data, source, base_dir or Path.cwd())
    except TableError as exc:
        raise ConfigError(exc.source, exc.key, exc.problem) from None


def _parse(data: dict[str, Any], source: str, base: Path) -> NodeConfig:
    root = Table(source, "", data)
    node = root.sub("node", required=True)
    assert node is not None
    node_id = node.string("id", required=True)
    if not protocol.is_node_id(node_id):
        raise node.fail("id", f"{node_id!r} must match ^[a-z0-9][a-z0-9-]{{0,62}}$")
    area = node.string("area", required=True)
    if not protocol.is_area_path(area):
        raise node.fail("area", f"{area!r} must be 1 to 4 slugs [a-z0-9-]+ joined by '/'")
    data_dir = _path(node, "data_dir", base) or Path(DEFAULT_DATA_DIR)
    keep = node.number("log_keep_days", 30.0, lo=0.0, hi=3650)
    node.done()
    mqtt_t = root.sub("mqtt", required=True)
    assert mqtt_t is not None
    mqtt = _mqtt(mqtt_t, node_id, base)
    cancel = None
    if (c := root.sub("cancel")) is not None:
        cancel = InputConfig(pin=_pin(c, "pin"), hold_s=c.number("hold_s", 1.5, lo=0.0, hi=60),
                             active_low=c.boolean("active_low", True))
        c.done()
    enable_pin, toggle_ms = None, 50
    if (e := root.sub("enable")) is not None:
        enable_pin, toggle_ms = _pin(e, "pin"), e.integer("toggle_ms", 50, lo=5, hi=10_000)
        e.done()
    power_pin = None
    if (p := root.sub("power")) is not None:
        power_pin = _pin(p, "good_pin")
        p.done()
    led_pin, led_high = None, True
    if (lt := root.sub("led")) is not None:
        led_pin, led_high = _pin(lt, "pin"), lt.boolean("active_high", True)
        lt.done()
    hw = HardwareConfig(buttons=_buttons(root), cancel=cancel, outputs=_outputs(root),
                        enable_pin=enable_pin, enable_toggle_ms=toggle_ms,
                        power_good_pin=power_pin, led_pin=led_pin, led_active_high=led_high,
                        remotes=_remotes(root))
    battery = _battery(root)
    _pins_used_once(root, hw, battery)
    cfg = NodeConfig(node_id=node_id, area=area, mqtt=mqtt, hardware=hw, data_dir=data_dir,
                     log_keep_days=keep, patterns=_patterns(root), timers=_timers(root),
                     source=source, battery=battery)
    root.done()
    return cfg


def load_config(path: str | Path) -> NodeConfig:
    """Read and validate a node config file; raises ConfigError naming file and key."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(p), None, "config file not found") from None
    except PermissionError:
        raise ConfigError(str(p), None, "config file is not readable by this user") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), None, f"not valid TOML: {exc}") from None
    return parse_config(data, str(p), p.parent.resolve())


def check_files(cfg: NodeConfig) -> list[str]:
    """Problems with the files the config names (readable credentials, writable data_dir)."""
    problems: list[str] = []
    m = cfg.mqtt
    for key, f in (("mqtt.password_file", m.password_file), ("mqtt.ca_file", m.ca_file),
                   ("mqtt.cert_file", m.cert_file), ("mqtt.key_file", m.key_file)):
        if f is not None and not os.access(f, os.R_OK):
            problems.append(f"{cfg.source}: {key}: {f} is missing or not readable")
    d = cfg.data_dir
    probe = d if d.exists() else next((p for p in d.parents if p.exists()), d)
    if not os.access(probe, os.W_OK):
        problems.append(f"{cfg.source}: node.data_dir: {d} is not writable by this user")
    return problems
