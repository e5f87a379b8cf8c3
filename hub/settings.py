"""Hub settings on pydantic-settings: one TOML file, TIENGMO_* variables, overrides.

`load_settings(path, env, **overrides)` reads the file (flat top-level keys plus the
`[policy]` and `[integrations]` tables, see docs/hub-config.md), then the environment
(`TIENGMO_<KEY>`, and `TIENGMO_POLICY__<A>__<B>` into the tables), then keyword
overrides, each winning over the one before; validates everything against HubSettings
(`extra="forbid"`, ranges and patterns as `Field` constraints) and returns it frozen.
Unknown keys are refused, naming the file and the key, so a typo in a timer cannot
silently leave an alarm system on a default; a bad value names the key, the value and
what is allowed (hub.settings_sources.explain). Nothing happens at import time;
loading may create `data_dir` and its `secret` file (mode 0600).
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import os
import re
import secrets
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PlainValidator, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

import protocol

from .defaults import BROKER_URL as DEFAULT_BROKER_URL
from .defaults import HTTP_HOST as DEFAULT_HTTP_HOST
from .defaults import HTTP_PORT as DEFAULT_HTTP_PORT
from .defaults import default_data_dir, default_db_url
from .errors import SettingsError
from .integrations.config import IntegrationSettings, parse_integrations
from .policy import Policy, parse_policy
from .settings_sources import (
    ENV_PREFIX,
    NESTED_DELIMITER,
    EnvSource,
    TomlSource,
    explain,
    read_toml,
)

log = logging.getLogger(__name__)

SECRET_FILE = "secret"
# Values people paste from examples; never acceptable in production.
WEAK_SECRETS = frozenset({"", "secret", "changeme", "change-me", "password", "tiengmo",
                          "development", "dev", "default", "example"})
MIN_SECRET_LEN = 16
ENVIRONMENTS = ("development", "production")
MAX_INGEST_WORKERS = 64
HUB_ID_RE = r"^[a-z0-9][a-z0-9-]{0,62}$"
PREFIX_RE = r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"
# One topic level (MQTT 5 §4.8.2): no separators or wildcards. Kept to the node-id
# alphabet plus '_' so it is also safe in ACL files.
SHARE_RE = r"^[A-Za-z0-9_-]{1,64}$"
DB_SCHEMES = ("sqlite", "postgresql", "postgres")


@dataclass(frozen=True)
class _Load:
    """What one load_settings call reads: the sources are per call, not per class."""

    toml: Mapping[str, Any]
    env: Mapping[str, str]
    source: str


_LOADING: contextvars.ContextVar[_Load] = contextvars.ContextVar("hub_settings_load")


def _where() -> str:
    load = _LOADING.get(None)
    return load.source if load is not None else "<overrides>"


def _to_policy(value: Any) -> Policy:
    return value if isinstance(value, Policy) else parse_policy(value, _where())


def _to_integrations(value: Any) -> IntegrationSettings:
    return parse_integrations(value, _where())


_DAYS = "0 (keep everything) or a number of days above it"


def _pos(**kw: Any) -> Any:
    return Field(gt=0, **kw)


class HubSettings(BaseSettings):
    """Every setting of a hub process. Times ending `_s` are seconds."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED_DELIMITER, extra="forbid",
        frozen=True, allow_inf_nan=False, arbitrary_types_allowed=True,
        validate_default=False)

    hub_id: str = Field("", pattern=HUB_ID_RE, json_schema_extra={   # default: host name
        "allowed": "match ^[a-z0-9][a-z0-9-]{0,62}$ (lower-case letters, digits, '-')"})
    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("/var/lib/tiengmo")  # default: see defaults.default_data_dir()
    db_url: str = ""                       # default: sqlite:///<data_dir>/hub.db
    # PostgreSQL, on every connection: no transaction (an alarm's least of all) waits behind
    # another session's lock, or on one statement, longer than these (0: no limit); it
    # fails, /healthz says degraded, the node's re-send tries again (docs/faults.md).
    db_lock_timeout_s: float = Field(2.0, ge=0)
    db_statement_timeout_s: float = Field(15.0, ge=0)
    registry_file: Path | None = None
    secret: str = Field("", repr=False)    # default: kept in <data_dir>/secret
    # MQTT
    broker_url: str = DEFAULT_BROKER_URL
    username: str | None = None            # default: hub_id (the broker's ACLs want id == user)
    password: str | None = Field(None, repr=False)
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None          # client certificate (mqtts://, mutual TLS)
    key_file: Path | None = None           # its private key, unless cert_file holds it
    # Mosquitto's dynamic-security plugin (hub/dynsec.py, docs/security.md): with a login
    # here the broker refuses disabled nodes; unset, the broker is not asked.
    dynsec_username: str | None = None
    dynsec_password_file: Path | None = None
    dynsec_sync_s: float = _pos(default=30.0)  # and at once whenever a node is (dis)abled
    prefix: str = Field(protocol.DEFAULT_PREFIX, pattern=PREFIX_RE, json_schema_extra={
        "allowed": "slash-separated words without wildcards"})
    # Replicas: an MQTT 5 shared-subscription group, so each alarm reaches one replica
    # ($share/<group>/...). None: one hub, plain subscriptions.
    shared_group: str | None = Field(None, pattern=SHARE_RE, json_schema_extra={
        "allowed": "1-64 letters, digits, '-' or '_' (one MQTT topic level, no '/', '+' "
                   "or '#')"})
    # While the broker is not reached, say so once and then every this many seconds.
    not_reached_log_s: float = _pos(default=60.0)
    # threads handling inbound messages (per node order kept)
    ingest_workers: int = Field(2, ge=1, le=MAX_INGEST_WORKERS)
    # The lanes (hub/lanes.py, docs/alarm-lane.md). Alarms and cancels have a queue and a
    # worker of their own and no budget; every other message of a node costs a token of
    # its bucket (this many a second, up to `node_budget_burst` at once): without one it
    # is dropped unparsed and counted by node and reason (/metrics). A node that had any
    # dropped is a noisy_node trouble until none was for `noisy_quiet_s`.
    # Alarm workers, sharded by node id: a batch that fails slowly holds only its shard.
    # None: one on SQLite (a single writer: a second worker only waits for the first's
    # lock, and cost 0.60x the bare relay's ingest against 0.91x with one), two on
    # PostgreSQL (real concurrent transactions).
    alarm_workers: int | None = Field(None, ge=1, le=MAX_INGEST_WORKERS)
    node_budget_per_s: float = _pos(default=2.0)
    node_budget_burst: int = Field(30, ge=1)
    noisy_quiet_s: float = _pos(default=60.0)
    # Queue bounds (memory): a full non-alarm queue drops and counts (`queue_full`); a full
    # alarm queue drops too (never acked, so the node re-sends it).
    bulk_queue_max: int = Field(10_000, ge=1)
    alarm_queue_max: int = Field(50_000, ge=1)
    # The alarm lane's own MQTT connection (client id `<hub_id>-alarms`): alarms and cancels
    # never queue at the broker behind a flood of the hub's other topics. On a broker with
    # `use_username_as_clientid` (production) it needs a login of its own,
    # `<hub_id>-alarms` (hub.logins; the broker role and `tiengmo demo` make it):
    # `alarm_username` and `alarm_password_file`; else the hub's login is used.
    # Off by default: a hub started by hand against a broker that was not given that login
    # would have its alarm topics refused or its two sessions taking each other over
    # (docs/alarm-lane.md, "Why not on by default"). The hub role and the demo turn it on.
    alarm_connection: bool = False
    alarm_username: str | None = None
    alarm_password_file: Path | None = None
    # With the alarm lane's own connection, the other one reads at most this many
    # messages a second (a flood then costs bounded CPU; the broker holds the rest).
    bulk_read_max_per_s: float = _pos(default=2000.0)
    # /healthz and /metrics say degraded when an alarm has waited this long unhandled, or
    # more than this many messages are queued.
    health_alarm_wait_s: float = _pos(default=1.0)
    health_backlog_max: int = Field(2_000, ge=1)
    # systemd's watchdog (Type=notify, WatchdogSec): pings stop when an alarm batch or a
    # tick has run this long (a database outage fails fast and is no reason).
    watchdog_stall_s: float = _pos(default=30.0)
    # When true this hub stores and shows but never acks or fans out (a provincial
    # hub watching bridged local brokers, ARCHITECTURE.md).
    observer: bool = False
    # HTTP
    http_host: str = DEFAULT_HTTP_HOST
    http_port: int = Field(DEFAULT_HTTP_PORT, ge=1, le=65535)
    # Bounds at the HTTP edge (hub/api/limits.py, docs/hub-config.md)
    http_max_body_bytes: int = Field(1_048_576, ge=1)   # larger request bodies get 413, unread
    http_body_timeout_s: float = _pos(default=30.0)    # a request body must have arrived (408)
    http_header_timeout_s: float = _pos(default=10.0)  # headers likewise (else the socket closes)
    http_keep_alive_s: float = _pos(default=5.0)       # an idle kept-alive connection closes
    http_max_header_bytes: int = Field(16_384, ge=1)   # request line + headers
    http_max_connections: int = Field(500, ge=1)       # connections + requests at once, then 503
    # Timers of PROTOCOL.md rule 9 and the hub's own
    keepalive_s: float = _pos(default=15.0)
    heartbeat_s: float = _pos(default=10.0)
    missing_after_heartbeats: int = Field(3, ge=1)
    loss_debounce_s: float = _pos(default=20.0)
    report_within_s: float = _pos(default=60.0)
    time_beacon_s: float = _pos(default=10.0)
    correlation_window_s: float = _pos(default=600.0)
    # An alarm whose `ts_ms` is older than this on receipt (held far too long in an
    # outbox) is stored and shown as late, never sounded; a stamp further than the
    # tolerance in the future is counted as a wrong node clock (hub.freshness).
    alarm_max_age_s: float = _pos(default=900.0)
    alarm_future_tolerance_s: float = _pos(default=60.0)
    escalate_after_s: float = _pos(default=120.0)
    sound_expiry_s: float = _pos(default=60.0)
    failed_to_sound_s: float = _pos(default=15.0)  # no `started`/`done` by then: trouble
    # After publishing a new incident's `sound`, the alarm transaction waits (at most
    # this) for the broker's PUBACK before its bookkeeping: the gongs first. Without
    # it the MQTT thread that writes the sound waited for the GIL behind that
    # bookkeeping, p90 1.8 ms more on press -> sound (docs/alarm-lane.md). 0: no wait.
    sound_handoff_s: float = Field(0.01, ge=0.0, le=0.1)
    # The leader's look for incidents stored but never sounded (a replica died between
    # deciding and sounding), and how old one must be first: the normal path records
    # its `sound` within milliseconds.
    orphan_check_s: float = _pos(default=5.0)
    orphan_grace_s: float = _pos(default=10.0)
    reconnect_min_s: float = _pos(default=1.0)
    reconnect_max_s: float = _pos(default=30.0)
    # A noisy node (a stuck or pranked button) keeps being stored and acked, but
    # after this many fanned-out incidents in the window its new ones do not sound.
    noisy_max_fanouts: int = Field(3, ge=1)
    # A stuck or pranked button whose presses all join one open incident never
    # reaches the fan-out limit; this many alarms from one node within the
    # window make it a noisy-node trouble all the same (storing and acking go on).
    noisy_max_alarms: int = Field(10, ge=1)
    noisy_window_s: float = _pos(default=600.0)
    # Many nodes of one area lost at once are one area trouble (power cut, jamming).
    area_trouble_min_nodes: int = Field(3, ge=1)
    area_trouble_fraction: float = Field(0.5, gt=0, le=1)
    # Power (hub/power.py): a `low_battery` trouble below `low_battery_pct`, cleared at
    # `low_battery_pct` + `low_battery_margin_pct`; this many nodes, and this fraction, of
    # one area on battery at once are ONE `power_cut`; a node on battery outside a cut
    # waits `power_cut_window_s` for its neighbours before its own `on_battery`.
    low_battery_pct: float = Field(20.0, ge=0, le=100)
    low_battery_margin_pct: float = Field(5.0, ge=0, le=50)
    power_cut_min_nodes: int = Field(3, ge=1)
    power_cut_fraction: float = Field(0.5, gt=0, le=1)
    power_cut_window_s: float = _pos(default=30.0)
    # Operators' API (docs/api.md): browser sessions end after `session_idle_s` without a
    # request or `session_max_s` after login; logins are throttled per user and per address.
    session_idle_s: float = _pos(default=8 * 3600.0)
    session_max_s: float = _pos(default=24 * 3600.0)
    # Wrong passwords count per user AND client (the address, or a known device): this many
    # lock that user out at that client only, for a doubling lockout.
    login_max_failures: int = Field(5, ge=1)
    # This many wrong passwords from one address (any names) slow its logins down by
    # `login_slowdown_s`; never a refusal (one NAT, one office: docs/api.md).
    login_ip_max_failures: int = Field(20, ge=1)
    # Guessing one user's password from many addresses: after this many failures (all
    # clients) each login as that user waits `login_slowdown_s` first, except from a
    # browser that has logged in as that user before (the signed known-device cookie).
    login_slowdown_after: int = Field(10, ge=1)
    login_slowdown_s: float = Field(3.0, ge=0, le=60)
    known_device_days: float = _pos(default=365.0)
    # Proxies (addresses or networks) whose X-Forwarded-For/-Proto are believed; none by
    # default, so the peer's own address is the client (login throttling, the audit log).
    trusted_proxies: list[str] = Field(default_factory=list, json_schema_extra={
        "allowed": "a list of IP addresses or networks, e.g. [\"127.0.0.1\", \"10.0.0.0/8\"]"})
    login_lockout_s: float = _pos(default=30.0)
    login_lockout_max_s: float = _pos(default=3600.0)
    event_retention_s: float = _pos(default=7 * 86400.0)   # the live stream's replay log
    stream_poll_s: float = _pos(default=0.25)     # how often to look for other replicas' events
    # Retention of old events (hub/retention.py, docs/faults.md); 0 keeps everything.
    # retention_days: finished incidents + their alarms, cleared troubles;
    # audit_retention_days: the append-only audit log (only this prunes it).
    retention_days: float = Field(0.0, ge=0, json_schema_extra={"allowed": _DAYS})
    audit_retention_days: float = Field(0.0, ge=0, json_schema_extra={"allowed": _DAYS})
    # Local time of the CSV exports (an IANA zone name).
    tz: str = Field("Asia/Ho_Chi_Minh", json_schema_extra={
        "allowed": "an IANA time zone name, e.g. Asia/Ho_Chi_Minh or UTC"})
    policy: Annotated[Policy, PlainValidator(_to_policy)] = Field(default_factory=Policy)
    # The [integrations] table (metrics, CAP, webhooks, SMS, Home Assistant): see
    # hub/integrations/config.py and docs/integrations.md.
    integrations: Annotated[IntegrationSettings, PlainValidator(_to_integrations)] = Field(
        default_factory=IntegrationSettings)
    source: str = Field("<defaults>", exclude=True)  # where these came from, for messages

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # First wins: keyword overrides, then the environment, then the file.
        load = _LOADING.get(None) or _Load({}, {}, "<defaults>")
        return (init_settings, EnvSource(settings_cls, load.env),
                TomlSource(settings_cls, load.toml))

    @model_validator(mode="before")
    @classmethod
    def _derived_defaults(cls, values: Any) -> Any:
        """hub_id, data_dir and db_url default from the host and from each other."""
        if not isinstance(values, dict):
            return values
        if not values.get("hub_id"):
            values["hub_id"] = default_hub_id()
        env = values.get("environment", "development")
        data_dir = values.get("data_dir") or default_data_dir(str(env))
        if isinstance(data_dir, str | Path):
            data_dir = Path(data_dir).expanduser()
            values["data_dir"] = data_dir
            if not values.get("db_url"):
                values["db_url"] = default_db_url(data_dir)
        for key in ("registry_file", "password_file", "ca_file", "cert_file", "key_file",
                    "dynsec_password_file", "alarm_password_file"):
            if isinstance(values.get(key), str) and values[key]:
                values[key] = Path(values[key]).expanduser()
        return values

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, url: str) -> str:
        check_broker_url(url)
        return url

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, proxies: list[str]) -> list[str]:
        for p in proxies:
            try:
                ipaddress.ip_network(p, strict=False)
            except ValueError:
                raise _rule(f"key 'trusted_proxies': {p!r} is not an IP address or network "
                            "(e.g. 127.0.0.1 or 10.0.0.0/8)") from None
        return proxies

    @field_validator("tz")
    @classmethod
    def _tz(cls, tz: str) -> str:
        try:
            ZoneInfo(tz)
        except (ValueError, ZoneInfoNotFoundError):
            raise _rule(f"key 'tz' = {tz!r} is not a known time zone (e.g. "
                        "Asia/Ho_Chi_Minh or UTC)") from None
        return tz

    @field_validator("db_url")
    @classmethod
    def _db_url(cls, url: str) -> str:
        check_db_url(url)
        return url

    @model_validator(mode="after")
    def _relations(self) -> HubSettings:
        """Rules across keys: checked now, not at connect."""
        if self.key_file is not None and self.cert_file is None:
            raise _rule("key 'key_file' needs 'cert_file' (the client certificate it "
                        "belongs to)")
        if self.cert_file is not None and not self.broker_url.startswith("mqtts://"):
            raise _rule("key 'cert_file' needs an mqtts:// broker_url (a client certificate "
                        "is only used over TLS)")
        if (self.dynsec_username is None) != (self.dynsec_password_file is None):
            raise _rule("keys 'dynsec_username' and 'dynsec_password_file' go together "
                        "(the hub's dynamic-security admin login)")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise _rule("key 'reconnect_max_s' must not be less than 'reconnect_min_s'")
        return self

    @property
    def missing_after_s(self) -> float:
        return self.heartbeat_s * self.missing_after_heartbeats

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def dynsec_password(self) -> str | None:
        """The first line of `dynsec_password_file`, or None when dynamic security is off."""
        if self.dynsec_password_file is None:
            return None
        return self._secret("dynsec_password_file", self.dynsec_password_file)

    def alarm_password(self) -> str | None:
        """The alarm lane's broker password: `alarm_password_file`'s first line, else the
        hub's own."""
        if self.alarm_password_file is None:
            return self.mqtt_password()
        return self._secret("alarm_password_file", self.alarm_password_file)

    def mqtt_username(self) -> str:
        """The hub's broker login: `username`, else its hub id."""
        return self.username or self.hub_id

    def alarm_login(self) -> str:
        """The alarm lane's broker login: `alarm_username`, else the hub's own."""
        return self.alarm_username or self.mqtt_username()

    def mqtt_password(self) -> str | None:
        """The broker password: `password`, else the first line of `password_file`."""
        if self.password is not None:
            return self.password
        if self.password_file is None:
            return None
        return self._secret("password_file", self.password_file)

    def _secret(self, name: str, path: Path) -> str:
        """The first line of the password file `path` (setting `name`); an unreadable or
        empty file is a settings error that names it."""
        try:
            return path.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise SettingsError(f"{self.source}: {name} {path}: cannot read a password "
                                f"({exc})") from None


def _rule(text: str) -> PydanticCustomError:
    return PydanticCustomError("settings_rule", text)


def check_broker_url(url: str) -> None:
    """Refuse a broker URL the hub could never connect to (raises ValueError)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or port == -1
            or port == 0 or parts.path not in ("", "/") or parts.query):
        raise _rule(f"key 'broker_url' = {url!r} must be mqtt://HOST[:PORT] or "
                    "mqtts://HOST[:PORT] (port 1-65535), e.g. mqtt://127.0.0.1:1883")


def check_db_url(url: str) -> None:
    """Refuse a database URL of a kind the hub does not speak (raises ValueError)."""
    m = re.match(r"^([a-z]+)(\+[a-z0-9_]+)?://(.*)$", url)
    ok = m is not None and m.group(1) in DB_SCHEMES
    if ok and m is not None and m.group(1) != "sqlite":
        try:
            parts = urlsplit(url)
            ok = bool(parts.hostname) and (parts.port is None or parts.port > 0) and \
                parts.path not in ("", "/")
        except ValueError:
            ok = False
    elif ok and m is not None:
        ok = m.group(3).startswith("/") and len(m.group(3)) > 1
    if not ok:
        raise _rule(f"key 'db_url' = {url!r} must be sqlite:///relative/path.db, "
                    "sqlite:////absolute/path.db or postgresql://USER@HOST[:PORT]/DATABASE")


def default_hub_id() -> str:
    """The host name made into a valid hub id (`hub` if nothing of it survives)."""
    name = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().split(".")[0].lower()).strip("-")
    name = name[:63].strip("-")
    return name if protocol.is_hub_id(name) else "hub"


@contextmanager
def _loading(load: _Load) -> Iterator[None]:
    token = _LOADING.set(load)
    try:
        yield
    finally:
        _LOADING.reset(token)


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                  *, overrides_source: str = "<overrides>", **overrides: Any) -> HubSettings:
    """Settings from `path` (or $TIENGMO_CONFIG), then `env` TIENGMO_<KEY>, then overrides
    (named `overrides_source` in messages: the command line names its options)."""
    env = os.environ if env is None else env
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = env[ENV_PREFIX + "CONFIG"]
    source = "<defaults>" if path is None else str(path)
    raw = {} if path is None else read_toml(Path(path))
    if "source" in raw:
        raise SettingsError(f"{source}: unknown key 'source'")
    # Tables given as overrides are named as such in their messages.
    for key, parse in (("policy", parse_policy), ("integrations", parse_integrations)):
        if key in overrides and isinstance(overrides[key], Mapping):
            overrides[key] = parse(overrides[key], overrides_source)
    env_origin = _env_origins(EnvSource(HubSettings, env))
    nested_vars = [env_origin[k] for k in ("policy", "integrations") if k in env_origin]
    # The nested tables are read from the file and the variables merged; name both.
    source_nested = (f"{source} (with environment variable {nested_vars[0]})" if nested_vars
                     else source)
    try:
        with _loading(_Load(raw, env, source_nested)):
            settings = HubSettings(**overrides)
    except ValidationError as exc:
        raise explain(exc, HubSettings, source=source, env_origin=env_origin,
                      override_keys=set(overrides), overrides_source=overrides_source) \
            from None
    secret = _resolve_secret(settings, source)
    return settings.model_copy(update={"secret": secret, "source": source})


def _env_origins(env_source: EnvSource) -> dict[str, str]:
    env_source()
    return env_source.origin


def _resolve_secret(settings: HubSettings, source: str) -> str:
    """An explicit secret, else the one kept in <data_dir>/secret (made on first start)."""
    secret = settings.secret or _kept_secret(settings.data_dir, source)
    if settings.is_production and (secret.strip().lower() in WEAK_SECRETS
                                   or len(secret) < MIN_SECRET_LEN):
        raise SettingsError(f"{source}: key 'secret' is empty, a default or shorter than "
                            f"{MIN_SECRET_LEN} characters; refusing to start in production")
    return secret


def _kept_secret(data_dir: Path, source: str) -> str:
    path = data_dir / SECRET_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise SettingsError(f"{source}: cannot read {path}: {exc}") from None
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        new = secrets.token_urlsafe(32)
        # Write aside, then link into place: link() fails if the name exists, so two
        # replicas starting together keep one secret and nobody reads a half-written file.
        tmp = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(new + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            new = path.read_text(encoding="utf-8").strip()
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise SettingsError(f"{source}: cannot create {path}: {exc}") from None
    return new
