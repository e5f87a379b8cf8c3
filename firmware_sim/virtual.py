"""VirtualNode: the real NodeAgent on its own gpiozero MockFactory.

Nothing of the node is reimplemented here: a virtual node is `node.agent`
with mock pins, so what the simulator shows is what a Pi would do. Each
node gets its own MockFactory (gpiozero's default factory is global, and
two nodes must not share pin 17).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin

from firmware_sim.lifecycle import AgentLifecycle
from node.agent import NodeAgent
from node.config import NodeConfig
from node.hwconfig import ButtonConfig, RemoteConfig
from node.led import LedState

Timeline = list[tuple[float, bool]]


def pin_timeline(pin: MockPin, active_high: bool = True) -> Timeline:
    """(monotonic time, active) of every change of a mock pin, oldest first.

    MockPin keeps each change as the time since the previous one; the last
    change's absolute time is known, so the history is rebuilt backwards.
    """
    states = list(pin.states)
    t = pin._last_change
    out: Timeline = []
    for s in reversed(states):
        out.append((t, bool(s.state) == active_high))
        t -= s.timestamp
    out.reverse()
    return out


class VirtualNode(AgentLifecycle):
    """One simulated node. `wall` lets a test set the node's own (wrong) clock."""

    def __init__(self, config: NodeConfig, *, wall: Callable[[], float] = time.time,
                 mains: bool = True) -> None:
        super().__init__(config)
        self.factory = MockFactory()
        self.wall = wall
        self._mains = mains
        self.gauge.set_mains(mains)
        self._presses: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------

    def _new_agent(self) -> NodeAgent:
        agent = NodeAgent(self.config, pin_factory=self.factory, wall=self.wall,
                          transport=self._transport, battery_bus=self.gauge.bus)
        self._drive_power()
        return agent

    def restart(self) -> VirtualNode:
        """Start again on the same data_dir: the outbox and boot_id carry over."""
        if self.agent is not None:
            self.kill()
        return self.start()

    # -- the physical world ----------------------------------------------------

    def _button(self, which: int | str) -> ButtonConfig:
        for b in self.config.hardware.buttons:
            if which in (b.number, b.kind):
                return b
        raise KeyError(f"{self.node_id} has no button {which!r}")

    def _hold(self, pin: int, active_low: bool, hold_s: float) -> None:
        p = self.factory.pin(pin)
        (p.drive_low if active_low else p.drive_high)()
        time.sleep(hold_s)
        (p.drive_high if active_low else p.drive_low)()

    def press(self, button: int | str, hold_s: float | None = None, *,
              block: bool = True) -> None:
        """Hold a button (by number or kind) for `hold_s` (default: its hold time + 0.3 s:
        gpiozero decides a hold on a thread of its own, which a loaded machine may run
        late; 0.1 s of margin missed presses in CI).

        With block=False the hold runs on a thread and this returns at once.
        """
        self._drive(self._button(button), hold_s, block)

    def _remote(self, which: int | str) -> RemoteConfig:
        for r in self.config.hardware.remotes:
            if which in (r.number, r.kind):
                return r
        raise KeyError(f"{self.node_id} has no remote input {which!r}")

    def remote(self, which: int | str, hold_s: float | None = None, *,
               block: bool = True) -> None:
        """Drive a remote input (by number or kind) as its receiver's relay would while a
        key fob is held: active for `hold_s` (default: its hold time + 0.3 s, as `press`)."""
        self._drive(self._remote(which), hold_s, block)

    def _drive(self, inp: ButtonConfig | RemoteConfig, hold_s: float | None,
               block: bool) -> None:
        held = inp.hold_s + 0.3 if hold_s is None else hold_s
        if block:
            self._hold(inp.pin, inp.active_low, held)
            return
        t = threading.Thread(target=self._hold, args=(inp.pin, inp.active_low, held),
                             daemon=True)
        self._presses.append(t)
        t.start()

    def cancel(self, hold_s: float | None = None) -> None:
        """Hold the cancel input (blocking; default: its hold time + 0.3 s, as `press`)."""
        c = self.config.hardware.cancel
        if c is None:
            raise KeyError(f"{self.node_id} has no cancel input")
        self._hold(c.pin, c.active_low, c.hold_s + 0.3 if hold_s is None else hold_s)

    def _drive_power(self) -> None:
        pin = self.config.hardware.power_good_pin
        if pin is not None:
            p = self.factory.pin(pin)
            (p.drive_high if self._mains else p.drive_low)()

    def set_power(self, mains: bool) -> None:
        """Mains power present (True) or cut (False), on the power-good input; the
        battery gauge starts draining (or charging) at its set rates."""
        self._mains = mains
        self.gauge.set_mains(mains)
        self._drive_power()

    @property
    def mains(self) -> bool:
        """Whether mains power is present (what the power-good input reads)."""
        return self._mains

    def set_battery(self, pct: float) -> None:
        """The UPS HAT's cell is at `pct` % now (read by the agent's next heartbeat)."""
        self.gauge.set_percent(pct)

    # -- what can be seen and heard --------------------------------------------

    def output_timeline(self, name: str) -> Timeline:
        """(monotonic time, on) of every change of an output, its start state first."""
        out = next((o for o in self.config.hardware.outputs if o.name == name), None)
        if out is None:
            raise KeyError(f"{self.node_id} has no output {name!r}")
        return pin_timeline(self.factory.pin(out.pin), out.active_high)

    def output_on(self, name: str) -> bool:
        tl = self.output_timeline(name)
        return bool(tl and tl[-1][1])

    def led_timeline(self) -> Timeline:
        pin = self.config.hardware.led_pin
        if pin is None:
            return []
        return pin_timeline(self.factory.pin(pin), self.config.hardware.led_active_high)

    @property
    def led_state(self) -> LedState | None:
        return None if self.agent is None else self.agent.led_state

    def is_sounding(self) -> bool:
        """True while the node is playing any sound (local or commanded)."""
        return self.agent is not None and self.agent.player.current is not None

    @property
    def stats(self) -> dict[str, Any]:
        return {} if self.agent is None else dict(self.agent.stats)

    def __repr__(self) -> str:
        state = "running" if self.agent is not None else "stopped"
        return f"<VirtualNode {self.node_id} {self.config.area} {state}>"
