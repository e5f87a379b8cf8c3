"""Settings of the integrations: the `[integrations]` table of the hub's TOML file.

    [integrations.metrics]        # Prometheus /metrics: open unless `token` is set
    [integrations.cap]            # CAP 1.2 feed and intake
    [integrations.webhooks]       # + [[integrations.webhooks.subscribers]]
    [integrations.sms]            # + [[integrations.sms.responders]]
    [integrations.homeassistant]  # MQTT discovery, off by default

Parsed by `parse_integrations(raw, source)` into frozen values with the project's one
TOML-table validator (protocol.tomltable): unknown keys are refused naming the file and
the dotted key (docs/integrations.md lists every key). This module imports nothing of
the hub but its errors, so hub.settings can validate the table at load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from protocol.tomltable import Table, TableError

from ..errors import SettingsError

AREA_RE = re.compile(r"^[a-z0-9-]+(/[a-z0-9-]+){0,3}$")
PHONE_RE = re.compile(r"^\+?[0-9]{3,20}$")
# "escalation": an incident nobody acknowledged took an escalation step (hub/escalation.py)
EVENT_TYPES = ("incident", "alarm", "node", "trouble", "command", "escalation")


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
class PhoneSettings:
    """`[integrations.sms.inbound]`: households alarming by SMS or missed call through the
    hub's modem (hub/integrations/phone.py, docs/phone-alarms.md)."""
    enabled: bool = False
    poll_s: float = 0.5                 # how often the modem is asked what came in
    confirm_s: float = 300.0            # a missed call is confirmed ("1", a second call) within
    second_call_after_s: float = 15.0   # a second call counts from this long after the first
    rate_max: int = 3                   # texts/calls acted on per number per rate_window_s
    rate_window_s: float = 600.0
    max_age_s: float = 900.0            # an SMS the network delivers later than this: no gongs
    unknown_area: str | None = None     # an unknown number's keyword SMS may sound this area
    call_kind: str = "sos"              # what a confirmed missed call raises


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
    inbound: PhoneSettings = field(default_factory=PhoneSettings)


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


def _secret(t: Table, key: str) -> str | None:
    """`key`, or the first line of `key_file` (so secrets can stay out of the file)."""
    value = t.string(key)
    path = t.string(f"{key}_file")
    if value is not None and path is not None:
        raise t.fail(key, f"give {key!r} or {key + '_file'!r}, not both")
    if path is None:
        return value  # type: ignore[no-any-return]
    try:
        return Path(path).expanduser().read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError) as exc:
        raise t.fail(f"{key}_file", f"{path}: cannot read it ({exc})") from None


def _phone(t: Table, key: str, value: Any) -> str:
    if not isinstance(value, str) or not PHONE_RE.match(value.replace(" ", "")):
        raise t.fail(key, f"{value!r} is not a phone number (digits, optional +)")
    return value.replace(" ", "")


def _subscriber(t: Table) -> Subscriber:
    t.only({"name", "url", "secret", "secret_file", "events"})
    name, url, secret = (t.string("name", required=True), t.string("url", required=True),
                         _secret(t, "secret"))
    if not secret:
        raise t.fail("secret", "is required (or 'secret_file')")
    if not re.match(r"^https?://", url):
        raise t.fail("url", f"must start with http:// or https://, not {url!r}")
    events = t.array("events") or list(EVENT_TYPES)
    bad = [e for e in events if e not in EVENT_TYPES and e != "*"]
    if bad:
        raise t.fail("events", f"{bad[0]!r} is not one of {', '.join(EVENT_TYPES)} or '*'")
    return Subscriber(name, url, secret, tuple(EVENT_TYPES if "*" in events else events))


def _responder(t: Table) -> Responder:
    t.only({"area", "phone", "name", "role"})
    area = t.string("area", required=True, pattern=AREA_RE.pattern[1:-1],
                    what="an area path such as 'bach-thong/vi-huong'")
    return Responder(area, _phone(t, "phone", t.raw("phone", True)), t.string("name", ""),
                     t.string("role", ""))


def _table(top: Table, name: str, keys: set[str]) -> Table:
    t = top.sub(name) or Table(top.source, top.key(name), {})
    t.only(keys)
    return t


def parse_integrations(raw: Any, source: str = "<settings>") -> IntegrationSettings:
    """The `[integrations]` table, validated; raises SettingsError naming file and key."""
    if isinstance(raw, IntegrationSettings):
        return raw
    try:
        return _parse(Table(source, "integrations", {} if raw is None else raw))
    except TableError as exc:
        raise SettingsError(str(exc)) from None


def _parse(top: Table) -> IntegrationSettings:
    top.only({"metrics", "cap", "webhooks", "sms", "homeassistant"})
    mt = _table(top, "metrics", {"token", "token_file"})
    ct = _table(top, "cap", {"sender_domain", "timezone", "token", "token_file", "feed_limit",
                             "broadcast_signal", "broadcast_duration_s"})
    tz = ct.string("timezone", "Asia/Ho_Chi_Minh")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ct.fail("timezone", f"{tz!r} is not a known time zone") from None
    cap = CapSettings(ct.string("sender_domain", "tiengmo.local"), tz, _secret(ct, "token"),
                      ct.integer("feed_limit", 50, lo=1), ct.string("broadcast_signal",
                                                                   "warning"),
                      ct.integer("broadcast_duration_s", None, lo=1))
    wt = _table(top, "webhooks", {"subscribers", "timeout_s", "retry_min_s", "retry_max_s",
                                  "max_attempts", "poll_s"})
    subs = tuple(_subscriber(t) for t in wt.tables("subscribers"))
    if len({s.name for s in subs}) != len(subs):
        raise wt.fail("subscribers", "two subscribers share a name")
    hooks = WebhookSettings(subs, wt.number("timeout_s", 5.0, above=True),
                            wt.number("retry_min_s", 2.0, above=True),
                            wt.number("retry_max_s", 300.0, above=True),
                            wt.integer("max_attempts", 12, lo=1),
                            wt.number("poll_s", 0.5, above=True))
    st = _table(top, "sms", {"enabled", "port", "baudrate", "timeout_s", "admins", "responders",
                             "broker_loss_after_s", "send_attempts", "drills", "inbound"})
    it = _table(st, "inbound", {"enabled", "poll_s", "confirm_s", "second_call_after_s",
                                "rate_max", "rate_window_s", "max_age_s", "unknown_area",
                                "call_kind"})
    kinds = ("fire", "theft", "robbery", "fight", "flood", "medical", "sos")
    call_kind = it.string("call_kind", "sos", choices=kinds)
    inbound = PhoneSettings(
        it.boolean("enabled", False), it.number("poll_s", 0.5, above=True),
        it.number("confirm_s", 300.0, above=True),
        it.number("second_call_after_s", 15.0, above=True), it.integer("rate_max", 3, lo=1),
        it.number("rate_window_s", 600.0, above=True), it.number("max_age_s", 900.0, above=True),
        it.string("unknown_area", None, pattern=AREA_RE.pattern[1:-1],
                  what="an area path such as 'bach-thong/vi-huong'"), call_kind)
    sms = SmsSettings(
        st.boolean("enabled", False), st.string("port", "/dev/ttyUSB2"),
        st.integer("baudrate", 115200, lo=1), st.number("timeout_s", 10.0, above=True),
        tuple(_phone(st, "admins", p) for p in st.array("admins")),
        tuple(_responder(t) for t in st.tables("responders")),
        st.number("broker_loss_after_s", 120.0, above=True),
        st.integer("send_attempts", 3, lo=1), st.boolean("drills", False), inbound)
    words = r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*"
    ht = _table(top, "homeassistant", {"enabled", "discovery_prefix", "base_topic",
                                       "broker_url", "username", "password", "password_file",
                                       "client_id", "actor", "signal", "duration_s"})
    ha = HomeAssistantSettings(
        ht.boolean("enabled", False),
        ht.string("discovery_prefix", "homeassistant", pattern=words,
                  what="slash-separated words without wildcards"),
        ht.string("base_topic", "tiengmo/ha", pattern=words,
                  what="slash-separated words without wildcards"),
        ht.string("broker_url"), ht.string("username"), _secret(ht, "password"),
        ht.string("client_id"), ht.string("actor", "homeassistant"),
        ht.string("signal", "warning"), ht.integer("duration_s", 60, lo=1))
    return IntegrationSettings(MetricsSettings(_secret(mt, "token")), cap, hooks, sms, ha)
