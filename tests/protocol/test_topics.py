"""Topic builders and parser agree, and nothing else parses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import protocol as p

T = p.Topics()
node_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True)
areas = st.lists(st.from_regex(r"[a-z0-9-]{1,10}", fullmatch=True), min_size=1,
                 max_size=4).map("/".join)


@given(node_ids)
def test_node_topics_parse_back(node: str) -> None:
    for build, kind in [(T.node_state, p.TopicKind.NODE_STATE), (T.alarm, p.TopicKind.ALARM),
                        (T.cancel, p.TopicKind.CANCEL), (T.heartbeat, p.TopicKind.HEARTBEAT),
                        (T.result, p.TopicKind.RESULT), (T.ack, p.TopicKind.ACK),
                        (T.node_cmd, p.TopicKind.NODE_CMD)]:
        m = T.parse(build(node))
        assert m.kind is kind and m.node_id == node


@given(areas)
def test_area_cmd_parses_back(area: str) -> None:
    m = T.parse(T.area_cmd(area))
    assert m.kind is p.TopicKind.AREA_CMD and m.area == area


def test_node_subscriptions_cover_every_ancestor_area() -> None:
    subs = dict(T.node_subscriptions("na-sang-01", "bach-thong/vi-huong/na-sang"))
    assert subs == {
        "mo/v1/nodes/na-sang-01/cmd": 1, "mo/v1/nodes/na-sang-01/ack": 1,
        "mo/v1/areas/bach-thong/cmd": 1, "mo/v1/areas/bach-thong/vi-huong/cmd": 1,
        "mo/v1/areas/bach-thong/vi-huong/na-sang/cmd": 1, "mo/v1/hubs/+/state": 1,
        "mo/v1/hub/time": 0,
    }


def test_custom_prefix() -> None:
    t = p.Topics("district/x")
    assert t.alarm("n1") == "district/x/nodes/n1/alarm"
    assert t.parse("district/x/hub/time").kind is p.TopicKind.HUB_TIME
    with pytest.raises(p.TopicError):
        t.parse("mo/v1/hub/time")


@pytest.mark.parametrize("topic", [
    "mo/v1/nodes/UPPER/alarm", "mo/v1/nodes/n1/unknown", "mo/v1/nodes/n1", "mo/v1/areas/cmd",
    "mo/v1/areas/a/b/c/d/e/cmd", "mo/v1/hubs/h1/time", "other/nodes/n1/alarm", "mo/v1/hub/time/x",
    "mo/v1/nodes/+/alarm", "mo/v1/areas/a//b/cmd",
])
def test_foreign_topics_are_refused(topic: str) -> None:
    with pytest.raises(p.TopicError):
        T.parse(topic)


@pytest.mark.parametrize("prefix", ["", "/x", "x/", "a/+/b", "#", "$SYS"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(p.TopicError):
        p.Topics(prefix)


def test_qos_and_retain_follow_the_table() -> None:
    assert T.parse(T.heartbeat("n")).qos == 0
    assert T.parse(T.hub_time()).qos == 0
    assert T.parse(T.alarm("n")).qos == 1
    assert {p.TopicKind.NODE_STATE, p.TopicKind.HUB_STATE} == p.RETAINED
