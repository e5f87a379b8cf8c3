"""The whole loop for the browser tests: a real Mosquitto, the real Hub with its HTTP app
served by uvicorn on a free port, a few VirtualNodes (the real node agent on mock pins)
and the dashboard's simulator panel. Also runnable by hand to look at the dashboard:

    python -m tests.browser.stack        # prints the URL and the logins; Ctrl-C stops
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import uvicorn

from dashboard import static_dir
from firmware_sim.village import Village
from hub.api import security
from hub.app import create_app
from hub.runtime import Hub
from protocol.registry import load_registry
from tests.support.broker import Mosquitto, free_port
from tests.support.hub_harness import hub_settings
from tiengmo import simpanel

NA_SANG = "bach-thong/vi-huong/na-sang"
NA_CHA = "bach-thong/vi-huong/na-cha"
REGISTRY = f"""
[[areas]]
path = "bach-thong"
name = "Huyện Bạch Thông"
level = "huyện"

[[areas]]
path = "bach-thong/vi-huong"
name = "Xã Vi Hương"
level = "xã"

[[areas]]
path = "{NA_SANG}"
name = "Thôn Nà Sang"
level = "thôn"

[[areas]]
path = "{NA_CHA}"
name = "Thôn Nà Chá"
level = "thôn"

[[nodes]]
id = "na-sang-01"
area = "{NA_SANG}"
name = "Nhà văn hoá Nà Sang"
households = 12
lat = 22.2461
lon = 105.8612

[[nodes]]
id = "na-sang-02"
area = "{NA_SANG}"
households = 9
lat = 22.2478
lon = 105.8641

[[nodes]]
id = "na-sang-03"
area = "{NA_SANG}"
households = 7
lat = 22.2449
lon = 105.8650

[[nodes]]
id = "na-cha-01"
area = "{NA_CHA}"
households = 10
lat = 22.2532
lon = 105.8501

[[nodes]]
id = "na-cha-02"
area = "{NA_CHA}"
households = 8
lat = 22.2551
lon = 105.8529
"""

USERS = {"admin": ("admin", "admin-pass-1234"), "operator": ("operator", "operator-pass-123"),
         "viewer": ("viewer", "viewer-pass-123")}


class Stack:
    """Hub + HTTP + simulated village on a Mosquitto that the caller owns."""

    def __init__(self, broker: Mosquitto, workdir: Path, *, ping_s: float = 15.0,
                 hub_overrides: dict[str, Any] | None = None,
                 node_timers: dict[str, Any] | None = None,
                 registry: str = REGISTRY) -> None:
        self.broker = broker
        self.registry = registry
        self.workdir = workdir
        self.ping_s = ping_s
        # Hub settings on top of the stack's own (bench/dashboard_latency.py uses them).
        self.hub_overrides = dict(hub_overrides or {})
        self.node_timers = dict(node_timers or {})   # e.g. a short heartbeat_s
        self.hub: Hub | None = None
        self.app: Any = None
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.port = free_port()
        self.demo = SimpleNamespace(village=None)
        self.village: Village | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Stack:
        reg_file = self.workdir / "browser-registry.toml"
        reg_file.write_text(self.registry, encoding="utf-8")
        settings = hub_settings(self.broker, self.workdir, registry_file=str(reg_file),
                                **{"heartbeat_s": 5.0, "loss_debounce_s": 20.0,
                                   **self.hub_overrides})
        self.hub = Hub(settings).start()
        assert self.hub.link is not None and self.hub.link.wait_connected(10), "hub not up"
        auth = self.hub.store.auth
        for role, (name, password) in USERS.items():
            auth.create_user(name, security.hash_password(password), role, "test",
                             display_name=f"Test {role}")
        self.start_http()
        self.village = Village.from_registry(load_registry(reg_file),
                                             broker_url=self.broker.url,
                                             data_root=self.workdir / "nodes",
                                             **({"timers": self.node_timers}
                                                if self.node_timers else {}))
        self.village.start(wait_s=20)
        self.demo.village = self.village
        return self

    def start_http(self) -> None:
        """(Re)start the HTTP side on the same port: a fresh app on the same hub."""
        assert self.hub is not None
        self.app = create_app(self.hub, static_dir=static_dir(), ping_s=self.ping_s,
                              gap_wait_s=0.5)
        simpanel.mount(self.app, self.demo)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
            timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, name="browser-http", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop_http(self) -> None:
        """The hub's web side goes away: live streams end and the port closes."""
        if self.app is not None:
            self.app.state.api.feed.stop()  # ends every open SSE stream
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
        self.server = None
        self.thread = None

    def stop(self) -> None:
        if self.village is not None:
            self.village.stop()
        self.stop_http()
        if self.hub is not None:
            self.hub.stop()


def main() -> None:  # pragma: no cover - a tool for looking at the dashboard by hand
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp)).start()
        stack = Stack(broker, Path(tmp)).start()
        print(f"dashboard: {stack.url}/", flush=True)
        for role, (name, password) in USERS.items():
            print(f"  {role}: {name} / {password}", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            stack.stop()
            broker.stop()


if __name__ == "__main__":
    main()
