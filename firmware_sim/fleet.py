"""A fleet of simulated nodes, in this process or spread over worker processes.

`plan_shards` cuts the node list into shards; `Fleet` runs each shard either
in-process (`Shard` called directly) or in a `firmware_sim.fleet_worker`
subprocess, and aggregates status and per-node reports. The parent never
touches a node of a worker directly: everything goes through the same small
JSON requests, so both kinds of shard behave the same.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import IO, Any, Protocol

from .fleet_shard import Reply, Shard, ShardSpec

# Headless nodes share one epoll network loop per process (netloop.py): no
# select() limit, and 1,000 idle nodes (10 s heartbeats) cost ~7 % of a core and
# ~4 descriptors each. Per process they start at the loop's connect rate
# (200/s), so more processes also bring a fleet online sooner.
DEFAULT_PER_PROCESS = 1000
# Mock-pin nodes (and headless ones told not to share a loop) run paho's own
# select() loop, which cannot watch a socket numbered past 1023, and hold ~6
# descriptors: 125 per process leaves room.
MOCK_PINS_PER_PROCESS = 125
# Above this many nodes in total, nodes run headless unless told otherwise
# (a mock-pin node costs ~8 threads, a headless one 3).
HEADLESS_ABOVE = 200


class FleetError(RuntimeError):
    """A worker process failed or stopped answering."""


def plan_shards(base: ShardSpec, processes: int) -> list[ShardSpec]:
    """Split `base.nodes` into `processes` contiguous, near-equal shards."""
    nodes = base.nodes
    processes = max(1, min(processes, len(nodes) or 1))
    size = math.ceil(len(nodes) / processes) if nodes else 0
    return [replace(base, nodes=nodes[i:i + size]) for i in range(0, len(nodes), size or 1)]


def default_processes(count: int, per_process: int | None = None, *,
                      headless: bool = True, shared_loop: bool = True) -> int:
    """Worker processes for `count` nodes (headless ones on a shared loop unless told otherwise).

    Only nodes on the shared epoll loop fit 1,000 to a process; any node on paho's
    own select() loop (every mock-pin node, a headless one with `shared_loop`
    False) must stay below descriptor 1024.
    """
    shared = headless and shared_loop   # ShardSpec.uses_shared_loop
    per = per_process or (DEFAULT_PER_PROCESS if shared else MOCK_PINS_PER_PROCESS)
    return max(1, math.ceil(count / per))


def processes_for(spec: ShardSpec, per_process: int | None = None) -> int:
    """Worker processes for all of `spec`'s nodes, planned on how they reach the network."""
    return default_processes(len(spec.nodes), per_process, headless=spec.headless,
                             shared_loop=spec.shared_loop)


class _Handle(Protocol):
    spec: ShardSpec

    def request(self, req: dict[str, Any], timeout: float) -> Reply: ...
    def close(self) -> None: ...


class LocalHandle:
    """A shard in this process."""

    def __init__(self, spec: ShardSpec) -> None:
        self.spec = spec
        self.shard = Shard(spec)
        self.shard.start()

    def request(self, req: dict[str, Any], timeout: float) -> Reply:
        return self.shard.handle(req)

    def close(self) -> None:
        pass


class ProcessHandle:
    """A shard in a worker subprocess, spoken to with JSON lines."""

    def __init__(self, spec: ShardSpec, log_level: str = "warning",
                 start_timeout: float = 30.0) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._replies: queue.Queue[Reply | None] = queue.Queue()
        # stderr is inherited: the worker's log lines land on ours.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firmware_sim.fleet_worker", "--log-level", log_level],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8",
            bufsize=1)
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True,
                         name=f"worker-{self.proc.pid}").start()
        first = self._send(spec.to_json(), start_timeout)
        if "error" in first:
            raise FleetError(f"worker {self.proc.pid}: {first['error']}")

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                self._replies.put(json.loads(line))
            except json.JSONDecodeError:
                continue   # not ours (the worker sends only JSON lines here)
        self._replies.put(None)   # EOF: the worker is gone

    def _send(self, data: dict[str, Any], timeout: float) -> Reply:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(data) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise FleetError(f"worker {self.proc.pid} is gone ({exc})") from None
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise FleetError(f"worker {self.proc.pid} did not answer within {timeout:.0f} s") \
                from None
        if reply is None:
            raise FleetError(f"worker {self.proc.pid} exited (code {self.proc.poll()})")
        return reply

    def request(self, req: dict[str, Any], timeout: float) -> Reply:
        with self._lock:   # one request in flight per worker: replies come back in order
            return self._send(req, timeout)

    def close(self) -> None:
        """Let the worker finish (after "stop"), or end it: SIGTERM still stops nodes cleanly."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass(frozen=True)
class FleetStatus:
    total: int
    started: int
    online: int
    failed: int
    alarms_sent: int
    acks_received: int
    offline: list[str]
    errors: list[str]

    @property
    def all_online(self) -> bool:
        return self.online == self.total


class Fleet:
    """Every shard of a run; `in_process` keeps a single shard in this process."""

    def __init__(self, shards: Sequence[ShardSpec], *, in_process: bool = False,
                 log_level: str = "warning", timeout: float = 60.0) -> None:
        if in_process and len(shards) != 1:
            raise ValueError("an in-process fleet has exactly one shard")
        self.specs = list(shards)
        self.in_process = in_process
        self.log_level = log_level
        self.timeout = timeout
        self.handles: list[_Handle] = []
        self._where: dict[str, _Handle] = {}

    def start(self) -> Fleet:
        """Start every shard (workers in parallel: each imports paho and gpiozero)."""
        if self.in_process:
            self.handles = [LocalHandle(self.specs[0])]
        else:
            with ThreadPoolExecutor(max(1, len(self.specs))) as pool:
                futures = [pool.submit(ProcessHandle, s, self.log_level) for s in self.specs]
                errors = []
                for f in futures:
                    try:
                        self.handles.append(f.result())
                    except FleetError as exc:
                        errors.append(str(exc))
                if errors:
                    self.stop()
                    raise FleetError("; ".join(errors))
        self._where = {node_id: h for h in self.handles for node_id, _ in h.spec.nodes}
        return self

    def _all(self, req: dict[str, Any]) -> list[Reply]:
        with ThreadPoolExecutor(max(1, len(self.handles))) as pool:
            return list(pool.map(lambda h: h.request(req, self.timeout), self.handles))

    def status(self) -> FleetStatus:
        replies = self._all({"op": "status"})
        bad = [r["error"] for r in replies if "error" in r]
        if bad:
            raise FleetError("; ".join(bad))
        return FleetStatus(
            total=sum(r["total"] for r in replies), started=sum(r["started"] for r in replies),
            online=sum(r["online"] for r in replies), failed=sum(r["failed"] for r in replies),
            alarms_sent=sum(r["alarms_sent"] for r in replies),
            acks_received=sum(r["acks_received"] for r in replies),
            offline=[n for r in replies for n in r["offline"]][:20],
            errors=[e for r in replies for e in r["errors"]][:20])

    def press(self, node_id: str, button: int | str, hold_s: float | None = None) -> Reply:
        handle = self._where.get(node_id)
        if handle is None:
            return {"error": f"no node {node_id!r} in this fleet"}
        return handle.request({"op": "press", "node": node_id, "button": button,
                               "hold_s": hold_s}, self.timeout)

    def report(self) -> dict[str, dict[str, Any]]:
        return _merge(self._all({"op": "report"}))

    def stop(self) -> dict[str, dict[str, Any]]:
        """Final per-node report, every node stopped gracefully, every worker ended."""
        if not self.handles:
            return {}

        def stop_one(h: _Handle) -> Reply:
            try:
                return h.request({"op": "stop"}, self.timeout)
            except FleetError as exc:
                return {"error": str(exc)}
            finally:
                h.close()

        with ThreadPoolExecutor(len(self.handles)) as pool:
            replies = list(pool.map(stop_one, self.handles))
        self.handles = []
        return _merge(replies)


def _merge(replies: list[Reply]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in replies:
        out.update(r.get("nodes", {}))
    return out
