"""Integrations people already use: Prometheus metrics, CAP 1.2, webhooks, SMS, Home Assistant.

Kept light at import (hub.settings imports `config` from here): the runner, with
prometheus_client, the modem and the MQTT client, loads only in `start_integrations`.
See docs/integrations.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import Integrations


def start_integrations(hub: Any, app: Any) -> Integrations:
    """Mount the integrations' routes on `app` and start their threads for `hub`."""
    from .runner import start_integrations as _start

    return _start(hub, app)


__all__ = ["start_integrations"]
