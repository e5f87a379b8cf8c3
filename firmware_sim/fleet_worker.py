"""A fleet worker process: `python -m firmware_sim.fleet_worker` (started by firmware_sim.fleet).

stdin carries one JSON line per request (the first one is the ShardSpec), stdout
one JSON line per reply; logs go to stderr. Why processes at all: one Python
process uses one core at most, and mock-pin nodes run paho's own select() loop,
which cannot watch a socket numbered past 1023 (~6 descriptors a node: ~150
nodes a process). Headless nodes share one epoll loop per process
(netloop.py), hold ~4 descriptors each, and run 1,000 to a process.

The worker ignores SIGINT (Ctrl-C in a terminal reaches the whole process
group; the parent decides how to stop) and stops its nodes gracefully on
SIGTERM or when its stdin closes (the parent died), so deaths are published.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import signal
import sys
from typing import Any, TextIO

from .fleet_shard import Shard, ShardSpec

log = logging.getLogger("tiengmo.sim.worker")


class _Terminate(Exception):
    """SIGTERM arrived: stop the nodes and leave."""


def raise_nofile_limit() -> int:
    """Raise the soft open-files limit to the hard one; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return int(target)
        except (ValueError, OSError):
            pass
    return int(soft)


def _reply(out: TextIO, data: dict[str, Any]) -> None:
    out.write(json.dumps(data, separators=(",", ":")) + "\n")
    out.flush()


def serve(shard: Shard, inp: TextIO, out: TextIO) -> None:
    """Answer requests until "stop", EOF or SIGTERM; the nodes are stopped in every case."""
    stopped = False
    try:
        for line in inp:
            if not line.strip():
                continue
            try:
                req = json.loads(line)
            except json.JSONDecodeError as exc:
                _reply(out, {"error": f"bad request: {exc}"})
                continue
            reply = shard.handle(req)
            if req.get("op") == "stop":
                stopped = True
                _reply(out, reply)
                return
            _reply(out, reply)
    except _Terminate:
        log.info("SIGTERM: stopping %d node(s)", len(shard.nodes))
    finally:
        if not stopped:
            shard.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m firmware_sim.fleet_worker")
    ap.add_argument("--log-level", default="warning")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s sim[{os.getpid()}] %(levelname)s %(name)s: "
                               "%(message)s")
    # Replies get their own copy of stdout; fd 1 then points at stderr, so a stray
    # print from any library can never corrupt the reply stream.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def on_term(signum: int, frame: Any) -> None:
        raise _Terminate()

    signal.signal(signal.SIGTERM, on_term)
    raise_nofile_limit()
    first = sys.stdin.readline()
    if not first:
        return 0
    try:
        spec = ShardSpec.from_json(json.loads(first))
    except (json.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
        _reply(out, {"error": f"bad shard spec: {exc}"})
        return 2
    shard = Shard(spec)
    shard.start()
    _reply(out, {"ok": True, "pid": os.getpid()})
    serve(shard, sys.stdin, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
