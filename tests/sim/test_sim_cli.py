"""`tiengmo sim` as a real process against a real Mosquitto, observed with a bare MQTT client.

The "hub" in these tests is the `wire` client publishing a plain JSON ack:
what the simulator must do is judged by the wire contract alone.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tests.support.broker import Mosquitto, free_port
from tests.support.wire import Received, Wire

ROOT = Path(__file__).resolve().parents[2]
P = "mo/v1"


def sim(broker_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tiengmo.cli", "sim", "--broker", broker_url,
                             "--hold-s", "0.1", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 40) -> tuple[int, dict[str, Any], str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, (json.loads(out) if out.strip() else {}), err


def births(wire: Wire, ids: list[str], timeout: float = 20) -> dict[str, dict[str, Any]]:
    topics = {f"{P}/nodes/{i}/state" for i in ids}
    got = wire.wait_for(lambda m: m.topic in topics and m.json().get("online") is True,
                        timeout=timeout, count=len(ids))
    return {m.topic.split("/")[3]: m.json() for m in got}


def ack(wire: Wire, node_id: str, alarm_id: str) -> None:
    wire.publish(f"{P}/nodes/{node_id}/ack", json.dumps({
        "v": 1, "alarm_id": alarm_id, "incident_id": str(uuid.uuid4()), "status": "received",
        "ts_ms": int(time.time() * 1000)}), qos=1)


def is_death(m: Received) -> bool:
    return m.topic.endswith("/state") and m.json().get("online") is False


def test_births_alarm_ack_and_json_report(broker: Mosquitto, wire: Wire) -> None:
    wire.subscribe(f"{P}/nodes/#")
    proc = sim(broker.url, "--nodes", "3", "--area", "a/b", "--press", "2:fire",
               "--duration", "6", "--json")
    ids = ["sim-0001", "sim-0002", "sim-0003"]
    for node_id, b in births(wire, ids).items():
        assert b["v"] == 1 and b["online"] is True and b["area"] == "a/b"
        assert isinstance(b["boot_id"], int) and b["boot_id"] >= 0
        assert isinstance(b["ts_ms"], int) and abs(b["ts_ms"] - time.time() * 1000) < 60_000
        assert isinstance(b["version"], str) and b["version"], node_id
        assert b["outputs"] == ["gong"]
        assert b["buttons"] == {"1": "theft", "2": "fire"}
    # Retained: a client that subscribes only now still gets every birth.
    late = Wire(broker.host, broker.port)
    try:
        late.subscribe(f"{P}/nodes/+/state")
        kept = late.wait_for(lambda m: m.retain and m.json()["online"] is True, count=3)
        assert {m.topic for m in kept} == {f"{P}/nodes/{i}/state" for i in ids}
    finally:
        late.close()

    alarm = wire.wait_for(lambda m: m.topic.endswith("/alarm"), timeout=15)[0]
    assert alarm.topic == f"{P}/nodes/sim-0002/alarm"
    a = alarm.json()
    assert (a["v"], a["kind"], a["source"], a["button"], a["attempt"]) == \
        (1, "fire", "button", 2, 1)
    assert str(uuid.UUID(a["alarm_id"])) == a["alarm_id"].lower()
    ack(wire, "sim-0002", a["alarm_id"])

    code, report, err = finish(proc)
    assert code == 0, err
    assert report["total"] == 3 and report["online"] == 3
    n2 = report["nodes"]["sim-0002"]
    assert n2["alarms_sent"] >= 1 and n2["acks_received"] == 1 and n2["outbox"] == 0
    for other in ("sim-0001", "sim-0003"):
        assert report["nodes"][other]["alarms_sent"] == 0
    # Only the pressed node raised anything, and only that one alarm id.
    assert {m.json()["alarm_id"] for m in wire.on_topic("/alarm")} == {a["alarm_id"]}
    # A clean stop publishes each node's death with the boot_id of its birth.
    deaths = wire.wait_for(is_death, count=3)
    assert {m.topic.split("/")[3]: m.json()["boot_id"] for m in deaths} == \
        {i: n["boot_id"] for i, n in report["nodes"].items()}


def test_registry_mode_skips_disabled_nodes(broker: Mosquitto, wire: Wire,
                                            tmp_path: Path) -> None:
    reg = tmp_path / "registry.toml"
    reg.write_text("""
[[nodes]]
id = "na-sang-01"
area = "bach-thong/vi-huong/na-sang"

[[nodes]]
id = "na-sang-02"
area = "bach-thong/vi-huong/na-sang"
enabled = false

[[nodes]]
id = "ban-cuon-01"
area = "bach-thong/ban-cuon"
""")
    wire.subscribe(f"{P}/nodes/#")
    proc = sim(broker.url, "--registry", str(reg), "--press", "3:theft", "--duration", "3",
               "--json")
    b = births(wire, ["na-sang-01", "ban-cuon-01"])
    assert b["ban-cuon-01"]["area"] == "bach-thong/ban-cuon"
    alarm = wire.wait_for(lambda m: m.topic.endswith("/alarm"), timeout=15)[0]
    assert alarm.topic == f"{P}/nodes/ban-cuon-01/alarm" and alarm.json()["kind"] == "theft"
    code, report, err = finish(proc)
    assert code == 0, err
    assert set(report["nodes"]) == {"na-sang-01", "ban-cuon-01"}
    assert report["nodes"]["ban-cuon-01"]["outbox"] == 1   # nobody acked it: still held
    assert not wire.on_topic("na-sang-02/state")


def test_two_worker_processes_headless(broker: Mosquitto, wire: Wire) -> None:
    wire.subscribe(f"{P}/nodes/+/state")
    proc = sim(broker.url, "--nodes", "20", "--area", "x/y", "--processes", "2", "--headless",
               "--press", "20:fire", "--duration", "2", "--json")
    ids = [f"sim-{i:04d}" for i in range(1, 21)]
    births(wire, ids, timeout=30)
    code, report, err = finish(proc)
    assert code == 0, err
    assert (report["processes"], report["headless"]) == (2, True)
    assert set(report["nodes"]) == set(ids) and report["online"] == 20
    assert report["nodes"]["sim-0020"]["alarms_sent"] >= 1
    assert report["totals"]["outbox"] == 1
    wire.wait_for(is_death, count=20)


def test_sigterm_stops_cleanly(broker: Mosquitto, wire: Wire) -> None:
    wire.subscribe(f"{P}/nodes/+/state")
    proc = sim(broker.url, "--nodes", "2", "--area", "a", "--json")   # runs until signalled
    births(wire, ["sim-0001", "sim-0002"])
    assert proc.stderr is not None
    for line in proc.stderr:   # the sim's own word that it is past starting
        if "all 2 online" in line:
            break
    proc.send_signal(signal.SIGTERM)
    code, report, err = finish(proc)
    assert code == 0, err
    assert set(report["nodes"]) == {"sim-0001", "sim-0002"}
    wire.wait_for(is_death, count=2)


def test_unreachable_broker_is_a_clear_error() -> None:
    proc = sim(f"mqtt://127.0.0.1:{free_port()}", "--nodes", "2", "--area", "a")
    code, _, err = finish(proc)
    assert code == 1
    assert "cannot reach the broker at mqtt://127.0.0.1:" in err


def test_nodes_refused_by_the_broker_time_out(tmp_path: Path) -> None:
    strict = Mosquitto(tmp_path, extra="allow_anonymous false").start()
    try:
        proc = sim(strict.url, "--nodes", "2", "--area", "a", "--online-timeout", "3",
                   "--json")
        code, report, err = finish(proc)
    finally:
        strict.stop()
    assert code == 3
    assert "only 0/2 nodes online after 3 s" in err and "sim-0001" in err
    assert report["online"] == 0


def test_bad_press_is_refused_before_anything_starts(broker: Mosquitto) -> None:
    proc = sim(broker.url, "--nodes", "2", "--area", "a", "--press", "2:flood")
    code, _, err = finish(proc)
    assert code == 2
    assert "no button 'flood'" in err and "1=theft, 2=fire" in err
