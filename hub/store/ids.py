"""Derived ids: an incident's id from its correlation key and window, its first sound's
cmd_id from the incident's. Any replica, a restarted hub or a retried transaction
deciding the same alarm derives the same ids (docs/protocol-notes.md "Incident ids")."""

from __future__ import annotations

import uuid

# Fixed forever: changing it changes every derived id (replicas must agree).
NAMESPACE = uuid.UUID("6f1d3c1e-4a8b-5c53-9f7e-2b6a0d4e9c11")


def window_start(received_ms: int, window_ms: int) -> int:
    """The correlation bucket an alarm received at `received_ms` opens an incident in."""
    if window_ms <= 0:
        return received_ms
    return (received_ms // window_ms) * window_ms


def incident_id(key: str, start_ms: int, generation: int = 0) -> str:
    """The id of the `generation`-th incident (0 first) opened for correlation key `key`
    in the bucket starting at `start_ms`; a later generation exists only when an earlier
    one of the same bucket was closed (resolved, cancelled) before the bucket ended."""
    return str(uuid.uuid5(NAMESPACE, f"incident|{key}|{start_ms}|{generation}"))


def first_sound_id(incident: str) -> str:
    """The cmd_id of an incident's fan-out `sound` (escalations get fresh ids)."""
    return str(uuid.uuid5(NAMESPACE, f"sound|{incident}"))
