"""`tiengmo hub node-gate`: the hub's half of a staged node rollout's health gate
(ansible/rollout.yml). Run on the hub's machine after a node was upgraded and its agent
restarted; passes (exit 0) once the hub's database shows the node

- online, with a status that began after the restart (it came back, not "still there"),
- reporting the expected version in its birth message,
- with a heartbeat after the restart (its main loop runs and reaches the hub),

and fails (exit 1, saying which of these never came) after `--timeout`. Nothing here
sounds: the audible `test` command strikes a gong and frightens a hamlet, so the gate
never uses it; the node's own half (its unit up under the systemd watchdog, which the
agent pings only while its main loop makes progress, and `tiengmo node --check`) runs
on the node (ansible/roles/tiengmo_node/tasks/gate.yml).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from protocol.timing import wall_ms

HELP = ("wait until a node is back online with a given version (a rollout's health gate) / "
        "chờ nút trở lại với phiên bản mới")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    why: str


def judge(node: object | None, version: str, since_ms: int) -> Verdict:
    """Whether `node` (a hub.store NodeInfo, or None) passes the gate now."""
    if node is None:
        return Verdict(False, "the hub does not know this node")
    status = str(getattr(getattr(node, "status", None), "value", getattr(node, "status", "")))
    if status != "online":
        return Verdict(False, f"not online (status {status})")
    since = getattr(node, "status_since_ms", None) or 0
    if since < since_ms:
        return Verdict(False, "online since before the restart: it has not come back yet")
    got = getattr(node, "version", None)
    if got != version:
        return Verdict(False, f"reports version {got!r}, not {version!r}")
    beat = getattr(node, "last_heartbeat_ms", None) or 0
    if beat < since_ms:
        return Verdict(False, "no heartbeat since the restart")
    return Verdict(True, f"online since the restart, version {version}, heartbeat seen")


def wait(read: Callable[[], object | None], version: str, since_ms: int, timeout_s: float,
         poll_s: float = 1.0, clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> Verdict:
    deadline = clock() + timeout_s
    while True:
        try:
            verdict = judge(read(), version, since_ms)
        except Exception as exc:   # the database is away for a moment: ask again
            verdict = Verdict(False, f"cannot read the hub's database: {exc}")
        if verdict.ok or clock() >= deadline:
            return verdict
        sleep(poll_s)


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("node-gate", help=HELP, description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE", help="hub settings file (its db_url is used)")
    p.add_argument("--db", metavar="URL", help="database URL (overrides the config's)")
    p.add_argument("--node", required=True, metavar="ID")
    p.add_argument("--version", required=True, metavar="VERSION",
                   help="the version the node must report")
    p.add_argument("--since-ms", type=int, default=None, metavar="MS",
                   help="when the agent was restarted (Unix ms; default: now)")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S",
                   help="give up after S seconds (default 120)")


def run_command(args: argparse.Namespace) -> int:
    from .store import Store

    db = args.db
    if not db:
        if not args.config:
            print("tiengmo hub node-gate: give --db URL or --config FILE", file=sys.stderr)
            return 2
        from .settings import load_settings

        db = load_settings(args.config).db_url
    since = args.since_ms if args.since_ms is not None else wall_ms()
    with Store.open(db, migrate=False) as store:
        verdict = wait(lambda: store.nodes.get(args.node), args.version, since, args.timeout)
    if verdict.ok:
        print(f"{args.node}: đạt / passed: {verdict.why}")
        return 0
    print(f"tiengmo hub node-gate: {args.node} KHÔNG ĐẠT / FAILED after {args.timeout:g} s: "
          f"{verdict.why}", file=sys.stderr)
    return 1
