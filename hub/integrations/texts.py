"""Words the integrations send to people, in Vietnamese and English (DOMAIN.md's table)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

KIND_VI = {"fire": "Cháy", "theft": "Trộm cắp", "robbery": "Cướp",
           "fight": "Đánh nhau, gây rối", "flood": "Lũ lụt", "medical": "Cấp cứu",
           "sos": "Khẩn cấp", "drill": "Diễn tập", "warning": "Cảnh báo",
           "all_clear": "Hết báo động"}
KIND_EN = {"fire": "Fire", "theft": "Theft", "robbery": "Robbery", "fight": "Fight / disorder",
           "flood": "Flood", "medical": "Medical emergency", "sos": "SOS", "drill": "Drill",
           "warning": "Warning", "all_clear": "All clear"}
# CAP 1.2 categories: a flood warning is meteorological/hydrological (Met).
CATEGORY = {"fire": "Fire", "theft": "Security", "robbery": "Security", "fight": "Security",
            "flood": "Met", "medical": "Health", "sos": "Safety", "drill": "Safety",
            "warning": "Safety", "all_clear": "Safety"}
SEVERITY = {"fire": "Severe", "robbery": "Severe", "flood": "Severe", "medical": "Severe",
            "sos": "Severe", "theft": "Moderate", "fight": "Moderate"}
STATE_VI = {"open": "mới, chưa tiếp nhận", "acknowledged": "đã tiếp nhận",
            "resolved": "đã xử lý", "cancelled": "đã hủy"}
STATE_EN = {"open": "new, not yet taken", "acknowledged": "acknowledged",
            "resolved": "resolved", "cancelled": "cancelled"}
# Vietnam's emergency numbers: 113 police, 114 fire and rescue, 115 ambulance.
_CALL = {"fire": "114", "flood": "114", "medical": "115"}


def instruction(kind: str, lang: str) -> str:
    number = _CALL.get(kind, "113")
    if kind == "drill":
        return ("Diễn tập: làm theo hướng dẫn của trưởng thôn." if lang == "vi-VN"
                else "Drill: follow the hamlet head's instructions.")
    if lang == "vi-VN":
        return f"Hỗ trợ nếu an toàn, giữ liên lạc với công an xã; gọi {number} khi cần."
    return f"Help if it is safe, keep in touch with the commune police; call {number} if needed."


def area_chain(area: str, names: dict[str, str]) -> list[str]:
    """Names of `area` and every area above it, innermost first (the path where unnamed)."""
    parts = area.split("/")
    paths = ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]
    return [names.get(p, p) for p in paths]


def local_time(ms: int, tz: str) -> str:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(tz)).strftime("%H:%M %d/%m/%Y")


def incident_sms(kind: str, where: list[str], node: str | None, ms: int, tz: str,
                 incident_id: str, drill: bool = False) -> str:
    """The SMS a responder gets for a new incident: Vietnamese, short, with diacritics."""
    place = ", ".join(where[:2])
    head = "DIỄN TẬP" if drill else f"BÁO ĐỘNG {KIND_VI.get(kind, kind).upper()}"
    if node and node.startswith("tel:"):   # a household's SMS or call (integrations/phone.py)
        who = f" Hộ dân báo qua điện thoại {node[4:]}."
    else:
        who = f" Nút {node}." if node else ""
    return (f"[Tiếng mõ] {head} tại {place} lúc {local_time(ms, tz)}.{who} "
            f"Vụ việc {incident_id[:8]}. Đề nghị công an xã, trưởng thôn xử lý ngay.")


def escalation_sms(kind: str, where: list[str], opened_ms: int, tz: str, incident_id: str,
                   level: int, sounding: list[str] | None) -> str:
    """The SMS a responder gets when nobody has acknowledged an incident in time."""
    place = ", ".join(where[:2])
    gongs = f" Mõ đang báo rộng ra: {', '.join(sounding[:2])}." if sounding else ""
    return (f"[Tiếng mõ] CHƯA AI TIẾP NHẬN báo động {KIND_VI.get(kind, kind).lower()} tại "
            f"{place} từ {local_time(opened_ms, tz)} (bậc {level}).{gongs} "
            f"Vụ việc {incident_id[:8]}. Đề nghị tiếp nhận và xử lý ngay.")


def broker_lost_sms(hub_id: str, since_ms: int, tz: str) -> str:
    return (f"[Tiếng mõ] Máy chủ {hub_id} mất kết nối MQTT từ {local_time(since_ms, tz)}: "
            "báo động của các nút không về được. Kiểm tra mạng và broker ngay. "
            f"Hub {hub_id} lost its MQTT broker.")


def broker_back_sms(hub_id: str, ms: int, tz: str) -> str:
    return (f"[Tiếng mõ] Máy chủ {hub_id} đã kết nối lại MQTT lúc {local_time(ms, tz)}. "
            f"Hub {hub_id} is back on its broker.")
