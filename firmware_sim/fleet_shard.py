"""One process's share of a simulated fleet, driven by small JSON requests.

The same `Shard.handle(request) -> reply` serves an in-process fleet (called
directly) and a worker process (firmware_sim.fleet_worker, over stdin/stdout),
so the parent does not care where its nodes run.

Requests: {"op": "status"}, {"op": "press", "node": id, "button": n},
{"op": "report"}, {"op": "stop"}. Every reply is a JSON object; a failed
request answers {"error": "..."} instead of raising.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from node.agent import NodeAgent

from .headless import HeadlessNode
from .netloop import DEFAULT_CONNECT_RATE, SharedNetLoop
from .village import node_config
from .virtual import VirtualNode

log = logging.getLogger("tiengmo.sim.shard")

SimNode = VirtualNode | HeadlessNode
Reply = dict[str, Any]

# Stopping is mostly waiting (the death's PUBACK, thread joins), so it runs in
# parallel; a fleet of 1,000 stopped one by one would take a minute.
_STOP_WORKERS = 16
# A fleet node's agent sleeps up to this long when nothing is due (timers.idle_tick_s,
# unless the spec sets it): every duty has its own deadline, and thousands of
# nodes each waking every second only burn the CPU the benchmark measures.
FLEET_IDLE_TICK_S = 60.0


@dataclass(frozen=True)
class ShardSpec:
    """Everything a shard needs to build its nodes; plain data so it crosses a pipe as JSON."""

    nodes: list[tuple[str, str]]          # (node id, area)
    broker_url: str
    data_root: str
    headless: bool = False
    username: str | None = None           # "{node}" is replaced by the node id
    password_file: str | None = None      # likewise, for per-node credentials
    prefix: str | None = None
    timers: dict[str, Any] = field(default_factory=dict)
    mqtt: dict[str, Any] = field(default_factory=dict)
    buttons: list[dict[str, Any]] | None = None
    # One network thread for all of the shard's headless links (firmware_sim/netloop.py);
    # False: each runs paho's own thread, as mock-pin nodes always do.
    shared_loop: bool = True
    connect_rate: float = DEFAULT_CONNECT_RATE   # shared loop: connects per second

    @property
    def uses_shared_loop(self) -> bool:
        return self.headless and self.shared_loop

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardSpec:
        d = dict(data)
        d["nodes"] = [(str(i), str(a)) for i, a in d["nodes"]]
        return cls(**d)


def _fill(pattern: str | None, node_id: str) -> str | None:
    return None if pattern is None else pattern.replace("{node}", node_id)


def node_report(node: SimNode | None, presses: int = 0) -> dict[str, Any]:
    """The per-node figures of `tiengmo sim --json` (zeros for a node not running)."""
    agent: NodeAgent | None = None if node is None else node.agent
    if agent is None:
        return {"online": False, "boot_id": None, "alarms_sent": 0, "acks_received": 0,
                "commands_received": 0, "commands_played": 0, "outbox": 0, "connects": 0,
                "presses": presses}
    s = agent.stats   # Counter, written by the agent's thread: single-key reads only
    return {
        "online": agent.connected,
        "boot_id": agent.boot_id,
        "alarms_sent": s.get("alarms_sent", 0),
        "acks_received": s.get("acks_received", 0),
        "commands_received": s.get("commands", 0),
        # every sound or test the node starts answers `started` once
        "commands_played": s.get("result_started", 0),
        "outbox": agent.outbox.depth() if agent.outbox is not None else 0,
        "connects": s.get("connects", 0),
        "presses": presses,
    }


class Shard:
    """Builds and starts its nodes in the background; answers requests meanwhile."""

    def __init__(self, spec: ShardSpec) -> None:
        self.spec = spec
        self.nodes: dict[str, SimNode] = {}
        self._lock = threading.Lock()
        self._errors: list[str] = []
        self._presses: dict[str, int] = {}
        self._stopping = threading.Event()
        self._starter: threading.Thread | None = None
        self.net_loop: SharedNetLoop | None = None
        if spec.uses_shared_loop:
            self.net_loop = SharedNetLoop(connect_rate=spec.connect_rate)
        self._timers = {"idle_tick_s": FLEET_IDLE_TICK_S, **(spec.timers or {})}

    def _build(self, node_id: str, area: str) -> SimNode:
        s = self.spec
        cfg = node_config(node_id, area, broker_url=s.broker_url,
                          data_dir=Path(s.data_root) / node_id,
                          username=_fill(s.username, node_id),
                          password_file=_fill(s.password_file, node_id), prefix=s.prefix,
                          timers=self._timers, mqtt=s.mqtt or None, buttons=s.buttons)
        return HeadlessNode(cfg, net_loop=self.net_loop) if s.headless else VirtualNode(cfg)

    def start(self) -> None:
        """Start every node on a background thread (connects go on in the background too)."""
        self._starter = threading.Thread(target=self._start_all, name="shard-start",
                                         daemon=True)
        self._starter.start()

    def _start_all(self) -> None:
        for node_id, area in self.spec.nodes:
            if self._stopping.is_set():
                return
            try:
                node = self._build(node_id, area)
                node.start()
            except Exception as exc:   # one bad node must not stop the others
                log.error("node %s did not start: %s", node_id, exc)
                with self._lock:
                    self._errors.append(f"{node_id}: {exc}")
                continue
            with self._lock:
                self.nodes[node_id] = node

    # -- requests ---------------------------------------------------------------

    def handle(self, req: dict[str, Any]) -> Reply:
        op = req.get("op")
        try:
            if op == "status":
                return self.status()
            if op == "press":
                return self.press(str(req["node"]), req["button"], req.get("hold_s"))
            if op == "report":
                return {"nodes": self.report()}
            if op == "stop":
                return {"nodes": self.stop()}
            return {"error": f"unknown request {op!r}"}
        except Exception as exc:   # answer, never die: the parent is waiting for a reply
            log.exception("request %r failed", op)
            return {"error": f"{op}: {exc}"}

    def status(self) -> Reply:
        with self._lock:
            nodes = list(self.nodes.values())
            errors = list(self._errors)
        online = [n.node_id for n in nodes if n.agent is not None and n.agent.connected]
        offline = [n.node_id for n in nodes if n.node_id not in set(online)]
        alarms = acks = 0
        for n in nodes:
            if n.agent is not None:
                alarms += n.agent.stats.get("alarms_sent", 0)
                acks += n.agent.stats.get("acks_received", 0)
        return {"total": len(self.spec.nodes), "started": len(nodes), "online": len(online),
                "offline": offline[:20], "errors": errors[:20], "failed": len(errors),
                "alarms_sent": alarms, "acks_received": acks}

    def press(self, node_id: str, button: int | str, hold_s: float | None) -> Reply:
        with self._lock:
            node = self.nodes.get(node_id)
        if node is None:
            return {"error": f"{node_id} is not running in this shard"}
        node.press(button, hold_s, block=False)   # the hold plays out on its own thread
        self._presses[node_id] = self._presses.get(node_id, 0) + 1
        return {"ok": True}

    def report(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            nodes = dict(self.nodes)
        return {node_id: node_report(nodes.get(node_id), self._presses.get(node_id, 0))
                for node_id, _ in self.spec.nodes}

    def stop(self) -> dict[str, dict[str, Any]]:
        """The final report, then every node stopped gracefully (deaths published)."""
        self._stopping.set()
        if self._starter is not None:
            self._starter.join(30)
        final = self.report()
        # The link logs every disconnect as a lost connection, our own DISCONNECT
        # included; a thousand of those at the end of a run would bury real warnings.
        link_log = logging.getLogger("tiengmo.node.link")
        if link_log.getEffectiveLevel() >= logging.WARNING:
            link_log.setLevel(logging.ERROR)
        with self._lock:
            nodes = list(self.nodes.values())
            self.nodes.clear()
        with ThreadPoolExecutor(_STOP_WORKERS, thread_name_prefix="stop") as pool:
            for n, exc in zip(nodes, pool.map(_stop_one, nodes), strict=True):
                if exc is not None:
                    log.error("node %s did not stop cleanly: %s", n.node_id, exc)
        if self.net_loop is not None:
            self.net_loop.close()
        return final


def _stop_one(node: SimNode) -> Exception | None:
    try:
        node.stop()
    except Exception as exc:
        return exc
    return None
