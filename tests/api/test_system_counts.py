"""GET /api/v1/system counts the nodes expected to answer by status (registered and
enabled; a disabled node is not expected), with one grouped query (issue 13)."""

from __future__ import annotations

import pytest

from hub.runtime import Hub
from hub.store import NodeStatus
from tests.api.conftest import Browser

pytestmark = pytest.mark.quick


def test_the_system_strip_counts_expected_nodes_by_status(
        hub: Hub, browsers: dict[str, Browser]) -> None:
    area = next(n.area for n in hub.store.nodes.find() if n.registered and n.area)
    hub.store.nodes.register("extra-01", area)
    nodes = [n.id for n in hub.store.nodes.find() if n.registered and n.enabled]
    assert len(nodes) >= 4
    now = hub.store.now_ms()
    hub.store.nodes.set_status(nodes[0], NodeStatus.ONLINE, now)
    hub.store.nodes.set_status(nodes[1], NodeStatus.MISSING, now)
    hub.store.nodes.set_status(nodes[2], NodeStatus.OFFLINE, now)
    hub.store.nodes.set_enabled(nodes[3], False)        # not expected: not counted
    before = {s.value: 0 for s in NodeStatus}
    for n in hub.store.nodes.find():
        if n.registered and n.enabled:
            before[n.status.value] += 1
    r = browsers["viewer"].client.get("/api/v1/system")
    assert r.status_code == 200, r.text
    counts = r.json()["nodes"]
    assert counts["expected"] == sum(before.values()) <= len(nodes) - 1
    assert (counts["online"], counts["missing"], counts["offline"]) == (
        before["online"], before["missing"], before["offline"])
    assert counts["online"] >= 1 and counts["missing"] >= 1 and counts["offline"] >= 1
    assert sum(counts[k] for k in ("online", "offline", "missing", "unknown")) == \
        counts["expected"]
