"""Home Assistant MQTT discovery: each node a siren, each of its buttons an event entity.
Optional, off by default (`[integrations.homeassistant] enabled = true`).

The protocol's topics are left alone: the hub publishes HA-friendly copies under
`base_topic` (default `tiengmo/ha`) from its event log:
    <dp>/siren/<node>/config                  retained discovery of the siren
    <dp>/event/<node>/button_<n>/config       retained discovery of button n
    <base>/bridge/availability                online | offline (the bridge's Last Will)
    <base>/<node>/availability                online | offline (the node's supervision)
    <base>/<node>/siren/state                 ON while the node reports a sound started
    <base>/<node>/button/<n>                  {"event_type": "<kind>", ...} on each press
    <base>/<node>/siren/set                   Home Assistant's command: ON | OFF, or JSON
                                              {"state": "ON", "tone": "fire", "duration": 30}
A siren command becomes a protocol `sound` (an operator's warning, priority 3, the tone's
pattern) or `silence` to that one node, through the hub's Services: stored, audited
under `actor`, published on the node's own `cmd` topic. Home Assistant's MQTT user must
be allowed by the broker's ACL to write `<base>/+/siren/set` (and read `<base>/#`);
docs/integrations.md has the lines. Discovery is published again when Home Assistant
announces itself (`<dp>/status` = online) and after each reconnect.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import protocol

from ..errors import HubError
from ..mqtt import (
    Inbound,
    MqttClient,
    MqttEvent,
    MqttOptions,
    Outgoing,
    Ready,
    parse_broker_url,
)
from ..services import Services
from ..store.snapshots import NodeInfo
from .config import HomeAssistantSettings
from .metrics import _Seen
from .store import Event, IntegrationStore
from .texts import KIND_EN

log = logging.getLogger("tiengmo.hub.integrations.homeassistant")


def sound_node(services: Services, node_id: str, actor: str, signal: str,
               duration_s: int) -> protocol.Command:
    """One node's warning sound (Services has area-wide ones only)."""
    node = services._node(node_id)
    sound = services.policy.warning(node.area or node_id, signal, duration_s)
    cmd = services._command(protocol.Action.SOUND, sound=sound)
    services._send_node(node_id, cmd, actor)
    services._audit(actor, "sound_node", node_id, signal=signal, duration_s=duration_s,
                    cmd_id=cmd.cmd_id)
    return cmd


def silence_node(services: Services, node_id: str, actor: str) -> protocol.Command:
    services._node(node_id)
    cmd = services._command(protocol.Action.SILENCE)
    services._send_node(node_id, cmd, actor)
    services._audit(actor, "silence_node", node_id, cmd_id=cmd.cmd_id)
    return cmd


class HomeAssistant:
    def __init__(self, hub: Any, settings: HomeAssistantSettings,
                 store: Callable[[], IntegrationStore],
                 services: Callable[[], Services]) -> None:
        self.hub = hub
        self.settings = settings
        self.store = store
        self.services = services
        s = settings
        self.base, self.dp = s.base_topic, s.discovery_prefix
        self.bridge_topic = f"{self.base}/bridge/availability"
        self._inbox: queue.Queue[MqttEvent | None] = queue.Queue()
        client_id = s.client_id or f"{hub.settings.hub_id}-ha"
        self.link = MqttClient(
            self._options(hub, client_id), client_id,
            subscriptions=[(f"{self.base}/+/siren/set", 1), (f"{self.dp}/status", 1)],
            will=self._availability_msg(b"offline"),
            birth=lambda: self._availability_msg(b"online"), on_event=self._inbox.put,
            name="the Home Assistant bridge",
            hint=" (check its user and ACL, docs/integrations.md)")
        self._published: dict[str, str] = {}    # topic -> payload last published (retained)
        self._seen_alarms = _Seen()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _options(self, hub: Any, client_id: str) -> MqttOptions:
        """The hub's transport (broker, CA, client certificate: hub.runtime.Hub.mqtt_options)
        with the bridge's own broker URL, if set, and login (default: its client id)."""
        s = self.settings
        hub_options: MqttOptions = hub.mqtt_options()
        url = s.broker_url or hub_options.broker_url
        username = s.username or (None if parse_broker_url(url).username else client_id)
        return replace(hub_options, broker_url=url, username=username, password=s.password)

    def _availability_msg(self, payload: bytes) -> Outgoing:
        return Outgoing(self.bridge_topic, payload, qos=1, retain=True)

    def start(self) -> None:
        self.link.start()
        self._thread = threading.Thread(target=self._run, name="hub-homeassistant", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._inbox.put(None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        self.link.stop(self._availability_msg(b"offline"), 3.0)

    # --- what Home Assistant sees --------------------------------------------------------------

    def _device(self, node: NodeInfo, area_names: dict[str, str]) -> dict[str, Any]:
        dev: dict[str, Any] = {"identifiers": [f"tiengmo_{node.id}"],
                               "name": node.name or node.id, "manufacturer": "tiengmo",
                               "model": "Tiếng mõ node"}
        if node.version:
            dev["sw_version"] = node.version
        if node.area:
            dev["suggested_area"] = area_names.get(node.area, node.area)
        return dev

    def _availability(self, node_id: str) -> list[dict[str, str]]:
        return [{"topic": self.bridge_topic}, {"topic": f"{self.base}/{node_id}/availability"}]

    def configs(self, node: NodeInfo, area_names: dict[str, str]) -> dict[str, dict[str, Any]]:
        """Discovery topic -> config for one node's siren and buttons."""
        dev = self._device(node, area_names)
        root = f"{self.base}/{node.id}"
        out: dict[str, dict[str, Any]] = {f"{self.dp}/siren/{node.id}/config": {
            "name": "Mõ", "unique_id": f"tiengmo_{node.id}_siren",
            "command_topic": f"{root}/siren/set", "state_topic": f"{root}/siren/state",
            "payload_on": "ON", "payload_off": "OFF", "state_on": "ON", "state_off": "OFF",
            "available_tones": [*(k.value for k in protocol.Kind), "warning"],
            "support_duration": True, "support_volume_set": False,
            "availability": self._availability(node.id), "availability_mode": "all",
            "device": dev, "origin": {"name": "tiengmo"}}}
        for number, kind in node.buttons:
            out[f"{self.dp}/event/{node.id}/button_{number}/config"] = {
                "name": f"Nút {number} ({KIND_EN.get(kind, kind).lower()})",
                "unique_id": f"tiengmo_{node.id}_button_{number}",
                "state_topic": f"{root}/button/{number}", "event_types": [kind],
                "device_class": "button", "availability": self._availability(node.id),
                "availability_mode": "all", "device": dev, "origin": {"name": "tiengmo"}}
        return out

    def _retain(self, topic: str, payload: str, force: bool) -> None:
        with self._lock:
            if not force and self._published.get(topic) == payload:
                return
            self._published[topic] = payload
        self.link.publish(topic, payload, retain=True)

    def publish_nodes(self, node_ids: Sequence[str] | None = None, force: bool = False) -> None:
        store = self.store()
        nodes = [n for n in store.nodes(node_ids).values() if n.registered]
        if not nodes:
            return
        names = store.area_names()
        sounding = store.sound_state([n.id for n in nodes])
        for node in nodes:
            for topic, cfg in self.configs(node, names).items():
                self._retain(topic, json.dumps(cfg, ensure_ascii=False, sort_keys=True), force)
            online = node.enabled and node.status.value == "online"
            self._retain(f"{self.base}/{node.id}/availability",
                         "online" if online else "offline", force)
            self._retain(f"{self.base}/{node.id}/siren/state",
                         "ON" if sounding.get(node.id) == "started" else "OFF", force)

    def on_events(self, events: Sequence[Event]) -> None:
        if not self.link.connected.is_set():
            return   # everything is published afresh on (re)connect
        nodes = sorted({e.subject for e in events if e.type == "node"})
        if nodes:
            self.publish_nodes(nodes)
        fresh = [e.subject for e in events if e.type == "alarm" and self._seen_alarms.add(
            e.subject)]
        for alarm in self.store().alarms(fresh).values():
            if alarm.button is None or alarm.drill:
                continue
            self.link.publish(f"{self.base}/{alarm.node_id}/button/{alarm.button}", json.dumps(
                {"event_type": alarm.kind, "alarm_id": alarm.alarm_id,
                 "incident_id": alarm.incident_id}))

    # --- Home Assistant's commands (the bridge's thread) ---------------------------------------

    def _run(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            what = item.topic if isinstance(item, Inbound) else "a connect"
            try:
                if isinstance(item, Ready) or (isinstance(item, Inbound)
                                               and item.topic == f"{self.dp}/status"
                                               and item.payload == b"online"):
                    if self.hub.started:
                        self.publish_nodes(force=True)
                elif isinstance(item, Inbound) and item.topic.endswith("/siren/set"):
                    self.command(item.topic.split("/")[-3], item.payload)
            except Exception:
                log.exception("Home Assistant: handling %s failed", what)

    def command(self, node_id: str, payload: bytes) -> protocol.Command | None:
        s = self.settings
        text = payload.decode("utf-8", "replace").strip()
        state, tone, duration = text.upper(), s.signal, s.duration_s
        if text.startswith("{"):
            try:
                body = json.loads(text)
                state = str(body.get("state", "")).upper()
                tone = str(body.get("tone") or tone)
                duration = int(body.get("duration") or duration)
            except (ValueError, TypeError, AttributeError):
                log.warning("Home Assistant command for %s is not valid JSON: %r", node_id,
                            text[:100])
                return None
        if not protocol.is_node_id(node_id) or state not in ("ON", "OFF"):
            log.warning("Home Assistant command ignored: node %r, payload %r", node_id,
                        text[:100])
            return None
        try:
            services = self.services()
            if state == "OFF":
                return silence_node(services, node_id, s.actor)
            return sound_node(services, node_id, s.actor, tone, max(1, min(duration, 3600)))
        except HubError as exc:
            log.warning("Home Assistant command for %s refused: %s", node_id, exc)
            return None
