"""Hypothesis strategies: every upward payload type and topic shape, mostly broken.

A case is a topic and the raw bytes to publish, the mutation that made it, and
whether that mutation must be refused whatever else the bytes hold
(`must_reject`). Built from valid payloads of each message the hub handles
(alarm, cancel, heartbeat, node state, result, hub state), then one mutation:
wrong types, missing fields, huge numbers, invalid UTF-8, deep nesting,
oversized payloads, unknown versions, odd node ids in the topic, garbage.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from protocol import MAX_PAYLOAD_BYTES, Kind, Topics

T = Topics()
NODES = ("na-sang-01", "na-sang-02", "na-cha-01", "na-cha-02", "lang-la-99")
HUB_ID = "hub-peer"
NOW_MS = 1_760_000_000_000

# field -> its JSON type, per message (to pick a wrong one); "req" marks required fields.
FIELDS: dict[str, dict[str, tuple[str, bool]]] = {
    "alarm": {"alarm_id": ("uuid", True), "kind": ("str", True), "ts_ms": ("int", True),
              "source": ("str", True), "attempt": ("int", True), "button": ("int", False)},
    "cancel": {"alarm_id": ("uuid", True), "ts_ms": ("int", True)},
    "heartbeat": {"boot_id": ("int", True), "seq": ("int", True), "ts_ms": ("int", True),
                  "uptime_s": ("int", True), "outbox": ("int", True), "power": ("str", False),
                  "battery_pct": ("num", False), "temp_c": ("num", False),
                  "rssi_dbm": ("num", False)},
    "state": {"online": ("bool", True), "boot_id": ("int", True), "ts_ms": ("int", True),
              "version": ("str", True), "area": ("str", True), "outputs": ("list", True),
              "buttons": ("dict", True)},
    "result": {"cmd_id": ("uuid", True), "status": ("str", True), "ts_ms": ("int", True)},
    "hub_state": {"online": ("bool", True), "hub_id": ("str", True), "ts_ms": ("int", False)},
}
MUTATIONS = ("none", "extra_field", "drop_required", "drop_optional", "wrong_type",
             "huge_number", "bad_version", "deep_nesting", "oversize", "bad_utf8",
             "not_object", "garbage", "truncated", "bad_topic_node")
MUST_REJECT = frozenset({"drop_required", "wrong_type", "huge_number", "bad_version",
                         "oversize", "bad_utf8", "not_object", "garbage", "truncated",
                         "bad_topic_node"})


@dataclass(frozen=True)
class Case:
    message: str          # which payload type it was built from
    mutation: str
    topic: str
    payload: bytes

    @property
    def must_reject(self) -> bool:
        return self.mutation in MUST_REJECT

    def __repr__(self) -> str:   # short, for Hypothesis' falsifying example
        return (f"Case({self.message}/{self.mutation}, {self.topic[:80]!r}, "
                f"{self.payload[:200]!r}{'...' if len(self.payload) > 200 else ''})")


def _valid(message: str, draw: st.DrawFn) -> dict[str, Any]:
    uid = str(draw(st.uuids()))
    ts = NOW_MS + draw(st.integers(-10**6, 10**6))
    if message == "alarm":
        return {"v": 1, "alarm_id": uid, "kind": draw(st.sampled_from([k.value for k in Kind])),
                "ts_ms": ts, "source": draw(st.sampled_from(["button", "remote"])),
                "button": draw(st.integers(1, 999)), "attempt": draw(st.integers(1, 50))}
    if message == "cancel":
        return {"v": 1, "alarm_id": uid, "ts_ms": ts}
    if message == "heartbeat":
        return {"v": 1, "boot_id": draw(st.integers(0, 1000)), "seq": draw(st.integers(0, 10**6)),
                "ts_ms": ts, "uptime_s": draw(st.integers(0, 10**6)), "outbox": 0,
                "power": draw(st.sampled_from(["mains", "battery"])),
                "battery_pct": draw(st.floats(0, 100)), "temp_c": 41.5, "rssi_dbm": -60}
    if message == "state":
        online = draw(st.booleans())
        if not online:
            return {"v": 1, "online": False, "boot_id": draw(st.integers(0, 1000))}
        return {"v": 1, "online": True, "boot_id": draw(st.integers(0, 1000)), "ts_ms": ts,
                "version": "1.0.0", "area": "bach-thong/vi-huong/na-sang", "outputs": ["gong"],
                "buttons": {"1": "theft", "2": "fire"}}
    if message == "result":
        return {"v": 1, "cmd_id": uid, "status": draw(st.sampled_from(["started", "done"])),
                "ts_ms": ts}
    return {"v": 1, "online": draw(st.booleans()), "hub_id": HUB_ID, "ts_ms": ts}


def _topic(message: str, node: str) -> str:
    if message == "hub_state":
        return f"{T.prefix}/hubs/{node}/state"
    leaf = {"alarm": "alarm", "cancel": "cancel", "heartbeat": "heartbeat", "state": "state",
            "result": "result"}[message]
    return f"{T.prefix}/nodes/{node}/{leaf}"


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda c: st.one_of(
    st.lists(c, max_size=4), st.dictionaries(st.text(max_size=8), c, max_size=4)), max_leaves=10)
WRONG: dict[str, Any] = {
    "int": st.one_of(st.text(max_size=10), st.booleans(), st.lists(JSON_SCALARS, max_size=2),
                     st.floats(allow_nan=False, allow_infinity=False), st.just({})),
    "num": st.one_of(st.text(max_size=10), st.booleans(), st.just([]), st.just({})),
    "str": st.one_of(st.integers(), st.booleans(), st.just([]), st.just({"a": 1})),
    "uuid": st.one_of(st.integers(), st.text(max_size=40), st.booleans(), st.just([])),
    "bool": st.one_of(st.integers(0, 1), st.text(max_size=5), st.just([]), st.none()),
    "list": st.one_of(st.integers(), st.text(max_size=5), st.just({"gong": 1})),
    "dict": st.one_of(st.integers(), st.text(max_size=5), st.just([["1", "fire"]])),
}
# Node ids no node may have, in topic shapes the hub subscribes to (one level: no '/').
ODD_NODE = st.one_of(
    st.sampled_from(["", "-a", "A", "UPPER", "a_b", "a.b", "a" * 64, "nút-một", "a b", "é",
                     "$sys", "0" * 200]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn"), blacklist_characters="/+#"),
            min_size=1, max_size=70),
).filter(lambda s: not _is_node_id(s))


def _is_node_id(s: str) -> bool:
    from protocol import is_node_id
    return is_node_id(s)


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


@st.composite
def cases(draw: st.DrawFn) -> Case:
    message = draw(st.sampled_from(sorted(FIELDS)))
    mutation = draw(st.sampled_from(MUTATIONS))
    obj = _valid(message, draw)
    fields = FIELDS[message]
    node = draw(st.sampled_from(NODES)) if message != "hub_state" else HUB_ID
    topic = _topic(message, node)
    present = [k for k in fields if k in obj]
    required = [k for k in present if fields[k][1]]
    optional = [k for k in present if not fields[k][1]]
    payload: bytes
    if mutation == "extra_field":
        key = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in obj and k != "v"))
        obj[key] = draw(JSON_VALUES)
    elif mutation == "drop_required" and required:
        del obj[draw(st.sampled_from(required))]
    elif mutation == "drop_optional" and optional:
        del obj[draw(st.sampled_from(optional))]
    elif mutation == "wrong_type" and present:
        key = draw(st.sampled_from(present))
        obj[key] = draw(WRONG[fields[key][0]])
        if obj[key] is None and not fields[key][1]:
            obj[key] = "null"   # null is "absent" for an optional field; keep it wrong
    elif mutation == "huge_number":
        ints = [k for k in present if fields[k][0] in ("int", "num")] or ["v"]
        key = draw(st.sampled_from(ints))
        huge = [2**53, 2**63, 2**64 + 1, 10**30, -2**63, 10**400, 1e308]
        # -1 is in range for a temperature or a signal level, out of it for a counter
        obj[key] = draw(st.sampled_from([*huge, -1] if fields.get(key, ("int",))[0] == "int"
                                        else huge))
        if key == "v":
            mutation = "bad_version"
    elif mutation == "bad_version":
        obj["v"] = draw(st.one_of(st.integers().filter(lambda v: v != 1), st.just("1"),
                                  st.just(1.0), st.just(True), st.none(), st.just([1])))
    elif mutation == "deep_nesting":
        depth = draw(st.integers(10, 3000))
        obj["deep"] = "@@"
        text = _json(obj).decode()
        payload = text.replace('"@@"', "[" * depth + "]" * depth).encode()
        return Case(message, mutation, topic, payload)
    elif mutation == "oversize":
        obj["pad"] = "x" * draw(st.integers(MAX_PAYLOAD_BYTES, 4 * MAX_PAYLOAD_BYTES))
    elif mutation == "bad_utf8":
        raw = _json(obj)
        at = draw(st.integers(0, len(raw)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80",
                                    b"\xe2\x82", b"\x80"]))
        return Case(message, mutation, topic, raw[:at] + bad + raw[at:])
    elif mutation == "not_object":
        payload = _json(draw(st.one_of(JSON_SCALARS, st.lists(JSON_SCALARS, max_size=3))))
        return Case(message, mutation, topic, payload)
    elif mutation == "garbage":
        return Case(message, mutation, topic, draw(st.binary(max_size=300)))
    elif mutation == "truncated":
        raw = _json(obj)
        return Case(message, mutation, topic, raw[:draw(st.integers(0, len(raw) - 1))])
    elif mutation == "bad_topic_node":
        topic = _topic(message, draw(ODD_NODE))
    else:
        mutation = "none"
    return Case(message, mutation, topic, _json(obj))


def valid_alarm(node: str = "na-sang-01") -> Case:
    """A plain good alarm (the probe that the hub is still answering)."""
    return Case("alarm", "none", T.alarm(node), _json(
        {"v": 1, "alarm_id": str(uuid.uuid4()), "kind": "fire", "ts_ms": NOW_MS,
         "source": "button", "button": 2, "attempt": 1}))
