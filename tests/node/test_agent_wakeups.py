"""The agent's wake-ups stay right when something goes wrong, with a long idle tick (what
simulated fleets use): an event that fails after queuing a command does not delay the
command, an error while computing the next wake-up does not end the agent, and a
command's `done` follows its own sound, not another, longer one."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

import protocol
from firmware_sim.village import node_config
from firmware_sim.virtual import VirtualNode
from node.clock import HubClock
from node.commands import CommandRunner
from node.player import Player
from protocol import Action, Command, Pattern, ResultStatus
from tests.support.broker import Mosquitto
from tests.support.fake_clock import FakeClock
from tests.support.nodes import BareHub, make_node
from tests.support.wire import Wire

LONG = {"idle_tick_s": 60.0, "heartbeat_s": 30.0, "clock_hold_s": 0.5}


@pytest.fixture
def hub(wire: Wire) -> BareHub:
    return BareHub(wire)


@pytest.fixture
def node(broker: Mosquitto, tmp_path: Path) -> Iterator[VirtualNode]:
    n = make_node(broker, tmp_path, timers=LONG)
    n.start()
    assert n.wait_connected(10)
    yield n
    n.stop()


def test_a_held_command_is_answered_even_when_its_event_failed(node: VirtualNode,
                                                              hub: BareHub) -> None:
    agent = node.agent
    assert agent is not None
    receive = agent.commands.receive

    def receive_then_fail(cmd: Command) -> None:
        receive(cmd)   # queued (held: no hub clock sample yet), then something breaks
        raise RuntimeError("injected failure after the command was queued")

    agent.commands.receive = receive_then_fail   # type: ignore[method-assign]
    t0 = time.monotonic()
    ping = hub.command("ping", node_id="n1")
    [res] = hub.wait_result("n1", ping, timeout=5)
    # Released at clock_hold_s (0.5 s), not at the next heartbeat or idle tick.
    assert res["status"] == "done" and time.monotonic() - t0 < 2.0
    assert agent.stats["agent_errors"] >= 1


def test_an_error_computing_the_next_wake_up_does_not_end_the_agent(
        node: VirtualNode, hub: BareHub, mocker: MockerFixture) -> None:
    agent = node.agent
    assert agent is not None
    # The first call fails, every later one asks the real method (iter(f, None) calls f).
    wait_s = mocker.patch.object(agent, "_wait_s", side_effect=itertools.chain(
        [RuntimeError("injected failure in _wait_s")], iter(agent._wait_s, None)))
    hub.beacon()
    first = hub.command("ping", node_id="n1")   # its handling leads to a _wait_s: it fails
    hub.wait_result("n1", first, "done", timeout=5)
    second = hub.command("ping", node_id="n1")
    hub.wait_result("n1", second, "done", timeout=5)   # the agent is still there
    assert wait_s.call_count >= 2 and agent.stats["agent_errors"] >= 1


def test_a_commands_done_is_due_at_its_own_sound_end_not_a_longer_ones(
        tmp_path: Path, mocker: MockerFixture) -> None:
    clock = FakeClock()
    player = Player([], clock=clock)
    publish_result = mocker.Mock()
    cfg = node_config("n1", "a/b", broker_url="mqtt://localhost", data_dir=tmp_path)
    runner = CommandRunner(
        player=player, clock=HubClock(mono=clock), silence_incident=lambda _: None,
        publish_result=publish_result,
        drill=cfg.local_pattern("drill"), has_outputs=True, clock_hold_s=1.5,
        test_duration_s=1.0, memory=16, mono=clock, player_clock=clock)
    try:
        assert runner.tick() is None   # nothing held or sounding: no deadline of its own
        # A local alarm sounding for 100 s, louder than the command's 2 s sound.
        player.play("local-alarm", Pattern("fire", ((100, 100),)), 100, 99)
        cmd = _sound_cmd(duration_s=2)
        runner.receive(cmd)   # no hub clock sample: held until clock_hold_s
        assert runner.tick() == pytest.approx(1.5)
        clock.advance(1.5)
        assert runner.tick() == pytest.approx(2.0)   # released and started: its own end
        publish_result.assert_called_once_with(cmd.cmd_id, ResultStatus.STARTED, None)
        clock.advance(2.5)   # it ended (maybe right after a tick): due now, not in 96 s
        assert runner.next_due_s() == 0.0
        assert runner.tick() is None
        assert publish_result.call_count == 2
        publish_result.assert_called_with(cmd.cmd_id, ResultStatus.DONE, None)
    finally:
        player.close()


def _sound_cmd(duration_s: int, **kw: Any) -> Command:
    now = int(time.time() * 1000)
    return Command(cmd_id=protocol.new_id(), action=Action.SOUND, ts_ms=now,
                   expires_ts_ms=now + 3_600_000, pattern=Pattern("fire", ((100, 100),)),
                   duration_s=duration_s, priority=5, **kw)
