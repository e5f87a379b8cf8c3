"""Issue 12 point 8, as fault scenarios: the edges of the hub and the broker under an
unauthenticated attacker, while real nodes press. Figures as in scenarios.py.

- `big_body`: 300 MB request bodies to `/api/v1/cap` and `/api/v1/session`, with
  `Content-Length` and chunked, streamed (the client never holds them); each must be
  refused with 413, the hub's RSS must stay flat, and alarms pressed meanwhile must be
  stored and sound;
- `idle_sockets`: 1,100 TCP connections to the broker that never send CONNECT, with
  Mosquitto given the broker role's decision (docs/security.md "the broker's
  sockets": `LimitNOFILE` of two per login plus 4,096 headroom, no `max_connections`);
  then nodes connect anew through it and their alarms must be stored.
"""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests.faults.rig import Figures, db_alarm_ids
from tests.faults.scenarios import rig
from tests.security.test_http_limits import HUGE, chunked, plain, request

# The attacker: `sockets` plain connect()s to the broker, never a byte sent; after a
# second, those the broker already closed are counted; then held until killed.
_HOLDER = """
import json, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
held, refused = [], 0
for _ in range(n):
    try:
        held.append(socket.create_connection(("127.0.0.1", port), 5))
    except OSError:
        refused += 1
time.sleep(1.0)
closed = 0
for s in held:
    s.setblocking(False)
    try:
        closed += s.recv(1) == b""
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
print(json.dumps({"idle_held": len(held) - closed, "idle_closed_by_broker": closed + refused}),
      flush=True)
sys.stdin.read()
"""

# The broker role's headroom on top of two descriptors per login (docs/security.md).
NOFILE_HEADROOM = 4096


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def big_body(workdir: Path, body_bytes: int = HUGE, alarms: int = 40,
             nodes: int = 8) -> Figures:
    """Four huge unauthenticated bodies to the hub while the nodes press."""
    fig = Figures(f"{body_bytes // 2**20} MB request bodies (cap, session)", nodes)
    with rig(workdir, nodes, max(1, nodes // 4)) as r:
        assert r.hub.proc is not None
        pid = r.hub.proc.pid
        fig.notes["hub_rss_before_mib"] = round(proc_rss_mib(pid), 1)
        results: list[tuple[str, int, int]] = []
        peak = [0.0]

        def attack() -> None:
            for path in ("/api/v1/cap", "/api/v1/session"):
                for mode, body in (("length", plain(body_bytes)),
                                   ("chunked", chunked(body_bytes))):
                    head = {"Content-Type": "application/json"}
                    head |= ({"Content-Length": str(body_bytes)} if mode == "length"
                             else {"Transfer-Encoding": "chunked"})
                    status, sent = request(r.hub.http_port, "POST", path, head, body, 30.0)
                    results.append((f"{path} {mode}", status, sent))

        def sample() -> None:
            while t.is_alive():
                with contextlib.suppress(OSError, AssertionError):
                    peak[0] = max(peak[0], proc_rss_mib(pid))
                time.sleep(0.1)

        t0 = time.monotonic()
        t = threading.Thread(target=attack, daemon=True, name="big-bodies")
        t.start()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        r.nodes.burst(alarms, 3.0)
        t.join(300)
        sampler.join(5)
        r.nodes.wait_pressed(alarms)
        fig.notes["statuses"] = {k: s for k, s, _ in results}
        fig.notes["sent_before_answer_mib"] = {k: round(n / 2**20, 1) for k, _, n in results}
        fig.notes["hub_rss_after_mib"] = round(proc_rss_mib(pid), 1)
        fig.notes["hub_rss_peak_mib"] = round(peak[0], 1)
        fig = r.finish(fig, t0)
        # The bodies are the fault; "recover" is until every alarm pressed meanwhile is home.
        return fig


@contextlib.contextmanager
def _nofile(soft: int) -> Iterator[None]:
    """This process's soft RLIMIT_NOFILE set to `soft` (Mosquitto started meanwhile
    inherits it, as the broker role's `LimitNOFILE` gives it), restored after."""
    old_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (old_soft, hard))


def idle_sockets(workdir: Path, sockets: int = 1100, nodes: int = 8,
                 late_nodes: int = 4) -> Figures:
    """`sockets` silent TCP connections held on the broker; `late_nodes` nodes then
    connect anew through it and every node presses once."""
    fig = Figures(f"{sockets:,} idle sockets on the broker", nodes)
    nofile = 2 * nodes + NOFILE_HEADROOM       # the broker role's LimitNOFILE
    with _nofile(nofile), rig(workdir, nodes, max(1, nodes // 4)) as r:
        assert r.broker.proc is not None
        fig.notes["broker_nofile"] = int(Path(f"/proc/{r.broker.proc.pid}/limits").read_text()
                                         .split("Max open files")[1].split()[0])
        # These nodes are offline while the sockets pile up, and must log in again
        # through the crowded broker afterwards (a node back from a power cut).
        late = list(r.nodes.nodes)[:late_nodes]
        for nid in late:
            r.nodes[nid].stop()
        # Held by another process, as an attacker's are: paho's select() loop in this
        # one cannot watch a descriptor numbered past 1,024.
        holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(r.broker.port),
                                   str(sockets)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None
            fig.notes.update(json.loads(holder.stdout.readline()))
            t0 = time.monotonic()
            for nid in late:
                r.nodes.start_one(nid)
            connected = [nid for nid in late if r.nodes[nid].wait_connected(20.0)]
            fig.notes["late_nodes_connected"] = f"{len(connected)}/{len(late)}"
            fig.notes["late_connect_s"] = round(time.monotonic() - t0, 2)
            for i, nid in enumerate(r.nodes.nodes):
                r.nodes.press(nid, 1 + i % 2)
            r.nodes.wait_pressed(nodes)
            fig = r.finish(fig, t0)
            fig.notes["stored_with_sockets_held"] = len(db_alarm_ids(r.db))
            return fig
        finally:
            holder.kill()
            holder.wait(10)
