"""Tables as a bureau holds them: CSV in UTF-8 or GBK, and Excel / OpenDocument sheets.

A CSV that Excel saved on Chinese Windows is GBK (a subset of GB18030), not UTF-8. Without an
explicit ``encoding``, :func:`read_csv_table` tries UTF-8 (with or without BOM) and then
GB18030, and says which it used; a file that is neither is refused with a message that names
``encoding:``. Decoding is strict: a wrong guess fails instead of producing mojibake.

Spreadsheets (``.xlsx``, ``.xlsm``, ``.xls``, ``.ods``) are read by pandas with the calamine
engine (python-calamine, a maintained Rust reader: about 1 s for 100,000 rows where openpyxl
takes 5 s). Row numbers in messages are the spreadsheet's own (the header is row 1).
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from carecheck.errors import DataError

SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
_GUESSES = ("utf-8-sig", "gb18030")


def read_csv_table(
    path: Path, *, encoding: str | None, where: str, text_columns: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, str]:
    """A CSV file as a DataFrame and the encoding it was read with.

    ``text_columns`` are read as text (ids: ``007`` stays ``007``).

    Raises
    ------
    DataError
        When the file cannot be read or decoded, naming the encoding to give.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{where}: cannot read the CSV ({exc.strerror})") from None
    if encoding is not None:
        try:
            text = raw.decode(encoding)
        except LookupError:
            raise DataError(
                f"{where}: unknown encoding {encoding!r}; use e.g. utf-8, gbk or gb18030"
            ) from None
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{where}: not {encoding} text ({exc.reason} at byte {exc.start}); check "
                "`encoding:` (utf-8, gbk or gb18030) or leave it out to detect it"
            ) from None
        used = encoding
        text = text.removeprefix("\ufeff")
    else:
        for guess in _GUESSES:
            try:
                text = raw.decode(guess)
            except UnicodeDecodeError:
                continue
            used = "utf-8" if guess == "utf-8-sig" else guess
            break
        else:
            raise DataError(
                f"{where}: neither UTF-8 nor GB18030/GBK text; give the file's encoding as "
                "`encoding:` on this layer (e.g. big5, utf-16), or save it as UTF-8"
            )
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=dict.fromkeys(text_columns, str))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{where}: cannot read the CSV: {exc}") from None
    return frame, used


def sheet_names(path: Path, where: str) -> list[str]:
    """The names of a spreadsheet's sheets, in order."""
    try:
        with pd.ExcelFile(path, engine="calamine") as book:
            return [str(name) for name in book.sheet_names]
    except (OSError, ValueError) as exc:
        raise DataError(f"{where}: cannot read the spreadsheet ({exc})") from None


def read_sheet_table(
    path: Path, *, sheet: str | None, where: str, text_columns: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, str]:
    """One sheet (default: the first) as a DataFrame, and the sheet's name.

    Cells of ``text_columns`` become text; a whole number stored as a number (Excel keeps
    ``1001`` as 1001.0) becomes ``"1001"``, not ``"1001.0"``.

    Raises
    ------
    DataError
        When the file is unreadable or the sheet is not there (listing the sheets).
    """
    names = sheet_names(path, where)
    if sheet is None:
        if not names:
            raise DataError(f"{where}: the spreadsheet has no sheet")
        sheet = names[0]
    elif sheet not in names:
        raise DataError(
            f"{where}: no sheet {sheet!r}; the sheets are {', '.join(map(repr, names))} "
            "(give one as `sheet:`)"
        )
    try:
        frame = pd.read_excel(path, sheet_name=sheet, engine="calamine", dtype=object)
    except (OSError, ValueError) as exc:
        raise DataError(f"{where}: cannot read sheet {sheet!r} ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in frame.columns:
        if column in text_columns:
            frame[column] = frame[column].map(_as_text)
        else:
            converted = pd.to_numeric(frame[column], errors="coerce")
            blank = frame[column].isna()
            if converted[~blank].notna().all():
                frame[column] = converted
    return frame, sheet


def _as_text(value: object) -> object:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
