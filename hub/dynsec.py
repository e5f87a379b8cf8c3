"""The broker refuses a disabled node: the hub drives Mosquitto's dynamic-security plugin.

The hub logs in with a dynamic-security admin credential of its own
(`dynsec_username`, `dynsec_password_file`), never with a node's or its protocol
login, over the hub's own transport (hub.mqtt: broker URL, CA, client certificate).

What was verified against Mosquitto 2.0.11 (tests/security/test_dynsec.py, docs/security.md):

- A user the plugin does not know falls through to `password_file` and `acl_file`
  (nodes' passwords and PROTOCOL.md rule 8 stay where Ansible and tiengmo.acl put them).
- A client the plugin knows *without a password* still authenticates from the password
  file; once `disableClient`ed, the plugin refuses it (CONNACK "not authorised") and the
  broker drops its live connection at once. `enableClient` lets it in again.
- The plugin's ACL topics take no `%u` in 2.0.11 (matched literally), so per-node topic
  rules stay in the ACL file.
- For a client it knows, the plugin answers ACL checks from its `defaultACLAccess`
  where no role matches; `mosquitto_ctrl dynsec init` sets `publishClientReceive` to
  allow, which would let a known node read every other node's commands. A default of
  deny defers to the ACL file, so every sync first sets all four defaults to deny.
- 2.0.11 has no `kickClient` command ("Unknown command"); `disableClient` kicks.

So a node is known to the plugin (no password, no roles) once the hub has had to say
something about it; the hub only ever creates, disables and enables registered nodes'
entries and never touches any other client (its own admin, a technician's).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .mqtt import (
    Inbound,
    MqttClient,
    MqttError,
    MqttEvent,
    MqttOptions,
    MqttRefused,
    parse_broker_url,
)
from .settings import HubSettings
from .store import Store

log = logging.getLogger("tiengmo.hub.dynsec")

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = CONTROL_TOPIC + "/response"
ACL_TYPES = ("publishClientSend", "publishClientReceive", "subscribe", "unsubscribe")
# Errors that mean "already as wanted" for the command that got them.
_HARMLESS = {"createClient": "Client already exists"}


class DynsecError(RuntimeError):
    """The broker's dynamic-security plugin could not be reached or refused a command."""


@dataclass(frozen=True, slots=True)
class DynsecConfig:
    """How the hub reaches the plugin; built from HubSettings (hub.runtime)."""

    broker_url: str
    username: str
    password: str = field(repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    timeout_s: float = 5.0
    sync_s: float = 30.0


def deny_by_default() -> dict[str, Any]:
    """Make every default ACL answer "deny", which the plugin turns into "ask the ACL file"."""
    return {"command": "setDefaultACLAccess",
            "acls": [{"acltype": t, "allow": False} for t in ACL_TYPES]}


def plan(known: Mapping[str, bool], nodes: Iterable[tuple[str, bool]]) -> list[dict[str, Any]]:
    """The commands that make the broker match the hub: `known` maps each client the plugin
    has to whether it is disabled; `nodes` are the registered (node id, enabled) pairs."""
    out: list[dict[str, Any]] = []
    for node_id, enabled in nodes:
        disabled = known.get(node_id)
        if not enabled and disabled is None:
            out.append({"command": "createClient", "username": node_id,
                        "textname": "tiengmo node (password in the password file)"})
        if not enabled and disabled is not True:
            out.append({"command": "disableClient", "username": node_id})
        elif enabled and disabled is True:
            out.append({"command": "enableClient", "username": node_id})
    return out


class DynsecControl:
    """One request = connect, subscribe to the responses, publish commands, wait, disconnect.

    Short sessions on purpose: disabling is rare, and replicas sharing one admin login
    (client id = username at the broker) would otherwise keep kicking each other off.
    The connection is a hub.mqtt.MqttClient; its events come through a queue, and the
    responses are read here, on the caller's thread.
    """

    def __init__(self, config: DynsecConfig) -> None:
        self.config = config
        self.host, self.port = parse_broker_url(config.broker_url)[:2]

    def _options(self) -> MqttOptions:
        c = self.config
        return MqttOptions(broker_url=c.broker_url, username=c.username, password=c.password,
                           ca_file=c.ca_file, cert_file=c.cert_file, key_file=c.key_file,
                           keepalive_s=max(5, int(c.timeout_s * 2)))

    def request(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send `commands` in one message; their responses, in order. Raises DynsecError."""
        if not commands:
            return []
        tag = uuid.uuid4().hex
        for i, cmd in enumerate(commands):
            cmd["correlationData"] = f"{tag}-{i}"
        inbox: queue.Queue[MqttEvent] = queue.Queue()
        try:
            client = MqttClient(self._options(), self.config.username,
                                subscriptions=[(RESPONSE_TOPIC, 1)], on_event=inbox.put,
                                name="dynamic security")
        except MqttError as exc:
            raise DynsecError(str(exc)) from None
        t = self.config.timeout_s
        try:
            try:
                client.connect(t)
            except MqttRefused as exc:
                raise DynsecError(f"broker refused the dynamic-security login "
                                  f"{self.config.username!r}: {exc.reason}") from None
            except MqttError as exc:
                raise DynsecError(str(exc)) from None
            client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)
            responses = _collect(inbox, tag, len(commands), t)
            if responses is None:
                raise DynsecError(f"the dynamic-security plugin did not answer within {t} s "
                                  "(is it loaded? may this login publish to $CONTROL?)")
        finally:
            client.stop()
        return [responses[f"{tag}-{i}"] for i in range(len(commands))]


def _collect(inbox: queue.Queue[MqttEvent], tag: str, count: int,
             timeout_s: float) -> dict[str, dict[str, Any]] | None:
    """The responses tagged `tag` by correlation data, once all `count` are in; None if
    they are not within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    got: dict[str, dict[str, Any]] = {}
    while len(got) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            event = inbox.get(timeout=left)
        except queue.Empty:
            return None
        if not isinstance(event, Inbound):
            continue
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            for resp in json.loads(event.payload).get("responses", []):
                corr = resp.get("correlationData", "")
                if isinstance(corr, str) and corr.startswith(tag):
                    got[corr] = resp
    return got


def failures(responses: list[dict[str, Any]]) -> list[str]:
    """The errors among responses, other than "already as wanted" ones."""
    return [f"{r.get('command')}: {r['error']}" for r in responses
            if r.get("error") and _HARMLESS.get(str(r.get("command"))) != r["error"]]


@dataclass(slots=True)
class SyncResult:
    """What one sync did: commands sent and the errors the plugin gave."""

    disabled: list[str]
    enabled: list[str]
    errors: list[str]


class BrokerAccess:
    """Keeps the broker's idea of which nodes may connect equal to the hub's database.

    Syncs at start, whenever `request_sync()` is called (an operator enabled or disabled
    a node) and every `sync_s` (another replica's change, a broker that was down, a
    registry reload). The work runs on its own thread: an operator's request never waits
    for the broker.
    """

    def __init__(self, control: DynsecControl,
                 nodes: Callable[[], list[tuple[str, bool]]]) -> None:
        self.control = control
        self._nodes = nodes
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.synced = threading.Event()     # set after each successful sync
        self.last_error: str | None = None
        self.syncs = 0

    def sync_once(self) -> SyncResult:
        """Read the plugin's clients, send what differs; raises DynsecError."""
        listed, defaults = self.control.request([{"command": "listClients", "verbose": True},
                                                 {"command": "getDefaultACLAccess"}])
        if listed.get("error"):
            raise DynsecError(f"listClients: {listed['error']}")
        clients = listed.get("data", {}).get("clients", [])
        known = {str(c.get("username")): bool(c.get("disabled", False)) for c in clients
                 if isinstance(c, dict)}
        cmds = plan(known, self._nodes())
        acls = defaults.get("data", {}).get("acls")
        # Deny before any node becomes known to the plugin (the same message, in order).
        if not isinstance(acls, list) or any(a.get("allow") is not False for a in acls
                                             if isinstance(a, dict)):
            cmds.insert(0, deny_by_default())
        responses = self.control.request(cmds)
        errors = failures(responses)
        result = SyncResult(
            disabled=[c["username"] for c in cmds if c["command"] == "disableClient"],
            enabled=[c["username"] for c in cmds if c["command"] == "enableClient"],
            errors=errors)
        for node_id in result.disabled:
            log.warning("broker now refuses node %s (disabled in the hub)", node_id)
        for node_id in result.enabled:
            log.info("broker lets node %s in again (enabled in the hub)", node_id)
        if errors:
            raise DynsecError("dynamic security refused: " + "; ".join(errors))
        return result

    def request_sync(self) -> None:
        self._wake.set()

    def start(self, sync_s: float) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(sync_s,), daemon=True,
                                        name="hub-dynsec")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.control.config.timeout_s * 3)
        self._thread = None

    def _run(self, sync_s: float) -> None:
        retry_s = min(sync_s, 5.0)
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.sync_once()
                self.syncs += 1
                if self.last_error is not None:
                    log.info("dynamic security reachable again")
                self.last_error = None
                self.synced.set()
                wait = sync_s
            except DynsecError as exc:
                if str(exc) != self.last_error:
                    log.error("cannot sync disabled nodes to the broker: %s", exc)
                self.last_error = str(exc)
                wait = retry_s
            except Exception:  # the database may be locked for a moment: try again later
                log.exception("dynamic-security sync failed")
                wait = retry_s
            self._wake.wait(wait)


def broker_access_for(settings: HubSettings, store: Store,
                      transport: MqttOptions) -> BrokerAccess | None:
    """The hub's BrokerAccess for its settings, or None when dynamic security is off.

    `transport` is the hub's own (hub.runtime.Hub.mqtt_options): the same broker, CA
    and client certificate; only the login differs.
    """
    password = settings.dynsec_password()
    if settings.dynsec_username is None or password is None:
        return None
    config = DynsecConfig(
        broker_url=transport.broker_url, username=settings.dynsec_username,
        password=password, ca_file=transport.ca_file, cert_file=transport.cert_file,
        key_file=transport.key_file, sync_s=settings.dynsec_sync_s)

    def registered() -> list[tuple[str, bool]]:
        return [(n.id, n.enabled) for n in store.nodes.find() if n.registered]

    return BrokerAccess(DynsecControl(config), registered)
