"""Render a finished run's outputs as an interactive map, ``map.html``, with folium.

The map is built from the files a run leaves in its output folder (``result.json``,
``demand_coverage.csv``), so it can be redrawn later without solving again. It shows the
region choropleth of coverage after the plan, every demand point coloured by its coverage,
existing facilities and selected sites with their reach, a summary and a legend.

How it is put together:

- folium builds the page: map, tile layers, layer control, scale bar, full-screen and measure
  controls. The data layers are created in the browser by a small script (the package file
  ``assets/map.js``, styled by ``assets/map.css``) from one compact JSON document embedded
  once, so 100,000 demand points cost a few megabytes of arrays drawn on one canvas, not
  100,000 marker objects, and region polygons are embedded once even when several facility
  types each get a choropleth.
- Display text in Chinese and English, and the names of known facility types and tiers, come
  from one table, :mod:`carecheck.labels`; the renderer knows no type or tier by name.
- Every text that comes from data is passed through :func:`html.escape` in Python before it
  reaches the page; the script only assembles those escaped strings and numbers. The embedded
  JSON has ``<`` and ``>`` written as ``\\u003c`` / ``\\u003e`` so no data can close the
  ``<script>`` element.
- The page needs no network: Leaflet and the two plugins are always inlined from the
  ``folium-offline`` package, which keeps verbatim copies of the exact files folium links to
  (looked up by their URL). The map opens on the "no tiles" base map (region boundaries are
  vector data); OpenStreetMap and a light base map are offered in the layer control, hidden
  at first, and a tile that cannot load (no internet) leaves the map as it was and a note
  in the layer control, not a broken image.
- Layout: the initial view is fitted so that no site lies under a panel (title, summary,
  legend, layer control, zoom buttons), whatever the window size; every panel folds up by its
  title. Printing (``@media print``) puts the map alone on a landscape page, with its title,
  legend and scale bar, and re-fits the view to the page.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections import Counter
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.map import Layer
from folium.template import Template

from carecheck import schema
from carecheck.errors import CarecheckError, DataError
from carecheck.labels import LABELS, LANGS, TIER_SIZES, site_labels
from carecheck.outdir import read_result
from carecheck.palette import (
    NO_DATA_COLOUR,
    SHARE_BREAKS,
    SHARE_COLOURS,
    STATUS_COLOURS,
    TYPE_COLOURS,
    TYPE_SHAPES,
)
from carecheck.textsafe import read_demand
from carecheck.units import money

MAP_FILE = "map.html"
AREAS_FILE = "reach_areas.geojson"

DEFAULT_SITE_SIZE = 20  # pixels, a selected site of a tier not in labels.TIER_SIZES


def write_map(
    folder: str | Path,
    *,
    regions: gpd.GeoDataFrame | None = None,
    lang: str = "zh",
    offline: bool = False,
) -> Path:
    """Write ``folder / "map.html"`` from the run outputs already in ``folder``.

    Parameters
    ----------
    folder
        A finished run's output folder holding ``result.json`` and ``demand_coverage.csv``.
    regions
        Region polygons with a ``region`` column whose names match the demand ``region``
        values (any CRS; drawn in EPSG:4326), or None for no choropleth.
    lang
        ``"zh"`` or ``"en"``: the language of labels, legend, popups and summary. Place names
        are shown as they are in the data either way.
    offline
        Accepted for old callers and ignored: the page is always self-contained (Leaflet and
        its plugins inlined) and opens on the "no tiles" base map.

    Returns
    -------
    Path
        The path of the written ``map.html``.

    Raises
    ------
    DataError
        An output file is missing or unreadable, or ``regions`` lacks a ``region`` column.
    CarecheckError
        folium-offline holds no copy of a file folium links to (the two packages' versions
        do not match).
    """
    folder = Path(folder)
    page = html_from_outputs(folder, regions=regions, lang=lang, offline=offline)
    path = folder / MAP_FILE
    tmp = path.with_name(f".{MAP_FILE}.tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def html_from_outputs(
    folder: str | Path,
    *,
    regions: gpd.GeoDataFrame | None = None,
    lang: str = "zh",
    offline: bool = False,
) -> str:
    """The HTML text of the map of the run outputs in ``folder`` (see :func:`write_map`)."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
    folder = Path(folder)
    document = read_result(folder, needs=("types", "selected", "coverage"))
    demand = read_demand(folder)
    del offline  # always self-contained
    data = map_data(document, demand, regions=regions, lang=lang, areas=read_areas(folder))
    return _render(data, document, lang=lang)


def read_areas(folder: Path) -> dict[tuple[str, str, str], dict]:
    """Travel-time / road-distance areas of sites with network reach, when the run has them:
    (status, type, id) → GeoJSON geometry with coordinates rounded to about 1 m."""
    path = folder / AREAS_FILE
    if not path.exists():
        return {}
    try:
        collection = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    areas = {}
    for feature in collection.get("features", []):
        props = feature.get("properties") or {}
        geometry = feature.get("geometry")
        if geometry is None:
            continue
        key = (str(props.get("status")), str(props.get("type")), str(props.get("id")))
        areas[key] = _rounded(geometry)
    return areas


def _rounded(geometry: dict) -> dict:
    def walk(value: Any) -> Any:
        if isinstance(value, list):
            if value and isinstance(value[0], int | float):
                return [round(float(v), 5) for v in value]
            return [walk(v) for v in value]
        return value

    return {"type": geometry.get("type"), "coordinates": walk(geometry.get("coordinates"))}


# --------------------------------------------------------------------------- reading


# --------------------------------------------------------------------------- the data document


def _e(value: Any) -> str:
    """Data text → HTML-escaped text ('' for missing values)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return html.escape(str(value), quote=True)


def _number(value: Any, digits: int = 0) -> str:
    if value is None or isinstance(value, bool):
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(number):
        return "–"
    return f"{number:,.{digits}f}"


def _share(part: Any, total: Any) -> str:
    try:
        p, t = float(part), float(total)
    except (TypeError, ValueError):
        return "–"
    return f"{p / t:.1%}" if t else "–"


def _distance(metres: Any) -> str:
    try:
        m = float(metres)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(m):
        return "–"
    return f"{m / 1000:,.1f} km" if m >= 1000 else f"{m:,.0f} m"


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(float)


def _compact(values: np.ndarray, digits: int) -> list[float | int | None]:
    """Numbers for JSON: integers where they are whole, None for missing."""
    rounded = np.round(values, digits)
    out: list[float | int | None] = []
    for v in rounded.tolist():
        if not math.isfinite(v):
            out.append(None)
        elif float(v).is_integer():
            out.append(int(v))
        else:
            out.append(v)
    return out


class _Names:
    """Display names in one language (from :data:`carecheck.labels.LABELS`); every name that
    comes from data is escaped, and a data value the table does not name is shown as it is.
    Money is shown with the run's ``cost_unit`` (:func:`carecheck.units.money`)."""

    def __init__(self, lang: str, *, cost_unit: str | None = None) -> None:
        self.lang = lang
        self.cost_unit = cost_unit
        self._table = LABELS[lang]
        self.labels = {k: html.escape(v) for k, v in self._table["ui"].items()}

    def _value(self, kind: str, name: object) -> str:
        return _e(self._table[kind].get(str(name), name))

    def type(self, name: object) -> str:
        return self._value("type", name)

    def tier(self, name: object) -> str:
        if name is None or name == "":
            return "–"
        return self._value("tier", name)

    def tier_letter(self, name: object) -> str:
        letters = self._table["tier_letter"]
        return _e(letters.get(name, name[:1]) if isinstance(name, str) else str(name)[:1])

    def action(self, name: object) -> str:
        if name is None or name == "":
            return self._value("action", "new")
        return self._value("action", name)

    def status(self, name: object) -> str:
        return self._value("status", name)

    def money(self, value: object) -> str:
        """An amount with the run's unit (and the larger unit where natural), escaped."""
        amount = _float(value) if isinstance(value, int | float | str) else math.nan
        if isinstance(value, bool) or not math.isfinite(amount):
            return "–"
        return _e(money(amount, self.cost_unit, self.lang))


def map_data(
    document: dict,
    demand: pd.DataFrame,
    *,
    regions: gpd.GeoDataFrame | None = None,
    lang: str = "zh",
    areas: dict[tuple[str, str, str], dict] | None = None,
) -> dict:
    """The JSON document the page's script draws from (all text in it already escaped)."""
    areas = areas or {}
    if regions is not None:
        regions = _regions_in_lonlat(regions)
    unit = document.get("cost_unit")
    names = _Names(lang, cost_unit=str(unit) if unit not in (None, "") else None)
    types = list(document["types"])
    type_info = [
        {
            "key": _e(t),
            "label": names.type(t),
            "colour": TYPE_COLOURS[k % len(TYPE_COLOURS)],
            "shape": TYPE_SHAPES[k % len(TYPE_SHAPES)],
        }
        for k, t in enumerate(types)
    ]
    tiers: list[str] = []
    for site in [*document.get("selected", []), *document.get("existing", [])]:
        tier = site.get("tier")
        if tier not in (None, "") and tier not in tiers:
            tiers.append(tier)
    tiers.sort(key=_tier_order)
    tier_info = [
        {
            "label": names.tier(t),
            "letter": names.tier_letter(t),
            "size": TIER_SIZES.get(t, DEFAULT_SITE_SIZE),
        }
        for t in tiers
    ]
    region_names = _region_names(document, demand, regions)
    data: dict[str, Any] = {
        "bounds": _bounds(document, demand, regions),
        "labels": names.labels,
        "types": type_info,
        "tiers": tier_info,
        "style": {
            "breaks": list(SHARE_BREAKS),
            "ramp": list(SHARE_COLOURS),
            "noData": NO_DATA_COLOUR,
            "status": list(STATUS_COLOURS),
            "siteSize": DEFAULT_SITE_SIZE,
        },
        "regionNames": [_e(r) for r in region_names],
        "demand": _demand_data(demand, types, region_names),
        "sites": {
            "selected": _site_data(
                document.get("selected", []),
                types,
                tiers,
                names,
                True,
                areas,
                site_labels(document),
            ),
            "existing": _site_data(document.get("existing", []), types, tiers, names, False, areas),
        },
        "regions": (None if regions is None else _region_data(regions, document, types, names)),
        "title": _title_html(document),
        "summary": _summary_html(document, types, names),
        "legend": _legend_html(type_info, tier_info, names, has_regions=regions is not None),
        "tiles": _tile_sources(),
        "page": _print_page(document),
    }
    return data


def _tier_order(tier: object) -> tuple[int, str]:
    """The known tiers first, in the order of labels.TIER_SIZES, then any other by name."""
    known = list(TIER_SIZES)
    return (known.index(tier), "") if tier in known else (len(known), str(tier))


def _region_names(
    document: dict, demand: pd.DataFrame, regions: gpd.GeoDataFrame | None
) -> list[str]:
    found: list[str] = [str(b["region"]) for b in document["coverage"].get("by_region", [])]
    if "region" in demand.columns:
        found += [r for r in demand["region"].unique().tolist() if r != ""]
    if regions is not None and "region" in regions.columns:
        found += [str(r) for r in regions["region"]]
    return list(dict.fromkeys(found))


def _demand_data(demand: pd.DataFrame, types: list[str], region_names: list[str]) -> dict:
    """Demand as compact arrays, heaviest first (so small points are drawn on top)."""
    weight = np.nan_to_num(_numeric(demand, "weight"))
    lon, lat = _numeric(demand, "lon"), _numeric(demand, "lat")
    keep = np.isfinite(lon) & np.isfinite(lat)
    order = np.flatnonzero(keep)[np.argsort(-weight[keep], kind="stable")]
    frame = demand.iloc[order]
    weight, lon, lat = weight[order], lon[order], lat[order]
    scale = 100_000  # 1e-5 degree ≈ 1 m
    lon0 = float(np.floor(lon.min() * 100) / 100) if len(lon) else 0.0
    lat0 = float(np.floor(lat.min() * 100) / 100) if len(lat) else 0.0
    region_index = {r: k for k, r in enumerate(region_names)}
    statuses: list[str] = []
    nearest: list[dict | None] = []
    for t in types:
        before = _numeric(frame, f"covered_before_{t}") > 0
        after = _numeric(frame, f"covered_after_{t}") > 0
        code = np.where(before, 1, np.where(after, 2, 0)).astype(np.uint8) + ord("0")
        statuses.append(code.tobytes().decode("ascii"))
        id_column = f"nearest_{t}_id"
        if id_column in frame.columns:
            ids = frame[id_column]
            codes, uniques = pd.factorize(ids.mask(ids == ""))
            nearest.append(
                {
                    "ids": [_e(u) for u in uniques],
                    "i": codes.tolist(),
                    "m": _compact(_numeric(frame, f"nearest_{t}_m"), 0),
                }
            )
        else:
            nearest.append(None)

    def text(column: str) -> list[str]:
        return [_e(v) for v in frame[column]]

    return {
        "scale": scale,
        "lon0": lon0,
        "lat0": lat0,
        "x": np.round((lon - lon0) * scale).astype(np.int64).tolist(),
        "y": np.round((lat - lat0) * scale).astype(np.int64).tolist(),
        "w": _compact(weight, 2),
        "wref": float(np.quantile(weight, 0.99)) if len(weight) and weight.max() > 0 else 1.0,
        "id": text("demand_id"),
        "name": text("name") if "name" in frame.columns else None,
        "region": (
            [region_index.get(r, -1) for r in frame["region"]]
            if "region" in frame.columns
            else None
        ),
        "status": statuses,
        "nearest": nearest,
    }


def _site_data(
    rows: list[dict],
    types: list[str],
    tiers: list[str],
    names: _Names,
    selected: bool,
    areas: dict[tuple[str, str, str], dict] | None = None,
    numbers: dict[tuple[str, str], str] | None = None,
) -> list[dict]:
    """The sites as the page draws them; ``numbers`` gives a selected site's label on the
    map (:func:`carecheck.labels.site_labels`: build order, with the type's letter)."""
    labels = names.labels
    areas = areas or {}
    numbers = numbers or {}
    out = []
    for row in rows:
        try:
            lon, lat = float(row["lon"]), float(row["lat"])
        except (KeyError, TypeError, ValueError):
            continue
        if not (math.isfinite(lon) and math.isfinite(lat)):
            continue
        type_name = row.get("type")
        t = types.index(type_name) if type_name in types else -1
        tier = row.get("tier")
        shown = (
            schema.POPUP if selected else [c for c in schema.POPUP if c in schema.POPUP_EXISTING]
        )
        cells = [(labels[_popup_label(c)], _popup_cell(c, row, names)) for c in shown]
        cells = [(k, v) for k, v in cells if v is not None]
        kind = labels["selected"] if selected else labels["existing"]
        name = _e(row.get("name")) or _e(row.get("id"))
        number = numbers.get((str(type_name), str(row.get("id"))))
        shown_name = f"{_e(number)} · {name}" if number else name
        popup = (
            f'<div class="cc-popup cc-site-popup" data-site-id="{_e(row.get("id"))}">'
            f'<div class="cc-popup-title">{name}</div>'
            f'<div class="cc-muted">{_e(number) + " · " if number else ""}{kind} · '
            f"{names.type(type_name)}</div><table>"
            + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in cells)
            + "</table></div>"
        )
        radius = row.get("radius_m")
        out.append(
            {
                "id": str(row.get("id")),
                "lon": round(lon, 6),
                "lat": round(lat, 6),
                "t": t,
                "tier": tiers.index(tier) if tier in tiers else -1,
                "expand": row.get("action") == "expand",
                "r": float(radius) if isinstance(radius, int | float) else None,
                "area": areas.get(
                    ("selected" if selected else "existing", str(type_name), str(row.get("id")))
                ),
                "n": _e(number) if number else None,
                "tip": f"{shown_name} · {kind}",
                "popup": popup,
            }
        )
    return out


def _popup_label(column: str) -> str:
    """The label key of a popup cell."""
    return "radius" if column == "reach" else schema.SITE[column].label or column


def _popup_cell(column: str, row: dict, names: _Names) -> str | None:
    """One popup cell of a site (:data:`carecheck.schema.POPUP`); None leaves it out."""
    if column == "reach":
        return _reach_text(row, names)
    attribute = schema.SITE[column]
    value = row.get(column)
    if column == "cost":
        return names.money(value)
    if attribute.kind == "word":
        return getattr(names, column)(value)
    if attribute.kind == "number":
        return _number(value, attribute.digits)
    return None if value in (None, "") else _e(value)


def _reach_text(row: dict, names: _Names) -> str:
    """The site's reach: a radius, a distance along roads or a travel time."""
    kind, value = row.get("reach_kind"), row.get("reach_value")
    if kind in (None, "radius_m") or not isinstance(value, int | float):
        return _distance(row.get("radius_m"))
    if kind == "network_m":
        return f"{_distance(value)} {names.labels['by_road']}"
    mode = names.labels["walk"] if row.get("reach_mode") == "walk" else names.labels["drive"]
    return f"{_number(value)} {names.labels['minutes']} {mode}"


def _regions_in_lonlat(regions: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The region layer checked and in EPSG:4326 (a layer without a CRS is taken as such)."""
    if "region" not in regions.columns:
        raise DataError(
            f"regions: a `region` column is needed (columns are {list(regions.columns)}); "
            "load them with carecheck.data.load_regions"
        )
    if regions.crs is not None and not regions.crs.equals("EPSG:4326"):
        return regions.to_crs(4326)
    return regions


def _simplified(regions: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Region outlines simplified to about 1/3000 of the extent, shared edges kept shared."""
    geometry = regions.geometry
    minx, miny, maxx, maxy = geometry.total_bounds
    tolerance = max(maxx - minx, maxy - miny, 1e-6) / 3000
    geoms = geometry.to_numpy()
    try:
        simple = shapely.coverage_simplify(geoms, tolerance)
        if not shapely.is_valid(simple).all():
            raise ValueError("coverage simplification gave invalid polygons")
    except (AttributeError, ValueError, shapely.errors.GEOSException):
        # not a clean coverage (or an old GEOS): simplify each polygon on its own
        simple = shapely.simplify(geoms, tolerance, preserve_topology=True)
    simple = shapely.transform(simple, lambda xy: np.round(xy, 5))
    return gpd.GeoSeries(simple, index=regions.index, crs=4326)


def _region_data(
    regions: gpd.GeoDataFrame, document: dict, types: list[str], names: _Names
) -> dict:
    labels = names.labels
    geometry = _simplified(regions)
    blocks = {str(b["region"]): b for b in document["coverage"].get("by_region", [])}
    opened = _sites_by_region(document.get("selected", []), regions, geometry)
    features: list[dict] = []
    info: list[dict] = []
    for region, geom in zip(regions["region"], geometry, strict=True):
        if geom is None or geom.is_empty:
            continue
        region = str(region)
        block = blocks.get(region)
        total = block["demand_total"] if block else None
        shares: list[float | None] = []
        lines = []
        for t in types:
            c = (block or {}).get("types", {}).get(t)
            if c is None or not total:
                shares.append(None)
                continue
            shares.append(round(c["covered_after"] / total, 4))
            lines.append(
                f"<tr><th>{names.type(t)}</th><td>{_share(c['covered_before'], total)} → "
                f'<b>{_share(c["covered_after"], total)}</b></td><td class="cc-muted">'
                f"{_number(c['covered_before'])} → {_number(c['covered_after'])}</td></tr>"
            )
        counts = opened.get(region, Counter())
        sites = ", ".join(f"{names.type(t)} {counts[t]}" for t in types if counts[t])
        popup = (
            f'<div class="cc-popup cc-region-popup"><div class="cc-popup-title">{_e(region)}</div>'
            f"<div>{labels['elderly_total']}: <b>{_number(total)}</b></div>"
            + (
                f'<table><tr><th></th><td colspan="2">{labels["coverage"]}</td></tr>'
                + "".join(lines)
                + "</table>"
                if lines
                else f'<div class="cc-muted">{labels["no_data"]}</div>'
            )
            + f"<div>{labels['sites_opened']}: {sites or labels['none']}</div></div>"
        )
        tips = [
            f"{_e(region)} · {names.type(t)} {'–' if s is None else f'{s:.1%}'}"
            for t, s in zip(types, shares, strict=True)
        ]
        point = geom.representative_point()
        features.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(geom),
                "properties": {"i": len(info)},
            }
        )
        info.append(
            {
                "name": _e(region),
                "share": shares,
                "popup": popup,
                "tips": tips,
                "lon": round(point.x, 5),
                "lat": round(point.y, 5),
            }
        )
    return {"geojson": {"type": "FeatureCollection", "features": features}, "info": info}


def _sites_by_region(
    rows: list[dict], regions: gpd.GeoDataFrame, geometry: gpd.GeoSeries
) -> dict[str, Counter]:
    """Selected sites per region and type: the site's own region, else the polygon it is in."""
    known = {str(r) for r in regions["region"]}
    out: dict[str, Counter] = {}
    for row in rows:
        region = row.get("region")
        if region not in known:
            region = None
            try:
                point = shapely.Point(float(row["lon"]), float(row["lat"]))
            except (KeyError, TypeError, ValueError):
                continue
            for name, geom in zip(regions["region"], geometry, strict=True):
                if geom is not None and geom.covers(point):
                    region = str(name)
                    break
        if region is not None:
            out.setdefault(str(region), Counter())[row.get("type")] += 1
    return out


def _title_html(document: dict) -> str:
    title = document.get("title") or document.get("scenario") or "carecheck"
    scenario = document.get("scenario")
    sub = f'<div class="cc-muted">{_e(scenario)}</div>' if scenario and scenario != title else ""
    return f'<div class="cc-title-text">{_e(title)}</div>{sub}'


def _summary_html(document: dict, types: list[str], names: _Names) -> str:
    labels = names.labels
    coverage = document["coverage"]
    total = coverage.get("demand_total")
    rows = []
    for t in types:
        c = coverage.get("types", {}).get(t, {})
        before, after = c.get("covered_before"), c.get("covered_after")
        rows.append(
            f'<tr data-type="{_e(t)}"><th>{names.type(t)}</th>'
            f'<td class="cc-before" data-value="{_e(before)}">{_number(before)}'
            f' <span class="cc-muted">({_share(before, total)})</span></td><td>→</td>'
            f'<td class="cc-after" data-value="{_e(after)}"><b>{_number(after)}</b>'
            f' <span class="cc-muted">({_share(after, total)})</span></td></tr>'
        )
    selected = document.get("selected", [])
    by_type = Counter(s.get("type") for s in selected)
    site_rows = []
    for t in types:
        tiers = Counter(s.get("tier") for s in selected if s.get("type") == t)
        detail = ", ".join(
            f"{names.tier(tier)} {tiers[tier]}"
            for tier in sorted(tiers, key=_tier_order)
            if tier not in (None, "")
        )
        site_rows.append(
            f'<tr data-type="{_e(t)}"><th>{names.type(t)}</th>'
            f'<td class="cc-sites" data-value="{by_type[t]}"><b>{by_type[t]}</b>'
            + (f' <span class="cc-muted">({detail})</span>' if detail else "")
            + "</td></tr>"
        )
    gap = document.get("gap")
    status = names.status(document.get("status"))
    solver = _e(document.get("solver") or "")
    gap_text = (
        f', {labels["gap"]} <span class="cc-gap" data-value="{_e(gap)}">{float(gap):.2%}</span>'
        if isinstance(gap, int | float)
        else ""
    )
    cost_line = _cost_html(document, names)
    return (
        f'<div class="cc-box-title">{labels["summary"]}</div>'
        f'<div>{labels["elderly_total"]}: <b class="cc-total" data-value="{_e(total)}">'
        f"{_number(total)}</b></div>"
        f'<div class="cc-sub">{labels["coverage"]}</div><table class="cc-coverage">'
        + "".join(rows)
        + f'</table><div class="cc-sub">{labels["sites"]}</div><table class="cc-site-counts">'
        + "".join(site_rows)
        + "</table>"
        + cost_line
        + f'<div class="cc-solver">{labels["solver"]}: {solver.upper()} · '
        f'<span class="cc-status" data-value="{_e(document.get("status"))}">{status}</span>'
        f"{gap_text}</div>"
    )


def _cost_html(document: dict, names: _Names) -> str:
    """The total cost with its unit (and the budget when there is one), or '' for none."""
    cost, budget = document.get("total_cost"), document.get("budget")
    if not isinstance(cost, int | float) or isinstance(cost, bool) or not cost:
        return ""
    labels = names.labels
    limit = (
        f' <span class="cc-muted">({labels["budget"]} <span class="cc-budget" '
        f'data-value="{_e(budget)}">{names.money(budget)}</span>)</span>'
        if isinstance(budget, int | float) and not isinstance(budget, bool)
        else ""
    )
    unit = f' data-unit="{_e(names.cost_unit)}"' if names.cost_unit else ""
    return (
        f'<div>{labels["total_cost"]}: <span class="cc-cost" data-value="{_e(cost)}"{unit}>'
        f"{names.money(cost)}</span>{limit}</div>"
    )


def _legend_html(
    type_info: list[dict], tier_info: list[dict], names: _Names, *, has_regions: bool
) -> str:
    labels = names.labels
    parts = [f'<div class="cc-box-title">{labels["legend"]}</div>']
    if has_regions:
        bounds = [0.0, *SHARE_BREAKS, 1.0]
        swatches = "".join(
            f'<span class="cc-swatch" style="background:{colour}"></span>'
            f"{bounds[k]:.0%}–{bounds[k + 1]:.0%}<br>"
            for k, colour in enumerate(SHARE_COLOURS)
        )
        parts.append(
            f'<div class="cc-sub">{labels["choropleth"]}</div>{swatches}'
            f'<span class="cc-swatch" style="background:{NO_DATA_COLOUR}"></span>'
            f"{labels['no_data']}"
        )
    dots = "".join(
        f'<span class="cc-dot" style="background:{colour}"></span>{labels[f"status_{k}"]} '
        for k, colour in ((0, STATUS_COLOURS[0]), (1, STATUS_COLOURS[1]), (2, STATUS_COLOURS[2]))
    )
    parts.append(f'<div class="cc-sub">{labels["demand"]}</div><div>{dots}</div>')
    # site symbols are drawn by the page script into these placeholders
    symbols = "".join(
        f'<div class="cc-legend-type"><span class="cc-legend-symbol" data-t="{k}" data-sel="1">'
        f'</span><span class="cc-legend-symbol" data-t="{k}" data-sel="0"></span> {t["label"]}'
        "</div>"
        for k, t in enumerate(type_info)
    )
    tiers = (labels["tier_sizes"] + " > ".join(t["label"] for t in tier_info)) if tier_info else ""
    tiers = labels["numbering"] + ("<br>" + tiers if tiers else "")
    parts.append(
        f'<div class="cc-sub">{labels["selected"]} / {labels["existing"]}</div>{symbols}'
        + (f'<div class="cc-muted">{tiers}</div>' if tiers else "")
        + f'<div class="cc-muted"><b>+</b> {labels["expand"]}</div>'
    )
    parts.append(
        f'<div class="cc-sub">{labels["reach"]}</div>'
        f'<span class="cc-line"></span>{labels["reach_selected"]} '
        f'<span class="cc-line cc-dashed"></span>{labels["reach_existing"]}'
    )
    return "".join(parts)


# --------------------------------------------------------------------------- the page


def safe_json(value: object) -> str:
    """JSON that is safe inside an HTML ``<script>`` element (no ``<``, ``>`` or U+2028/9)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


@cache
def _asset(name: str) -> str:
    """The text of the page's own script or style, a file in the package's ``assets`` folder.

    The script (``map.js``) builds the layers from the data document. It never receives raw
    data text: every string in the document is escaped HTML made in Python.
    """
    return files("carecheck").joinpath(f"assets/{name}").read_text(encoding="utf-8")


class _Raw(Element):
    """Text put into the page as it is (no template expansion)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def render(self, **kwargs: object) -> str:
        return self.text


class _Data(MacroElement):
    """Declares the data document and creates the panes, title, summary and legend."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = {{ this.json }};
            carecheck.init({{ this._parent.get_name() }}, {{ this.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, data: dict) -> None:
        super().__init__()
        self._name = "CarecheckData"
        self.json = safe_json(data)


class _ScriptLayer(Layer):
    """A Leaflet layer made by the page script; listed in the layer control like any other."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = {{ this.factory }};
        {% endmacro %}
        """
    )

    def __init__(self, factory: str, name: str, *, show: bool, overlay: bool = True) -> None:
        super().__init__(name=name, overlay=overlay, control=True, show=show)
        self._name = "CarecheckLayer"
        self.factory = factory


def _asset_urls() -> list[tuple[str, str]]:
    """(kind, url) of the files the page loads, in load order, as folium names them."""
    map_js = dict(folium.Map.default_js)
    map_css = dict(folium.Map.default_css)
    urls = [("css", map_css["leaflet_css"]), ("js", map_js["leaflet"])]
    for plugin in (folium.plugins.Fullscreen, folium.plugins.MeasureControl):
        urls += [("css", url) for _, url in plugin.default_css]
        urls += [("js", url) for _, url in plugin.default_js]
    return urls


def _offline_copy(url: str) -> str:
    """The text of a file folium links to, from folium-offline's verbatim copies."""
    try:
        from offlinefolium.elements import _res as copies  # a URL → file text table
    except ImportError:
        raise CarecheckError(
            "an offline map needs the folium-offline package: pip install folium-offline"
        ) from None
    text = copies.get(url)
    if text is None:
        raise CarecheckError(
            f"offline map: folium-offline {_version('folium-offline')} has no copy of {url}, "
            f"which folium {folium.__version__} uses; install matching versions "
            "(folium-offline 0.20.0.x for folium 0.20)"
        )
    return str(text)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "(not installed)"


def _asset_elements() -> list[Element]:
    """Leaflet and the plugins, inlined (the page needs no network), in load order."""
    elements: list[Element] = []
    for kind, url in _asset_urls():
        if kind == "css":
            tag = "<style>" + re.sub("</style", "<\\/style", _offline_copy(url), flags=re.I)
            tag += "</style>"
        else:
            tag = "<script>" + re.sub("</script", "<\\/script", _offline_copy(url), flags=re.I)
            tag += "</script>"
        elements.append(_Raw(tag))
    return elements


# Online base maps the layer control offers (hidden at first): (folium's name, label key).
TILES = (("Esri.WorldGrayCanvas", "tiles_light"), ("OpenStreetMap", "tiles_osm"))


def _tile_sources() -> list[dict]:
    """URL template, attribution and zoom range of each base map in :data:`TILES`."""
    sources = []
    for name, _ in TILES:
        layer = folium.TileLayer(name)
        options = layer.options
        sources.append(
            {
                "url": layer.tiles,
                "attribution": options.get("attribution", ""),
                "maxZoom": options.get("max_native_zoom") or options.get("max_zoom") or 18,
                "subdomains": options.get("subdomains", "abc"),
            }
        )
    return sources


# Printing: landscape pages by the paper of result.json ``outputs.paper``; their margin.
PAPER_MM = {"A3": (420, 297), "A4": (297, 210)}
PRINT_MARGIN_MM = 8


def _print_page(document: dict) -> dict:
    """The printed page: paper name and the map's size on it in CSS pixels (96 per inch)."""
    outputs = document.get("outputs") or {}
    paper = str(outputs.get("paper") or "A3").upper()
    if paper not in PAPER_MM:
        paper = "A3"
    width, height = PAPER_MM[paper]

    def px(mm: float) -> int:
        return math.floor((mm - 2 * PRINT_MARGIN_MM) * 96 / 25.4)

    return {"paper": paper, "width": px(width), "height": px(height)}


class _Ready(MacroElement):
    """Runs the page script's layout step once every layer and control is on the map."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            carecheck.ready({{ this._parent.get_name() }}, {{ this.data }});
        {% endmacro %}
        """
    )

    def __init__(self, data_name: str) -> None:
        super().__init__()
        self._name = "CarecheckReady"
        self.data = data_name


def _render(data: dict, document: dict, *, lang: str) -> str:
    labels = LABELS[lang]["ui"]
    figure = folium.Figure(title=_e(document.get("title") or document.get("scenario") or "map"))
    fmap = folium.Map(
        location=[0, 0],
        tiles=None,
        zoom_snap=0.25,
        zoom_delta=0.5,
        font_size="13px",
    )
    figure.add_child(fmap)
    # the page loads exactly the files listed in _asset_urls, inlined, in order
    fmap.default_js = []
    fmap.default_css = []
    for element in _asset_elements():
        figure.header.add_child(element)
    figure.header.add_child(_Raw(f"<style>\n{_asset('map.css')}</style>"))
    paper = data["page"]["paper"]
    figure.header.add_child(
        _Raw(f"<style>@page{{size:{paper} landscape;margin:{PRINT_MARGIN_MM}mm}}</style>")
    )
    figure.header.add_child(_Raw(f"<script>\n{_asset('map.js')}</script>"))

    data_element = _Data(data)
    fmap.add_child(data_element)
    d = data_element.get_name()
    # the vector-only base map is the one shown; online base maps are there to choose
    fmap.add_child(
        _ScriptLayer("L.layerGroup()", html.escape(labels["tiles_none"]), show=True, overlay=False)
    )
    for k, (_, label) in enumerate(TILES):
        fmap.add_child(
            _ScriptLayer(
                f"carecheck.tiles({d}, {k})", html.escape(labels[label]), show=False, overlay=False
            )
        )
    _add_data_layers(fmap, data, d, labels)
    _add_controls(fmap, labels)
    fmap.add_child(_Ready(d))  # the first view is fitted around the panels, in the browser
    return str(figure.render())


def _add_data_layers(fmap: folium.Map, data: dict, d: str, labels: dict[str, str]) -> None:
    """The overlays: choropleth and region names, demand, reach, existing and selected sites."""
    types = data["types"]

    def layer(factory: str, name: str, *, show: bool) -> None:
        fmap.add_child(_ScriptLayer(factory, name, show=show))

    def per_type(label: str, k: int) -> str:
        return html.escape(labels[label]).replace("{type}", types[k]["label"])

    if data["regions"] is not None:
        for k in range(len(types)):
            layer(f"carecheck.choropleth({d}, {k})", per_type("layer_choropleth", k), show=k == 0)
        layer(f"carecheck.regionLabels({d})", html.escape(labels["layer_labels"]), show=True)
    for k in range(len(types)):
        layer(f"carecheck.demand({d}, {k})", per_type("layer_demand", k), show=k == 0)
    for k in range(len(types)):
        layer(f"carecheck.reach({d}, {k})", per_type("layer_reach", k), show=False)
    n_existing = len(data["sites"]["existing"])
    n_selected = len(data["sites"]["selected"])
    layer(
        f'carecheck.sites({d}, "existing")',
        f"{html.escape(labels['layer_existing'])} ({n_existing})",
        show=True,
    )
    layer(
        f'carecheck.sites({d}, "selected")',
        f"{html.escape(labels['layer_selected'])} ({n_selected})",
        show=True,
    )


def _add_controls(fmap: folium.Map, labels: dict[str, str]) -> None:
    """Full screen and measure buttons (top left), the layer control (top right)."""
    plugins = [
        folium.plugins.Fullscreen(
            position="topleft", title=labels["fullscreen"], title_cancel=labels["fullscreen_exit"]
        ),
        folium.plugins.MeasureControl(
            position="topleft",
            primary_length_unit="kilometers",
            secondary_length_unit="meters",
            primary_area_unit="hectares",
            secondary_area_unit="sqmeters",
        ),
    ]
    for plugin in plugins:
        plugin.default_js = []  # inlined above with the other assets
        plugin.default_css = []
        fmap.add_child(plugin)
    # expanded, with a title that folds it (added by the page script; folded at first on a
    # small window)
    folium.LayerControl(position="topright", collapsed=False).add_to(fmap)


def _bounds(
    document: dict, demand: pd.DataFrame, regions: gpd.GeoDataFrame | None
) -> list[list[float]] | None:
    """[[south, west], [north, east]] of the regions, else of the demand and the sites."""
    if regions is not None and len(regions):
        west, south, east, north = regions.total_bounds
        return [[float(south), float(west)], [float(north), float(east)]]
    lons = [*_numeric(demand, "lon")]
    lats = [*_numeric(demand, "lat")]
    for site in [*document.get("selected", []), *document.get("existing", [])]:
        lons.append(_float(site.get("lon")))
        lats.append(_float(site.get("lat")))
    lon, lat = np.asarray(lons, float), np.asarray(lats, float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return None
    return [
        [float(lat[ok].min()), float(lon[ok].min())],
        [float(lat[ok].max()), float(lon[ok].max())],
    ]


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
