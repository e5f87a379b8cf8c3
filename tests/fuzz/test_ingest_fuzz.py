"""Bad input through the real ingest path: a running hub on a real Mosquitto, 300 cases.

The long run (100,000 cases) is `python -m bench.fuzz_ingest`.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tests.fuzz.cases import Case, cases, valid_alarm
from tests.fuzz.target import ingest_target


def test_every_bad_payload_and_topic_is_a_counted_rejection_and_stores_nothing(
        tmp_path: Path) -> None:
    with ingest_target(tmp_path) as target:

        @settings(max_examples=300, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(cases())
        def one(case: Case) -> None:
            target.run(case)

        one()
        # Still answering: a good alarm is stored after all of that.
        assert target.run(valid_alarm()) == "accepted"
        assert target.tried >= 300
        # The mix really was mostly refusals, of many kinds.
        assert len(target.rejects) >= 5, target.rejects
        assert "internal_error" not in target.rejects


def test_a_birth_with_buttons_as_a_list_of_pairs_is_refused(tmp_path: Path) -> None:
    """Found by the long run (bench/fuzz_ingest): `buttons` is an object on the wire."""
    birth = (b'{"v":1,"online":true,"boot_id":2,"ts_ms":1759999997978,"version":"1.0.0",'
             b'"area":"bach-thong/vi-huong/na-sang","outputs":["gong"],'
             b'"buttons":[["1","fire"]]}')
    with ingest_target(tmp_path) as target:
        case = Case("state", "wrong_type", "mo/v1/nodes/na-sang-01/state", birth)
        assert target.run(case) == "wrong_type"


def test_nesting_beyond_the_limit_is_refused_however_deep_the_callers_stack(
        tmp_path: Path) -> None:
    """Found by the long run: json.loads' recursion limit made the verdict on a payload
    nested ~1,000 deep depend on the caller's stack (accepted by the hub's worker thread,
    refused deep inside Hypothesis). Now a fixed limit decides, before parsing."""
    from protocol import MAX_DEPTH, Cancel, ProtocolError, decode

    def nested(depth: int) -> bytes:
        return (b'{"v":1,"alarm_id":"e20f6e9a-f646-2cce-183c-2951d9e504e7","ts_ms":1,"x":'
                + b"[" * depth + b"]" * depth + b"}")

    def at_depth(frames: int, payload: bytes) -> str:
        if frames:
            return at_depth(frames - 1, payload)
        try:
            decode(Cancel, payload)
        except ProtocolError as exc:
            return exc.reason
        return "accepted"

    for frames in (0, 400):
        assert at_depth(frames, nested(MAX_DEPTH - 1)) == "accepted"
        assert at_depth(frames, nested(MAX_DEPTH)) == "not_json"
        assert at_depth(frames, nested(900)) == "not_json"
    with ingest_target(tmp_path) as target:
        case = Case("cancel", "deep_nesting", "mo/v1/nodes/na-sang-01/cancel", nested(900))
        assert target.run(case) == "not_json"
