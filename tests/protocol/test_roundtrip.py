"""Every valid payload survives encode -> decode unchanged (Hypothesis)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

import protocol as p
from protocol.messages import MAX_PRIORITY, MAX_STEP_MS

ts = st.integers(0, 2**53 - 1)
uuids = st.uuids().map(str)
node_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True)
slugs = st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True)
areas = st.lists(slugs, min_size=1, max_size=4).map("/".join)
kinds = st.sampled_from(list(p.Kind))
steps = st.lists(
    st.tuples(st.integers(1, MAX_STEP_MS), st.integers(0, MAX_STEP_MS)), min_size=1, max_size=64
).map(tuple)
patterns = st.builds(p.Pattern, name=st.text(min_size=1, max_size=32), steps=steps)


@st.composite
def commands(draw: st.DrawFn) -> p.Command:
    action = draw(st.sampled_from(list(p.Action)))
    t = draw(ts)
    base = {"cmd_id": draw(uuids), "action": action, "ts_ms": t,
            "expires_ts_ms": draw(st.integers(t, 2**53 - 1))}
    if action is p.Action.SOUND:
        base |= {"pattern": draw(patterns), "duration_s": draw(st.integers(1, 86_400)),
                 "priority": draw(st.integers(0, MAX_PRIORITY)),
                 "incident_id": draw(st.none() | uuids), "drill": draw(st.none() | st.booleans())}
    elif action is p.Action.SILENCE:
        base["incident_id"] = draw(st.none() | uuids)
    elif action is p.Action.TEST:
        base["duration_s"] = draw(st.none() | st.integers(1, 600))
    return p.Command(**base)


@st.composite
def acks(draw: st.DrawFn) -> p.Ack:
    status = draw(st.sampled_from(list(p.AckStatus)))
    if status is p.AckStatus.REJECTED:
        return p.Ack(draw(uuids), status, draw(ts), reason=draw(st.text(min_size=1, max_size=200)))
    return p.Ack(draw(uuids), status, draw(ts), incident_id=draw(uuids))


@st.composite
def results(draw: st.DrawFn) -> p.Result:
    status = draw(st.sampled_from(list(p.ResultStatus)))
    needs = status in (p.ResultStatus.REJECTED, p.ResultStatus.FAILED)
    reason = draw(st.text(min_size=1, max_size=200)) if needs else draw(
        st.none() | st.text(min_size=1, max_size=200))
    return p.Result(draw(uuids), status, draw(ts), reason)


births = st.builds(
    p.NodeState, online=st.just(True), boot_id=ts, ts_ms=ts,
    version=st.text(min_size=1, max_size=32), area=areas,
    outputs=st.lists(node_ids, max_size=8).map(tuple),
    buttons=st.dictionaries(st.integers(1, 999).map(str), kinds.map(str), max_size=16),
)
deaths = st.builds(p.NodeState, online=st.just(False), boot_id=ts)
alarms = st.builds(p.Alarm, alarm_id=uuids, kind=kinds, ts_ms=ts,
                   source=st.sampled_from(list(p.Source)), attempt=st.integers(1, 2**31 - 1),
                   button=st.none() | st.integers(1, 999),
                   clock_synced=st.none() | st.booleans())
heartbeats = st.builds(
    p.Heartbeat, boot_id=ts, seq=ts, ts_ms=ts, uptime_s=ts, outbox=st.integers(0, 10**6),
    power=st.none() | st.sampled_from(list(p.Power)),
    battery_pct=st.none() | st.integers(0, 100),
    temp_c=st.none() | st.floats(-80, 200, allow_nan=False),
    rssi_dbm=st.none() | st.integers(-200, 0),
)
hub_states = st.one_of(
    st.builds(p.HubState, online=st.just(True), hub_id=node_ids, ts_ms=ts),
    st.builds(p.HubState, online=st.just(False), hub_id=node_ids),
)
messages = st.one_of(
    commands(), acks(), results(), births, deaths, alarms, heartbeats, hub_states,
    st.builds(p.Cancel, alarm_id=uuids, ts_ms=ts),
    st.builds(p.HubTime, hub_id=node_ids, ts_ms=ts),
)


@settings(max_examples=400)
@given(messages)
def test_every_valid_payload_round_trips(msg: p.Message) -> None:
    try:
        data = p.encode(msg)
    except p.PayloadError as exc:
        # The only refusal allowed for a valid message is the 4096-byte limit.
        assert exc.reason == "too_large"
        return
    assert len(data) <= p.MAX_PAYLOAD_BYTES
    obj = json.loads(data)
    assert obj["v"] == 1
    assert p.decode(type(msg), data) == msg


@given(alarms)
def test_unknown_fields_are_ignored(alarm: p.Alarm) -> None:
    obj = json.loads(p.encode(alarm))
    obj["future_field"] = {"nested": [1, 2, 3]}
    assert p.decode(p.Alarm, json.dumps(obj).encode()) == alarm


def test_wire_example_from_protocol_page_decodes() -> None:
    cmd = p.decode(p.Command, b'{"v":1, "cmd_id":"0b0e6d43-3f1c-4d7e-9a55-0d1f0c7e2b11", '
                   b'"action":"sound", "ts_ms":1700000000000, "expires_ts_ms":1700000060000, '
                   b'"incident_id":"5c0e6d43-3f1c-4d7e-9a55-0d1f0c7e2b11", "drill":false, '
                   b'"priority":5, "duration_s":120, '
                   b'"pattern":{"name":"fire", "steps":[[120,180]]}}')
    assert cmd.action is p.Action.SOUND
    assert cmd.pattern == p.Pattern("fire", ((120, 180),))
    assert cmd.priority == 5 and cmd.duration_s == 120 and cmd.drill is False
