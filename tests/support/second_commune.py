"""A second commune (Sỹ Bình, hamlet Nà Ca, one node) added to a test registry: what the
area-scoping tests need to show that an officer of one commune sees nothing of another."""

from __future__ import annotations

SY_BINH = "bach-thong/sy-binh"
NA_CA = "bach-thong/sy-binh/na-ca"


def with_second_commune(registry: str, node_extra: str = "") -> str:
    """`registry` (TOML text) with Sỹ Bình, Nà Ca and node na-ca-01 (plus `node_extra`
    lines for that node, e.g. its place on the map)."""
    return registry + f"""
[[areas]]
path = "{SY_BINH}"
name = "Xã Sỹ Bình"
level = "xã"

[[areas]]
path = "{NA_CA}"
name = "Thôn Nà Ca"
level = "thôn"

[[nodes]]
id = "na-ca-01"
area = "{NA_CA}"
{node_extra}"""
