"""The keyword table of alarms by SMS (docs/phone-alarms.md): Vietnamese with or without
diacritics, any case; the earliest keyword decides, the longest phrase at a position."""

from __future__ import annotations

import pytest

from hub.integrations.keywords import KEYWORDS, fold, is_confirmation, kind_for
from protocol import Kind

pytestmark = pytest.mark.quick


@pytest.mark.parametrize(("text", "kind"), [
    ("CHÁY", Kind.FIRE), ("chay", Kind.FIRE), ("Cháy nhà!", Kind.FIRE),
    ("nha toi bi chay", Kind.FIRE), ("HỎA HOẠN", Kind.FIRE), ("fire", Kind.FIRE),
    ("TRỘM", Kind.THEFT), ("trom", Kind.THEFT), ("Trộm cắp trâu", Kind.THEFT),
    ("CUOP", Kind.ROBBERY), ("cướp", Kind.ROBBERY), ("Cướp giật", Kind.ROBBERY),
    ("ĐÁNH NHAU", Kind.FIGHT), ("danh nhau o cho", Kind.FIGHT), ("ẩu đả", Kind.FIGHT),
    ("Lũ về", Kind.FLOOD), ("LỤT", Kind.FLOOD), ("ngập", Kind.FLOOD),
    ("CẤP CỨU", Kind.MEDICAL), ("cap cuu!!", Kind.MEDICAL), ("tai nạn", Kind.MEDICAL),
    ("CỨU", Kind.SOS), ("cuu voi", Kind.SOS), ("Giúp!", Kind.SOS), ("SOS", Kind.SOS),
    # the earliest keyword wins
    ("cứu, cháy", Kind.SOS), ("cháy, cứu", Kind.FIRE),
    # decomposed (NFD) input, as some phones send it
    ("CH\u0041\u0301Y", Kind.FIRE),
])
def test_keywords_with_or_without_diacritics_in_any_case(text: str, kind: Kind) -> None:
    assert kind_for(text) == kind


@pytest.mark.parametrize("text", ["", "hello", "lua", "chayy", "xin chào", "1", "trâu"])
def test_no_keyword_no_alarm(text: str) -> None:
    assert kind_for(text) is None


def test_folding() -> None:
    assert fold("  ĐÁNH   Nhau!! ") == "danh nhau"
    assert fold("Cấp Cứu") == "cap cuu"


def test_confirmation_is_a_lone_1() -> None:
    assert is_confirmation("1") and is_confirmation(" 1 ") and is_confirmation("1.")
    assert not is_confirmation("11") and not is_confirmation("1 chay")


def test_every_kind_of_the_protocol_has_a_keyword_and_the_table_is_folded() -> None:
    assert set(KEYWORDS.values()) == set(Kind)
    assert all(fold(k) == k for k in KEYWORDS)
