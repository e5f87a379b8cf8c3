"""How a CAP alert's <area> elements map to the hub's areas (docs/integrations.md): our
geocode first, then names without diacritics or level words (innermost wins), then
circles around registered nodes; an area inside another named one is dropped."""

from __future__ import annotations

import pytest

from hub.integrations.cap_intake import CapArea, CapError, CapMessage, map_areas
from hub.store.snapshots import AreaInfo, NodeInfo, NodeStatus

AREAS = [AreaInfo("bach-thong", "Huyện Bạch Thông", "huyện", 1, None),
         AreaInfo("bach-thong/vi-huong", "Xã Vi Hương", "xã", 2, "bach-thong"),
         AreaInfo("bach-thong/vi-huong/na-sang", "Thôn Nà Sang", "thôn", 3,
                  "bach-thong/vi-huong"),
         AreaInfo("bach-thong/vi-huong/na-cha", "Thôn Nà Chá", "thôn", 3,
                  "bach-thong/vi-huong"),
         AreaInfo("bach-thong/phu-thong/dau-cau", "Tổ dân phố Đầu Cầu", "tổ dân phố", 3,
                  "bach-thong/phu-thong")]


def node(node_id: str, area: str, lat: float | None, lon: float | None) -> NodeInfo:
    return NodeInfo(node_id, area, None, None, lat, lon, True, True, "registry", None,
                    NodeStatus.ONLINE, None, None, None, (), (), None, None)


NODES = [node("na-sang-01", "bach-thong/vi-huong/na-sang", 22.2461, 105.8612),
         node("na-cha-01", "bach-thong/vi-huong/na-cha", 22.2600, 105.8800),
         node("dau-cau-01", "bach-thong/phu-thong/dau-cau", None, None)]


def msg(*areas: CapArea) -> CapMessage:
    return CapMessage("id", "s@x", "2026-11-30T14:00:00+07:00", "Actual", "Alert", ("Met",),
                      ("Lũ",), None, None, areas)


def area(desc: str, geocodes: tuple[tuple[str, str], ...] = (),
         circles: tuple[str, ...] = ()) -> CapArea:
    return CapArea(desc, geocodes, circles)


@pytest.mark.parametrize(("desc", "want"), [
    ("Thôn Nà Sang, Xã Vi Hương", ["bach-thong/vi-huong/na-sang"]),
    ("thon na sang", ["bach-thong/vi-huong/na-sang"]),
    ("NÀ CHÁ", ["bach-thong/vi-huong/na-cha"]),
    ("Xã Vi Hương", ["bach-thong/vi-huong"]),
    ("Tổ dân phố Đầu Cầu; Huyện Bạch Thông", ["bach-thong/phu-thong/dau-cau"]),
    ("dau-cau", ["bach-thong/phu-thong/dau-cau"]),
])
def test_names_match_without_diacritics_case_or_level_words(desc: str,
                                                              want: list[str]) -> None:
    assert map_areas(msg(area(desc)), AREAS, NODES) == want


def test_our_geocode_wins_over_the_description() -> None:
    m = msg(area("Thôn Nà Sang", geocodes=(("tiengmo:area", "bach-thong/vi-huong/na-cha"),)))
    assert map_areas(m, AREAS, NODES) == ["bach-thong/vi-huong/na-cha"]
    # An unknown path in the geocode falls back to the description.
    m = msg(area("Thôn Nà Sang", geocodes=(("tiengmo:area", "nowhere/at-all"),)))
    assert map_areas(m, AREAS, NODES) == ["bach-thong/vi-huong/na-sang"]


def test_a_circle_selects_the_areas_of_the_nodes_inside_it() -> None:
    near_na_sang = "22.2461,105.8612 0.5"
    assert map_areas(msg(area("sông Cầu", circles=(near_na_sang,))), AREAS, NODES) == [
        "bach-thong/vi-huong/na-sang"]
    both = "22.253,105.87 3"
    assert map_areas(msg(area("sông Cầu", circles=(both,))), AREAS, NODES) == [
        "bach-thong/vi-huong/na-cha", "bach-thong/vi-huong/na-sang"]
    with pytest.raises(CapError, match="sông Cầu"):
        map_areas(msg(area("sông Cầu", circles=("10.0,100.0 1",))), AREAS, NODES)


def test_an_area_inside_another_named_one_is_dropped() -> None:
    m = msg(area("Thôn Nà Sang"), area("Xã Vi Hương"))
    assert map_areas(m, AREAS, NODES) == ["bach-thong/vi-huong"]


def test_nothing_matched_names_what_was_asked() -> None:
    with pytest.raises(CapError, match="'Hà Nội'"):
        map_areas(msg(area("Hà Nội")), AREAS, NODES)
    with pytest.raises(CapError, match="no <area>"):
        map_areas(msg(), AREAS, NODES)
