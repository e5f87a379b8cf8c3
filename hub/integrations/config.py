"""Settings of the integrations: the `[integrations]` table of the hub's TOML file.

    [integrations.metrics]        # Prometheus /metrics: open unless `token` is set
    [integrations.cap]            # CAP 1.2 feed and intake
    [integrations.webhooks]       # + [[integrations.webhooks.subscribers]]
    [integrations.sms]            # + [[integrations.sms.responders]]
    [integrations.homeassistant]  # MQTT discovery, off by default

Parsed by `parse_integrations(raw, source)` into frozen values; unknown keys are
refused naming the file and the key (docs/integrations.md lists every key). This
module imports nothing of the hub, so hub.settings can validate the table at load.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import SettingsError

AREA_RE = re.compile(r"^[a-z0-9-]+(/[a-z0-9-]+){0,3}$")
PHONE_RE = re.compile(r"^\+?[0-9]{3,20}$")
EVENT_TYPES = ("incident", "alarm", "node", "trouble", "command")


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    token: str | None = field(default=None, repr=False)   # None: open, as exporters are


@dataclass(frozen=True, slots=True)
class CapSettings:
    sender_domain: str = "tiengmo.local"    # sender = <hub_id>@<sender_domain>
    timezone: str = "Asia/Ho_Chi_Minh"      # offset written into every `sent`
    token: str | None = field(default=None, repr=False)  # besides API tokens (feed + intake)
    feed_limit: int = 50
    broadcast_signal: str = "warning"       # pattern for an intake with no matching kind
    broadcast_duration_s: int | None = None  # None: the policy's default


@dataclass(frozen=True, slots=True)
class Subscriber:
    name: str
    url: str
    secret: str = field(repr=False)
    events: tuple[str, ...] = EVENT_TYPES


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    subscribers: tuple[Subscriber, ...] = ()
    timeout_s: float = 5.0
    retry_min_s: float = 2.0
    retry_max_s: float = 300.0
    max_attempts: int = 12
    poll_s: float = 0.5


@dataclass(frozen=True, slots=True)
class Responder:
    area: str
    phone: str
    name: str = ""
    role: str = ""                          # e.g. "công an xã", "trưởng thôn"


@dataclass(frozen=True, slots=True)
class SmsSettings:
    enabled: bool = False
    port: str = "/dev/ttyUSB2"
    baudrate: int = 115200
    timeout_s: float = 10.0
    admins: tuple[str, ...] = ()
    responders: tuple[Responder, ...] = ()
    broker_loss_after_s: float = 120.0      # hub without its broker this long: SMS admins
    send_attempts: int = 3
    drills: bool = False                    # drills are announced anyway; no SMS by default


@dataclass(frozen=True, slots=True)
class HomeAssistantSettings:
    enabled: bool = False
    discovery_prefix: str = "homeassistant"
    base_topic: str = "tiengmo/ha"
    broker_url: str | None = None           # default: the hub's broker
    username: str | None = None             # default: client_id
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None            # default: <hub_id>-ha
    actor: str = "homeassistant"
    signal: str = "warning"                 # what "siren on" plays (a kind or pattern name)
    duration_s: int = 60


@dataclass(frozen=True, slots=True)
class IntegrationSettings:
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    cap: CapSettings = field(default_factory=CapSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    sms: SmsSettings = field(default_factory=SmsSettings)
    homeassistant: HomeAssistantSettings = field(default_factory=HomeAssistantSettings)


class _Table:
    """Typed reads of one TOML table, refusing unknown keys."""

    def __init__(self, raw: Any, where: str, keys: set[str]) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise SettingsError(f"{where} must be a table")
        unknown = sorted(set(raw) - keys)
        if unknown:
            raise SettingsError(f"{where}: unknown key {unknown[0]!r}")
        self.raw, self.where = raw, where

    def _bad(self, key: str, what: str) -> SettingsError:
        return SettingsError(f"{self.where}: key {key!r} must be {what}, "
                             f"got {self.raw[key]!r}")

    def str_(self, key: str, default: str | None) -> Any:
        v = self.raw.get(key, default)
        if v is not None and (not isinstance(v, str) or (key in self.raw and v == "")):
            raise self._bad(key, "a non-empty string")
        return v

    def num(self, key: str, default: float, *, positive: bool = True) -> float:
        v = self.raw.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or (positive and v <= 0):
            raise self._bad(key, "a number greater than 0")
        return float(v)

    def int_(self, key: str, default: int | None) -> Any:
        v = self.raw.get(key, default)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise self._bad(key, "an integer of 1 or more")
        return v

    def bool_(self, key: str, default: bool) -> bool:
        v = self.raw.get(key, default)
        if not isinstance(v, bool):
            raise self._bad(key, "true or false")
        return v

    def list_(self, key: str) -> list[Any]:
        v = self.raw.get(key, [])
        if not isinstance(v, list):
            raise self._bad(key, "an array")
        return v

    def secret(self, key: str) -> str | None:
        """`key`, or the first line of `key_file` (so secrets can stay out of the file)."""
        value = self.str_(key, None)
        path = self.str_(f"{key}_file", None)
        if value is not None and path is not None:
            raise SettingsError(f"{self.where}: give {key!r} or {key + '_file'!r}, not both")
        if path is None:
            return value  # type: ignore[no-any-return]
        try:
            return Path(path).expanduser().read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise SettingsError(f"{self.where}: {key}_file {path}: cannot read it ({exc})") \
                from None


def _phone(value: Any, where: str) -> str:
    if not isinstance(value, str) or not PHONE_RE.match(value.replace(" ", "")):
        raise SettingsError(f"{where}: {value!r} is not a phone number (digits, optional +)")
    return value.replace(" ", "")


def _subscriber(raw: Any, where: str) -> Subscriber:
    t = _Table(raw, where, {"name", "url", "secret", "secret_file", "events"})
    name, url, secret = t.str_("name", None), t.str_("url", None), t.secret("secret")
    if not name or not url or not secret:
        raise SettingsError(f"{where}: 'name', 'url' and 'secret' (or 'secret_file') are "
                            "required")
    if not re.match(r"^https?://", url):
        raise SettingsError(f"{where}: key 'url' must start with http:// or https://")
    events = t.list_("events") or list(EVENT_TYPES)
    bad = [e for e in events if e not in EVENT_TYPES and e != "*"]
    if bad:
        raise SettingsError(f"{where}: key 'events': {bad[0]!r} is not one of "
                            f"{', '.join(EVENT_TYPES)} or '*'")
    return Subscriber(name, url, secret, tuple(EVENT_TYPES if "*" in events else events))


def _responder(raw: Any, where: str) -> Responder:
    t = _Table(raw, where, {"area", "phone", "name", "role"})
    area = t.str_("area", None)
    if not area or not AREA_RE.match(area):
        raise SettingsError(f"{where}: key 'area' must be an area path such as "
                            "'bach-thong/vi-huong'")
    return Responder(area, _phone(t.str_("phone", None), f"{where}.phone"),
                     t.str_("name", "") or "", t.str_("role", "") or "")


def parse_integrations(raw: Any, source: str = "<settings>") -> IntegrationSettings:
    """The `[integrations]` table, validated; raises SettingsError naming file and key."""
    if isinstance(raw, IntegrationSettings):
        return raw
    top = _Table(raw, f"{source}: [integrations]",
                 {"metrics", "cap", "webhooks", "sms", "homeassistant"})
    w = f"{source}: [integrations."
    mt = _Table(top.raw.get("metrics"), w + "metrics]", {"token", "token_file"})
    ct = _Table(top.raw.get("cap"), w + "cap]",
                {"sender_domain", "timezone", "token", "token_file", "feed_limit",
                 "broadcast_signal", "broadcast_duration_s"})
    tz = ct.str_("timezone", "Asia/Ho_Chi_Minh")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{w}cap]: key 'timezone' {tz!r} is not a known time zone") \
            from None
    cap = CapSettings(ct.str_("sender_domain", "tiengmo.local"), tz, ct.secret("token"),
                      ct.int_("feed_limit", 50), ct.str_("broadcast_signal", "warning"),
                      ct.int_("broadcast_duration_s", None))
    wt = _Table(top.raw.get("webhooks"), w + "webhooks]",
                {"subscribers", "timeout_s", "retry_min_s", "retry_max_s", "max_attempts",
                 "poll_s"})
    subs = tuple(_subscriber(s, f"{w}webhooks].subscribers[{i}]")
                 for i, s in enumerate(wt.list_("subscribers")))
    if len({s.name for s in subs}) != len(subs):
        raise SettingsError(f"{w}webhooks]: two subscribers share a name")
    hooks = WebhookSettings(subs, wt.num("timeout_s", 5.0), wt.num("retry_min_s", 2.0),
                            wt.num("retry_max_s", 300.0), wt.int_("max_attempts", 12),
                            wt.num("poll_s", 0.5))
    st = _Table(top.raw.get("sms"), w + "sms]",
                {"enabled", "port", "baudrate", "timeout_s", "admins", "responders",
                 "broker_loss_after_s", "send_attempts", "drills"})
    sms = SmsSettings(
        st.bool_("enabled", False), st.str_("port", "/dev/ttyUSB2"), st.int_("baudrate", 115200),
        st.num("timeout_s", 10.0),
        tuple(_phone(p, f"{w}sms].admins") for p in st.list_("admins")),
        tuple(_responder(r, f"{w}sms].responders[{i}]")
              for i, r in enumerate(st.list_("responders"))),
        st.num("broker_loss_after_s", 120.0), st.int_("send_attempts", 3),
        st.bool_("drills", False))
    ht = _Table(top.raw.get("homeassistant"), w + "homeassistant]",
                {"enabled", "discovery_prefix", "base_topic", "broker_url", "username",
                 "password", "password_file", "client_id", "actor", "signal", "duration_s"})
    ha = HomeAssistantSettings(
        ht.bool_("enabled", False), ht.str_("discovery_prefix", "homeassistant"),
        ht.str_("base_topic", "tiengmo/ha"), ht.str_("broker_url", None),
        ht.str_("username", None), ht.secret("password"), ht.str_("client_id", None),
        ht.str_("actor", "homeassistant"), ht.str_("signal", "warning"),
        ht.int_("duration_s", 60))
    for key in ("discovery_prefix", "base_topic"):
        if not re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", getattr(ha, key)):
            raise SettingsError(f"{w}homeassistant]: key {key!r} must be slash-separated "
                                "words without wildcards")
    return IntegrationSettings(MetricsSettings(mt.secret("token")), cap, hooks, sms, ha)
