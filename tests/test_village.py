"""The demo district is true to its source (DOMAIN.md) and a valid registry."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from protocol import area_ancestors, is_area_path, is_node_id, load_registry, parse_registry
from protocol.registry import dump_registry
from tiengmo.acl import render_acl
from tiengmo.village import (
    DEMO_HAMLET_AREAS,
    DEMO_HOUSEHOLDS,
    load_demo_registry,
    write_demo_registry,
)

HAMLET_LEVELS = {"thôn", "tổ dân phố"}
VI_HUONG_THON = {"Nà Sang", "Nà Chá", "Đon Bây", "Nà Pái", "Bó Lịn", "Nà Ít", "Thủy Điện",
                 "Địa Cát", "Cốc Thốc"}


def test_the_shipped_file_loads_with_the_protocol_parser(tmp_path: Path) -> None:
    with resources.as_file(resources.files("tiengmo.data") / "bach-thong.toml") as path:
        from_file = load_registry(path)
    assert from_file.areas == load_demo_registry().areas
    assert from_file.nodes == load_demo_registry().nodes
    copy = load_registry(write_demo_registry(tmp_path / "registry.toml"))
    assert copy.nodes == from_file.nodes


def test_eleven_hamlet_areas_with_the_real_names() -> None:
    reg = load_demo_registry()
    hamlets = [a for a in reg.areas if a.level in HAMLET_LEVELS]
    assert len(hamlets) == DEMO_HAMLET_AREAS == 11
    vi_huong = {a.name.removeprefix("Thôn ") for a in hamlets
                if a.path.startswith("bach-thong/vi-huong/")}
    assert vi_huong == VI_HUONG_THON
    pho = {a.name for a in hamlets if a.path.startswith("bach-thong/phu-thong/")}
    assert pho == {"Tổ dân phố Phố Chình", "Tổ dân phố Ngã Ba"}
    levels = {a.path: a.level for a in reg.areas if a.level not in HAMLET_LEVELS}
    assert levels == {"bach-thong": "huyện", "bach-thong/vi-huong": "xã",
                      "bach-thong/phu-thong": "thị trấn"}
    # Every area is listed with a proper Vietnamese name, none made up from a slug.
    assert all(a.name != a.path.rsplit("/", 1)[-1] for a in reg.areas)
    assert all(is_area_path(a.path) and a.path.isascii() for a in reg.areas)


def test_about_two_dozen_nodes_cover_exactly_239_households() -> None:
    reg = load_demo_registry()
    assert 20 <= len(reg.nodes) <= 28
    assert all(n.households is not None and n.households > 0 for n in reg.nodes)
    assert sum(n.households or 0 for n in reg.nodes) == DEMO_HOUSEHOLDS == 239


def test_every_node_sits_in_a_listed_hamlet_and_every_hamlet_has_nodes() -> None:
    reg = load_demo_registry()
    listed = {a.path: a for a in reg.areas}
    for n in reg.nodes:
        assert n.area in listed, f"{n.id}: area {n.area} is not listed"
        assert listed[n.area].level in HAMLET_LEVELS, f"{n.id} is not in a hamlet"
        assert all(a in listed for a in area_ancestors(n.area))
        assert is_node_id(n.id) and n.id.startswith(n.area.rsplit("/", 1)[-1] + "-")
        assert n.enabled
    hamlets = {a.path for a in reg.areas if a.level in HAMLET_LEVELS}
    assert hamlets == {n.area for n in reg.nodes}


def test_positions_are_around_bach_thong() -> None:
    for n in load_demo_registry().nodes:
        assert n.lat is not None and 22.15 <= n.lat <= 22.30, n.id
        assert n.lon is not None and 105.75 <= n.lon <= 105.90, n.id


def test_round_trips_and_yields_an_acl() -> None:
    reg = load_demo_registry()
    again = parse_registry(tomllib.loads(dump_registry(reg)))
    assert again.nodes == reg.nodes and again.areas == reg.areas
    acl = render_acl(reg, ["hub-1"])
    assert acl.count("\nuser ") == len(reg.nodes) + 2   # + the hub and its alarm lane
    assert "\nuser hub-1-alarms\n" in acl
    assert "topic read mo/v1/areas/bach-thong/vi-huong/na-sang/cmd" in acl
