"""The UPS HAT's fuel gauge (node/battery.py) against the simulator's fake MAX17048, whose
register protocol is the chip's: the real driver code runs, only the bus is fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_sim.gauge import FakeGauge
from firmware_sim.virtual import VirtualNode
from node.battery import BatteryGauge, GaugeConfig, soc_percent
from node.config import parse_config
from node.errors import ConfigError
from tests.support.broker import Mosquitto
from tests.support.fake_clock import FakeClock
from tests.support.nodes import T, make_node
from tests.support.wire import Wire


def test_soc_register_bytes_are_whole_and_256ths_of_a_percent() -> None:
    assert soc_percent(0x57, 0x80) == 87.5
    assert soc_percent(0, 0) == 0.0
    assert soc_percent(100, 0) == 100.0
    assert soc_percent(101, 200) == 100.0   # a fresh cell reads a little over: clamped
    assert soc_percent(12, 26) == 12.1


def test_the_driver_reads_the_percent_the_gauge_holds() -> None:
    gauge = FakeGauge(63.25)
    driver = BatteryGauge(GaugeConfig(), gauge.bus)
    assert driver.percent() == 63.2   # 63.25 % is 0x3F40: 63 + 64/256, to 0.1 %
    gauge.set_percent(7.0)
    assert driver.percent() == 7.0


def test_an_i2c_error_gives_no_reading_and_the_gauge_is_found_again() -> None:
    gauge = FakeGauge(50.0)
    driver = BatteryGauge(GaugeConfig(), gauge.bus)
    gauge.fail = True   # the HAT unseated: every read NACKs (OSError 121)
    assert driver.percent() is None
    assert driver.percent() is None
    assert driver.errors == 2
    gauge.fail = False
    assert driver.percent() == 50.0   # the bus is opened afresh after an error


def test_a_gauge_at_another_address_or_no_bus_at_all_is_no_reading() -> None:
    assert BatteryGauge(GaugeConfig(address=0x40), FakeGauge(50.0).bus).percent() is None

    def no_bus(number: int) -> FakeGauge:
        raise FileNotFoundError(f"/dev/i2c-{number}")   # I2C not enabled on the Pi

    assert BatteryGauge(GaugeConfig(), no_bus).percent() is None  # type: ignore[arg-type]


def test_the_charge_drains_on_battery_and_charges_on_mains() -> None:
    clock = FakeClock()
    gauge = FakeGauge(80.0, mono=clock.monotonic)
    gauge.drain_pct_per_min, gauge.charge_pct_per_min = 2.0, 1.0
    gauge.set_mains(False)
    clock.advance(300)
    assert gauge.percent == pytest.approx(70.0)
    gauge.set_mains(True)
    clock.advance(120)
    assert gauge.percent == pytest.approx(72.0)


def _doc(extra: dict[str, object]) -> dict[str, object]:
    return {"node": {"id": "n1", "area": "a/b"}, "mqtt": {"url": "mqtt://h:1883"}, **extra}


def test_battery_config_is_validated_and_claims_the_i2c_pins() -> None:
    cfg = parse_config(_doc({"battery": {"gauge": "max17040", "address": 0x36}}))
    assert cfg.battery == GaugeConfig(gauge="max17040", bus=1, address=0x36)
    assert parse_config(_doc({})).battery is None
    with pytest.raises(ConfigError, match=r"battery\.gauge"):
        parse_config(_doc({"battery": {"gauge": "ina999"}}))
    with pytest.raises(ConfigError, match="GPIO 2 is already used by battery"):
        parse_config(_doc({"battery": {}, "buttons": [{"pin": 2, "number": 1,
                                                        "kind": "fire"}]}))


@pytest.fixture
def node(broker: Mosquitto, wire: Wire, tmp_path: Path) -> Iterator[VirtualNode]:
    wire.subscribe(f"{T.prefix}/#")
    n = make_node(broker, tmp_path / "n1", hardware={"battery": {"gauge": "max17048"}})
    n.set_battery(42.0)
    n.start()
    assert n.wait_connected(10)
    yield n
    n.stop()


def test_heartbeats_carry_power_and_battery_and_survive_a_gauge_fault(
        node: VirtualNode, wire: Wire) -> None:
    beat = wire.wait_for(lambda m: m.topic == T.heartbeat("n1"), 5)[0].json()
    assert (beat["power"], beat["battery_pct"]) == ("mains", 42.0)
    node.set_power(False)
    node.set_battery(18.5)
    wire.wait_for(lambda m: m.topic == T.heartbeat("n1")
                  and m.json().get("power") == "battery"
                  and m.json().get("battery_pct") == 18.5, 5)
    node.gauge.fail = True
    beat = wire.wait_for(lambda m: m.topic == T.heartbeat("n1")
                         and "battery_pct" not in m.json(), 5)[0].json()
    assert beat["power"] == "battery"   # the heartbeat still goes, without the reading
    assert node.agent is not None and node.agent.stats["agent_errors"] == 0
