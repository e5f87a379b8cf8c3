"""Hub settings: one TOML file, overridable by TIENGMO_<KEY> environment variables.

`load_settings(path, env, **overrides)` reads the file (flat top-level keys plus
a `[policy]` table, see docs/hub-config.md), applies the environment and then
keyword overrides, validates everything and returns a frozen HubSettings.
Unknown keys are refused, naming the file and the key, so a typo in a timer
cannot silently leave an alarm system on a default. Nothing happens at import
time; loading may create `data_dir` and its `secret` file (mode 0600).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import secrets
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import protocol

from .errors import SettingsError
from .integrations.config import IntegrationSettings, parse_integrations
from .policy import Policy, parse_policy

log = logging.getLogger(__name__)

ENV_PREFIX = "TIENGMO_"
SECRET_FILE = "secret"
# Values people paste from examples; never acceptable in production.
WEAK_SECRETS = frozenset({"", "secret", "changeme", "change-me", "password", "tiengmo",
                          "development", "dev", "default", "example"})
MIN_SECRET_LEN = 16
ENVIRONMENTS = ("development", "production")


@dataclass(frozen=True, slots=True)
class HubSettings:
    """Every setting of a hub process. Times ending `_s` are seconds."""

    hub_id: str = ""                       # default: the host name, sanitised
    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("/var/lib/tiengmo")  # default: see default_data_dir()
    db_url: str = ""                       # default: sqlite:///<data_dir>/hub.db
    registry_file: Path | None = None
    secret: str = field(default="", repr=False)  # default: kept in <data_dir>/secret
    # MQTT
    broker_url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None            # default: hub_id (the broker's ACLs want id == user)
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None          # client certificate (mqtts://, mutual TLS)
    key_file: Path | None = None           # its private key, unless cert_file holds it
    # Mosquitto's dynamic-security plugin (hub/dynsec.py, docs/security.md): with a login
    # here the broker refuses disabled nodes; unset, the broker is not asked.
    dynsec_username: str | None = None
    dynsec_password_file: Path | None = None
    dynsec_sync_s: float = 30.0            # and at once whenever a node is enabled/disabled
    prefix: str = protocol.DEFAULT_PREFIX
    # Replicas: an MQTT 5 shared-subscription group, so each alarm reaches one replica
    # ($share/<group>/...). None: one hub, plain subscriptions.
    shared_group: str | None = None
    ingest_workers: int = 2                # threads handling inbound messages (per node order kept)
    # When true this hub stores and shows but never acks or fans out (a provincial
    # hub watching bridged local brokers, ARCHITECTURE.md).
    observer: bool = False
    # HTTP
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Bounds at the HTTP edge (hub/api/limits.py, docs/hub-config.md)
    http_max_body_bytes: int = 1_048_576   # larger request bodies get 413, unread
    http_body_timeout_s: float = 30.0      # a request body must have arrived by then (408)
    http_header_timeout_s: float = 10.0    # a request's headers likewise (else the socket closes)
    http_keep_alive_s: float = 5.0         # an idle kept-alive connection closes after this
    http_max_header_bytes: int = 16_384    # request line + headers
    http_max_connections: int = 500        # connections + requests at once, then 503
    # Timers of PROTOCOL.md rule 9 and the hub's own
    keepalive_s: float = 15.0
    heartbeat_s: float = 10.0
    missing_after_heartbeats: int = 3
    loss_debounce_s: float = 20.0
    report_within_s: float = 60.0
    time_beacon_s: float = 10.0
    correlation_window_s: float = 600.0
    escalate_after_s: float = 120.0
    sound_expiry_s: float = 60.0
    failed_to_sound_s: float = 15.0        # no `started`/`done` from a node by then: trouble
    # The leader's look for incidents stored but never sounded (a replica died between
    # deciding and sounding), and how old one must be first: the normal path records
    # its `sound` within milliseconds.
    orphan_check_s: float = 5.0
    orphan_grace_s: float = 10.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0
    # A noisy node (a stuck or pranked button) keeps being stored and acked, but
    # after this many fanned-out incidents in the window its new ones do not sound.
    noisy_max_fanouts: int = 3
    # A stuck or pranked button whose presses all join one open incident never
    # reaches the fan-out limit; this many alarms from one node within the
    # window make it a noisy-node trouble all the same (storing and acking go on).
    noisy_max_alarms: int = 10
    noisy_window_s: float = 600.0
    # Many nodes of one area lost at once are one area trouble (power cut, jamming).
    area_trouble_min_nodes: int = 3
    area_trouble_fraction: float = 0.5
    low_battery_pct: float = 20.0
    # Operators' API (docs/api.md): browser sessions end after `session_idle_s` without a
    # request or `session_max_s` after login; logins are throttled per user and per address.
    session_idle_s: float = 8 * 3600.0
    session_max_s: float = 24 * 3600.0
    login_max_failures: int = 5            # per user name, then a lockout that doubles
    login_ip_max_failures: int = 20        # per client address (an office behind one NAT)
    login_lockout_s: float = 30.0
    login_lockout_max_s: float = 3600.0
    event_retention_s: float = 7 * 86400.0   # the live stream's replay log
    stream_poll_s: float = 0.25            # how often to look for other replicas' events
    # Retention of old events (hub/retention.py, docs/faults.md); 0 keeps everything.
    retention_days: float = 0.0            # finished incidents + their alarms, cleared troubles
    audit_retention_days: float = 0.0      # the append-only audit log: only this prunes it
    policy: Policy = field(default_factory=Policy)
    # The [integrations] table (metrics, CAP, webhooks, SMS, Home Assistant): see
    # hub/integrations/config.py and docs/integrations.md.
    integrations: IntegrationSettings = field(default_factory=IntegrationSettings)
    source: str = "<defaults>"             # where these settings came from, for messages

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
        try:
            return self.dynsec_password_file.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise SettingsError(f"{self.source}: dynsec_password_file "
                                f"{self.dynsec_password_file}: cannot read a password "
                                f"({exc})") from None

    def mqtt_password(self) -> str | None:
        """The broker password: `password`, else the first line of `password_file`."""
        if self.password is not None:
            return self.password
        if self.password_file is None:
            return None
        try:
            return self.password_file.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise SettingsError(f"{self.source}: password_file {self.password_file}: "
                                f"cannot read a password ({exc})") from None


_FIELDS = {f.name: f for f in dataclasses.fields(HubSettings) if f.name not in ("source",)}
_POSITIVE = {"keepalive_s", "heartbeat_s", "loss_debounce_s", "report_within_s",
             "time_beacon_s", "correlation_window_s", "escalate_after_s", "sound_expiry_s",
             "failed_to_sound_s", "orphan_check_s", "orphan_grace_s", "reconnect_min_s",
             "reconnect_max_s", "noisy_window_s",
             "session_idle_s", "session_max_s", "login_lockout_s", "login_lockout_max_s",
             "event_retention_s", "stream_poll_s", "dynsec_sync_s", "http_max_body_bytes",
             "http_body_timeout_s", "http_header_timeout_s", "http_keep_alive_s",
             "http_max_header_bytes", "http_max_connections"}


def default_data_dir(environment: str) -> Path:
    """/var/lib/tiengmo in production (the systemd unit's StateDirectory), else the user's
    XDG data directory, so `tiengmo hub` works for a developer without root."""
    if environment == "production":
        return Path("/var/lib/tiengmo")
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "tiengmo"


def default_hub_id() -> str:
    """The host name made into a valid hub id (`hub` if nothing of it survives)."""
    name = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().split(".")[0].lower()).strip("-")
    name = name[:63].strip("-")
    return name if protocol.is_hub_id(name) else "hub"


def _convert(where: str, name: str, value: Any, from_text: bool) -> Any:
    """Coerce one value to the field's type; `from_text` for environment strings."""
    kind = _FIELDS[name].type
    optional = "None" in str(kind)
    if value is None or (from_text and optional and value == ""):
        if optional:
            return None
        raise SettingsError(f"{where}: key {name!r} cannot be empty")
    base = str(kind).replace(" | None", "")
    try:
        if base == "bool":
            if from_text:
                low = value.strip().lower()
                if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError
                return low in ("1", "true", "yes", "on")
            if not isinstance(value, bool):
                raise ValueError
            return value
        if base == "int":
            if from_text:
                value = int(value.strip())
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError
            return value
        if base == "float":
            if from_text:
                value = float(value.strip())
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError
            return float(value)
        if base == "Path":
            if not isinstance(value, str | Path) or str(value) == "":
                raise ValueError
            return Path(value).expanduser()
        if base.startswith("Literal"):
            allowed = ENVIRONMENTS
            if value not in allowed:
                raise SettingsError(f"{where}: key {name!r} must be one of "
                                    f"{', '.join(map(str, allowed))}, got {value!r}")
            return value
        if not isinstance(value, str):
            raise ValueError
        return value
    except (ValueError, AttributeError):
        raise SettingsError(f"{where}: key {name!r} must be {base.lower()}, got {value!r}") \
            from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"{path}: settings file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read settings file: {exc}") from None


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                  **overrides: Any) -> HubSettings:
    """Settings from `path` (or $TIENGMO_CONFIG), then `env` TIENGMO_<KEY>, then overrides."""
    env = os.environ if env is None else env
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = env[ENV_PREFIX + "CONFIG"]
    values: dict[str, Any] = {}
    source = "<defaults>"
    policy_raw: Any = None
    integrations_raw: Any = None
    if path is not None:
        source = str(path)
        raw = _read_file(Path(path))
        for key, value in raw.items():
            if key == "policy":
                policy_raw = value
                continue
            if key == "integrations":
                integrations_raw = value
                continue
            if key not in _FIELDS:
                raise SettingsError(f"{source}: unknown key {key!r}")
            values[key] = _convert(source, key, value, from_text=False)
    for var, text in env.items():
        if not var.startswith(ENV_PREFIX) or var == ENV_PREFIX + "CONFIG":
            continue
        key = var[len(ENV_PREFIX):].lower()
        if key in _FIELDS and key not in ("policy", "integrations"):
            values[key] = _convert(f"environment variable {var}", key, text, from_text=True)
        elif key not in _FIELDS:
            # Other components share the prefix (the node agent, the simulator), so an
            # unknown variable is logged, not fatal.
            log.debug("ignoring environment variable %s: not a hub setting", var)
    for key, value in overrides.items():
        if key == "policy":
            values["policy"] = value if isinstance(value, Policy) else parse_policy(value,
                                                                                     "<overrides>")
            continue
        if key == "integrations":
            values[key] = parse_integrations(value, "<overrides>")
            continue
        if key not in _FIELDS:
            raise SettingsError(f"<overrides>: unknown key {key!r}")
        values[key] = _convert("<overrides>", key, value, from_text=False)
    if "policy" not in values:
        values["policy"] = parse_policy(policy_raw, source)
    if "integrations" not in values:
        values["integrations"] = parse_integrations(integrations_raw, source)
    return _finish(values, source)


def _finish(values: dict[str, Any], source: str) -> HubSettings:
    """Fill derived defaults, check ranges and relations, resolve the secret."""
    if not values.get("hub_id"):
        values["hub_id"] = default_hub_id()
    if not protocol.is_hub_id(values["hub_id"]):
        raise SettingsError(f"{source}: key 'hub_id' = {values['hub_id']!r} must match "
                            "^[a-z0-9][a-z0-9-]{0,62}$")
    data_dir = Path(values["data_dir"]) if values.get("data_dir") else default_data_dir(
        values.get("environment", "development"))
    values["data_dir"] = data_dir
    if not values.get("db_url"):
        values["db_url"] = f"sqlite:///{data_dir.resolve() / 'hub.db'}"
    for key in _POSITIVE:
        if key in values and values[key] <= 0:
            raise SettingsError(f"{source}: key {key!r} must be greater than 0")
    for key in ("missing_after_heartbeats", "noisy_max_fanouts", "noisy_max_alarms",
                "area_trouble_min_nodes",
                "login_max_failures", "login_ip_max_failures"):
        if key in values and values[key] < 1:
            raise SettingsError(f"{source}: key {key!r} must be 1 or more")
    for key in ("retention_days", "audit_retention_days"):
        if values.get(key, 0.0) < 0:
            raise SettingsError(f"{source}: key {key!r} must be 0 (keep everything) or more")
    if not 0 < values.get("area_trouble_fraction", 0.5) <= 1:
        raise SettingsError(f"{source}: key 'area_trouble_fraction' must be in (0, 1]")
    if not 0 < values.get("http_port", 8080) < 65536:
        raise SettingsError(f"{source}: key 'http_port' must be 1..65535")
    if "prefix" in values and not re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*",
                                                values["prefix"]):
        raise SettingsError(f"{source}: key 'prefix' must be slash-separated words "
                            "without wildcards")
    if not re.match(r"^mqtts?://", values.get("broker_url", "mqtt://")):
        raise SettingsError(f"{source}: key 'broker_url' must start with mqtt:// or mqtts://")
    _check_mqtt_extras(values, source)
    values["source"] = source
    values["secret"] = _resolve_secret(values, source)
    return HubSettings(**values)


MAX_INGEST_WORKERS = 64
# One topic level (MQTT 5 §4.8.2): no separators or wildcards. Kept to the node-id
# alphabet plus '_' so it is also safe in ACL files.
_SHARE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _check_mqtt_extras(values: dict[str, Any], source: str) -> None:
    """shared_group, client TLS files and ingest_workers: checked now, not at connect."""
    group = values.get("shared_group")
    if group is not None and not _SHARE_NAME.fullmatch(group):
        raise SettingsError(f"{source}: key 'shared_group' = {group!r} must be 1-64 letters, "
                            "digits, '-' or '_' (one MQTT topic level, no '/', '+' or '#')")
    if values.get("key_file") is not None and values.get("cert_file") is None:
        raise SettingsError(f"{source}: key 'key_file' needs 'cert_file' (the client "
                            "certificate it belongs to)")
    if values.get("cert_file") is not None and not str(
            values.get("broker_url", "")).startswith("mqtts://"):
        raise SettingsError(f"{source}: key 'cert_file' needs an mqtts:// broker_url "
                            "(a client certificate is only used over TLS)")
    if (values.get("dynsec_username") is None) != (values.get("dynsec_password_file") is None):
        raise SettingsError(f"{source}: keys 'dynsec_username' and 'dynsec_password_file' "
                            "go together (the hub's dynamic-security admin login)")
    workers = values.get("ingest_workers", 2)
    if not 1 <= workers <= MAX_INGEST_WORKERS:
        raise SettingsError(f"{source}: key 'ingest_workers' must be 1..{MAX_INGEST_WORKERS}, "
                            f"got {workers}")


def _resolve_secret(values: dict[str, Any], source: str) -> str:
    """An explicit secret, else the one kept in <data_dir>/secret (made on first start)."""
    production = values.get("environment") == "production"
    secret = values.get("secret", "")
    if not secret:
        secret = _kept_secret(values["data_dir"], source)
    if production and (secret.strip().lower() in WEAK_SECRETS or len(secret) < MIN_SECRET_LEN):
        raise SettingsError(f"{source}: key 'secret' is empty, a default or shorter than "
                            f"{MIN_SECRET_LEN} characters; refusing to start in production")
    return str(secret)


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
