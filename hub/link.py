"""The hub's protocol link: its MQTT session as PROTOCOL.md has it ("Transport",
"Topics", hub state), on one hub.mqtt.MqttClient (which owns everything paho).

What it adds to the client:
- client id = hub id; the retained hub birth on `hubs/{hub}/state` after every
  (re)connect, the matching retained Last Will, and a graceful stop that
  publishes the death itself;
- the subscriptions are `Topics.hub_subscriptions()` (as MQTT 5 shared
  subscriptions for replicas when `shared_group` is set, except the topics every
  replica must see);
- every message is handed to `on_message` as an `Inbound` on paho's thread, which
  must not block (the runtime enqueues it, or for a heartbeat updates memory); the
  work happens on the hub's worker threads;
- publishing with the QoS and retain flag PROTOCOL.md gives each topic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from protocol import (
    Ack,
    Command,
    HubState,
    HubTime,
    Message,
    TopicKind,
    Topics,
    encode,
    shared,
)
from protocol.timing import wall_ms
from protocol.topics import QOS, RETAINED

from .logins import alarm_login
from .mqtt import Inbound, MqttClient, MqttEvent, MqttOptions, Outgoing, Published, Refused

__all__ = ["Inbound", "Link", "LinkConfig"]

ALARM_LANE_TOPICS = ("/alarm", "/cancel")


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Everything the link needs; built from HubSettings by the runtime."""

    hub_id: str
    mqtt: MqttOptions = field(default_factory=MqttOptions)
    shared_group: str | None = None
    # Topics every replica must see even when the alarm stream is shared:
    # retained births are never delivered to shared subscriptions (MQTT 5
    # §4.8.2), and supervision needs every heartbeat on whichever replica leads.
    unshared_leaves: tuple[str, ...] = ("state", "heartbeat")
    # The alarm lane's own connection (client id `<hub_id>-alarms`, this login): alarm
    # and cancel topics are subscribed there only, so the broker never queues them behind
    # what a flooding node sends on its other topics (docs/alarm-lane.md). None: one
    # connection for everything.
    alarm_mqtt: MqttOptions | None = None


class Link:
    """The hub's protocol session for one hub id."""

    def __init__(self, config: LinkConfig, topics: Topics,
                 on_message: Callable[[Inbound], None],
                 clock_ms: Callable[[], int] = wall_ms) -> None:
        self.config = config
        self.topics = topics
        self._on_inbound = on_message
        self._clock_ms = clock_ms
        self._state_topic = topics.hub_state(config.hub_id)
        # The transport as the link uses it (another lane on the same broker starts here).
        self.options = options = replace(config.mqtt, mqtt5=config.shared_group is not None)
        subs = self._subscriptions()
        self.alarm_client: MqttClient | None = None
        if config.alarm_mqtt is not None:
            lane = [sub for sub in subs if sub[0].endswith(ALARM_LANE_TOPICS)]
            subs = [sub for sub in subs if sub not in lane]
            self.alarm_client = MqttClient(
                replace(config.alarm_mqtt, mqtt5=options.mqtt5), alarm_login(config.hub_id),
                subscriptions=lane, on_event=self._on_event,
                name=f"hub {config.hub_id} alarm lane", clock_ms=clock_ms)
        self.client = MqttClient(
            options, config.hub_id, subscriptions=subs,
            will=self._state(HubState(online=False, hub_id=config.hub_id)),
            birth=lambda: self._state(HubState(online=True, hub_id=config.hub_id,
                                               ts_ms=self._clock_ms())),
            on_event=self._on_event, name=f"hub {config.hub_id}", clock_ms=clock_ms)
        # Set once connected AND subscribed (the SUBACK came back) and the birth is out.
        self.connected: threading.Event = self.client.connected

    def _state(self, state: HubState) -> Outgoing:
        return Outgoing(self._state_topic, encode(state), qos=1, retain=True)

    def _subscriptions(self) -> list[tuple[str, int]]:
        subs = self.topics.hub_subscriptions()
        group = self.config.shared_group
        if group is None:
            return subs
        keep = {self.topics.node_wildcard(leaf) for leaf in self.config.unshared_leaves}
        keep.add(self.topics.all_hub_states())
        return [(t if t in keep else shared(t, group), q) for t, q in subs]

    def _on_event(self, event: MqttEvent) -> None:
        # paho's thread: hand over, never work.
        if isinstance(event, Inbound):
            self._on_inbound(event)

    # ---- lifecycle -------------------------------------------------------

    @property
    def connect_count(self) -> int:
        """Accepted connections so far (a refused CONNACK is not one)."""
        return self.client.connects

    @property
    def refused(self) -> Refused | None:
        """The broker's last refusal (reason and code), until a connection is accepted."""
        return self.client.refused

    @property
    def alarm_lane_connected(self) -> bool:
        """The alarm lane's own connection is up (True when there is none)."""
        return self.alarm_client is None or self.alarm_client.connected.is_set()

    @property
    def alarm_refused(self) -> Refused | None:
        """The broker's last refusal of the alarm lane's connection (a login it does not
        know: the broker was not given `<hub_id>-alarms`), until one is accepted."""
        return self.alarm_client.refused if self.alarm_client is not None else None

    def start(self) -> None:
        """Connect; the clients keep retrying with back-off until the broker answers."""
        if self.alarm_client is not None:
            self.alarm_client.start()
        self.client.start()

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        ok = self.client.wait_connected(timeout)
        if self.alarm_client is not None:
            ok = self.alarm_client.wait_connected(max(0.0, deadline - time.monotonic())) and ok
        return ok

    def stop(self, timeout: float = 5.0) -> None:
        """Publish the hub's death (retained) ourselves, then disconnect cleanly."""
        self.client.stop(self._state(HubState(online=False, hub_id=self.config.hub_id)),
                         timeout)
        if self.alarm_client is not None:
            self.alarm_client.stop()

    # ---- publishing -------------------------------------------------------

    def publish_raw(self, topic: str, payload: bytes, qos: int,
                    retain: bool = False) -> Published:
        """Hand one message to the client; it is sent now or after the next reconnect.

        With the alarm lane's own connection, everything the hub publishes (acks, sounds,
        beacons) goes out on it: the other connection's thread may be pacing a flood
        (hub.lanes.ReadPace), and paho writes on its loop thread."""
        return (self.alarm_client or self.client).publish(topic, payload, qos, retain)

    def publish_message(self, topic: str, msg: Message) -> None:
        """Publish with the QoS and retain flag PROTOCOL.md gives the topic."""
        match = self.topics.parse(topic)
        self._publish_as(match.kind, topic, msg)

    def _publish_as(self, kind: TopicKind, topic: str, msg: Message) -> Published:
        # The hub's own topics: their kind is known, the topic need not be parsed
        # back (an ack per alarm, a sound per incident, a beacon every 10 s).
        return self.publish_raw(topic, encode(msg), QOS[kind], kind in RETAINED)

    def publish_area_cmd(self, area: str, cmd: Command) -> Published:
        return self._publish_as(TopicKind.AREA_CMD, self.topics.area_cmd(area), cmd)

    def publish_node_cmd(self, node_id: str, cmd: Command) -> None:
        self._publish_as(TopicKind.NODE_CMD, self.topics.node_cmd(node_id), cmd)

    def publish_ack(self, node_id: str, ack: Ack) -> None:
        self._publish_as(TopicKind.ACK, self.topics.ack(node_id), ack)

    def publish_time(self) -> None:
        beacon = HubTime(hub_id=self.config.hub_id, ts_ms=self._clock_ms())
        self._publish_as(TopicKind.HUB_TIME, self.topics.hub_time(), beacon)
