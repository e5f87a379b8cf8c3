"""What the sentinel tells people, in Vietnamese first and English (hub/integrations/texts.py's
style): short, since an SMS in Vietnamese holds 70 characters a part."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from .watch import Alert, Change

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def _clock(wall_s: float) -> str:
    return datetime.fromtimestamp(wall_s, VN).strftime("%H:%M %d/%m")


def _duration_vi(s: float) -> str:
    return f"{round(s)} giây" if s < 120 else f"{round(s / 60)} phút"


def _duration_en(s: float) -> str:
    return f"{round(s)} s" if s < 120 else f"{round(s / 60)} min"


def sms_text(change: Change, wall_s: float) -> str:
    """One message: Vietnamese, then English."""
    at = _clock(wall_s)
    if change.alert is Alert.DOWN:
        return (f"[Tiếng mõ] MẤT LIÊN LẠC với trung tâm báo động xã đã "
                f"{_duration_vi(change.gone_s)} ({at}). Báo động có thể không đến công an "
                f"xã; mõ tại chỗ vẫn kêu. Kiểm tra máy chủ ngay. / "
                f"Alarm hub DOWN for {_duration_en(change.gone_s)} ({at}): alarms may not "
                f"reach the police; local gongs still sound. Check the hub now.")
    return (f"[Tiếng mõ] Trung tâm báo động xã đã HOẠT ĐỘNG LẠI ({at}) sau "
            f"{_duration_vi(change.gone_s)} mất liên lạc. / "
            f"Alarm hub BACK ({at}) after {_duration_en(change.gone_s)} down.")


def webhook_body(change: Change, sentinel_id: str, wall_ms: int) -> dict[str, object]:
    return {"v": 1, "event": f"hub_{change.alert.value}", "sentinel": sentinel_id,
            "ts_ms": wall_ms, "gone_s": round(change.gone_s, 1), "hubs": list(change.hubs),
            "text": sms_text(change, wall_ms / 1000)}
