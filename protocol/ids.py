"""Identifier forms of PROTOCOL.md: node and hub ids, area paths, UUIDs."""

from __future__ import annotations

import re
import uuid

NODE_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
AREA_SLUG_RE = re.compile(r"[a-z0-9-]+")
MAX_AREA_DEPTH = 4
# Not in PROTOCOL.md: a slug length cap, so an area path always fits a topic
# and a database column. 63 like a node id.
MAX_SLUG_LEN = 63
_HEX = "[0-9a-fA-F]"
UUID_RE = re.compile(f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}")


def is_node_id(value: object) -> bool:
    """True when `value` is a valid node id (also the form of a hub id)."""
    return isinstance(value, str) and NODE_ID_RE.fullmatch(value) is not None


is_hub_id = is_node_id


def is_area_path(value: object) -> bool:
    """True when `value` is 1 to 4 slugs joined by `/`."""
    if not isinstance(value, str) or not value:
        return False
    parts = value.split("/")
    if len(parts) > MAX_AREA_DEPTH:
        return False
    return all(
        AREA_SLUG_RE.fullmatch(p) is not None and len(p) <= MAX_SLUG_LEN for p in parts
    )


def area_ancestors(path: str) -> list[str]:
    """The path and every ancestor, outermost first: a/b/c -> [a, a/b, a/b/c]."""
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def area_parent(path: str) -> str | None:
    """The enclosing area, or None for a top-level area."""
    head, sep, _ = path.rpartition("/")
    return head if sep else None


def area_contains(outer: str, inner: str) -> bool:
    """True when `inner` is `outer` or lies below it."""
    return inner == outer or inner.startswith(outer + "/")


def is_uuid(value: object) -> bool:
    """True for a UUID string in canonical (hyphenated, any case) form.

    A pattern, not `uuid.UUID(value)`: that also takes 36 characters with the hyphens
    elsewhere, or an underscore for a digit (`int(..., 16)` allows them), and costs
    five times as much on a path every alarm and ack takes."""
    return isinstance(value, str) and UUID_RE.fullmatch(value) is not None


def new_id() -> str:
    """A fresh random UUID string, for alarm_id, cmd_id and incident_id."""
    return str(uuid.uuid4())
