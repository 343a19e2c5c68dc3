"""What a bureau hands on, written from a finished run's files: the GIS layers, the map pages,
the printable map, the workbook and the report.

The run first writes its data files (``result.json``, ``demand_coverage.csv``,
``selected_sites.geojson``, ``reach_areas.geojson``); :func:`write_deliverables` then writes
every deliverable from those files alone, in an order where each reads only what is already
there:

1. ``plan.gpkg`` (and ``shapefiles/`` with ``outputs.shapefile``) — the one file that needs
   the run's memory: the region polygons (it keeps them, as its ``regions`` layer, for all that
   follow);
2. ``map.html`` (unless the run was asked for no map);
3. ``map.png`` and ``map.pdf``, the printable map (its regions from ``plan.gpkg``);
4. ``plan.xlsx``;
5. ``report.md`` and ``report.docx`` (the printable map, and ``frontier.png`` when there is
   one, as figures).

On a machine with two or more cores and a large run (``demand_coverage.csv`` of
:data:`BESIDE_BYTES` or more, about 20,000 demand units), ``plan.xlsx`` is written by a second
Python process (:class:`_WorkbookBeside`) while this one writes 1–3: xlsxwriter is pure Python
and the GIS and map writers hold the interpreter, so a thread would not run beside them. The
workbook reads only the data files, the same bytes either way (not done where the child could
differ: an objective registered at run time, or a program that is not a Python interpreter); if
the second process fails, the workbook is written again here, where a failure raises its own
error.

:func:`redraw` writes 2–5 again for ``carecheck map OUTDIR`` — optionally in the other
language — into a copy of the folder that replaces it only when every file is done, as a run
does.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from carecheck.outdir import MARKER, locked, read_result, write_folder

if TYPE_CHECKING:
    import geopandas as gpd

LANGS = ("zh", "en")
REPORT_FILES = ("report.md", "report.docx")
BESIDE_BYTES = 1_000_000  # demand_coverage.csv size from which plan.xlsx gets its own process
log = logging.getLogger(__name__)


def write_deliverables(
    folder: Path, *, regions: gpd.GeoDataFrame | None = None, map_html: bool = True
) -> list[Path]:
    """Write every deliverable into ``folder`` from the data files already there.

    Parameters
    ----------
    folder
        The run's new output folder holding ``result.json`` and ``demand_coverage.csv``.
    regions
        Region polygons with a ``region`` column, or None.
    map_html
        Also write ``map.html``.

    Returns
    -------
    list[Path]
        Every file written, in the order written.
    """
    from carecheck.gis import write_gpkg

    folder = Path(folder)
    outputs = read_result(folder).get("outputs") or {}
    with _WorkbookBeside(folder) as workbook:
        written = write_gpkg(
            folder,
            regions,
            shapefile=bool(outputs.get("shapefile")),
            gbk_dbf=bool(outputs.get("gbk_dbf")),
        )
        return written + _drawn(folder, regions=regions, map_html=map_html, workbook=workbook)


def _drawn(
    folder: Path,
    *,
    regions: gpd.GeoDataFrame | None,
    map_html: bool,
    workbook: _WorkbookBeside,
) -> list[Path]:
    """Everything after ``plan.gpkg``: the pages, the printable map, the workbook (collected
    from ``workbook``, entered by the caller), the report."""
    from carecheck.printmap import write_print_map

    written = []
    if map_html:  # folium only for the page
        from carecheck.maps import write_map

        lang = read_result(folder).get("lang") or "zh"
        written.append(write_map(folder, regions=regions, lang=lang))
    written += write_print_map(folder)
    written += workbook.finish()
    return written + write_reports(folder)


class _WorkbookBeside:
    """``plan.xlsx`` from a second Python process, started on entry, collected by
    :meth:`finish` (or written here when there is no second process, or it failed); a process
    still running on exit (another writer raised) is stopped and its partial file removed.

    The child is the same interpreter in isolated mode (``-I``: no ``PYTHON*`` variables, no
    user site, not the working folder; UTF-8 mode) with this process's ``sys.path``, so it
    imports the very modules this one would; its errors go to a temporary file, logged when it
    fails."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.errors: IO[bytes] | None = None

    def __enter__(self) -> _WorkbookBeside:
        from carecheck.workbook import XLSX_FILE

        if not _beside_worth_it(self.folder):
            return self
        import tempfile

        # a workbook copied in (carecheck map) must not pass for the child's
        (self.folder / XLSX_FILE).unlink(missing_ok=True)
        self.errors = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-X",
                    "utf8",  # its error text in UTF-8, whatever the Windows code page
                    "-c",
                    _BESIDE_CODE,
                    str(self.folder),
                    json.dumps(sys.path, ensure_ascii=True),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self.errors,
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError:
            self.process = None  # no second interpreter to start: written here
        return self

    def finish(self) -> list[Path]:
        """Wait for the second process; returns ``[plan.xlsx]``."""
        from carecheck.workbook import XLSX_FILE, write_xlsx

        if self.process is not None:
            try:  # interrupted here, __exit__ stops the process
                code: int | None = self.process.wait(timeout=BESIDE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                code = None
            if code == 0 and (self.folder / XLSX_FILE).is_file():
                self.process = None
                return [self.folder / XLSX_FILE]
            self._stop()
            log.warning(
                "plan.xlsx: the second process %s; writing it here. %s",
                "timed out" if code is None else f"ended with code {code}",
                self._error_text(),
            )
        return write_xlsx(self.folder)

    def __exit__(self, *exc: object) -> None:
        self._stop()
        if self.errors is not None:
            self.errors.close()
            self.errors = None

    def _stop(self) -> None:
        """Stop a child still running, and remove what it may have half written."""
        from carecheck.workbook import XLSX_FILE

        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
            (self.folder / XLSX_FILE).unlink(missing_ok=True)
        self.process = None

    def _error_text(self) -> str:
        if self.errors is None:
            return ""
        self.errors.seek(0)
        return self.errors.read()[-2000:].decode("utf-8", "replace").strip()


# the child: this process's sys.path, then the workbook (argv: folder, sys.path as JSON)
_BESIDE_CODE = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[2]); "
    "from carecheck.workbook import write_xlsx; write_xlsx(sys.argv[1])"
)
BESIDE_TIMEOUT_S = 1800.0  # then the workbook is written here (a child that never ends)


def _beside_worth_it(folder: Path) -> bool:
    """A second process pays for its start-up (~0.5 s) only on two cores and a large run, and
    only where it is the same program: a Python interpreter (not a host program embedding one,
    such as QGIS or ArcGIS Pro, nor a frozen or compiled program), with no objective registered
    at run time (the child would not know it)."""
    from carecheck import objectives

    if _usable_cores() < 2 or objectives.registered():
        return False
    executable = Path(sys.executable or "")
    if not executable.name.lower().startswith("python") or getattr(sys, "frozen", False):
        return False
    if "__compiled__" in globals():  # Nuitka
        return False
    try:
        return (folder / "demand_coverage.csv").stat().st_size >= BESIDE_BYTES
    except OSError:
        return False


def _usable_cores() -> int:
    """Cores this process may run on (its affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def write_reports(folder: Path) -> list[Path]:
    """Write ``report.md`` and ``report.docx`` (one content, :mod:`carecheck.handout`)."""
    from carecheck.handout import markdown_report, write_docx

    folder = Path(folder)
    path = folder / "report.md"
    path.write_text(markdown_report(read_result(folder), folder), encoding="utf-8")
    return [path, *write_docx(folder)]


def redraw(
    out_dir: str | Path,
    *,
    regions_from: Callable[[dict], gpd.GeoDataFrame | None] | None = None,
    lang: str | None = None,
) -> list[Path]:
    """Draw a finished run's map pages, printable map, workbook and report again.

    The files are drawn in a copy of ``out_dir`` that replaces it only when all are written
    (nothing is lost when one fails). ``lang`` (``zh`` or ``en``) draws them in that language
    and records it as the folder's ``lang`` in ``result.json``; None keeps the run's. The
    region polygons come from ``regions_from(result)`` when it returns a frame, else from the
    run's ``plan.gpkg``.

    Returns
    -------
    list[Path]
        The files written, as paths in ``out_dir``.
    """
    if lang is not None and lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
    target = Path(out_dir)
    document = read_result(target, needs=("types", "selected", "coverage"))
    regions = regions_from(document) if regions_from is not None else None
    if regions is None:
        regions = _saved_regions(target)
    names: list[str] = []

    def write(folder: Path) -> None:
        _copy_finished(target, folder)
        if lang is not None and lang != document.get("lang"):
            changed = {**document, "lang": lang}
            (folder / "result.json").write_text(
                json.dumps(changed, ensure_ascii=False, indent=2, allow_nan=False),
                encoding="utf-8",
            )
        with _WorkbookBeside(folder) as workbook:
            drawn = _drawn(folder, regions=regions, map_html=True, workbook=workbook)
        names.extend(p.relative_to(folder).as_posix() for p in drawn)

    with locked(target):
        write_folder(target, write)
    return [target / name for name in names]


def _copy_finished(source: Path, folder: Path) -> None:
    """Copy a finished folder's files (not its marker) into the new ``folder``."""
    for item in source.iterdir():
        if item.name == MARKER or item.name.startswith("."):
            continue
        if item.is_dir():
            shutil.copytree(item, folder / item.name)
        else:
            shutil.copy2(item, folder / item.name)


def _saved_regions(folder: Path) -> gpd.GeoDataFrame | None:
    """The ``regions`` layer of the run's ``plan.gpkg``, or None when it has none."""
    path = folder / "plan.gpkg"
    if not path.is_file():
        return None
    import pyogrio

    if "regions" not in {str(name) for name, _ in pyogrio.list_layers(path)}:
        return None
    return pyogrio.read_dataframe(path, layer="regions")
