"""What every benchmark in bench/ does the same way.

The private Mosquitto for fleet-sized runs, the machine's load average, the
results JSON, a connected bare paho client, a server child process that says
"ready" and runs until its stdin closes, and a bare subscriber's wait/close.

Every results JSON says which code made it and how busy the machine was: `commit`
(git rev-parse HEAD, "-dirty" when the tree differs from it outside bench/results/)
and `loadavg` (1/5/15-min load averages when the bench started, i.e. imported this
module, and when it wrote the file). Write results through `write_result`, `save`
or `write_json` so none goes without them.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hub.settings import HubSettings, load_settings
from tests.support.broker import free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def load() -> list[float]:
    """The machine's load average (1, 5, 15 min), reported beside every figure."""
    return [round(x, 2) for x in os.getloadavg()]


def git_commit(root: Path = ROOT) -> str:
    """HEAD's commit, with "-dirty" if tracked or new files differ from it (results
    written by earlier runs, bench/results/, do not count); "unknown" outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                              text=True, timeout=30, check=True).stdout.strip()
    try:
        head = git("rev-parse", "HEAD")
        changes = git("status", "--porcelain", "--", ".", ":(exclude)bench/results")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if changes else "")


# Taken when a bench starts (it imports this module first): the code it runs and the
# load it starts under.
COMMIT = git_commit()
LOAD_BEFORE = load()


def provenance() -> dict[str, Any]:
    """What every results file carries: the commit, the load before and after, the machine."""
    return {"commit": COMMIT, "loadavg": {"before": LOAD_BEFORE, "after": load()},
            "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S")}


def write_json(path: Path, result: dict[str, Any]) -> Path:
    """Write `result` plus its provenance() as JSON at `path` (replacing it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**result, **provenance()}, indent=2, ensure_ascii=False)
                    + "\n", encoding="utf-8")
    return path


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Write `result` as bench/results/<name>.json (replacing it); return the path."""
    return write_json(RESULTS / f"{name}.json", result)


def save(name: str, key: str, result: dict[str, Any]) -> Path:
    """Merge `result` under `key` into bench/results/<name>.json; return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old[key] = {**result, "machine": f"{os.cpu_count()} cores", **provenance()}
    path.write_text(json.dumps(old, indent=2, ensure_ascii=False) + "\n")
    return path


def registry_text(nodes: dict[str, str]) -> str:
    """A registry TOML for `nodes` (node id -> area)."""
    lines = []
    for node_id, area in nodes.items():
        lines += ["[[nodes]]", f'id = "{node_id}"', f'area = "{area}"', ""]
    return "\n".join(lines)


def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A Mosquitto for thousands of connections: no connection limit, open-files limit raised."""
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text("\n".join([f"listener {port} 127.0.0.1", "allow_anonymous true",
                               "persistence false", "max_connections -1",
                               "set_tcp_nodelay true", "log_type error", "log_type warning",
                               ""]))
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

    def more_files() -> None:   # one descriptor per node, plus its own
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    log = (workdir / "mosquitto.log").open("ab")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=log,
                            preexec_fn=more_files)
    time.sleep(0.5)
    if proc.poll() is not None:
        raise RuntimeError((workdir / "mosquitto.log").read_text())
    return proc, port


def client(port: int, name: str, password: str | None = None) -> mqtt.Client:
    """A connected bare paho client with room for a whole window of messages in flight;
    with `password`, logged in as `name` (a broker with logins, e.g. production's)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:6]}")
    if password is not None:
        c.username_pw_set(name, password)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    ready = threading.Event()
    c.on_connect = lambda *a: ready.set()
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    if not ready.wait(10):
        raise RuntimeError(f"{name} could not connect")
    return c


def subscribe(c: mqtt.Client, topic: str, timeout: float = 5.0) -> None:
    """Subscribe at QoS 1 and wait (up to `timeout`) for the broker's SUBACK."""
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.subscribe(topic, 1)
    done.wait(timeout)


def ready_then_wait() -> None:
    """In a server child: tell the driver we are ready, then run until it closes our stdin."""
    print("ready", flush=True)
    sys.stdin.read()


def hub_settings(port: int, work: Path, registry: str, **overrides: Any) -> HubSettings:
    """A hub on SQLite in `work` whose escalation timers stay out of a bench run."""
    return load_settings(
        None, env={}, hub_id="bench-hub", broker_url=f"mqtt://127.0.0.1:{port}",
        db_url=f"sqlite:///{work / 'hub.db'}", data_dir=str(work / "data"),
        registry_file=str(work / registry), escalate_after_s=3600.0,
        failed_to_sound_s=3600.0, **overrides)


class Server:
    """`python -m <module> <args>` as a server child: started when it prints "ready"."""

    def __init__(self, module: str, args: list[str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", module, *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"server {args} did not start")

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)


class Subscriber:
    """A bare subscriber whose callback updates state under `cv`; `wait` for a predicate."""

    def __init__(self, port: int, client_id: str, topics: list[str]) -> None:
        self.cv = threading.Condition()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port, 30)
        for t in topics:
            self.c.subscribe(t, 1)
        self.c.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        raise NotImplementedError

    def wait(self, pred: Callable[[], object], timeout: float) -> bool:
        with self.cv:
            return bool(self.cv.wait_for(pred, timeout))

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class ProcWatch:
    """A process's CPU seconds (user + system) and its largest RSS while watched."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss_max_mib = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._sample, daemon=True)

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.rss_max_mib = max(self.rss_max_mib, self.rss_mib())

    def __enter__(self) -> ProcWatch:
        self.rss_max_mib = self.rss_mib()
        self._cpu0, self._t0 = self.cpu_s(), time.monotonic()
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join(2)
        self.cpu_used_s = self.cpu_s() - self._cpu0
        self.wall_s = time.monotonic() - self._t0

    def report(self) -> dict[str, float]:
        return {"hub_rss_max_mib": round(self.rss_max_mib, 1),
                "hub_cpu_s": round(self.cpu_used_s, 2),
                "hub_cpu_pct": round(100 * self.cpu_used_s / max(self.wall_s, 1e-9), 1)}
