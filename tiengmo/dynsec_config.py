"""Mosquitto's dynamic-security store for a deployment, from its registry (PROTOCOL.md rule 8).

The production broker authenticates and authorises with the dynamic-security plugin
only (deploy/mosquitto/mosquitto.conf has no password_file or acl_file). The reason is
shared subscriptions: Mosquitto 2.0.11's ACL file does not check subscriptions at all,
only deliveries, so a node may subscribe to `$share/<group>/mo/v1/nodes/+/alarm`; the
broker then hands it its round-robin share of every alarm and the ACL file drops each
one at delivery, so the hub replicas never see them (20 sent, 10 stored; a `topic deny
$share/#` line changes nothing). The plugin checks the SUBSCRIBE itself, against the
client's roles, and refuses what no role allows (SUBACK 0x80). docs/security.md has the
measurements; tests/security/test_dynsec_roles.py runs them on a real Mosquitto.

What this module writes, for `plugin_opt_config_file`:

- one client per node, hub, bridging broker and the dynamic-security admin, each with
  its password hashed as the plugin stores it (PBKDF2-HMAC-SHA512, 101 iterations, a
  12-byte salt). The salt is derived from the user name and the password, as the
  Ansible broker role's `mosquitto_hash` filter does, so the same credentials give the
  same file and Ansible can say "no change";
- a role per node (`node-<id>`): publish only its own upward topics; subscribe to and
  receive its own `cmd`/`ack`, its areas' `cmd`, `hubs/+/state` and `hub/time`; and an
  explicit, highest-priority refusal of every `$share/...` subscription. The plugin's
  ACLs take no `%u` in 2.0.11 (matched literally), hence one role per node;
- a role per hub (`hub-<id>`: its own state) plus the shared `tiengmo-hub` role (read
  every node's topics, plainly or as a shared subscription; send cmd, ack, area cmd and
  the time beacon);
- per hub, the login of its alarm lane's own connection (`<hub_id>-alarms`, hub.logins;
  docs/alarm-lane.md) with the shared `tiengmo-hub-alarms` role: subscribe to and
  receive the nodes' `alarm` and `cancel` topics (plainly or shared), publish what the
  hub publishes (`cmd`, `ack`, area `cmd`, the time beacon); nothing else (not the
  hub's state, not the nodes' other topics);
- the shared `tiengmo-sentinel` role for each sentinel login (`tiengmo sentinel`, the
  watcher that texts people when the hub dies): read `hubs/+/state` and `hub/time`,
  nothing else, publish nothing, and no shared subscription;
- `dynsec-admin`: only `$CONTROL/dynamic-security/#` (hub.dynsec enables and disables
  nodes through it);
- every default ACL answer "deny", what hub.dynsec also sets on each sync.

    python -m tiengmo.dynsec_config registry.toml --hub hub-1 [--hub hub-2] \\
        --admin hub-admin --passwords DIR [--bridge NAME ...] [--sentinel NAME ...] \\
        [--prefix mo/v1] > store.json

`DIR` holds one file per login named after it (Ansible's credentials/mqtt/ layout).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from hub.logins import alarm_login
from protocol import (
    DEFAULT_PREFIX,
    Registry,
    Topics,
    area_ancestors,
    is_hub_id,
    is_node_id,
    load_registry,
)
from tiengmo.acl import NODE_READS, NODE_WRITES, hub_writes

ITERATIONS = 101        # what mosquitto_ctrl and mosquitto_passwd use
SALT_BYTES = 12         # what the plugin makes
ACL_DEFAULTS = ("publishClientSend", "publishClientReceive", "subscribe", "unsubscribe")
HUB_ROLE = "tiengmo-hub"
ALARM_ROLE = "tiengmo-hub-alarms"
SENTINEL_ROLE = "tiengmo-sentinel"
ADMIN_ROLE = "dynsec-admin"
CONTROL = "$CONTROL/dynamic-security/#"
# A node's refusal of shared subscriptions is checked before anything it may do.
DENY_PRIORITY = 100

Acl = dict[str, Any]


class DynsecConfigError(ValueError):
    """The registry, logins or passwords cannot make a safe dynamic-security store."""


def hash_password(password: str, username: str, iterations: int = ITERATIONS) -> dict[str, Any]:
    """The plugin's `password`/`salt`/`iterations` for one client (salt from user + password)."""
    if not password:
        raise DynsecConfigError(f"empty password for login {username!r}")
    salt = hmac.new(password.encode(), b"tiengmo-dynsec-salt:" + username.encode(),
                    hashlib.sha256).digest()[:SALT_BYTES]
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return {"password": base64.b64encode(digest).decode(),
            "salt": base64.b64encode(salt).decode(), "iterations": iterations}


def _acl(acltype: str, topic: str, allow: bool = True, priority: int = 0) -> Acl:
    return {"acltype": acltype, "topic": topic, "priority": priority, "allow": allow}


def _reads(topics: Iterable[str]) -> list[Acl]:
    """Subscribe to and be delivered these (both are checked: the plugin asks twice)."""
    out: list[Acl] = []
    for t in topics:
        out += [_acl("subscribePattern", t), _acl("publishClientReceive", t),
                _acl("unsubscribePattern", t)]
    return out


def _replica_reads(topics: Iterable[str]) -> list[Acl]:
    """`_reads` of these, and their replicas' shared subscription ($share/+/...)."""
    topics = list(topics)
    return [*_reads(topics),
            *(a for t in topics for a in (_acl("subscribePattern", f"$share/+/{t}"),
                                          _acl("unsubscribePattern", f"$share/+/{t}")))]


def node_role(topics: Topics, node_id: str, area: str) -> dict[str, Any]:
    """What one node may do: PROTOCOL.md rule 8, and never a shared subscription."""
    p = topics.prefix
    reads = [f"{p}/nodes/{node_id}/{leaf}" for leaf in NODE_READS]
    reads += [topics.area_cmd(a) for a in area_ancestors(area)]
    reads += [topics.all_hub_states(), topics.hub_time()]
    return {"rolename": f"node-{node_id}",
            "textname": f"tiengmo node {node_id} in {area}",
            "acls": [_acl("subscribePattern", "$share/#", False, DENY_PRIORITY),
                     *(_acl("publishClientSend", f"{p}/nodes/{node_id}/{leaf}")
                       for leaf in NODE_WRITES),
                     *_reads(reads)]}


def hub_roles(topics: Topics, hubs: Sequence[str]) -> list[dict[str, Any]]:
    """The role every hub replica shares, and one per hub for its own state."""
    p = topics.prefix
    common = {"rolename": HUB_ROLE, "textname": "tiengmo hub (every replica)",
              "acls": [*_replica_reads([f"{p}/nodes/#", topics.all_hub_states()]),
                       *(_acl("publishClientSend", t) for t in hub_writes(topics))]}
    own = [{"rolename": f"hub-{h}", "textname": f"tiengmo hub {h}: its own state",
            "acls": [_acl("publishClientSend", topics.hub_state(h))]} for h in hubs]
    return [common, *own]


def alarm_lane_role(topics: Topics) -> dict[str, Any]:
    """Every hub's alarm connection (docs/alarm-lane.md): alarms and cancels in, plainly
    or as the replicas' shared subscription; out, what the hub publishes on it."""
    return {"rolename": ALARM_ROLE,
            "textname": "tiengmo hub's alarm lane: alarms and cancels in, commands, acks "
                        "and the beacon out",
            "acls": [*_replica_reads([topics.node_wildcard("alarm"),
                                      topics.node_wildcard("cancel")]),
                     *(_acl("publishClientSend", t) for t in hub_writes(topics))]}


def bridge_role(name: str, prefix: str) -> dict[str, Any]:
    """A local broker bridging in (provincial side): write what goes up, read nothing."""
    from hub.federation import bridge_client_id, bridged_topics
    return {"rolename": bridge_client_id(name),
            "textname": f"bridge from the local broker {name}",
            "acls": [*(_acl("publishClientSend", t.pattern) for t in bridged_topics(prefix)),
                     _acl("publishClientSend",
                          f"$SYS/broker/connection/{bridge_client_id(name)}/state")]}


def sentinel_role(topics: Topics) -> dict[str, Any]:
    """The hub's watcher: read the hubs' states and beacons, nothing else, send nothing."""
    return {"rolename": SENTINEL_ROLE,
            "textname": "tiengmo sentinel: reads hub states and the time beacon only",
            "acls": [_acl("subscribePattern", "$share/#", False, DENY_PRIORITY),
                     *_reads([topics.all_hub_states(), topics.hub_time()])]}


def admin_role() -> dict[str, Any]:
    return {"rolename": ADMIN_ROLE, "textname": "manages clients (hub.dynsec): nothing else",
            "acls": [_acl("publishClientSend", CONTROL), _acl("publishClientReceive", CONTROL),
                     _acl("subscribePattern", CONTROL), _acl("unsubscribePattern", CONTROL)]}


def render_dynsec(registry: Registry, hubs: Iterable[str], password: Callable[[str], str], *,
                  admin: str | None = None, bridges: Iterable[str] = (),
                  sentinels: Iterable[str] = (),
                  prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    """The plugin's whole store; `password(login)` gives each login's password."""
    topics = Topics(prefix)  # validates the prefix
    hub_ids = list(dict.fromkeys(hubs))
    if not hub_ids:
        raise DynsecConfigError("at least one hub login is needed (a hub reads the alarms)")
    bridge_names = list(dict.fromkeys(bridges))
    logins: list[str] = []
    for hub in hub_ids:
        if not is_hub_id(hub):
            raise DynsecConfigError(f"hub login {hub!r} is not a valid hub id")
        for login in (hub, alarm_login(hub)):
            if registry.node(login) is not None:
                raise DynsecConfigError(f"{login!r} is both a hub login and a node in "
                                        f"{registry.source}; a node must never get a hub's "
                                        "rights")
        logins.append(hub)
    logins += [alarm_login(h) for h in hub_ids]
    if len(set(logins)) != len(logins):
        raise DynsecConfigError(f"hub logins {logins} collide (a hub id ending in "
                                "'-alarms' names another hub's alarm connection)")
    for name in bridge_names:
        if not is_node_id(name):
            raise DynsecConfigError(f"bridge name {name!r} is not a slug (a-z, 0-9, -)")
    nodes = sorted(registry.nodes, key=lambda n: n.id)
    everyone = [*logins, *(n.id for n in nodes), *(f"bridge-{b}" for b in bridge_names)]
    watchers = list(dict.fromkeys(sentinels))
    for w in watchers:
        if not is_node_id(w):
            raise DynsecConfigError(f"sentinel login {w!r} is not a valid id")
        if w in everyone:
            raise DynsecConfigError(f"the sentinel login {w!r} is also a node, hub or bridge")
        everyone.append(w)
    if admin is not None:
        if admin in everyone:
            raise DynsecConfigError(f"the admin login {admin!r} is also a node, hub or bridge")
        everyone.append(admin)

    def client(username: str, roles: list[str], text: str) -> dict[str, Any]:
        return {"username": username, "textName": text, **hash_password(password(username),
                                                                         username),
                "roles": [{"rolename": r} for r in roles]}

    clients = [client(h, [HUB_ROLE, f"hub-{h}"], f"tiengmo hub {h}") for h in hub_ids]
    clients += [client(alarm_login(h), [ALARM_ROLE], f"tiengmo hub {h}: its alarm lane")
                for h in hub_ids]
    clients += [client(n.id, [f"node-{n.id}"], f"tiengmo node in {n.area}") for n in nodes]
    clients += [client(f"bridge-{b}", [f"bridge-{b}"], f"bridge from {b}") for b in bridge_names]
    roles = [*hub_roles(topics, hub_ids), alarm_lane_role(topics),
             *(node_role(topics, n.id, n.area) for n in nodes),
             *(bridge_role(b, topics.prefix) for b in bridge_names)]
    if watchers:
        clients += [client(w, [SENTINEL_ROLE], "tiengmo sentinel (watches the hub)")
                    for w in watchers]
        roles.append(sentinel_role(topics))
    if admin is not None:
        clients.append(client(admin, [ADMIN_ROLE], "dynamic-security admin (the hub)"))
        roles.append(admin_role())
    # A node the registry disables still gets its login: the hub decides, and hub.dynsec
    # disables it at the broker on its first sync (and the hub ignores its alarms anyway).
    return {"clients": clients, "groups": [], "roles": roles,
            "defaultACLAccess": {t: False for t in ACL_DEFAULTS}}


def passwords_from(folder: Path) -> Callable[[str], str]:
    """Each login's password from `folder/<login>` (first line, stripped)."""
    def read(login: str) -> str:
        path = folder / login
        try:
            return path.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError):
            raise DynsecConfigError(f"no password for login {login!r} in {path}") from None
    return read


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tiengmo.dynsec_config",
                                 description=(__doc__ or "").split("\n")[0])
    ap.add_argument("registry", help="registry TOML file (areas and nodes)")
    ap.add_argument("--hub", action="append", required=True, dest="hubs",
                    help="a hub's login (= hub id; its alarm connection's login "
                         "<hub id>-alarms comes with it); repeat for replicas")
    ap.add_argument("--admin", help="the dynamic-security admin login the hub uses")
    ap.add_argument("--bridge", action="append", default=[], dest="bridges",
                    help="a local broker allowed to bridge in (login bridge-NAME); repeatable")
    ap.add_argument("--sentinel", action="append", default=[], dest="sentinels",
                    help="a sentinel's login (reads hub states and beacons only); repeatable")
    ap.add_argument("--passwords", required=True, type=Path,
                    help="folder with one file per login holding its password")
    ap.add_argument("--prefix", default=DEFAULT_PREFIX, help="topic prefix (default %(default)s)")
    args = ap.parse_args(argv)
    try:
        store = render_dynsec(load_registry(args.registry), args.hubs,
                              passwords_from(args.passwords), admin=args.admin,
                              bridges=args.bridges, sentinels=args.sentinels,
                              prefix=args.prefix)
    except ValueError as exc:  # RegistryError, TopicError, DynsecConfigError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(store, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
