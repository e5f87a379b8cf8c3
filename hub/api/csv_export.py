"""CSV exports of history: UTF-8 with a byte-order mark (so Excel shows Vietnamese
right), every field quoted as needed by the csv module, and text that a spreadsheet
would run as a formula (=, +, -, @) defused with a leading apostrophe. Times are in the
hub's `tz` (default Asia/Ho_Chi_Minh); `?lang=vi` gives Vietnamese column names."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi.responses import Response

BOM = "\ufeff"
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


Lang = Literal["en", "vi"]


class LocalTime:
    """Milliseconds -> local time in `tz` with its offset, to the second (what a person
    reads in Excel). A time no calendar can show (a node's clock far in the future, say
    year 60000) is left empty rather than failing the whole export: the `_ms` columns
    keep the number."""

    def __init__(self, tz: str) -> None:
        self.zone = ZoneInfo(tz)

    def __call__(self, ms: int | None) -> str:
        if ms is None:
            return ""
        try:
            return datetime.fromtimestamp(ms / 1000, self.zone).isoformat(timespec="seconds")
        except (OverflowError, ValueError, OSError):
            return ""


def header(names: Sequence[str], lang: Lang, vi: dict[str, str]) -> list[str]:
    """The column names, in Vietnamese for `lang` "vi"."""
    return [vi.get(n, n) for n in names] if lang == "vi" else list(names)


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    w.writerow(header)
    for row in rows:
        w.writerow([cell(v) for v in row])
    return BOM + buf.getvalue()


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    return Response(to_csv(header, rows).encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})
