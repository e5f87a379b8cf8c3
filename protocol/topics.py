"""Every topic of PROTOCOL.md: builders, the parser, and QoS/retain per topic."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import TopicError
from .ids import area_ancestors, is_area_path, is_hub_id, is_node_id
from .messages import Ack, Alarm, Cancel, Command, Heartbeat, HubState, HubTime, Message, NodeState
from .messages import Result as ResultMsg

DEFAULT_PREFIX = "mo/v1"


class TopicKind(StrEnum):
    NODE_STATE = "state"
    ALARM = "alarm"
    CANCEL = "cancel"
    HEARTBEAT = "heartbeat"
    RESULT = "result"
    ACK = "ack"
    NODE_CMD = "cmd"
    AREA_CMD = "area_cmd"
    HUB_STATE = "hub_state"
    HUB_TIME = "hub_time"


QOS: dict[TopicKind, int] = {
    TopicKind.NODE_STATE: 1, TopicKind.ALARM: 1, TopicKind.CANCEL: 1, TopicKind.HEARTBEAT: 0,
    TopicKind.RESULT: 1, TopicKind.ACK: 1, TopicKind.NODE_CMD: 1, TopicKind.AREA_CMD: 1,
    TopicKind.HUB_STATE: 1, TopicKind.HUB_TIME: 0,
}
RETAINED: frozenset[TopicKind] = frozenset({TopicKind.NODE_STATE, TopicKind.HUB_STATE})

PAYLOAD_TYPE: dict[TopicKind, type[Message]] = {
    TopicKind.NODE_STATE: NodeState, TopicKind.ALARM: Alarm, TopicKind.CANCEL: Cancel,
    TopicKind.HEARTBEAT: Heartbeat, TopicKind.RESULT: ResultMsg, TopicKind.ACK: Ack,
    TopicKind.NODE_CMD: Command, TopicKind.AREA_CMD: Command, TopicKind.HUB_STATE: HubState,
    TopicKind.HUB_TIME: HubTime,
}

_NODE_LEAVES = {
    "state": TopicKind.NODE_STATE, "alarm": TopicKind.ALARM, "cancel": TopicKind.CANCEL,
    "heartbeat": TopicKind.HEARTBEAT, "result": TopicKind.RESULT, "ack": TopicKind.ACK,
    "cmd": TopicKind.NODE_CMD,
}


@dataclass(frozen=True, slots=True)
class TopicMatch:
    """What a parsed topic names."""

    kind: TopicKind
    node_id: str | None = None
    area: str | None = None
    hub_id: str | None = None

    @property
    def qos(self) -> int:
        return QOS[self.kind]

    @property
    def payload_type(self) -> type[Message]:
        return PAYLOAD_TYPE[self.kind]


def _check_prefix(prefix: str) -> str:
    bad = not prefix or prefix.startswith("/") or prefix.endswith("/") or "//" in prefix
    if bad or any(c in prefix for c in "+#\0") or prefix.startswith("$"):
        raise TopicError("bad_topic", f"topic prefix {prefix!r} is not a plain topic path")
    return prefix


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic builders and parser under one prefix (default `mo/v1`)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        _check_prefix(self.prefix)

    def _node(self, node_id: str, leaf: str) -> str:
        if not is_node_id(node_id):
            raise TopicError("bad_topic", f"{node_id!r} is not a node id")
        return f"{self.prefix}/nodes/{node_id}/{leaf}"

    def node_state(self, node_id: str) -> str:
        return self._node(node_id, "state")

    def alarm(self, node_id: str) -> str:
        return self._node(node_id, "alarm")

    def cancel(self, node_id: str) -> str:
        return self._node(node_id, "cancel")

    def heartbeat(self, node_id: str) -> str:
        return self._node(node_id, "heartbeat")

    def result(self, node_id: str) -> str:
        return self._node(node_id, "result")

    def ack(self, node_id: str) -> str:
        return self._node(node_id, "ack")

    def node_cmd(self, node_id: str) -> str:
        return self._node(node_id, "cmd")

    def area_cmd(self, area: str) -> str:
        if not is_area_path(area):
            raise TopicError("bad_topic", f"{area!r} is not an area path")
        return f"{self.prefix}/areas/{area}/cmd"

    def hub_state(self, hub_id: str) -> str:
        if not is_hub_id(hub_id):
            raise TopicError("bad_topic", f"{hub_id!r} is not a hub id")
        return f"{self.prefix}/hubs/{hub_id}/state"

    def hub_time(self) -> str:
        return f"{self.prefix}/hub/time"

    def all_hub_states(self) -> str:
        return f"{self.prefix}/hubs/+/state"

    def node_wildcard(self, leaf: str) -> str:
        """`{p}/nodes/+/{leaf}`, what a hub subscribes to for one message type."""
        if leaf not in _NODE_LEAVES:
            raise TopicError("bad_topic", f"{leaf!r} is not a node topic")
        return f"{self.prefix}/nodes/+/{leaf}"

    def node_subscriptions(self, node_id: str, area: str) -> list[tuple[str, int]]:
        """What a node subscribes to: its cmd and ack, its areas' cmd, hub states, time."""
        subs = [(self.node_cmd(node_id), 1), (self.ack(node_id), 1)]
        subs += [(self.area_cmd(a), 1) for a in area_ancestors(area)]
        subs += [(self.all_hub_states(), 1), (self.hub_time(), 0)]
        return subs

    def hub_subscriptions(self) -> list[tuple[str, int]]:
        """What a hub subscribes to: every node's upward topics and every hub's state."""
        leaves = ("state", "alarm", "cancel", "heartbeat", "result")
        subs = [(self.node_wildcard(leaf), QOS[_NODE_LEAVES[leaf]]) for leaf in leaves]
        return [*subs, (self.all_hub_states(), 1)]

    def parse(self, topic: str) -> TopicMatch:
        """Name what `topic` addresses, or raise TopicError."""
        head = self.prefix + "/"
        if not isinstance(topic, str) or not topic.startswith(head):
            raise TopicError("bad_topic", f"topic {str(topic)[:80]!r} is outside {self.prefix!r}")
        parts = topic[len(head):].split("/")
        if len(parts) == 3 and parts[0] == "nodes" and parts[2] in _NODE_LEAVES:
            if is_node_id(parts[1]):
                return TopicMatch(_NODE_LEAVES[parts[2]], node_id=parts[1])
        elif len(parts) == 3 and parts[0] == "hubs" and parts[2] == "state":
            if is_hub_id(parts[1]):
                return TopicMatch(TopicKind.HUB_STATE, hub_id=parts[1])
        elif parts == ["hub", "time"]:
            return TopicMatch(TopicKind.HUB_TIME)
        elif len(parts) >= 3 and parts[0] == "areas" and parts[-1] == "cmd":
            area = "/".join(parts[1:-1])
            if is_area_path(area):
                return TopicMatch(TopicKind.AREA_CMD, area=area)
        raise TopicError("bad_topic", f"topic {topic[:120]!r} is not a protocol topic")


def shared(topic: str, group: str) -> str:
    """An MQTT 5 shared subscription of `topic` for the replicas in `group`."""
    return f"$share/{group}/{topic}"
