"""User text made safe for the files carecheck writes: spreadsheets and Markdown.

Names, ids and regions come from a bureau's own files and may hold anything. A spreadsheet
runs a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a
formula (OWASP, "CSV Injection"), so :func:`spreadsheet_cell` prefixes such a cell with ``'``;
a cell that already starts with ``'`` gets one more, so that :func:`from_spreadsheet_cell`
undoes it exactly. ``+1`` and ``-2.5`` (numbers) are left as they are. :func:`markdown_text`
escapes Markdown and HTML so that a value shows as itself and cannot add headings, links,
images or script to a report.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd

from carecheck.errors import DataError

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
_NUMBER = re.compile(r"[+-](\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")  # inline markup; a value never starts a line


def spreadsheet_cell(value: object) -> object:
    """``value`` as a cell no spreadsheet runs as a formula (strings only; others unchanged)."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    if value[0] in "+-" and _NUMBER.fullmatch(value):
        return value
    return "'" + value


def from_spreadsheet_cell(value: object) -> object:
    """The inverse of :func:`spreadsheet_cell` on a cell read back."""
    if isinstance(value, str) and value.startswith("'"):
        return value[1:]
    return value


def from_spreadsheet_column(cells: pd.Series) -> pd.Series:
    """:func:`from_spreadsheet_cell` on a column of text cells read back, vectorised."""
    quoted = cells.str.startswith("'").to_numpy(bool)
    return cells.where(~quoted, cells.str.slice(1)) if quoted.any() else cells


def spreadsheet_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell and column name made safe by
    :func:`spreadsheet_cell`."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(spreadsheet_cell)
    out.columns = [spreadsheet_cell(str(c)) for c in out.columns]
    return out


def markdown_text(value: object) -> str:
    """``value`` as Markdown text that shows as itself: on one line, HTML and Markdown
    escaped."""
    text = _CONTROL.sub(" ", str(value))
    text = html.escape(text, quote=False)
    return _MARKDOWN.sub(r"\\\1", text)


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` as a CSV that Excel opens as it is: UTF-8 with a BOM (so that 海曙区
    shows), CRLF line ends (RFC 4180; a cell holding a line break is then quoted, whatever it
    is), and no cell that a spreadsheet would run as a formula."""
    spreadsheet_frame(frame).to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")


def read_demand(folder: Path) -> pd.DataFrame:
    """``demand_coverage.csv`` of an output folder, text columns kept as text: the one reader
    of that file for the deliverables (it undoes what :func:`write_csv` did to the cells)."""
    path = folder / "demand_coverage.csv"
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(
            f"{path}: not found; run `carecheck run SCENARIO --out {folder}` first"
        ) from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable demand_coverage.csv ({exc})") from None
    for column in frame.columns:  # undo what made the cells safe for Excel
        frame[column] = from_spreadsheet_column(frame[column])
    frame.columns = [str(from_spreadsheet_cell(c)) for c in frame.columns]
    missing = [c for c in ("demand_id", "weight", "lon", "lat") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}")
    return frame
