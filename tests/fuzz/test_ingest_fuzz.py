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
