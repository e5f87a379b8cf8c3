"""docs/faults.md's fault table is generated (bench/fault_table.py), never hand-edited:
the text between its markers is exactly what the kept rows render to, and a run of
some scenarios replaces their rows and keeps the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import fault_table as ft


def test_the_table_in_the_doc_is_the_rendered_rows() -> None:
    doc = (Path(ft.__file__).resolve().parent.parent / "docs" / "faults.md").read_text()
    between = doc.split(ft.BEGIN, 1)[1].split(ft.END, 1)[0].strip()
    rows = json.loads(ft.ROWS.read_text())["rows"]
    assert between == ft.markdown_table(rows)
    assert [r["key"] for r in rows] == sorted((r["key"] for r in rows), key=ft.ORDER.index)


def row(key: str, stored: int, **extra: object) -> dict[str, object]:
    return {"key": key, "scenario": key, "pressed": 10, "stored": stored, "incidents": 1,
            "duplicate_incidents": 0, "phantom_sounds": 0, "recover_s": 1.0,
            "restarts_needed": 0, "notes": {}, "load_before": 3.0, **extra}


def test_a_run_replaces_its_rows_and_keeps_the_others(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ft, "ROWS", tmp_path / "rows.json")
    monkeypatch.setattr(ft, "RESULTS", tmp_path)
    doc = tmp_path / "faults.md"
    doc.write_text(f"intro\n{ft.BEGIN}\nold hand-written table\n{ft.END}\nafter\n")
    ft.write_markdown(doc, [row("idle_sockets", 9), row("flood", 10)])
    ft.write_markdown(doc, [row("idle_sockets", 10),
                            {"key": "flood", "scenario": "flood", "not_run": "missing"}])
    text = doc.read_text()
    assert text.startswith(f"intro\n{ft.BEGIN}\n") and text.endswith(f"{ft.END}\nafter\n")
    assert "old hand-written" not in text
    lines = [x for x in text.splitlines() if x.startswith("| ")][2:]   # past the head
    assert lines[0].startswith("| flood | full")      # measured before: not replaced by "not run"
    assert lines[1].startswith("| idle_sockets | full") and "| 10 | 10 |" in lines[1]


def test_a_missing_marker_is_a_clear_error(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ft, "ROWS", tmp_path / "rows.json")
    monkeypatch.setattr(ft, "RESULTS", tmp_path)
    doc = tmp_path / "faults.md"
    doc.write_text("no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        ft.write_markdown(doc, [row("flood", 10)])
