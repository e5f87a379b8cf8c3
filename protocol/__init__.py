"""The wire contract of tiengmo (PROTOCOL.md v1): topics, payloads, validation.

Standard library only; imports nothing else of the project.
"""

from .codec import MAX_DEPTH, MAX_PAYLOAD_BYTES, decode, encode, parse_object
from .errors import PayloadError, ProtocolError, TopicError
from .ids import (
    area_ancestors,
    area_contains,
    area_parent,
    is_area_path,
    is_hub_id,
    is_node_id,
    is_uuid,
    new_id,
)
from .messages import (
    VERSION,
    Ack,
    AckStatus,
    Action,
    Alarm,
    Cancel,
    Command,
    Heartbeat,
    HubState,
    HubTime,
    Kind,
    Message,
    NodeState,
    Pattern,
    Power,
    Result,
    ResultStatus,
    Source,
)
from .patterns import (
    DEFAULT_PATTERNS,
    PRIORITY_ALARM,
    PRIORITY_DRILL,
    PRIORITY_WARNING,
    default_pattern,
)
from .registry import Registry, RegistryError, load_registry, parse_registry
from .topics import DEFAULT_PREFIX, QOS, RETAINED, TopicKind, TopicMatch, Topics, shared

__all__ = [
    "DEFAULT_PATTERNS", "DEFAULT_PREFIX", "MAX_DEPTH", "MAX_PAYLOAD_BYTES", "PRIORITY_ALARM",
    "PRIORITY_DRILL",
    "PRIORITY_WARNING", "QOS", "RETAINED", "VERSION", "Ack", "AckStatus", "Action", "Alarm",
    "Cancel", "Command", "Heartbeat", "HubState", "HubTime", "Kind", "Message", "NodeState",
    "Pattern", "PayloadError", "Power", "ProtocolError", "Registry", "RegistryError", "Result",
    "ResultStatus", "Source", "TopicError", "TopicKind", "TopicMatch", "Topics", "area_ancestors",
    "area_contains", "area_parent", "decode", "default_pattern", "encode", "is_area_path",
    "is_hub_id", "is_node_id", "is_uuid", "load_registry", "new_id", "parse_object",
    "parse_registry", "shared",
]
