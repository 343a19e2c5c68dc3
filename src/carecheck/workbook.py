"""``plan.xlsx``: the plan as a workbook a planner filters, sorts and forwards (xlsxwriter).

The content comes from :func:`carecheck.handout.workbook_sheets`, the same tables and texts
as the report, in the run's language: the sites to build in build order, coverage per region,
the demand units not covered (largest first), the comparison with ``compare_with``, and the
question, data sources, reach and solver. Numbers are written as numbers (with a number
format: thousands separators, percentages), never as text, so they sum and sort in Excel; a
header names its unit (投资（万元）) and, on a second line, the planner's own column name
from the input file (名称 / 村名). Text from the bureau's files is written as text, so a
name starting with ``=`` is never run as a formula.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from carecheck.handout import (
    Bullets,
    Figure,
    Heading,
    Paragraph,
    Table,
    cell_text,
    shown_width,
    workbook_sheets,
)
from carecheck.outdir import read_result

XLSX_FILE = "plan.xlsx"
# handout's number formats → Excel's
EXCEL_FORMATS = {
    ",.0f": "#,##0",
    ",.1f": "#,##0.0",
    ".1%": "0.0%",
    "+,.0f": "+#,##0;-#,##0;0",
    ".0f": "0",
    ".6f": "0.000000",
}
_SHEET_NAME = re.compile(r"[\[\]:*?/\\]")
MAX_WIDTH = 48  # characters


def write_xlsx(folder: str | Path) -> list[Path]:
    """Write ``plan.xlsx`` into a finished run's ``folder``; returns ``[path]``."""
    import xlsxwriter

    folder = Path(folder)
    document = read_result(folder, needs=("types", "selected", "coverage"))
    sheets = workbook_sheets(document, folder)
    path = folder / XLSX_FILE
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False})
    book.set_properties(
        {
            "title": str(document.get("title") or document.get("scenario") or ""),
            "author": "carecheck",
        }
    )
    styles = _styles(book)
    for sheet in sheets:
        _write_sheet(
            book.add_worksheet(_SHEET_NAME.sub("_", sheet.name)[:31]), sheet.blocks, styles
        )
    book.close()
    return [path]


def _styles(book: Any) -> dict[str | None, Any]:
    styles = {
        "heading": book.add_format({"bold": True, "font_size": 12}),
        "header": book.add_format(
            {"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#DDE5F0", "border": 1}
        ),
        "text": book.add_format({"valign": "top"}),
        None: book.add_format({}),
    }
    for key, excel in EXCEL_FORMATS.items():
        styles[key] = book.add_format({"num_format": excel})
    return styles


def _widths(blocks: tuple) -> dict[int, float]:
    widths: dict[int, float] = {}
    for block in blocks:
        if not isinstance(block, Table):
            continue
        for k, header in enumerate(block.headers):
            longest = max(shown_width(line) for line in header.split("\n"))
            for row in block.rows[:2000]:  # a sample is enough for a width
                longest = max(longest, shown_width(cell_text(row[k], block.formats[k])))
            widths[k] = min(max(widths.get(k, 0), longest + 2), MAX_WIDTH)
    return widths


def _write_sheet(ws: Any, blocks: tuple, styles: dict[str | None, Any]) -> None:
    for k, width in _widths(blocks).items():
        ws.set_column(k, k, width)
    row = 0
    # a sheet holding one table gets a filter and a frozen header (Excel allows one filter a
    # sheet; the settings and comparison sheets hold several tables and get neither)
    single = sum(isinstance(b, Table) for b in blocks) == 1
    for block in blocks:
        if isinstance(block, Heading):
            ws.write_string(row, 0, block.text, styles["heading"])
            row += 1
        elif isinstance(block, Paragraph):
            ws.write_string(row, 0, block.text, styles["text"])
            row += 1
        elif isinstance(block, Bullets):
            for item in block.items:
                ws.write_string(row, 0, item.text, styles["text"])
                row += 1
        elif isinstance(block, Table):
            row = _write_table(ws, row, block, styles, filtered=single)
            row += 1
        elif isinstance(block, Figure):
            continue  # the workbook holds data; the figures are in the report


def _write_table(
    ws: Any, top: int, table: Table, styles: dict[str | None, Any], *, filtered: bool
) -> int:
    lines = max((h.count("\n") + 1 for h in table.headers), default=1)
    ws.set_row(top, 15 * lines)
    for k, header in enumerate(table.headers):
        ws.write_string(top, k, header, styles["header"])
    if filtered and table.headers:
        ws.freeze_panes(top + 1, 0)
        ws.autofilter(top, 0, top + max(len(table.rows), 1), len(table.headers) - 1)
    row = top + 1
    for values in table.rows:
        for k, value in enumerate(values):
            _write_cell(ws, row, k, value, table.formats[k], styles)
        row += 1
    return row


def _write_cell(
    ws: Any, row: int, col: int, value: Any, number_format: str | None, styles: dict
) -> None:
    if value is None or value == "":
        return
    if number_format is not None and isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if number == number and abs(number) != float("inf"):
            ws.write_number(row, col, number, styles.get(number_format, styles[None]))
        return
    ws.write_string(row, col, str(value), styles["text"])
