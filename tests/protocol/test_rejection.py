"""Bad bytes are refused with a clear reason and only ever the protocol's own error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocol as p

TYPES: list[type[p.Message]] = [p.Alarm, p.Cancel, p.Heartbeat, p.Ack, p.Command, p.Result,
                                p.NodeState, p.HubState, p.HubTime]
GOOD_ALARM = {"v": 1, "alarm_id": "0b0e6d43-3f1c-4d7e-9a55-0d1f0c7e2b11", "kind": "fire",
              "ts_ms": 1700000000000, "source": "button", "button": 2, "attempt": 1}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(st.sampled_from(TYPES), st.binary(max_size=5000))
def test_random_bytes_only_raise_protocol_error(cls: type[p.Message], data: bytes) -> None:
    try:
        p.decode(cls, data)
    except p.ProtocolError as exc:
        assert exc.reason and str(exc)


@settings(max_examples=300)
@given(st.sampled_from(list(GOOD_ALARM)), json_values)
def test_wrong_field_types_are_refused_naming_the_field(field: str, value: Any) -> None:
    obj = dict(GOOD_ALARM, **{field: value})
    try:
        alarm = p.decode(p.Alarm, json.dumps(obj).encode())
    except p.ProtocolError as exc:
        assert exc.reason in {"wrong_type", "out_of_range", "bad_value", "unknown_kind",
                              "unsupported_version", "missing_field"}
        assert exc.field == field or exc.field is None
    else:
        # Accepted only when the value is itself valid for that field, or null for an
        # optional field (null means absent).
        if value is None:
            assert field not in p.Alarm.REQUIRED
        else:
            assert field == "v" or getattr(alarm, field) == value


@given(st.integers(1, len(json.dumps(GOOD_ALARM)) - 1))
def test_truncated_payloads_are_refused(cut: int) -> None:
    data = json.dumps(GOOD_ALARM).encode()[:cut]
    with pytest.raises(p.PayloadError) as err:
        p.decode(p.Alarm, data)
    assert err.value.reason == "not_json"


@pytest.mark.parametrize(("payload", "reason"), [
    (b"x" * 5000, "too_large"),
    (b"\xff\xfe", "not_utf8"),
    (b"[1,2]", "not_object"),
    (b"[" * 3000 + b"]" * 3000, "too_large"),
    (b"[" * 2000 + b"]" * 2000, "not_json"),
    (b'{"v":1,"ts_ms":NaN}', "not_json"),
    (json.dumps(dict(GOOD_ALARM, v=2)).encode(), "unsupported_version"),
    (json.dumps(dict(GOOD_ALARM, v=True)).encode(), "wrong_type"),
    (json.dumps({k: v for k, v in GOOD_ALARM.items() if k != "v"}).encode(), "missing_field"),
    (json.dumps(dict(GOOD_ALARM, kind="ufo")).encode(), "unknown_kind"),
    (json.dumps(dict(GOOD_ALARM, ts_ms=2**80)).encode(), "out_of_range"),
    (json.dumps(dict(GOOD_ALARM, attempt=0)).encode(), "out_of_range"),
    (json.dumps(dict(GOOD_ALARM, alarm_id="not-a-uuid")).encode(), "bad_value"),
    # 36 characters that uuid.UUID() takes, but no canonical UUID: hyphens moved, an
    # underscore for a digit (int(..., 16) allows it)
    (json.dumps(dict(GOOD_ALARM, alarm_id="12345678123412341234123456789abc----")).encode(),
     "bad_value"),
    (json.dumps(dict(GOOD_ALARM, alarm_id="0123456_-1234-1234-1234-123456789abc")).encode(),
     "bad_value"),
    (json.dumps(dict(GOOD_ALARM, ts_ms=1.5)).encode(), "wrong_type"),
    (json.dumps(dict(GOOD_ALARM, clock_synced="no")).encode(), "wrong_type"),
    (json.dumps(dict(GOOD_ALARM, clock_synced=0)).encode(), "wrong_type"),
])
def test_known_bad_alarms_get_their_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(p.PayloadError) as err:
        p.decode(p.Alarm, payload)
    assert err.value.reason == reason


def test_clock_synced_is_optional_and_absent_means_synced() -> None:
    # A client that predates the field: decoded as before, nothing added on the wire.
    bare = p.decode(p.Alarm, json.dumps(GOOD_ALARM).encode())
    assert bare.clock_synced is None and "clock_synced" not in json.loads(p.encode(bare))
    own = p.decode(p.Alarm, json.dumps(dict(GOOD_ALARM, clock_synced=False)).encode())
    assert own.clock_synced is False and json.loads(p.encode(own))["clock_synced"] is False


def test_rejected_alarm_keeps_its_id_for_a_rejected_ack() -> None:
    with pytest.raises(p.PayloadError) as err:
        p.decode(p.Alarm, json.dumps(dict(GOOD_ALARM, kind="ufo")).encode())
    assert err.value.alarm_id == GOOD_ALARM["alarm_id"]


CMD = {"v": 1, "cmd_id": "0b0e6d43-3f1c-4d7e-9a55-0d1f0c7e2b11", "action": "sound",
       "ts_ms": 10, "expires_ts_ms": 20, "pattern": {"name": "fire", "steps": [[120, 180]]},
       "duration_s": 120, "priority": 5}


@pytest.mark.parametrize("missing", ["pattern", "duration_s", "priority"])
def test_sound_needs_its_fields(missing: str) -> None:
    obj = {k: v for k, v in CMD.items() if k != missing}
    with pytest.raises(p.PayloadError) as err:
        p.decode(p.Command, json.dumps(obj).encode())
    assert err.value.reason == "missing_field" and err.value.field == missing


@pytest.mark.parametrize("steps", [[], [[0, 0]], [[0, 100]], [[1, 2, 3]], [["a", 1]],
                                   [[-1, 5]], [[1, 1]] * 65])
def test_bad_patterns_are_refused(steps: Any) -> None:
    obj = dict(CMD, pattern={"name": "x", "steps": steps})
    with pytest.raises(p.PayloadError):
        p.decode(p.Command, json.dumps(obj).encode())


def test_ping_ignores_fields_of_other_actions_on_the_wire() -> None:
    cmd = p.decode(p.Command, json.dumps(dict(CMD, action="ping")).encode())
    assert cmd.pattern is None and cmd.priority is None


def test_constructor_refuses_fields_the_action_does_not_use() -> None:
    with pytest.raises(p.PayloadError):
        p.Command(cmd_id=CMD["cmd_id"], action=p.Action.PING, ts_ms=1, expires_ts_ms=2,
                  priority=5)


def test_expiry_before_issue_is_refused() -> None:
    with pytest.raises(p.PayloadError):
        p.decode(p.Command, json.dumps(dict(CMD, expires_ts_ms=5)).encode())


def test_rejected_ack_needs_a_reason_and_no_incident() -> None:
    aid, iid = CMD["cmd_id"], "5c0e6d43-3f1c-4d7e-9a55-0d1f0c7e2b11"
    with pytest.raises(p.PayloadError):
        p.Ack(aid, p.AckStatus.REJECTED, 1)
    with pytest.raises(p.PayloadError):
        p.Ack(aid, p.AckStatus.REJECTED, 1, incident_id=iid, reason="x")
    with pytest.raises(p.PayloadError):
        p.Ack(aid, p.AckStatus.RECEIVED, 1)


def test_birth_needs_its_fields_but_death_does_not() -> None:
    assert p.decode(p.NodeState, b'{"v":1,"online":false,"boot_id":7}').boot_id == 7
    with pytest.raises(p.PayloadError):
        p.decode(p.NodeState, b'{"v":1,"online":true,"boot_id":7}')


def test_encode_refuses_oversized_messages() -> None:
    big = p.Pattern("x" * 32, tuple((86_400_000, 86_400_000) for _ in range(64)))
    cmd = p.Command(CMD["cmd_id"], p.Action.SOUND, 1, 2, pattern=big, duration_s=1, priority=1)
    # 64 long steps still fit; the encoder checks the limit either way.
    assert len(p.encode(cmd)) <= p.MAX_PAYLOAD_BYTES
