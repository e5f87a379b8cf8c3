"""The sentinel's TOML config (docs/sentinel.md), validated once with unknown keys refused.

    [sentinel]
    id = "sentinel-1"              # MQTT client id and username
    grace_s = 60                   # the hub must be gone this long before anyone is told
    beacon_stale_s = 30            # no hub/time for this long: the hub is not working
    tick_s = 1

    [mqtt]
    url = "mqtt://127.0.0.1:1883"
    password_file = "/etc/tiengmo-sentinel/sentinel.password"
    prefix = "mo/v1"
    keepalive_s = 15

    [sms]                          # optional
    port = "/dev/ttyUSB2"
    admins = ["+84912345678"]
    police = ["+84987654321"]      # the commune police

    [[webhooks]]                   # optional, any number
    url = "https://relay.example/hook"
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import protocol
from protocol.secretfile import first_line
from protocol.tomltable import Table, TableError

from .errors import ConfigError

PHONE = r"\+?[0-9]{3,15}"


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str
    port: int
    tls: bool
    username: str
    password_file: Path | None = None
    ca_file: Path | None = None
    prefix: str = protocol.DEFAULT_PREFIX
    keepalive_s: int = 15
    reconnect_max_s: float = 10.0

    def password(self) -> str | None:
        if self.password_file is None:
            return None
        return first_line(self.password_file)


@dataclass(frozen=True, slots=True)
class SmsSettings:
    port: str
    admins: tuple[str, ...]
    police: tuple[str, ...]
    baudrate: int = 115200
    timeout_s: float = 10.0
    attempts: int = 3

    @property
    def numbers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.admins, *self.police)))


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class SentinelConfig:
    sentinel_id: str
    mqtt: MqttSettings
    grace_s: float = 60.0
    beacon_stale_s: float = 30.0
    tick_s: float = 1.0
    sms: SmsSettings | None = None
    webhooks: tuple[Webhook, ...] = ()
    source: str = "<memory>"


def _path(t: Table, name: str, base: Path) -> Path | None:
    v = t.string(name)
    return None if v is None else (Path(v) if os.path.isabs(v) else base / v)


def _mqtt(t: Table, sentinel_id: str, base: Path) -> MqttSettings:
    url = t.string("url", required=True)
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or parts.username \
            or parts.query or parts.path not in ("", "/"):
        raise t.fail("url", f"must be mqtt://host:port or mqtts://host:port, not {url!r}")
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
    m = MqttSettings(host=parts.hostname, port=port or (8883 if tls else 1883), tls=tls,
                     username=t.string("username", sentinel_id),
                     password_file=_path(t, "password_file", base),
                     ca_file=_path(t, "ca_file", base), prefix=prefix,
                     keepalive_s=t.integer("keepalive_s", 15, lo=1, hi=3600),
                     reconnect_max_s=t.number("reconnect_max_s", 10.0, lo=0.05, hi=300))
    t.done()
    return m


def _numbers(t: Table, name: str) -> tuple[str, ...]:
    out = []
    for i, v in enumerate(t.array(name)):
        if not isinstance(v, str) or not re.fullmatch(PHONE, v):
            raise t.fail(f"{name}[{i}]", f"must be a phone number like +84912345678, not {v!r}")
        out.append(v)
    return tuple(out)


def _sms(t: Table) -> SmsSettings:
    s = SmsSettings(port=t.string("port", required=True), admins=_numbers(t, "admins"),
                    police=_numbers(t, "police"),
                    baudrate=t.integer("baudrate", 115200, lo=1200, hi=4_000_000),
                    timeout_s=t.number("timeout_s", 10.0, lo=0.0, hi=120, above=True),
                    attempts=t.integer("attempts", 3, lo=1, hi=10))
    if not s.numbers:
        raise t.fail("admins", "give at least one number in admins or police")
    t.done()
    return s


def _webhook(t: Table) -> Webhook:
    url = t.string("url", required=True)
    if urlsplit(url).scheme not in ("http", "https"):
        raise t.fail("url", "must be an http:// or https:// URL")
    w = Webhook(url=url, timeout_s=t.number("timeout_s", 5.0, lo=0.0, hi=60, above=True))
    t.done()
    return w


def parse_config(data: dict[str, Any], source: str = "<memory>",
                 base: Path | None = None) -> SentinelConfig:
    try:
        return _parse(data, source, base or Path.cwd())
    except TableError as exc:
        raise ConfigError(str(exc)) from None


def _parse(data: dict[str, Any], source: str, base: Path) -> SentinelConfig:
    root = Table(source, "", data)
    s = root.sub("sentinel", required=True)
    assert s is not None
    sid = s.string("id", required=True)
    if not protocol.is_node_id(sid):
        raise s.fail("id", f"{sid!r} must match ^[a-z0-9][a-z0-9-]{{0,62}}$")
    grace = s.number("grace_s", 60.0, lo=0.0, hi=86_400, above=True)
    stale = s.number("beacon_stale_s", 30.0, lo=0.0, hi=3600, above=True)
    tick = s.number("tick_s", 1.0, lo=0.0, hi=60, above=True)
    s.done()
    m = root.sub("mqtt", required=True)
    assert m is not None
    mqtt = _mqtt(m, sid, base)
    sms_t = root.sub("sms")
    sms = _sms(sms_t) if sms_t is not None else None
    hooks = tuple(_webhook(t) for t in root.tables("webhooks"))
    root.done()
    if sms is None and not hooks:
        raise ConfigError(f"{source}: give [sms] numbers or [[webhooks]]: a sentinel that "
                          "tells nobody is no sentinel")
    return SentinelConfig(sentinel_id=sid, mqtt=mqtt, grace_s=grace, beacon_stale_s=stale,
                          tick_s=tick, sms=sms, webhooks=hooks, source=source)


def load_config(path: str | Path) -> SentinelConfig:
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except PermissionError:
        raise ConfigError(f"{p}: config file is not readable by this user") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(data, str(p), p.parent.resolve())
