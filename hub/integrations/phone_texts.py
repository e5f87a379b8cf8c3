"""The SMS a household gets back when it alarms by phone: Vietnamese first, then English,
short (each part of a UCS-2 SMS holds 70 characters), with diacritics."""

from __future__ import annotations

from .texts import KIND_EN, KIND_VI, local_time

HELP_WORDS = "CHAY, TROM, CUOP, DANH NHAU, LU, CAP CUU, CUU"


def received_sms(kind: str, place: str, ms: int, tz: str, sounding: bool) -> str:
    gongs = "Mõ đang báo cả thôn" if sounding else "Mõ đã báo trước đó"
    return (f"[Tiếng mõ] Đã nhận báo động {KIND_VI.get(kind, kind).upper()} tại {place} "
            f"lúc {local_time(ms, tz)}. {gongs}, công an xã đã được báo. "
            f"Alarm ({KIND_EN.get(kind, kind)}) received.")


def acknowledged_sms(kind: str, place: str, ms: int, tz: str) -> str:
    return (f"[Tiếng mõ] Công an xã đã tiếp nhận báo động {KIND_VI.get(kind, kind).lower()} "
            f"của bạn tại {place} lúc {local_time(ms, tz)} và đang xử lý. "
            "An officer has taken your alarm.")


def confirm_call_sms(hamlet: str, minutes: int) -> str:
    return (f"[Tiếng mõ] Nhận cuộc gọi báo động ({hamlet}). Nhắn 1 hoặc gọi lại trong "
            f"{minutes} phút để đánh mõ. Reply 1 or call again to sound the gongs.")


def help_sms() -> str:
    return (f"[Tiếng mõ] Không rõ nội dung. Để báo động, nhắn một từ: {HELP_WORDS}. "
            "Khẩn cấp gọi 113. To alarm, text one word, e.g. CHAY (fire).")


def late_sms() -> str:
    return ("[Tiếng mõ] Tin nhắn đến trễ nên không đánh mõ; công an xã đã được báo. "
            "Nếu còn khẩn cấp, nhắn lại hoặc gọi 113. Late SMS: no gongs; text again.")


def failed_sms() -> str:
    return ("[Tiếng mõ] Hệ thống chưa ghi được báo động. Gọi ngay 113. "
            "The alarm could not be recorded: call 113.")


def responders_call_sms(household: str, number: str, place: str, ms: int, tz: str) -> str:
    return (f"[Tiếng mõ] Cuộc gọi báo động CHƯA XÁC NHẬN từ {household} ({number}) tại "
            f"{place} lúc {local_time(ms, tz)}. Mõ sẽ báo khi hộ xác nhận. Gọi lại hộ "
            "để kiểm tra. Unconfirmed missed-call alarm.")
