"""The long bad-input run: Hypothesis cases through a running hub's real ingest path.

    python -m bench.fuzz_ingest --cases 100000

A real Mosquitto and a hub on SQLite; every case is published with a bare paho
client and checked as in tests/fuzz (no crash, a counted rejection with the
contract's reason, nothing stored that should not be, valid alarms stored).
Prints cases tried, accepted, rejections by reason and cases per mutation;
writes bench/results/fuzz_ingest.json. Exit status 1 on the first failing case.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings

from bench.common import write_json
from tests.fuzz.cases import Case, cases, valid_alarm
from tests.fuzz.target import ingest_target

RESULTS = Path(__file__).resolve().parent / "results"


def fuzz(count: int, workdir: Path) -> dict[str, Any]:
    with ingest_target(workdir) as target:

        @settings(max_examples=count, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(cases())
        def one(case: Case) -> None:
            target.run(case)

        start = time.monotonic()
        one()
        probe = target.run(valid_alarm())
        return {"cases": target.tried, "accepted": target.accepted,
                "rejected": sum(target.rejects.values()), "rejects_by_reason": target.rejects,
                "by_mutation": dict(target.by_mutation), "probe_after": probe,
                "seconds": round(time.monotonic() - start, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="fuzz-ingest-") as tmp:
        out = fuzz(args.cases, Path(tmp))
    print(f"cases tried {out['cases']:,}  accepted {out['accepted']:,}  "
          f"rejected {out['rejected']:,}  in {out['seconds']} s")
    for reason, n in sorted(out["rejects_by_reason"].items(), key=lambda kv: -kv[1]):
        print(f"  {reason:<22} {n:>8,}")
    write_json(RESULTS / "fuzz_ingest.json", out)   # with the commit and the load average
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
