"""`tiengmo sim`: simulated nodes (the real node agent) on a broker, from a count or a registry.

    tiengmo sim --broker mqtt://127.0.0.1:1883 --nodes 20 --area xa/thon-1 \
        --press 2:fire --duration 30 --json

Nodes made by count are sim-0001, sim-0002...; a press `INDEX:KIND` (or
`NODE_ID:KIND`, or a button number instead of a kind) fires once every node
is online. Progress goes to stderr; `--json` prints one JSON object at the
end. Exit codes: 0 done (also after Ctrl-C/SIGTERM, which stop the nodes
cleanly and publish their deaths), 1 broker unreachable or a fleet failure,
2 bad arguments or registry, 3 nodes not online in time.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from protocol import Kind, RegistryError, is_area_path, is_node_id, load_registry

from .fleet import (
    DEFAULT_PER_PROCESS,
    HEADLESS_ABOVE,
    MOCK_PINS_PER_PROCESS,
    Fleet,
    FleetError,
    FleetStatus,
    plan_shards,
    processes_for,
)
from .fleet_shard import ShardSpec

log = logging.getLogger("tiengmo.sim")

# Input pins for up to one button per kind, clear of the default cancel (22),
# gong (23), LED (12) and power-good (16) pins of firmware_sim.village.
_BUTTON_PINS = (17, 27, 5, 6, 13, 19, 26)
_KINDS = [k.value for k in Kind]


class UsageError(ValueError):
    """A bad option value; the message says which and why."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", required=True, metavar="URL",
                   help="mqtt://host:port (or mqtts://) of the broker the nodes connect to")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--nodes", type=int, metavar="N", help="simulate N nodes sim-0001...")
    src.add_argument("--registry", metavar="FILE", help="one node per node of a registry file")
    p.add_argument("--area", metavar="PATH", help="area of the --nodes nodes, e.g. xa/thon-1")
    p.add_argument("--include-disabled", action="store_true",
                   help="with --registry: also simulate nodes marked enabled = false")
    p.add_argument("--press", action="append", default=[], metavar="INDEX:KIND",
                   help="once all are online, hold a button: INDEX is 1-based (or a node id), "
                        "KIND a kind or button number; repeatable")
    p.add_argument("--duration", type=float, metavar="S",
                   help="run S seconds after the presses, then stop (default: until Ctrl-C)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object with per-node counts at the end")
    p.add_argument("--username", metavar="NAME",
                   help="MQTT username; {node} becomes the node id (default: the node id)")
    p.add_argument("--password-file", metavar="PATH",
                   help="file holding the password; {node} becomes the node id")
    p.add_argument("--prefix", help="topic prefix (default mo/v1)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="where node outboxes live, kept afterwards (default: a temporary "
                        "directory, removed at the end)")
    p.add_argument("--processes", type=int, metavar="K",
                   help=f"worker processes (default: 1 per {DEFAULT_PER_PROCESS} headless or "
                        f"{MOCK_PINS_PER_PROCESS} mock-pin nodes; "
                        "1 runs in this process)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--headless", dest="headless", action="store_true", default=None,
                      help="node code without gpiozero devices (cheaper; default above "
                           f"{HEADLESS_ABOVE} nodes)")
    mode.add_argument("--mock-pins", dest="headless", action="store_false",
                      help="gpiozero mock pins for every node (default up to "
                           f"{HEADLESS_ABOVE} nodes)")
    p.add_argument("--buttons", default="theft,fire", metavar="KINDS",
                   help="comma-separated button kinds of every node, numbered from 1 "
                        "(default theft,fire)")
    p.add_argument("--hold-s", type=float, metavar="S",
                   help="how long a button must be held (node default 1.5)")
    p.add_argument("--heartbeat-s", type=float, metavar="S", help="heartbeat interval (10)")
    p.add_argument("--keepalive-s", type=int, metavar="S", help="MQTT keepalive (15)")
    p.add_argument("--online-timeout", type=float, default=60.0, metavar="S",
                   help="give up (exit 3) if not every node is online by then (default 60)")
    p.add_argument("--log-level", default="warning",
                   choices=["debug", "info", "warning", "error"], help="node log level")


# -- argument checks -----------------------------------------------------------------------

def broker_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise UsageError(f"--broker must be mqtt://host:port or mqtts://host:port, not {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"--broker has a bad port: {url!r}") from None
    return parts.hostname, port or (8883 if parts.scheme == "mqtts" else 1883)


def check_broker(url: str, timeout: float = 3.0) -> str | None:
    """None if a TCP connection to the broker opens, else why not."""
    host, port = broker_address(url)
    try:
        with socket.create_connection((host, port), timeout):
            return None
    except OSError as exc:
        return f"cannot reach the broker at {url}: {exc.strerror or exc}"


def buttons_of(spec: str, hold_s: float | None) -> list[dict[str, Any]]:
    kinds = [k.strip() for k in spec.split(",") if k.strip()]
    if not kinds:
        raise UsageError("--buttons names no kind")
    bad = [k for k in kinds if k not in _KINDS]
    if bad:
        raise UsageError(f"--buttons: {bad[0]!r} is not a kind ({', '.join(_KINDS)})")
    if len(set(kinds)) != len(kinds):
        raise UsageError("--buttons names a kind twice")
    out = [{"pin": _BUTTON_PINS[i], "number": i + 1, "kind": k} for i, k in enumerate(kinds)]
    if hold_s is not None:
        for b in out:
            b["hold_s"] = hold_s
    return out


def node_list(args: argparse.Namespace) -> tuple[list[tuple[str, str]], list[str]]:
    """(node id, area) of every simulated node, and the ids by 1-based INDEX."""
    if args.registry:
        if args.area:
            raise UsageError("--area goes with --nodes; a registry names each node's area")
        reg = load_registry(args.registry)
        chosen = [(n.id, n.area) for n in reg.nodes if n.enabled or args.include_disabled]
        if not chosen:
            raise UsageError(f"{args.registry}: no (enabled) nodes to simulate")
        return chosen, [n.id for n in reg.nodes]
    if args.nodes is None or args.nodes < 1 or args.nodes > 9999:
        raise UsageError("--nodes must be 1..9999")
    if not args.area or not is_area_path(args.area):
        raise UsageError(f"--area must be an area path like xa/thon-1 (1-4 slugs of a-z, 0-9, "
                         f"-), not {args.area!r}")
    ids = [f"sim-{i:04d}" for i in range(1, args.nodes + 1)]
    return [(i, args.area) for i in ids], ids


def presses_of(specs: list[str], by_index: list[str], running: set[str],
               buttons: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(node id, button number) for every --press, or a UsageError naming the bad one."""
    out = []
    for spec in specs:
        target, sep, which = spec.rpartition(":")
        if not sep or not target or not which:
            raise UsageError(f"--press {spec!r}: expected INDEX:KIND, e.g. 2:fire")
        if target.isdigit():
            i = int(target)
            if not 1 <= i <= len(by_index):
                raise UsageError(f"--press {spec!r}: index {i} is not in 1..{len(by_index)}")
            node_id = by_index[i - 1]
        elif is_node_id(target):
            node_id = target
        else:
            raise UsageError(f"--press {spec!r}: {target!r} is neither an index nor a node id")
        if node_id not in running:
            raise UsageError(f"--press {spec!r}: node {node_id} is not simulated "
                             "(disabled in the registry, or unknown)")
        match = [b["number"] for b in buttons
                 if which == b["kind"] or (which.isdigit() and int(which) == b["number"])]
        if not match:
            have = ", ".join(f"{b['number']}={b['kind']}" for b in buttons)
            raise UsageError(f"--press {spec!r}: the nodes have no button {which!r} "
                             f"(they have {have}; see --buttons)")
        out.append((node_id, match[0]))
    return out


# -- the run -------------------------------------------------------------------------------

def _say(msg: str) -> None:
    print(f"tiengmo sim: {msg}", file=sys.stderr, flush=True)


def _progress(st: FleetStatus) -> str:
    extra = f", {st.failed} failed to start" if st.failed else ""
    return (f"{st.online}/{st.total} online{extra}; alarms sent {st.alarms_sent}, "
            f"acks received {st.acks_received}")


def _wait_online(fleet: Fleet, timeout: float, stop: threading.Event) -> FleetStatus:
    deadline = time.monotonic() + timeout
    last_said = (-1, 0.0)
    while True:
        st = fleet.status()
        now = time.monotonic()
        if st.all_online or stop.is_set() or now >= deadline:
            return st
        # Say it when the count moves, at most twice a second; a long wait says it every 5 s.
        if (st.online != last_said[0] and now - last_said[1] >= 0.5) or now - last_said[1] >= 5:
            _say(f"starting: {_progress(st)}")
            last_said = (st.online, now)
        stop.wait(0.25)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        broker_address(args.broker)
        nodes, by_index = node_list(args)
        buttons = buttons_of(args.buttons, args.hold_s)
        presses = presses_of(args.press, by_index, {n for n, _ in nodes}, buttons)
        if args.duration is not None and args.duration < 0:
            raise UsageError("--duration must be 0 or more")
        if args.processes is not None and args.processes < 1:
            raise UsageError("--processes must be 1 or more")
    except (UsageError, RegistryError) as exc:
        _say(str(exc))
        return 2
    problem = check_broker(args.broker)
    if problem:
        _say(problem)
        return 1
    headless = len(nodes) > HEADLESS_ABOVE if args.headless is None else args.headless
    data_root = args.data_dir or tempfile.mkdtemp(prefix="tiengmo-sim-")
    timers = {k: v for k, v in (("heartbeat_s", args.heartbeat_s),) if v is not None}
    mqtt = {"keepalive_s": args.keepalive_s} if args.keepalive_s is not None else {}
    base = ShardSpec(nodes=nodes, broker_url=args.broker, data_root=str(data_root),
                     headless=headless, username=args.username,
                     password_file=args.password_file, prefix=args.prefix, timers=timers,
                     mqtt=mqtt, buttons=buttons)
    shards = plan_shards(base, args.processes or processes_for(base))
    fleet = Fleet(shards, in_process=args.processes is None and len(shards) == 1,
                  log_level=args.log_level)
    stop = threading.Event()
    old = {s: signal.signal(s, lambda n, f: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _run(args, fleet, presses, stop, headless)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if not args.data_dir:
            shutil.rmtree(data_root, ignore_errors=True)


def _run(args: argparse.Namespace, fleet: Fleet, presses: list[tuple[str, int]],
         stop: threading.Event, headless: bool) -> int:
    t0 = time.monotonic()
    total = sum(len(s.nodes) for s in fleet.specs)
    where = "this process" if fleet.in_process else f"{len(fleet.specs)} worker process(es)"
    _say(f"{total} node(s) in {where}, {'headless' if headless else 'mock pins'}, "
         f"broker {args.broker}")
    code = 0
    pressed: list[dict[str, Any]] = []
    online_s: float | None = None
    try:
        fleet.start()
        st = _wait_online(fleet, args.online_timeout, stop)
        if stop.is_set() and not st.all_online:
            _say(f"interrupted while starting ({_progress(st)}); stopping")
            code = 130
        elif not st.all_online:
            late = ", ".join(st.offline[:10]) or "(not started)"
            why = f"; errors: {'; '.join(st.errors[:3])}" if st.errors else ""
            _say(f"only {st.online}/{st.total} nodes online after {args.online_timeout:.0f} s "
                 f"(not online: {late}{why}). Check the broker address, its connection "
                 "limit and credentials (--username/--password-file).")
            code = 3
        else:
            online_s = time.monotonic() - t0
            _say(f"all {st.total} online after {online_s:.1f} s")
            for node_id, button in presses if not stop.is_set() else []:
                r = fleet.press(node_id, button)
                pressed.append({"node": node_id, "button": button, "ok": "error" not in r,
                                **({"error": r["error"]} if "error" in r else {})})
                _say(f"pressed button {button} on {node_id}" if "error" not in r
                     else f"press on {node_id} failed: {r['error']}")
            _hold_for(fleet, args.duration, stop)
    except FleetError as exc:
        _say(f"fleet failure: {exc}")
        code = 1
    _say("stopping (deaths published)")
    try:
        final = fleet.stop()
    except FleetError as exc:
        _say(f"fleet failure while stopping: {exc}")
        final, code = {}, 1
    if args.json:
        print(json.dumps(_summary(args, fleet, final, pressed, headless, online_s,
                                  time.monotonic() - t0), ensure_ascii=False), flush=True)
    return code


def _hold_for(fleet: Fleet, duration: float | None, stop: threading.Event) -> None:
    """Run until `duration` passes or a signal arrives; progress to stderr every 5 s."""
    end = None if duration is None else time.monotonic() + duration
    next_say = time.monotonic() + 5
    while not stop.is_set():
        now = time.monotonic()
        if end is not None and now >= end:
            return
        if now >= next_say:
            _say(_progress(fleet.status()))
            next_say = now + 5
        stop.wait(min(0.25, max(0.0, end - now)) if end is not None else 0.25)


def _summary(args: argparse.Namespace, fleet: Fleet, final: dict[str, dict[str, Any]],
             pressed: list[dict[str, Any]], headless: bool, online_s: float | None,
             elapsed: float) -> dict[str, Any]:
    keys = ("alarms_sent", "acks_received", "commands_received", "commands_played", "outbox")
    return {
        "broker": args.broker,
        "total": sum(len(s.nodes) for s in fleet.specs),
        "online": sum(1 for r in final.values() if r.get("online")),
        "processes": 1 if fleet.in_process else len(fleet.specs),
        "headless": headless,
        "all_online_after_s": None if online_s is None else round(online_s, 3),
        "elapsed_s": round(elapsed, 3),
        "presses": pressed,
        "totals": {k: sum(int(r.get(k) or 0) for r in final.values()) for k in keys},
        "nodes": final,
    }
