"""Operator actions (and the hub's own sounding), each stored, audited and published.

The API and the runtime call these; they never publish MQTT themselves. A
`Publisher` (the runtime's MQTT link) is passed in, so this module knows no
MQTT and tests can hand in a recorder. Every action writes who did what and
when to the audit log. Commands are stored before they are published, so a
node's `result` always finds its command.

Sounding an incident and escalating are the runtime's own code
(`FanOut.sound`, `Escalator.check`), not a copy of it: pass the hub's
`fanout` and `escalator` (`Hub.services()` does) and an operator's sound is
watched by the same failed-to-sound check as the hub's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import protocol
from protocol import Ack, Command
from protocol.timing import wall_ms

from .commands import build_command
from .errors import InvalidAction, NotFound, PolicyError
from .escalation import Escalator
from .fanout import FanOut, Publisher, sound_in_area
from .policy import Policy, Sound
from .settings import HubSettings
from .store import IncidentInfo, IncidentState, NodeInfo, Outcome, Store
from .store.phone import origin_number

__all__ = ["HUB_ACTOR", "Publisher", "Services"]

HUB_ACTOR = "hub"


class BrokerAccessHook(Protocol):
    """What Services needs of hub.dynsec.BrokerAccess."""

    def request_sync(self) -> None: ...



class Services:
    """Operator actions on one store, publishing through one publisher."""

    def __init__(self, store: Store, publisher: Publisher, settings: HubSettings, *,
                 clock: Callable[[], int] = wall_ms, fanout: FanOut | None = None,
                 escalator: Escalator | None = None,
                 broker_access: BrokerAccessHook | None = None) -> None:
        self.store = store
        # hub.dynsec.BrokerAccess when the hub drives the broker's dynamic security: told
        # whenever a node is enabled or disabled, so the broker refuses it within seconds.
        self.broker_access = broker_access
        self.publisher = publisher
        self.settings = settings
        self.policy: Policy = settings.policy
        self.clock = clock
        # Without the hub's own (a test, a tool): the same code on this store.
        self.fanout = fanout or FanOut(store, publisher, sound_expiry_s=settings.sound_expiry_s,
                                       failed_to_sound_s=settings.failed_to_sound_s)
        self.escalator = escalator or Escalator(store, self.fanout, self.policy,
                                                escalate_after_s=settings.escalate_after_s)

    # --- plumbing ------------------------------------------------------------------------------

    def _command(self, action: protocol.Action, *, sound: Sound | None = None,
                 incident_id: str | None = None, drill: bool | None = None,
                 duration_s: int | None = None) -> Command:
        return build_command(action, self.clock(), self.settings.sound_expiry_s, sound=sound,
                             incident_id=incident_id, drill=drill, duration_s=duration_s)

    def _check_can_publish(self) -> None:
        if self.settings.observer:
            raise InvalidAction("this hub is an observer: it never sounds, silences or acks")

    def _send_area(self, area: str, cmd: Command, actor: str, note: str | None = None) -> None:
        self._check_can_publish()
        # Stored before it goes out, so every node's `result` finds its command.
        self.store.commands.record(cmd, "area", area, issued_by=actor, note=note)
        self.publisher.publish_area_cmd(area, cmd)

    def _send_node(self, node_id: str, cmd: Command, actor: str) -> None:
        self._check_can_publish()
        self.store.commands.record(cmd, "node", node_id, issued_by=actor)
        self.publisher.publish_node_cmd(node_id, cmd)

    def _ack_all(self, incident: IncidentInfo, status: protocol.AckStatus) -> None:
        now = self.clock()
        for alarm in self.store.alarms.find(incident_id=incident.incident_id, limit=100_000):
            if origin_number(alarm.node_id) is not None:
                continue   # came by phone: the household is texted (integrations/phone.py)
            self.publisher.publish_ack(alarm.node_id, Ack(alarm.alarm_id, status, now,
                                                          incident.incident_id))

    def _incident(self, incident_id: str) -> IncidentInfo:
        inc = self.store.incidents.get(incident_id)
        if inc is None:
            raise NotFound(f"incident {incident_id!r} does not exist")
        return inc

    def _audit(self, actor: str, action: str, subject: str | None, **detail: object) -> None:
        self.store.audit.record(actor, action, subject, {k: v for k, v in detail.items()
                                                         if v is not None}, now_ms=self.clock())

    # --- sounding ------------------------------------------------------------------------------

    def _incident_sound(self, inc: IncidentInfo, area: str | None) -> Sound:
        if inc.area is None:
            raise InvalidAction(f"incident {inc.incident_id} has no area to sound")
        return sound_in_area(self.policy, inc.kind, inc.area, area)

    def sound_incident(self, incident_id: str, *, area: str | None = None,
                       actor: str = HUB_ACTOR) -> Command:
        """Sound an incident per policy (or in `area`): store, audit, publish one `sound`,
        and watch that every node there starts it (failed-to-sound)."""
        self._check_can_publish()
        inc = self._incident(incident_id)
        if inc.drill:
            raise InvalidAction("a drill is sounded by start_drill")
        sound = self._incident_sound(inc, area)
        cmd = self.fanout.sound(inc, sound, self.clock(), issued_by=actor)
        self._audit(actor, "sound", inc.incident_id, area=sound.area, cmd_id=cmd.cmd_id,
                    pattern=sound.pattern.name, kind=inc.kind)
        return cmd

    def escalate_due(self, now_ms: int | None = None) -> list[Command]:
        """Widen every unacknowledged incident due for escalation by one area level
        (`Escalator.check`); safe with several replicas (a compare-and-set picks one)."""
        self._check_can_publish()
        return self.escalator.check(self.clock() if now_ms is None else now_ms)

    # --- incidents -----------------------------------------------------------------------------

    def acknowledge(self, incident_id: str, actor: str, *,
                    expected_state: str | None = None) -> IncidentInfo:
        """An operator took the incident: `acknowledged` acks to every node whose alarm is in
        it. The same officer again is a retry (no error). Raises NotFound, Conflict (someone
        else took or closed it first: who and when)."""
        inc, changed = self.store.incidents.acknowledge(incident_id, actor, self.clock(),
                                                        expected=expected_state)
        if changed:
            self._audit(actor, "acknowledge", incident_id)
            if not self.settings.observer:
                self._ack_all(inc, protocol.AckStatus.ACKNOWLEDGED)
        return inc

    def resolve(self, incident_id: str, actor: str, outcome: Outcome | str,
                note: str | None = None, *, expected_state: str | None = None) -> IncidentInfo:
        """Close the incident with what it was: `resolved` acks, and a silence for its sound.
        A closed incident is never overwritten (Conflict), except that the same officer
        sending the same outcome again gets it back unchanged."""
        try:
            result = Outcome(outcome)
        except ValueError:
            raise InvalidAction(f"outcome {outcome!r} is not one of "
                                f"{', '.join(o.value for o in Outcome)}") from None
        inc, changed = self.store.incidents.resolve(incident_id, actor, result, note, self.clock(),
                                                    expected=expected_state)
        if changed:
            self._audit(actor, "resolve", incident_id, outcome=result.value, note=note)
            if not self.settings.observer:
                self._ack_all(inc, protocol.AckStatus.RESOLVED)
                self._silence_incident(inc, actor)
        return inc

    def _silence_incident(self, inc: IncidentInfo, actor: str) -> Command:
        cmd = self._command(protocol.Action.SILENCE, incident_id=inc.incident_id)
        area = inc.sounded_area or inc.area
        if area is not None:
            self._send_area(area, cmd, actor)
        elif inc.origin_node is not None:
            self._send_node(inc.origin_node, cmd, actor)
        return cmd

    def silence(self, actor: str, *, incident_id: str | None = None,
                area: str | None = None) -> Command:
        """Silence one incident's sound (where it sounded), or every sound in `area`."""
        if (incident_id is None) == (area is None):
            raise InvalidAction("silence needs exactly one of incident_id or area")
        if incident_id is not None:
            cmd = self._silence_incident(self._incident(incident_id), actor)
            self._audit(actor, "silence", incident_id, cmd_id=cmd.cmd_id)
            return cmd
        assert area is not None
        self._check_area(area)
        cmd = self._command(protocol.Action.SILENCE)
        self._send_area(area, cmd, actor)
        self._audit(actor, "silence", area, cmd_id=cmd.cmd_id)
        return cmd

    @staticmethod
    def _check_area(area: str) -> None:
        if not protocol.is_area_path(area):
            raise InvalidAction(f"area {area!r} is not 1-4 slugs joined by '/'")

    def all_clear(self, area: str, actor: str, duration_s: int | None = None) -> list[Command]:
        """Silence every sound in `area`, then play the all-clear signal there."""
        self._check_area(area)
        silence = self._command(protocol.Action.SILENCE)
        self._send_area(area, silence, actor)
        sound = self.policy.all_clear(area, duration_s)
        cmd = self._command(protocol.Action.SOUND, sound=sound)
        self._send_area(area, cmd, actor)
        self._audit(actor, "all_clear", area, cmd_ids=[silence.cmd_id, cmd.cmd_id])
        return [silence, cmd]

    def broadcast(self, area: str, actor: str, signal: str, duration_s: int | None = None,
                  message: str | None = None) -> Command:
        """An operator's warning (priority 3) with `signal` = a kind or a pattern name."""
        self._check_area(area)
        try:
            sound = self.policy.warning(area, signal, duration_s)
        except PolicyError as exc:
            raise InvalidAction(str(exc)) from None
        cmd = self._command(protocol.Action.SOUND, sound=sound)
        self._send_area(area, cmd, actor, note=message)
        self._audit(actor, "broadcast", area, signal=signal, duration_s=sound.duration_s,
                    message=message, cmd_id=cmd.cmd_id)
        return cmd

    def start_drill(self, area: str, actor: str,
                    duration_s: int | None = None) -> tuple[IncidentInfo, Command]:
        """A drill in `area`: a drill incident (never counted) and a `sound` with drill=true."""
        self._check_area(area)
        self._check_can_publish()
        inc = self.store.incidents.open_drill(area, actor, self.clock())
        sound = self.policy.drill(area, duration_s)
        cmd = self._command(protocol.Action.SOUND, sound=sound, incident_id=inc.incident_id,
                            drill=True)
        self._send_area(area, cmd, actor, note="drill")
        self._audit(actor, "start_drill", area, incident_id=inc.incident_id,
                    duration_s=sound.duration_s, cmd_id=cmd.cmd_id, drill=True)
        return inc, cmd

    def stop_drill(self, incident_id: str, actor: str) -> Command:
        """Silence a drill and close its incident (outcome `test`); a drill someone else
        stopped already is a Conflict (the silence still goes out: stopping is safe)."""
        inc = self._incident(incident_id)
        if not inc.drill:
            raise InvalidAction(f"incident {incident_id} is not a drill")
        cmd = self._silence_incident(inc, actor)
        self.store.incidents.resolve(incident_id, actor, Outcome.TEST, "drill stopped",
                                     self.clock(), expected=IncidentState.OPEN.value)
        self._audit(actor, "stop_drill", incident_id, cmd_id=cmd.cmd_id, drill=True)
        return cmd

    # --- nodes ---------------------------------------------------------------------------------

    def _node(self, node_id: str) -> NodeInfo:
        node = self.store.nodes.get(node_id)
        if node is None:
            raise NotFound(f"node {node_id!r} is unknown")
        return node

    def test_node(self, node_id: str, actor: str, duration_s: int | None = None) -> Command:
        """Ask one node to self-test (plays the drill pattern briefly, reports)."""
        self._node(node_id)
        cmd = self._command(protocol.Action.TEST, duration_s=duration_s)
        self._send_node(node_id, cmd, actor)
        self._audit(actor, "test_node", node_id, cmd_id=cmd.cmd_id, duration_s=duration_s)
        return cmd

    def ping_node(self, node_id: str, actor: str) -> Command:
        self._node(node_id)
        cmd = self._command(protocol.Action.PING)
        self._send_node(node_id, cmd, actor)
        self._audit(actor, "ping_node", node_id, cmd_id=cmd.cmd_id)
        return cmd

    def register_node(self, node_id: str, area: str, actor: str, *, name: str | None = None,
                      households: int | None = None, lat: float | None = None,
                      lon: float | None = None, enabled: bool = True) -> NodeInfo:
        try:
            node = self.store.nodes.register(node_id, area, name=name, households=households,
                                             lat=lat, lon=lon, enabled=enabled)
        except ValueError as exc:
            raise InvalidAction(str(exc)) from None
        self._audit(actor, "register_node", node_id, area=area, name=name, enabled=enabled)
        return node

    def enable_node(self, node_id: str, actor: str, *,
                    expected: bool | None = None) -> NodeInfo:
        node = self.store.nodes.set_enabled(node_id, True, expected=expected)
        self._audit(actor, "enable_node", node_id)
        if self.broker_access is not None:
            self.broker_access.request_sync()
        return node

    def disable_node(self, node_id: str, actor: str, *,
                     expected: bool | None = None) -> NodeInfo:
        node = self.store.nodes.set_enabled(node_id, False, expected=expected)
        self._audit(actor, "disable_node", node_id)
        if self.broker_access is not None:
            self.broker_access.request_sync()
        return node

    def move_node(self, node_id: str, area: str, actor: str, *,
                  expected: str | None = None) -> NodeInfo:
        """Move a node; with `expected` (the area the admin saw) a compare-and-set."""
        before = self._node(node_id)
        try:
            node = self.store.nodes.move(node_id, area, expected=expected)
        except ValueError as exc:
            raise InvalidAction(str(exc)) from None
        self._audit(actor, "move_node", node_id, area=area, previous_area=before.area)
        return node
