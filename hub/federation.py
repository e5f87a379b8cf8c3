"""Federation: a local (commune/district) Mosquitto bridged up to a provincial broker.

`render_bridge(...)` writes the mosquitto.conf section for the LOCAL broker;
`render_remote_acl(...)` the ACL lines the PROVINCIAL broker needs for that
bridge's login. What crosses, and why:

- Upward only (`out`): every node's upward topics (state, alarm, cancel,
  heartbeat, result, exactly the hub's subscriptions), the local hub's acks
  (so the province sees what was received) and every hub's state. The
  provincial hub runs in observer mode (settings `observer = true`): it
  stores and shows, never acks or sounds what a local hub owns.
- Nothing comes down: no `in` topic at all, so neither the provincial hub's
  beacon, birth or any command, nor a mistake on the provincial broker, can
  reach a gong. The local hub stays the only one that sounds its area.
- Topics keep their names (same prefix on both brokers), so node ids must be
  unique across the province (they are: the registry slugs carry the hamlet).
- QoS as PROTOCOL.md gives each topic; retained births stay retained upstream.
- `cleansession false` with `local_cleansession false`: while the uplink is
  down the local broker keeps the bridge's subscriptions and queues QoS 1
  messages for it (bounded by its `max_queued_messages`), delivered when the
  link returns: an alarm the local hub acked during an outage still reaches
  the province. Heartbeats (QoS 0) are not queued, by design.
- Notifications: the bridge publishes 1/0 (its Last Will) on
  `$SYS/broker/connection/<remote_clientid>/state` on both brokers, so the
  province knows when a district's link, and so its retained hub births, are
  stale.

Usage: `python -m hub.federation --local-name bac-kan-1 --remote prov.example:8883 ...`
prints the section; append it to the local mosquitto.conf (after everything
else: a `connection` line starts a section that runs to the end).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from protocol import DEFAULT_PREFIX, Topics
from protocol.topics import QOS, TopicKind

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_HOST = re.compile(r"^[A-Za-z0-9.:\[\]-]+$")


class BridgeConfigError(ValueError):
    """A bridge setting that cannot go into mosquitto.conf; names the field."""


@dataclass(frozen=True, slots=True)
class BridgeTopic:
    pattern: str
    qos: int


def bridged_topics(prefix: str = DEFAULT_PREFIX) -> list[BridgeTopic]:
    """What goes up: the hub's own subscriptions, plus acks, at PROTOCOL.md's QoS."""
    t = Topics(prefix)
    out = [BridgeTopic(topic, qos) for topic, qos in t.hub_subscriptions()]
    out.append(BridgeTopic(t.node_wildcard("ack"), QOS[TopicKind.ACK]))
    return out


def bridge_client_id(local_name: str) -> str:
    return f"bridge-{local_name}"


def _check(field: str, value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise BridgeConfigError(f"bridge {field} {value!r}: must be {what}")
    return value


def _no_newline(field: str, value: str | None) -> str | None:
    if value is not None and ("\n" in value or "\r" in value or value != value.strip()):
        raise BridgeConfigError(f"bridge {field}: must be one line without surrounding spaces")
    return value


def render_bridge(local_name: str, remote_host: str, remote_port: int = 8883, *,
                  prefix: str = DEFAULT_PREFIX, username: str | None = None,
                  password: str | None = None, cafile: str | None = None,
                  certfile: str | None = None, keyfile: str | None = None,
                  tls: bool = True, restart_timeout: tuple[int, int] = (5, 30),
                  try_private: bool = True) -> str:
    """The mosquitto.conf section bridging a local broker up to the provincial one.

    `local_name` names the bridge (its client id and login are `bridge-<local_name>`
    unless `username` says otherwise). With `tls` (the default, port 8883) give the
    provincial CA in `cafile`; `certfile`/`keyfile` for client certificates.
    """
    _check("local_name", local_name, _NAME, "a slug like a hub id (a-z, 0-9, -)")
    _check("remote_host", remote_host, _HOST, "a host name or address")
    if not 0 < remote_port < 65536:
        raise BridgeConfigError(f"bridge remote_port {remote_port}: must be 1..65535")
    for field, value in (("username", username), ("password", password), ("cafile", cafile),
                         ("certfile", certfile), ("keyfile", keyfile)):
        _no_newline(field, value)
    if password is not None and username is None:
        raise BridgeConfigError("bridge password given without a username")
    if tls and not cafile:
        raise BridgeConfigError("bridge cafile: required with TLS (the provincial CA), "
                                "or pass tls=False on a trusted network")
    if (certfile is None) != (keyfile is None):
        raise BridgeConfigError("bridge certfile and keyfile go together")
    base, cap = restart_timeout
    if not 0 < base <= cap:
        raise BridgeConfigError(f"bridge restart_timeout {restart_timeout}: need 0 < base <= cap")
    client_id = bridge_client_id(local_name)
    lines = [
        f"# Bridge {local_name} -> {remote_host}:{remote_port}, generated by hub.federation.",
        "# Upward only: nothing the provincial side publishes comes down to the gongs.",
        f"connection {client_id}",
        f"address {remote_host}:{remote_port}",
        f"remote_clientid {client_id}",
        f"local_clientid {client_id}-local",
    ]
    if username is not None:
        lines.append(f"remote_username {username}")
    if password is not None:
        lines.append(f"remote_password {password}")
    if tls:
        lines.append(f"bridge_cafile {cafile}")
        if certfile and keyfile:
            lines += [f"bridge_certfile {certfile}", f"bridge_keyfile {keyfile}"]
        lines += ["bridge_insecure false", "bridge_tls_version tlsv1.2"]
    lines += [
        "bridge_protocol_version mqttv311",
        "start_type automatic",
        f"restart_timeout {base} {cap}",
        "keepalive_interval 30",
        # Keep the bridge's subscriptions and queue QoS 1 for it while the uplink is down.
        "cleansession false",
        "local_cleansession false",
        f"try_private {'true' if try_private else 'false'}",
        "notifications true",
        # Never unsubscribe on the remote side: there is nothing to unsubscribe from.
        "bridge_attempt_unsubscribe false",
    ]
    lines += [f"topic {t.pattern} out {t.qos}" for t in bridged_topics(prefix)]
    return "\n".join(lines) + "\n"


def render_remote_acl(local_name: str, prefix: str = DEFAULT_PREFIX,
                      username: str | None = None) -> str:
    """The provincial broker's ACL block for this bridge's login: write what goes up only."""
    _check("local_name", local_name, _NAME, "a slug like a hub id (a-z, 0-9, -)")
    user = username or bridge_client_id(local_name)
    lines = [f"# bridge from {local_name} (hub.federation)", f"user {user}"]
    lines += [f"topic write {t.pattern}" for t in bridged_topics(prefix)]
    lines.append(f"topic write $SYS/broker/connection/{bridge_client_id(local_name)}/state")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hub.federation",
                                 description="Print the mosquitto.conf bridge section for a "
                                             "local broker (and, with --acl, the provincial "
                                             "broker's ACL block for it).")
    ap.add_argument("--local-name", required=True, help="this district's bridge name (slug)")
    ap.add_argument("--remote", metavar="HOST:PORT",
                    help="the provincial broker (required unless --acl)")
    ap.add_argument("--prefix", default=DEFAULT_PREFIX)
    ap.add_argument("--username")
    ap.add_argument("--password-file", help="first line is the bridge's password")
    ap.add_argument("--cafile")
    ap.add_argument("--certfile")
    ap.add_argument("--keyfile")
    ap.add_argument("--no-tls", action="store_true", help="plain MQTT (trusted network only)")
    ap.add_argument("--acl", action="store_true", help="print the provincial ACL block instead")
    args = ap.parse_args(argv)
    try:
        if args.acl:
            sys.stdout.write(render_remote_acl(args.local_name, args.prefix, args.username))
            return 0
        if not args.remote:
            raise BridgeConfigError("--remote HOST:PORT is required for the bridge section")
        host, _, port = args.remote.rpartition(":")
        if not host or not port.isdigit():
            raise BridgeConfigError(f"--remote {args.remote!r}: expected HOST:PORT")
        password = None
        if args.password_file:
            with open(args.password_file, encoding="utf-8") as fh:
                password = fh.readline().strip()
        sys.stdout.write(render_bridge(
            args.local_name, host, int(port), prefix=args.prefix, username=args.username,
            password=password, cafile=args.cafile, certfile=args.certfile,
            keyfile=args.keyfile, tls=not args.no_tls))
    except (BridgeConfigError, OSError) as exc:
        print(f"hub.federation: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
