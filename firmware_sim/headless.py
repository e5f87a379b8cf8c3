"""Headless nodes: the real NodeAgent behind an in-memory stand-in for NodeHardware.

For fleet-scale runs only. Every gpiozero Button keeps a hold thread and every
SafeOutput and StatusLed a worker thread, so a mock-pin node costs about eight
threads; a headless node costs three (agent, player, paho), or two when its
link runs on the fleet process's shared network loop (firmware_sim/netloop.py). Everything above the
hardware interface (outbox, link, player, commands, clock, LED state) is the
node's own code, unchanged.

What is NOT exercised headless: the output caps and the gong's strike roll
(they live in SafeOutput, which needs a pin) and gpiozero's debounce/hold
timing. A headless output records what the player asks of it, on/off in
time; use mock pins (VirtualNode) to see what the driver pin would do.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import cast

from firmware_sim.lifecycle import AgentLifecycle
from node.agent import NodeAgent
from node.config import NodeConfig
from node.enable import EnableLine
from node.hardware import NodeHardware
from node.hwconfig import (
    ButtonConfig,
    HardwareConfig,
    HardwareConfigError,
    OutputConfig,
    RemoteConfig,
    check_hardware_config,
)
from node.led import StatusLed

from .simlink import NetLoop

Timeline = list[tuple[float, bool]]
_TIMELINE_MAX = 4096   # a long run must not grow without bound; the newest changes are kept


class HeadlessOutput:
    """What the Player and the agent use of a SafeOutput, recorded in memory."""

    def __init__(self, cfg: OutputConfig) -> None:
        self.config = cfg
        self.name = cfg.name
        self.on_fault: Callable[[str, str], None] | None = None
        self._lock = threading.Lock()
        self._on = False
        self._closed = False
        self._timeline: deque[tuple[float, bool]] = deque([(time.monotonic(), False)],
                                                          maxlen=_TIMELINE_MAX)

    def on(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            if not self._on:
                self._on = True
                self._timeline.append((time.monotonic(), True))
            return True

    def off(self) -> None:
        with self._lock:
            if self._on:
                self._on = False
                self._timeline.append((time.monotonic(), False))

    @property
    def is_on(self) -> bool:
        with self._lock:
            return self._on

    def settle(self, timeout: float = 2.0) -> bool:
        """Nothing to wait for: on() and off() act at once."""
        return True

    @property
    def faults(self) -> frozenset[str]:
        return frozenset()

    def timeline(self) -> Timeline:
        with self._lock:
            return list(self._timeline)

    def close(self) -> None:
        self.off()
        with self._lock:
            self._closed = True


class HeadlessHardware:
    """Stands in for NodeHardware: same attributes, no gpiozero devices, no threads."""

    def __init__(self, cfg: HardwareConfig, *, mains: bool = True) -> None:
        problems = check_hardware_config(cfg)
        if problems:   # the same refusal as on a Pi: a sim config must be a valid node config
            raise HardwareConfigError(problems)
        self.config = cfg
        self.on_press: Callable[[ButtonConfig], None] | None = None
        self.on_cancel: Callable[[], None] | None = None
        self.on_remote: Callable[[RemoteConfig], None] | None = None
        self.outputs: dict[str, HeadlessOutput] = {o.name: HeadlessOutput(o) for o in cfg.outputs}
        self.led = StatusLed(None)   # no pin: it only remembers the state the agent shows
        self.enable: EnableLine | None = None   # no dead-man line to tie to the agent's loop
        self.mains = mains

    def power_good(self) -> bool | None:
        return None if self.config.power_good_pin is None else self.mains

    def outputs_off(self) -> None:
        for out in self.outputs.values():
            out.off()

    def close(self) -> None:
        for out in self.outputs.values():
            out.close()
        self.led.close()

    def button(self, which: int | str) -> ButtonConfig:
        for b in self.config.buttons:
            if which in (b.number, b.kind):
                return b
        raise KeyError(f"no button {which!r}")

    def hold(self, which: int | str, hold_s: float | None = None) -> threading.Thread:
        """Hold a button on a thread, as gpiozero's hold thread would call back.

        The callback fires once the hold reaches the button's `hold_s`; a
        shorter hold (a brush) triggers nothing, as on the real input.
        """
        b = self.button(which)
        held = b.hold_s + 0.1 if hold_s is None else hold_s

        def run() -> None:
            if held < b.hold_s:
                time.sleep(held)
                return
            time.sleep(b.hold_s)
            callback = self.on_press
            if callback is not None:
                callback(b)

        t = threading.Thread(target=run, name=f"hold-{b.number}", daemon=True)
        t.start()
        return t


class HeadlessNode(AgentLifecycle):
    """A node with the same surface the fleet uses of VirtualNode, on HeadlessHardware."""

    def __init__(self, config: NodeConfig, *, mains: bool = True,
                 net_loop: NetLoop | None = None) -> None:
        super().__init__(config, net_loop=net_loop)
        self.hardware: HeadlessHardware | None = None
        self._mains = mains

    def _new_agent(self) -> NodeAgent:
        self.hardware = HeadlessHardware(self.config.hardware, mains=self._mains)
        # NodeAgent only uses the attributes HeadlessHardware has (see its docstring).
        return NodeAgent(self.config, hardware=cast(NodeHardware, self.hardware),
                         transport=self._transport, battery_bus=self.gauge.bus)

    def press(self, button: int | str, hold_s: float | None = None, *,
              block: bool = True) -> None:
        if self.hardware is None:
            raise RuntimeError(f"{self.node_id} is not running")
        t = self.hardware.hold(button, hold_s)
        if block:
            t.join()

    def output_timeline(self, name: str) -> Timeline:
        if self.hardware is None or name not in self.hardware.outputs:
            raise KeyError(f"{self.node_id} has no output {name!r}")
        return self.hardware.outputs[name].timeline()
