"""One layer read as a bureau holds it, and a record of how it was read.

A layer is a GIS file (GeoPackage, GeoJSON, Shapefile: its own geometry and CRS) or a table
(CSV, Excel, OpenDocument) with coordinate columns: ``lon``/``lat`` in degrees, or ``x``/``y``
in a projected ``crs`` (x = easting, y = northing; Chinese survey tables call the northing X).
:func:`read_source` reads it, keeps the rows its ``filter`` asks for, converts Amap/Tencent
(GCJ-02) or Baidu (BD-09) coordinates to WGS84 (``coords``), and refuses, with every problem at
once, what would place points wrong: empty or non-numeric coordinate cells (named by id or by
row number), longitudes or latitudes out of range or swapped, and points outside the area of
use of the layer's CRS (a projected CRS given for longitudes and latitudes, a wrong
Gauss–Krüger zone, x and y swapped). The :class:`Source` it returns says what was read: the
file, sheet or layer, the encoding, the CRS, the conversion and the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from carecheck.config import LayerSpec
from carecheck.coords import to_wgs84
from carecheck.errors import DataError
from carecheck.tables import SPREADSHEET_SUFFIXES, read_csv_table, read_sheet_table

_MAX_LISTED = 5
# how far outside its CRS's area of use a point may lie: distortion has its own check (a 1 %
# limit, carecheck.geocheck); this one catches points that are nowhere near it (metres read
# as degrees or the other way round, a zone number missing from Gauss–Krüger eastings)
AREA_MARGIN_DEG = 3.0


@dataclass
class Source:
    """How one layer was read (recorded in ``result.json``)."""

    path: str
    format: str
    rows_read: int
    rows_kept: int
    crs: str
    coords: str = "wgs84"
    converted_to: str | None = None
    sheet: str | None = None
    layer: str | None = None
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "format": self.format,
            "sheet": self.sheet,
            "layer": self.layer,
            "encoding": self.encoding,
            "crs": self.crs,
            "coords": self.coords,
            "converted_to": self.converted_to,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "notes": list(self.notes),
        }


def listing(values: Any) -> str:
    values = [str(v) for v in values]
    more = f" … and {len(values) - _MAX_LISTED} more" if len(values) > _MAX_LISTED else ""
    return ", ".join(values[:_MAX_LISTED]) + more


def where_of(spec: LayerSpec) -> str:
    place = f" (layer {spec.layer})" if spec.layer else ""
    place += f" (sheet {spec.sheet})" if spec.sheet else ""
    return f"{spec.path}{place}"


def parse_crs(text: str, where: str) -> CRS:
    try:
        return CRS.from_user_input(text)
    except CRSError:
        raise DataError(f"{where}: unknown CRS (got: {text!r}); use e.g. EPSG:4326") from None


def read_source(spec: LayerSpec) -> tuple[gpd.GeoDataFrame, Source]:
    """Read one layer (see the module docstring); its frame keeps the file's columns.

    Raises
    ------
    DataError
        Listing every problem found in the layer.
    """
    suffix = Path(spec.path).suffix.lower()
    if suffix in (".csv", ".txt", *SPREADSHEET_SUFFIXES):
        return _read_table(spec)
    return _read_gis(spec)


# --------------------------------------------------------------------------- tables


def _read_table(spec: LayerSpec) -> tuple[gpd.GeoDataFrame, Source]:
    path = Path(spec.path)
    where = where_of(spec)
    text_columns = (spec.id, *(spec.filter or {}))
    source = Source(str(path), path.suffix.lower().lstrip("."), 0, 0, "")
    if path.suffix.lower() in SPREADSHEET_SUFFIXES:
        frame, source.sheet = read_sheet_table(
            path, sheet=spec.sheet, where=where, text_columns=text_columns
        )
        row_word = f"spreadsheet row(s) (sheet {source.sheet})"
    else:
        frame, source.encoding = read_csv_table(
            path, encoding=spec.encoding, where=where, text_columns=text_columns
        )
        if spec.encoding is None and source.encoding != "utf-8":
            source.notes.append(f"not UTF-8: read as {source.encoding} (detected)")
        row_word = "CSV row(s)"
    source.rows_read = len(frame)
    frame = _filtered(frame, spec, where)
    source.rows_kept = len(frame)
    projected = spec.x is not None
    first, second = (spec.x, spec.y) if projected else (spec.lon or "lon", spec.lat or "lat")
    assert first is not None and second is not None
    missing = [c for c in (first, second) if c not in frame.columns]
    if missing:
        keys = "`x:` and `y:`" if projected else "`lon:` and `lat:`"
        raise DataError(
            f"{where}: coordinate column(s) {missing} not found; give {keys} "
            f"(columns: {listing(frame.columns)})"
        )
    labels = _labels(frame, spec.id, row_word)
    xs = pd.to_numeric(frame[first], errors="coerce").to_numpy(float)
    ys = pd.to_numeric(frame[second], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(xs) | ~np.isfinite(ys)
    problems = []
    if bad.any():
        problems.append(
            f"{where}: {int(bad.sum())} row(s) with an empty or non-numeric {first}/{second} "
            f"cell: {listing(_shown(frame, bad, labels, first, second))}; fill or delete them"
        )
    crs = parse_crs(spec.crs, where) if spec.crs else CRS.from_epsg(4326)
    source.crs = crs.to_string()
    ok = ~bad
    if not projected and crs.is_geographic:
        problems += _range_problems(xs[ok], ys[ok], labels[ok], where, first, second)
    if problems:
        raise DataError(problems)
    kind = _coords_kind(spec, crs, where)
    if kind != "wgs84":
        xs, ys = to_wgs84(kind, xs, ys)
        source.coords, source.converted_to = kind, "wgs84"
    area = _area_problems(crs, xs, ys, labels, where, swap_hint=(first, second))
    if area:
        raise DataError(area)
    geometry = gpd.points_from_xy(xs, ys)
    frame = frame.drop(columns=[first, second]).reset_index(drop=True)
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=crs), source


def _coords_kind(spec: LayerSpec, crs: CRS, where: str) -> str:
    """The layer's ``coords`` (default wgs84); refused on a projected layer."""
    kind = spec.coords or "wgs84"
    if kind != "wgs84" and not crs.is_geographic:
        raise DataError(
            f"{where}: `coords: {kind}` is for longitude/latitude, but the layer's CRS "
            f"{crs.to_string()} is projected; leave `coords` out for projected layers"
        )
    return kind


def _labels(frame: pd.DataFrame, id_column: str, row_word: str) -> np.ndarray:
    """Row labels for messages: ``id X`` where the id column is there, else the row number
    in the file (header = row 1)."""
    if id_column in frame.columns:
        return np.array([f"id {v}" for v in frame[id_column].astype(str)], dtype=object)
    word = row_word.replace("(s)", "")
    return np.array([f"{word} {int(i) + 2}" for i in frame.index], dtype=object)


def _shown(
    frame: pd.DataFrame, bad: np.ndarray, labels: np.ndarray, first: str, second: str
) -> list[str]:
    rows = np.flatnonzero(bad)
    return [
        f"{labels[k]} ({first}={_cell(frame[first].iloc[k])}, "
        f"{second}={_cell(frame[second].iloc[k])})"
        for k in rows
    ]


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "empty"
    if isinstance(value, str):
        return repr(value)
    return str(value.item() if isinstance(value, np.generic) else value)


def _range_problems(
    lon: np.ndarray, lat: np.ndarray, labels: np.ndarray, where: str, first: str, second: str
) -> list[str]:
    """Longitudes in [-180, 180] and latitudes in [-90, 90]; columns that look swapped."""
    bad_lat = np.abs(lat) > 90.0
    bad_lon = np.abs(lon) > 180.0
    if not (bad_lat.any() or bad_lon.any()):
        return []
    if bad_lat.any() and (np.abs(lon) <= 90.0).all():
        share = bad_lat.mean()
        return [
            f"{where}: the columns {first!r} (longitude) and {second!r} (latitude) look swapped: "
            f"{second!r} holds {lat[bad_lat][0]:g} at {labels[bad_lat][0]} ({share:.0%} of the "
            f"rows beyond ±90°); give `lon: {second}` and `lat: {first}`"
        ]
    problems = []
    for mask, column, limit in ((bad_lon, first, 180), (bad_lat, second, 90)):
        if mask.any():
            rows = [
                f"{labels[k]} ({column}={v:g})"
                for k, v in zip(
                    np.flatnonzero(mask), (lon if column == first else lat)[mask], strict=True
                )
            ]
            problems.append(
                f"{where}: {int(mask.sum())} row(s) with {column!r} beyond ±{limit}°: "
                f"{listing(rows)}; correct them (or give `x:`/`y:` and `crs:` for a projected "
                "table)"
            )
    return problems


def _area_problems(
    crs: CRS,
    xs: np.ndarray,
    ys: np.ndarray,
    labels: np.ndarray,
    where: str,
    *,
    swap_hint: tuple[str, str] | None = None,
) -> list[str]:
    """Points outside the area of use of ``crs`` (by more than :data:`AREA_MARGIN_DEG`)."""
    area = crs.area_of_use
    if area is None or not len(xs):
        return []
    outside = _outside(crs, xs, ys, area)
    if not outside.any():
        return []
    rows = [f"{labels[k]} at ({xs[k]:.6g}, {ys[k]:.6g})" for k in np.flatnonzero(outside)]
    hint = ""
    if crs.is_projected and swap_hint is not None and not _outside(crs, ys, xs, area).any():
        hint = (
            f" With the two swapped every point lies inside: give `x: {swap_hint[1]}` and "
            f"`y: {swap_hint[0]}` (x is the easting; Chinese survey tables call the northing X)."
        )
    elif crs.is_projected and (np.abs(xs) <= 180).all() and (np.abs(ys) <= 90).all():
        hint = (
            " The values look like longitudes and latitudes: drop `crs:` (or give EPSG:4326), "
            "or give the table's projected coordinates."
        )
    else:
        hint = (
            " Check the CRS: the right one for the data (for CGCS2000 Gauss–Krüger, the zone "
            "whose central meridian is nearest the data), or correct the rows."
        )
    return [
        f"{where}: {int(outside.sum())} of {len(xs)} point(s) lie outside the area of use of "
        f"{crs.to_string()} ({crs.name}: {area.west:g}–{area.east:g}° E, "
        f"{area.south:g}–{area.north:g}° N, give or take {AREA_MARGIN_DEG:g}°): "
        f"{listing(rows)}.{hint}"
    ]


def _outside(crs: CRS, xs: np.ndarray, ys: np.ndarray, area: Any) -> np.ndarray:
    if crs.is_geographic:
        lon, lat = np.asarray(xs, float), np.asarray(ys, float)
    else:
        to_lonlat = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
        with np.errstate(invalid="ignore"):
            lon, lat = to_lonlat.transform(np.asarray(xs, float), np.asarray(ys, float))
    m = AREA_MARGIN_DEG
    west, east = area.west - m, area.east + m
    across = west > east  # an area across the antimeridian
    in_lon = ((lon >= west) | (lon <= east)) if across else ((lon >= west) & (lon <= east))
    inside = in_lon & (lat >= area.south - m) & (lat <= area.north + m)
    return ~(inside & np.isfinite(lon) & np.isfinite(lat))


def _filtered(frame: pd.DataFrame, spec: LayerSpec, where: str) -> pd.DataFrame:
    """The rows whose columns equal ``spec.filter``'s values (a list: any of them)."""
    if not spec.filter:
        return frame
    keep = np.ones(len(frame), dtype=bool)
    for column, wanted in spec.filter.items():
        if column not in frame.columns:
            raise DataError(
                f"{where}: filter column {column!r} not found; columns are "
                f"{listing(c for c in frame.columns if c != 'geometry')}"
            )
        values = wanted if isinstance(wanted, list) else [wanted]
        cells = frame[column]
        texts = cells.map(lambda v: None if pd.isna(v) else str(v).strip())
        numbers = pd.to_numeric(cells, errors="coerce")
        match = np.zeros(len(frame), dtype=bool)
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float):
                match |= (texts == str(value).strip()).to_numpy()
            else:
                match |= (numbers == value).to_numpy()
        if not match.any():
            present = sorted({t for t in texts if t is not None})
            raise DataError(
                f"{where}: filter {column}: {wanted!r} keeps no row; the values in "
                f"{column!r} are {listing(present)}"
            )
        keep &= match
    if not keep.any():
        raise DataError(f"{where}: the filter {spec.filter!r} keeps no row (no row meets all)")
    return frame[keep].reset_index(drop=True)


# --------------------------------------------------------------------------- GIS files


def _read_gis(spec: LayerSpec) -> tuple[gpd.GeoDataFrame, Source]:
    path = Path(spec.path)
    where = where_of(spec)
    source = Source(str(path), path.suffix.lower().lstrip("."), 0, 0, "", layer=spec.layer)
    options: dict[str, Any] = {}
    if path.suffix.lower() == ".shp":
        encoding = spec.encoding or _shapefile_encoding(path, where, source)
        if encoding is not None:
            options["encoding"] = encoding
            source.encoding = encoding
    try:
        frame = gpd.read_file(path, layer=spec.layer, engine="pyogrio", **options)
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = " — check `layer:`" if spec.layer else ""
        raise DataError(f"{where}: cannot read the layer: {detail}{hint}") from None
    if frame.crs is None and spec.crs is None:
        raise DataError(
            f"{where}: the layer has no coordinate reference system; save it with one "
            "(e.g. EPSG:4326) or give `crs:` for this layer in the scenario"
        )
    if spec.crs is not None:
        frame = frame.set_crs(parse_crs(spec.crs, where), allow_override=True)
    source.rows_read = len(frame)
    frame = gpd.GeoDataFrame(_filtered(frame, spec, where), crs=frame.crs)
    source.rows_kept = len(frame)
    crs = frame.crs
    source.crs = crs.to_string()
    kind = _coords_kind(spec, crs, where)
    if kind != "wgs84":
        frame = frame.set_geometry(
            shapely.transform(
                frame.geometry.to_numpy(),
                lambda xy: np.column_stack(to_wgs84(kind, xy[:, 0], xy[:, 1])),
            )
        )
        source.coords, source.converted_to = kind, "wgs84"
    geometry = frame.geometry
    present = geometry.notna().to_numpy() & ~geometry.is_empty.to_numpy()
    if present.any():
        points = geometry[present].representative_point()
        labels = (
            _labels(frame[present], spec.id, "feature")
            if spec.id in frame.columns
            else np.array([f"feature {k + 1}" for k in np.flatnonzero(present)], dtype=object)
        )
        area = _area_problems(crs, points.x.to_numpy(), points.y.to_numpy(), labels, where)
        if area:
            raise DataError(area)
    return frame, source


def _shapefile_encoding(path: Path, where: str, source: Source) -> str | None:
    """The encoding of a Shapefile's attributes: its ``.cpg`` when there is one (GDAL reads
    it); else UTF-8 when the DBF's text is valid UTF-8; else GB18030 (ArcMap on Chinese
    Windows writes the system code page, GBK) when that decodes, with a note."""
    if any(path.with_suffix(s).exists() for s in (".cpg", ".CPG")):
        return None
    dbf = next(
        (p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None
    )
    if dbf is None:
        return None
    text = _dbf_text(dbf.read_bytes())
    try:
        text.decode("utf-8")
        return None if text.isascii() else "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        text.decode("gb18030")
    except UnicodeDecodeError:
        raise DataError(
            f"{where}: the Shapefile has no .cpg and its attributes are neither UTF-8 nor "
            "GB18030/GBK text; give its encoding as `encoding:` on this layer (e.g. big5)"
        ) from None
    source.notes.append("no .cpg and not UTF-8: attributes read as GB18030 (GBK)")
    return "GB18030"


def _dbf_text(raw: bytes) -> bytes:
    """The text bytes of a dBASE file: its field names and its records (the header's binary
    fields — lengths, counts — left out)."""
    if len(raw) < 32:
        return b""
    header_length = int.from_bytes(raw[8:10], "little")
    names = b"".join(
        raw[offset : offset + 11].split(b"\x00")[0]
        for offset in range(32, max(32, header_length - 1), 32)
    )
    return names + raw[header_length:].rstrip(b"\x1a")
