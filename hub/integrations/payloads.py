"""JSON bodies of the outgoing webhooks, one per event of the event log:

    {"v": 1, "event_id": 812, "type": "incident", "ts_ms": ..., "hub_id": "hub-1",
     "subject": "<incident id>", "data": {...the incident as stored now...},
     "text_vi": "BÁO ĐỘNG CHÁY tại Thôn Nà Sang, Xã Vi Hương (mới, chưa tiếp nhận)",
     "text_en": "Fire alarm at Thôn Nà Sang, Xã Vi Hương (new, not yet taken)"}

`data` is the subject's state when the webhook was queued (a burst of changes to one
incident sends each state once, newest last). `text_vi` / `text_en` are ready to post
to a chat group as they are (docs/integrations.md has a Telegram/Zalo relay).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from .store import Event, IntegrationStore
from .texts import KIND_EN, KIND_VI, STATE_EN, STATE_VI, area_chain

STATUS_VI = {"online": "đã kết nối", "offline": "mất kết nối", "missing": "mất kết nối (im lặng)",
             "unknown": "chưa rõ"}
TROUBLE_VI = {"node_offline": "Nút mất kết nối", "node_missing": "Nút im lặng",
              "area_loss": "Cả khu vực mất kết nối (mất điện?)", "noisy_node": "Nút báo liên tục",
              "failed_to_sound": "Mõ không kêu", "sounder_fault": "Hỏng bộ phát âm",
              "unknown_node": "Báo động từ nút lạ", "disabled_node": "Báo động từ nút đã tắt",
              "low_battery": "Pin yếu", "on_battery": "Mất điện, đang chạy pin",
              "power_cut": "Mất điện lưới cả khu vực, các nút chạy pin",
              "outbox_backlog": "Nút còn báo động chưa gửi", "no_broker": "Mất kết nối MQTT",
              "database_recreated": "Cơ sở dữ liệu bị xoá và tạo lại (mất lịch sử)",
              "phone_call": "Cuộc gọi báo động chờ xác nhận",
              "unknown_caller": "Báo động từ số điện thoại lạ",
              "phone_flood": "Một số gửi quá nhiều tin/cuộc gọi"}


def _plain(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def _texts(ev: Event, data: dict[str, Any], names: dict[str, str]) -> tuple[str, str]:
    def where(area: str | None) -> str:
        return ", ".join(area_chain(area, names)[:2]) if area else "?"

    if ev.type == "escalation":
        kind, level = str(data["kind"]), data.get("escalation_level")
        place = where(data.get("sounded_area") or data.get("area"))
        return (f"CHƯA TIẾP NHẬN: báo động {KIND_VI.get(kind, kind).lower()} tại {place}, "
                f"nâng cấp bậc {level}",
                f"NOT ACKNOWLEDGED: {KIND_EN.get(kind, kind).lower()} alarm at {place}, "
                f"escalation step {level}")
    if ev.type == "incident":
        kind, state = str(data["kind"]), str(data["state"])
        place = where(data.get("sounded_area") or data.get("area"))
        if data.get("drill"):
            return (f"DIỄN TẬP tại {place} ({STATE_VI.get(state, state)})",
                    f"DRILL at {place} ({STATE_EN.get(state, state)})")
        return (f"BÁO ĐỘNG {KIND_VI.get(kind, kind).upper()} tại {place} "
                f"({STATE_VI.get(state, state)})",
                f"{KIND_EN.get(kind, kind)} alarm at {place} ({STATE_EN.get(state, state)})")
    if ev.type == "alarm":
        kind = str(data["kind"])
        return (f"Nút {data['node_id']} báo {KIND_VI.get(kind, kind).lower()} tại "
                f"{where(data.get('area'))}",
                f"Node {data['node_id']} reported {KIND_EN.get(kind, kind).lower()} at "
                f"{where(data.get('area'))}")
    if ev.type == "node":
        status = str(data["status"])
        return (f"Nút {data['id']} ({where(data.get('area'))}): {STATUS_VI.get(status, status)}",
                f"Node {data['id']} ({where(data.get('area'))}): {status}")
    if ev.type == "trouble":
        kind, state = str(data["kind"]), str(data["state"])
        vi = TROUBLE_VI.get(kind, kind)
        done = state != "open"
        return (f"{'Hết: ' if done else ''}{vi}: {data['subject']}",
                f"{'Cleared: ' if done else ''}{kind.replace('_', ' ')}: {data['subject']}")
    action, target = str(data.get("action")), str(data.get("target"))
    return (f"Lệnh {action} tới {target}", f"Command {action} to {target}")


def render(store: IntegrationStore, hub_id: str, events: Sequence[Event]) -> dict[int, str]:
    """event id -> JSON body, for the events whose subject still exists."""
    by_type: dict[str, set[str]] = {}
    for ev in events:
        by_type.setdefault(ev.type, set()).add(ev.subject)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    incident_ids = by_type.get("incident", set()) | by_type.get("escalation", set())
    if incident_ids:
        # An escalation event carries its incident, as it is now.
        for k, v in store.incidents(incident_ids).items():
            found[("incident", k)] = found[("escalation", k)] = _plain(v)
    if "alarm" in by_type:
        found |= {("alarm", k): _plain(v) for k, v in store.alarms(by_type["alarm"]).items()}
    if "node" in by_type:
        found |= {("node", k): _plain(v) for k, v in store.nodes(by_type["node"]).items()}
    if "trouble" in by_type:
        ids = [int(s) for s in by_type["trouble"] if s.isdigit()]
        found |= {("trouble", str(k)): _plain(v) for k, v in store.troubles(ids).items()}
    if "command" in by_type:
        found |= {("command", k): _plain(v)
                  for k, v in store.commands(by_type["command"]).items()}
    names = store.area_names()
    out: dict[int, str] = {}
    for ev in events:
        data = found.get((ev.type, ev.subject))
        if data is None:
            continue
        text_vi, text_en = _texts(ev, data, names)
        out[ev.id] = json.dumps({"v": 1, "event_id": ev.id, "type": ev.type, "ts_ms": ev.ts_ms,
                                 "hub_id": hub_id, "subject": ev.subject, "data": data,
                                 "text_vi": text_vi, "text_en": text_en},
                                ensure_ascii=False, default=str, separators=(",", ":"))
    return out
