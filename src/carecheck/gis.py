"""The GIS layers a planning colleague opens: ``plan.gpkg`` and, on request, ``shapefiles/``.

Written from a finished run's files (``result.json``, ``demand_coverage.csv``, and
``reach_areas.geojson`` when reach follows roads) plus the region polygons the run read. All
layers are in ``outputs.crs`` (default: the run's working CRS, a projected CRS in metres that
ArcGIS Pro and QGIS show without on-the-fly guessing):

============== =============================================================================
layer          what it holds
============== =============================================================================
selected_sites the sites to build, one point each, with ``priority`` (1 = build first) and
               ``marginal_weight`` (the elderly that step adds), cost, beds, reach
existing_sites the facilities kept
demand         every demand unit with, per facility type, ``covered_before_<type>``,
               ``covered_after_<type>`` (0/1) and the nearest open site (id, metres)
regions        the region polygons (when the scenario has them) with, per type, the elderly
               covered before and after and the shares
reach          the area each open site reaches: the road-reach area where the run computed
               one, else the circle of its straight-line radius
============== =============================================================================

``outputs.shapefile: true`` (or ``carecheck run --shapefile``) also writes one Shapefile per
layer into ``shapefiles/``, each with a ``.cpg`` naming its encoding (UTF-8, or GBK with
``outputs.gbk_dbf: true`` for ArcMap 10.x, which reads DBF text in the system code page). A DBF
field name has at most 10 characters: the long names are shortened by :func:`shapefile_names`
and ``shapefiles/fields.csv`` lists every shortened name beside the GeoPackage's.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from carecheck.errors import DataError
from carecheck.outdir import read_result

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

GPKG_FILE = "plan.gpkg"
SHAPEFILE_DIR = "shapefiles"
LAYERS = ("selected_sites", "existing_sites", "demand", "regions", "reach")
GEOMETRY_TYPES = {
    "selected_sites": "Point",
    "existing_sites": "Point",
    "demand": "Point",
    "regions": "MultiPolygon",
    "reach": "MultiPolygon",  # circles and road-reach areas alike, one type per layer
}
SITE_COLUMNS = (
    "priority", "id", "name", "type", "tier", "action", "region", "cost", "beds",
    "marginal_weight", "new_covered_weight", "unique_covered_weight",
    "reach_kind", "reach_value", "reach_mode", "radius_m", "lon", "lat",
)  # fmt: skip
# Prefixes shortened first when a name is longer than a DBF field may be.
_SHORT = (
    ("covered_before_", "cb_"),
    ("covered_after_", "ca_"),
    ("share_before_", "sb_"),
    ("share_after_", "sa_"),
    ("nearest_", "n_"),
    ("marginal_", "marg_"),
    ("unique_covered_", "uniq_"),
    ("new_covered_", "new_"),
    ("demand_", "dem_"),
)
DBF_NAME = 10


def write_gpkg(
    folder: Path,
    regions: gpd.GeoDataFrame | None = None,
    *,
    shapefile: bool = False,
    gbk_dbf: bool = False,
) -> list[Path]:
    """Write ``plan.gpkg`` (and ``shapefiles/``) into a run's output ``folder``.

    Parameters
    ----------
    folder
        A folder holding ``result.json`` and ``demand_coverage.csv``.
    regions
        Region polygons with a ``region`` column and a CRS, or None.
    shapefile
        Also write one Shapefile per layer into ``folder / "shapefiles"``.
    gbk_dbf
        Encode the Shapefiles' text in GBK (for ArcMap 10.x) instead of UTF-8.

    Returns
    -------
    list[Path]
        The files written.
    """
    import pyogrio

    folder = Path(folder)
    layers = plan_layers(folder, regions)
    path = folder / GPKG_FILE
    path.unlink(missing_ok=True)  # a new file, never layers added to an old one
    for name, frame in layers.items():
        geometry = GEOMETRY_TYPES[name]
        pyogrio.write_dataframe(
            frame,
            path,
            layer=name,
            driver="GPKG",
            append=path.exists(),
            geometry_type=geometry,  # declared even when the layer is empty
            promote_to_multi=geometry.startswith("Multi"),
        )
    written = [path]
    if shapefile:
        written += write_shapefiles(
            folder / SHAPEFILE_DIR, layers, encoding="GBK" if gbk_dbf else "UTF-8"
        )
    return written


def plan_layers(
    folder: Path, regions: gpd.GeoDataFrame | None = None
) -> dict[str, gpd.GeoDataFrame]:
    """The layers of ``plan.gpkg`` by name, each in ``outputs.crs``, in :data:`LAYERS` order."""
    document = read_result(folder, needs=("types", "selected", "coverage"))
    working = document.get("crs") or "EPSG:4326"
    target = (document.get("outputs") or {}).get("crs") or working
    types = list(document["types"])
    layers = {
        "selected_sites": _sites(document.get("selected") or [], target),
        "existing_sites": _sites(document.get("existing") or [], target),
        "demand": _demand(folder, types, target),
    }
    if regions is not None and len(regions):
        layers["regions"] = _regions(regions, document, types, target)
    layers["reach"] = _reach(folder, document, working, target)
    return layers


def _points(frame: pd.DataFrame, target: str) -> gpd.GeoDataFrame:
    import geopandas as gpd

    lon = frame["lon"].to_numpy(dtype=float) if len(frame) else np.zeros(0)
    lat = frame["lat"].to_numpy(dtype=float) if len(frame) else np.zeros(0)
    points = gpd.points_from_xy(lon, lat, crs="EPSG:4326")
    return gpd.GeoDataFrame(frame.reset_index(drop=True), geometry=points).to_crs(target)


def _sites(rows: list[dict], target: str) -> gpd.GeoDataFrame:
    import pandas as pd

    frame = pd.DataFrame(rows)
    columns = [c for c in SITE_COLUMNS if c in frame.columns]
    columns += [c for c in frame.columns if c not in columns]
    frame = frame.reindex(columns=columns or ["id", "lon", "lat"])
    if "priority" in frame.columns and len(frame):
        frame = frame.sort_values(["type", "priority"], kind="stable") if "type" in frame else frame
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].map(lambda v: "" if v is None else str(v))
    return _points(frame, target)


def _demand(folder: Path, types: list[str], target: str) -> gpd.GeoDataFrame:
    import pandas as pd

    from carecheck.textsafe import read_demand

    frame = read_demand(folder)
    for column in frame.columns:
        if column in ("weight", "lon", "lat") or (
            column.startswith("nearest_") and column.endswith("_m")
        ):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        elif column.startswith(("covered_before_", "covered_after_")):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype("int8")
    return _points(frame, target)


def _regions(
    regions: gpd.GeoDataFrame, document: dict, types: list[str], target: str
) -> gpd.GeoDataFrame:
    if "region" not in regions.columns or regions.crs is None:
        raise DataError("region polygons need a `region` column and a coordinate reference system")
    frame = regions[["region", "geometry"]].copy()
    frame["region"] = frame["region"].astype(str)
    by_region = {str(row["region"]): row for row in document["coverage"].get("by_region") or []}
    total = np.array(
        [float(by_region.get(r, {}).get("demand_total") or 0.0) for r in frame["region"]]
    )
    frame["demand_total"] = total
    for t in types:
        for when in ("before", "after"):
            covered = np.array(
                [
                    float(
                        ((by_region.get(r) or {}).get("types") or {})
                        .get(t, {})
                        .get(f"covered_{when}")
                        or 0.0
                    )
                    for r in frame["region"]
                ]
            )
            frame[f"covered_{when}_{t}"] = covered
            with np.errstate(invalid="ignore", divide="ignore"):
                frame[f"share_{when}_{t}"] = np.where(
                    total > 0, covered / np.where(total > 0, total, 1), np.nan
                )
    return frame.to_crs(target)


def _reach(folder: Path, document: dict, working: str, target: str) -> gpd.GeoDataFrame:
    """Road-reach areas from ``reach_areas.geojson``, circles for every other open site."""
    import geopandas as gpd
    import pandas as pd

    areas = _read_areas(folder)
    done = (
        set(zip(areas["status"], areas["type"], areas["id"], strict=True)) if len(areas) else set()
    )
    rows = []
    for status, key in (("selected", "selected"), ("existing", "existing")):
        for site in document.get(key) or []:
            if (status, str(site.get("type")), str(site.get("id"))) in done:
                continue
            radius = site.get("radius_m")
            if radius is None or not np.isfinite(float(radius)):
                continue
            rows.append(
                {"status": status, "type": str(site.get("type")), "id": str(site.get("id")),
                 "tier": str(site.get("tier") or ""), "radius_m": float(radius),
                 "lon": float(site["lon"]), "lat": float(site["lat"])}
            )  # fmt: skip
    circles = gpd.GeoDataFrame(
        columns=["status", "type", "id", "tier", "radius_m", "geometry"],
        geometry="geometry",
        crs=target,
    )
    if rows:
        frame = pd.DataFrame(rows)
        centres = _points(frame, working)
        centres["geometry"] = centres.geometry.buffer(frame["radius_m"].to_numpy(), quad_segs=16)
        circles = centres.drop(columns=["lon", "lat"]).to_crs(target)
    if len(areas):
        circles = pd.concat([areas.to_crs(target), circles], ignore_index=True)
    return gpd.GeoDataFrame(circles, geometry="geometry", crs=target)


def _read_areas(folder: Path) -> gpd.GeoDataFrame:
    import geopandas as gpd

    path = folder / "reach_areas.geojson"
    if not path.exists():
        return gpd.GeoDataFrame(
            columns=["status", "type", "id", "geometry"], geometry="geometry", crs="EPSG:4326"
        )
    try:
        collection = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    frame = gpd.GeoDataFrame.from_features(collection.get("features") or [], crs="EPSG:4326")
    for column in ("status", "type", "id"):
        frame[column] = frame[column].astype(str) if column in frame else ""
    return frame


# --------------------------------------------------------------------------- Shapefiles


def shapefile_names(columns: list[str]) -> dict[str, str]:
    """Column → DBF field name of at most 10 characters, unique case-blind, stable in order.

    >>> shapefile_names(["covered_before_institution", "covered_before_institutions"])
    {'covered_before_institution': 'cb_institu', 'covered_before_institutions': 'cb_insti_1'}
    """
    names: dict[str, str] = {}
    used: set[str] = set()
    for column in columns:
        short = column
        for prefix, replacement in _SHORT:
            if len(short) > DBF_NAME and short.startswith(prefix):
                short = replacement + short[len(prefix) :]
        short = short[:DBF_NAME]
        n = 0
        while short.lower() in used:
            n += 1
            suffix = f"_{n}"
            short = short[: DBF_NAME - len(suffix)] + suffix
        used.add(short.lower())
        names[column] = short
    return names


def write_shapefiles(
    folder: Path, layers: dict[str, gpd.GeoDataFrame], *, encoding: str = "UTF-8"
) -> list[Path]:
    """One Shapefile per layer in ``folder``, with its ``.cpg``, and ``fields.csv``.

    Returns the ``.shp`` files and ``fields.csv``.
    """
    import pyogrio

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    listing = [("layer", "shapefile_field", "gpkg_column")]
    for name, frame in layers.items():
        columns = [c for c in frame.columns if c != frame.geometry.name]
        renamed = shapefile_names(columns)
        listing += [(name, renamed[c], c) for c in columns]
        out = frame.rename(columns=renamed)
        path = folder / f"{name}.shp"
        pyogrio.write_dataframe(
            out,
            path,
            driver="ESRI Shapefile",
            encoding=encoding,
            geometry_type=GEOMETRY_TYPES.get(name),
            promote_to_multi=GEOMETRY_TYPES.get(name, "").startswith("Multi"),
        )
        cpg = path.with_suffix(".cpg")
        if not cpg.exists():  # GDAL writes it for UTF-8; say the code page in any case
            cpg.write_text(encoding, encoding="ascii")
        written.append(path)
    fields = folder / "fields.csv"
    with fields.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows(listing)
    return [*written, fields]
