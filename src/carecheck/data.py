"""Read the scenario's geodata into checked GeoDataFrames in one projected CRS.

Every layer comes out with canonical columns (``id``, ``weight``, ``region``, ``name``, ``tier``,
``action``, ``cost``, ``beds``) and point geometry in the working CRS, so nothing downstream
needs to know the planner's column names.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy.spatial import cKDTree

from carecheck import schema
from carecheck.config import (
    DemandSpec,
    FacilitySpec,
    LayerSpec,
    NetworkSpec,
    RegionSpec,
    Scenario,
    SiteSpec,
)
from carecheck.errors import DataError
from carecheck.geocheck import (
    PointSet,
    distortion_problems,
    median_utm,
    outlier_problems,
    sum_problems,
)
from carecheck.network import Network, network_from_segments
from carecheck.sources import Source, parse_crs, read_source

ACTIONS = ("new", "expand")
# the words a bureau's list uses for them
_ACTION_WORDS = {"新建": "new", "扩建": "expand", "改扩建": "expand", "改建": "expand"}
_APART_EXISTING_M = 50_000.0
_MAX_LISTED = 5


@dataclass(frozen=True)
class FacilityLayers:
    """Candidates and existing facilities of one type (existing may be empty)."""

    candidates: gpd.GeoDataFrame
    existing: gpd.GeoDataFrame


@dataclass(frozen=True)
class Layers:
    """All layers of a scenario, projected to ``crs`` and checked."""

    crs: CRS
    demand: gpd.GeoDataFrame
    facilities: dict[str, FacilityLayers]
    regions: gpd.GeoDataFrame | None = None
    network: Network | None = None
    sources: dict[str, Source] = field(default_factory=dict)  # how each layer was read


def _listing(values: Any) -> str:
    values = [str(v) for v in values]
    more = f" … and {len(values) - _MAX_LISTED} more" if len(values) > _MAX_LISTED else ""
    return ", ".join(values[:_MAX_LISTED]) + more


def _where(spec: LayerSpec) -> str:
    return f"{spec.path}" + (f" (layer {spec.layer})" if spec.layer else "")


def read_layer(spec: LayerSpec) -> gpd.GeoDataFrame:
    """Read one layer as it is on disk (GeoPackage, GeoJSON, Shapefile, or a CSV / Excel /
    OpenDocument table with coordinate columns); see :mod:`carecheck.sources`."""
    return read_source(spec)[0]


_parse_crs = parse_crs


def working_crs(scenario: Scenario, demand: gpd.GeoDataFrame) -> CRS:
    """The scenario's ``crs``, else the UTM zone of the demand layer; always metric."""
    if scenario.crs is not None:
        crs = _parse_crs(scenario.crs, "scenario → crs")
        if not crs.is_projected:
            raise DataError(
                f"scenario → crs: {scenario.crs} is geographic (degrees); give a projected "
                "CRS in metres, e.g. EPSG:32651, or leave `crs` out to use the UTM zone"
            )
        return crs
    lon, lat = _lonlat(demand)
    return median_utm(lon, lat)  # the median, so that a few wrong rows cannot move it


def _lonlat(frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude (WGS84) of each row's point (representative point of shapes)."""
    geometry = frame.geometry
    if geometry.crs is not None and not geometry.crs.equals(CRS.from_epsg(4326)):
        geometry = geometry.to_crs(4326)
    points = geometry.to_numpy()
    shaped = shapely.get_type_id(points) != 0
    if shaped.any():
        points = points.copy()
        points[shaped] = shapely.point_on_surface(points[shaped])
    return shapely.get_x(points), shapely.get_y(points)


def _bounds_points(frame: gpd.GeoDataFrame, where: str) -> PointSet:
    """The corners and edge midpoints of a shape layer's bounding box, in lon/lat."""
    geometry = frame.geometry
    if geometry.crs is not None and not geometry.crs.equals(CRS.from_epsg(4326)):
        geometry = geometry.to_crs(4326)
    x0, y0, x1, y1 = geometry.total_bounds
    xs = np.array([x0, (x0 + x1) / 2, x1])
    ys = np.array([y0, (y0 + y1) / 2, y1])
    lon, lat = (a.ravel() for a in np.meshgrid(xs, ys))
    labels = np.array([f"bounding-box point {k + 1}" for k in range(len(lon))], dtype=object)
    return PointSet(where, labels, lon, lat)


def _check_geography(
    scenario: Scenario, crs: CRS, layers: list[PointSet], weights: np.ndarray, ids: np.ndarray
) -> None:
    """The working CRS keeps distances true at every point; weights sum safely."""
    problems = outlier_problems(layers) or distortion_problems(
        crs, layers, automatic=scenario.crs is None
    )
    where = _where(scenario.demand)
    problems += sum_problems(weights, ids, f"{where}: column {scenario.demand.weight!r}")
    total = float(np.sum(weights)) if not problems else 0.0
    objective = sum(scenario.alpha(t) for t in scenario.facilities) * total
    if not problems and not (np.isfinite(objective) and objective < 2.0**53):
        problems.append(
            f"scenario → objective.weights: the objective weights times the total demand "
            f"({total:,.0f}) come to {objective:.6g}, more than 2^53 ≈ 9.0e15, beyond which "
            "sums lose integer precision; use weights of ordinary size (e.g. 1 to 100)"
        )
    if problems:
        raise DataError(problems)


def _row_labels(frame: pd.DataFrame, id_column: str) -> np.ndarray:
    return np.array([f"id {v}" for v in frame[id_column].astype(str)], dtype=object)


def _check_frame(frame: gpd.GeoDataFrame, spec: LayerSpec, columns: dict[str, str | None]) -> None:
    """Columns present, ids unique, geometry present; every problem listed at once."""
    where = _where(spec)
    problems = []
    wanted = {"id": spec.id, **columns}
    for key, column in wanted.items():
        if column is not None and column not in frame.columns:
            problems.append(
                f"{where}: column {column!r} (mapped by `{key}:`) not found; columns are "
                f"{_listing(c for c in frame.columns if c != 'geometry')}"
            )
    if problems:
        raise DataError(problems)
    ids = frame[spec.id]
    if ids.isna().any():
        rows = frame.index[ids.isna()]
        problems.append(f"{where}: column {spec.id!r} is empty in row(s) {_listing(rows)}")
    dupes = ids[ids.duplicated()].astype(str).unique()
    if len(dupes):
        problems.append(f"{where}: column {spec.id!r} has duplicate id(s): {_listing(dupes)}")
    empty = frame.geometry.isna() | frame.geometry.is_empty
    if empty.any():
        problems.append(
            f"{where}: missing or empty geometry for id(s) {_listing(ids[empty].astype(str))}"
        )
    if problems:
        raise DataError(problems)


def _numeric(
    frame: pd.DataFrame, column: str, ids: pd.Series, where: str, *, what: str
) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() | (values < 0) | ~np.isfinite(values.fillna(0))
    if bad.any():
        shown = _listing(f"{i}={v!r}" for i, v in zip(ids[bad], frame[column][bad], strict=True))
        raise DataError(
            f"{where}: column {column!r} ({what}) must be a number ≥ 0; bad value(s) at id {shown}"
        )
    return values.to_numpy(dtype=float)


def _to_points(frame: gpd.GeoDataFrame, crs: CRS) -> gpd.GeoSeries:
    geometry = frame.geometry.to_crs(crs)
    polygonal = ~geometry.geom_type.isin(["Point"])
    if polygonal.any():
        geometry = geometry.copy()
        geometry[polygonal] = geometry[polygonal].representative_point()
    return geometry


def _demand_frame(scenario: Scenario, raw: gpd.GeoDataFrame, crs: CRS) -> gpd.GeoDataFrame:
    spec: DemandSpec = scenario.demand
    where = _where(spec)
    ids = raw[spec.id].astype(str)
    weight = _numeric(raw, spec.weight, ids, where, what="demand weight")
    region = _text(raw, spec.region)
    if isinstance(spec.growth, dict):
        known = {str(r) for r in region if r is not None}
        unknown = sorted(set(spec.growth) - known - {"default"})
        if unknown:
            raise DataError(
                f"demand.growth: unknown region(s) {_listing(unknown)}; regions in {where} are "
                f"{_listing(sorted(known))} (use `default` for the rest)"
            )
    weight = weight * spec.growth_factors(region)
    data = {
        "id": ids.to_numpy(),
        "weight": weight,
        "region": region,
        "name": _text(raw, spec.name),
    }
    data = {name: data[name] for name in schema.DEMAND_FRAME}
    return gpd.GeoDataFrame(data, geometry=_to_points(raw, crs).to_numpy(), crs=crs)


def _text(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    if column is None:
        return np.full(len(frame), None, dtype=object)
    values = frame[column]
    return np.array([None if pd.isna(v) else str(v) for v in values], dtype=object)


def _site_frame(
    type_name: str,
    facility: FacilitySpec,
    spec: SiteSpec,
    raw: gpd.GeoDataFrame,
    crs: CRS,
    *,
    role: str,
) -> gpd.GeoDataFrame:
    where = _where(spec)
    ids = raw[spec.id].astype(str)
    problems = []
    tier = _text(raw, spec.tier)
    if facility.tiers:
        known = set(facility.tiers)
        unknown = [
            (i, t) for i, t in zip(ids, tier, strict=True) if t is not None and t not in known
        ]
        if spec.tier is not None and role == "candidates":
            unknown += [(i, t) for i, t in zip(ids, tier, strict=True) if t is None]
        if unknown:
            problems.append(
                f"{where}: column {spec.tier!r} has tier(s) not in facilities.{type_name}.tiers "
                f"({sorted(known)}) at id {_listing(f'{i}={t!r}' for i, t in unknown)}"
            )
    action = _text(raw, spec.action)
    if spec.action is None:
        action = np.full(len(raw), "new" if role == "candidates" else "existing", dtype=object)
    else:
        # a blank cell means a new site
        action = np.array(
            [_ACTION_WORDS.get(a.strip(), a.strip()) if a is not None else "new" for a in action],
            dtype=object,
        )
        bad = [(i, a) for i, a in zip(ids, action, strict=True) if a not in ACTIONS]
        if bad:
            problems.append(
                f"{where}: column {spec.action!r} must be 'new' (新建) or 'expand' (扩建, 改扩建, "
                "改建); bad value(s) at id "
                f"{_listing(f'{i}={a!r}' for i, a in bad)}"
            )
    if problems:
        raise DataError(problems)
    reaches = [facility.reach_of(t) for t in tier]
    data = {
        name: _mapped(raw, spec, attribute, ids, where)
        for name, attribute in schema.SITE.items()
        if attribute.origin == "column" and name not in ("tier", "action")
    }
    data |= {
        "id": ids.to_numpy(),
        "type": np.full(len(raw), type_name, dtype=object),
        "tier": tier,
        "action": action,
        "reach_kind": np.array([r.kind for r in reaches], dtype=object),
        "reach_value": np.array([r.value for r in reaches], dtype=float),
        "reach_mode": np.array([r.mode or "" for r in reaches], dtype=object),
        "radius_m": np.array(
            [r.value if r.kind == "radius_m" else np.nan for r in reaches], dtype=float
        ),
    }
    columns = {name: data[name] for name in schema.SITE_FRAME}
    return gpd.GeoDataFrame(columns, geometry=_to_points(raw, crs).to_numpy(), crs=crs)


def _mapped(
    raw: pd.DataFrame, spec: SiteSpec, attribute: schema.Attribute, ids: pd.Series, where: str
) -> np.ndarray:
    """A site attribute read from the planner's column that ``spec`` maps, or its blank."""
    column = getattr(spec, attribute.name)
    if attribute.kind == "number":
        if column is None:
            return np.full(len(raw), attribute.blank, dtype=float)
        return _numeric(raw, column, ids, where, what=attribute.name)
    if column is None:
        return np.full(len(raw), attribute.blank, dtype=object)
    return _text(raw, column)


def _read_layers(
    scenario: Scenario,
) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, Source], dict[str, SiteSpec]]:
    """Read and check the columns of every layer: the raw frames, how each was read, and
    the site specs by role (``facilities.<type>.<kind>``).

    Raises
    ------
    DataError
        With every layer's problems at once.
    """
    problems: list[str] = []
    sources: dict[str, Source] = {}
    raws: dict[str, gpd.GeoDataFrame] = {}

    def read(role: str, spec: LayerSpec, columns: dict[str, str | None]) -> None:
        try:
            raw, sources[role] = read_source(spec)
            _check_frame(raw, spec, columns)
        except DataError as exc:  # every layer's problems at once
            problems.extend(exc.problems)
            return
        raws[role] = raw

    spec = scenario.demand
    read("demand", spec, {k: getattr(spec, k) for k in schema.DEMAND_MAPPED})
    site_specs: dict[str, SiteSpec] = {}
    for type_name, facility in scenario.facilities.items():
        for kind in ("candidates", "existing"):
            site_spec = getattr(facility, kind)
            if site_spec is not None:
                role = f"facilities.{type_name}.{kind}"
                site_specs[role] = site_spec
                read(role, site_spec, {k: getattr(site_spec, k) for k in schema.SITE_MAPPED})
    if problems:
        raise DataError(problems)
    return raws, sources, site_specs


def _facility_layers(
    scenario: Scenario,
    raws: dict[str, gpd.GeoDataFrame],
    site_specs: dict[str, SiteSpec],
    crs: CRS,
    points: list[PointSet],
) -> dict[str, FacilityLayers]:
    """Every type's candidates and existing sites, projected; each site layer's points are
    appended to ``points`` (for the geography check).

    Raises
    ------
    DataError
        With every site layer's problems at once.
    """
    problems: list[str] = []
    facilities = {}
    for type_name, facility in scenario.facilities.items():
        frames = {}
        for kind in ("candidates", "existing"):
            role = f"facilities.{type_name}.{kind}"
            if role not in site_specs:
                frames[kind] = _empty_sites(crs)
                continue
            raw, site_spec = raws[role], site_specs[role]
            lon, lat = _lonlat(raw)
            points.append(PointSet(_where(site_spec), _row_labels(raw, site_spec.id), lon, lat))
            try:
                frames[kind] = _site_frame(type_name, facility, site_spec, raw, crs, role=kind)
            except DataError as exc:
                problems.extend(exc.problems)
        if not problems:
            facilities[type_name] = FacilityLayers(frames["candidates"], frames["existing"])
    if problems:
        raise DataError(problems)
    return facilities


def load_layers(scenario: Scenario) -> Layers:
    """Read, check and project every layer the scenario names.

    Raises
    ------
    DataError
        Naming the file, the column and the offending ids.
    """
    raws, sources, site_specs = _read_layers(scenario)
    spec = scenario.demand
    raw_demand = raws["demand"]
    crs = working_crs(scenario, raw_demand)
    lon, lat = _lonlat(raw_demand)
    points = [PointSet(_where(spec), _row_labels(raw_demand, spec.id), lon, lat)]
    demand = _demand_frame(scenario, raw_demand, crs)
    facilities = _facility_layers(scenario, raws, site_specs, crs, points)
    regions = None
    if scenario.regions is not None:
        regions = load_regions(scenario.regions)
        if len(regions):
            points.append(_bounds_points(regions, str(scenario.regions.path)))
    weights = demand["weight"].to_numpy(float)
    _check_geography(scenario, crs, points, weights, points[0].labels)
    cross = _apart_problems(scenario, demand, facilities, site_specs)
    cross += _region_name_problems(scenario, demand, facilities, site_specs, regions)
    network = None
    if scenario.network is not None:
        try:
            network = load_network(scenario.network, crs)
        except DataError as exc:
            cross += exc.problems
    if cross:
        raise DataError(cross)
    return Layers(
        crs=crs,
        demand=demand,
        facilities=facilities,
        regions=regions,
        network=network,
        sources=sources,
    )


def _apart_problems(
    scenario: Scenario,
    demand: gpd.GeoDataFrame,
    facilities: dict[str, FacilityLayers],
    specs: dict[str, SiteSpec],
) -> list[str]:
    """Site layers none of whose sites is within reach of any demand point (a layer shifted,
    in the wrong CRS, or of another place). Only straight-line and road-distance reach is
    checked (a straight line is never longer than the road)."""
    if not len(demand):
        return []
    tree = cKDTree(xy(demand))
    problems = []
    for type_name, layers in facilities.items():
        reaches = scenario.facilities[type_name].reaches()
        if not reaches or any(r.kind == "travel_min" for r in reaches):
            continue
        longest = max(r.value for r in reaches)
        for kind, frame in (("candidates", layers.candidates), ("existing", layers.existing)):
            if not len(frame):
                continue
            distance, _ = tree.query(xy(frame), k=1)
            nearest = float(np.min(distance))
            # candidates none of which reaches anyone make a plan of nothing; existing
            # facilities may lie outside the area, but not this far
            limit = longest if kind == "candidates" else max(longest, _APART_EXISTING_M)
            if nearest > limit:
                spec = specs[f"facilities.{type_name}.{kind}"]
                problems.append(
                    f"{_where(spec)} and {_where(scenario.demand)}: no {type_name} {kind} site "
                    f"lies within its reach ({longest:,.0f} m) of any demand point — the nearest "
                    f"is {nearest / 1000:,.1f} km away. The two layers lie apart: check their "
                    "coordinates and CRS (`crs:`, `coords:`)"
                )
    return problems


def _closest_name(name: str, known: list[str]) -> str | None:
    """The known name that contains ``name`` or is contained in it (石门 → 石门镇), else
    the closest by spelling."""
    containing = [k for k in known if name in k or k in name]
    if containing:
        return min(containing, key=lambda k: (abs(len(k) - len(name)), k))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return close[0] if close else None


def _unmatched(names: set[str], known: set[str]) -> str:
    ordered = sorted(known)
    shown = []
    for name in sorted(names):
        guess = _closest_name(name, ordered)
        shown.append(f"{name} (→ {guess}?)" if guess else name)
    return _listing(shown)


def _region_name_problems(
    scenario: Scenario,
    demand: gpd.GeoDataFrame,
    facilities: dict[str, FacilityLayers],
    specs: dict[str, SiteSpec],
    regions: gpd.GeoDataFrame | None,
) -> list[str]:
    """Region names in the site layers and the boundaries that match no demand region, and
    demand regions the boundaries lack, each with its closest name."""
    if scenario.demand.region is None:
        return []
    known = {str(r) for r in demand["region"] if r is not None}
    column = f"column {scenario.demand.region!r} of {_where(scenario.demand)}"
    problems = []
    for role, spec in specs.items():
        if spec.region is None:
            continue
        _, type_name, kind = role.split(".")
        frame = getattr(facilities[type_name], kind)
        names = {str(r) for r in frame["region"] if r is not None}
        unknown = names - known
        if unknown:
            problems.append(
                f"{_where(spec)}: region name(s) in column {spec.region!r} that match no demand "
                f"region ({column}): {_unmatched(unknown, known)}; spell them as the demand "
                "layer does"
            )
    if regions is not None and scenario.regions is not None:
        named = {str(r) for r in regions["region"] if r is not None}
        where = f"{scenario.regions.path} (column {scenario.regions.name!r})"
        extra, lacking = named - known, known - named
        if extra:
            problems.append(
                f"{where}: boundary name(s) that match no demand region ({column}): "
                f"{_unmatched(extra, known)}; spell them as the demand layer does"
            )
        if lacking:
            problems.append(
                f"{where}: demand region(s) with no boundary: {_unmatched(lacking, named)}; "
                "add the boundaries or spell the names alike"
            )
    return problems


# OSM `oneway` values (also OSMnx's True/False): +1 one-way along the digitised direction,
# -1 one-way against it, 0 both ways. `reversible` / `alternating` (the direction changes with
# the time of day) count as two-way, as OSMnx reads them.
_DIRECTION = "__carecheck_oneway_direction"
_ONEWAY = {
    **dict.fromkeys(("yes", "true", "1", "y", "t"), 1),
    **dict.fromkeys(("-1", "reverse"), -1),
    **dict.fromkeys(("no", "false", "0", "n", "f", "", "none", "nan"), 0),
    **dict.fromkeys(("reversible", "alternating"), 0),
}


def _oneway_directions(values: pd.Series, column: str, where: str) -> np.ndarray:
    """Per line +1 (one-way along it), -1 (one-way against it) or 0 (two-way); see ``_ONEWAY``.

    Lists ("['yes', 'no']") count by their first value; a blank cell is two-way.

    Raises
    ------
    DataError
        Naming the values not understood and their rows (counted from 1, in file order).
    """
    texts = []
    for value in values:
        blank = not isinstance(value, list | tuple | np.ndarray) and bool(pd.isna(value))
        text = "" if blank else (_first_of_list(value) or "").strip().lower()
        try:  # numbers as 1.0 / -1.0 (a numeric column with blanks reads as float)
            number = float(text)
            text = str(int(number)) if number in (-1.0, 0.0, 1.0) else text
        except ValueError:
            pass
        texts.append(text)
    bad = [k for k, text in enumerate(texts) if text not in _ONEWAY]
    if bad:
        shown = _listing(repr(text) for text in sorted({texts[k] for k in bad}))
        raise DataError(
            f"{where}: column {column!r} (oneway) has value(s) {shown} not understood, in "
            f"row(s) {_listing(k + 1 for k in bad)}; use yes/true/1 (one-way along the line), "
            "-1/reverse (one-way against it) or no/false/0 (two-way)"
        )
    return np.array([_ONEWAY[text] for text in texts], dtype=np.int64)


def _first_of_list(value: object) -> str | None:
    """OSMnx writes several OSM tags as a list ("['primary', 'secondary']"): take the first."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, list | tuple):
        return str(value[0]) if value else None
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].split(",")[0].strip().strip("'\"")
        return inner or None
    return text


def _graphml_lines(path: Path) -> gpd.GeoDataFrame:
    """Edges of an OSMnx GraphML file as lines (attributes as text)."""
    import xml.etree.ElementTree as ET

    from shapely import from_wkt
    from shapely.geometry import LineString

    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DataError(f"{path}: not a readable GraphML file ({exc})") from None
    keys = {k.get("id"): k.get("attr.name") for k in root.findall("g:key", ns)}
    graph = root.find("g:graph", ns)
    if graph is None:
        raise DataError(f"{path}: GraphML without a <graph> element")
    graph_data = {keys.get(d.get("key")): d.text for d in graph.findall("g:data", ns)}
    nodes = {}
    for node in graph.findall("g:node", ns):
        data = {keys.get(d.get("key")): d.text for d in node.findall("g:data", ns)}
        try:
            nodes[node.get("id")] = (float(data["x"] or ""), float(data["y"] or ""))
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: node {node.get('id')} has no numeric x / y") from None
    rows, geometry = [], []
    for edge in graph.findall("g:edge", ns):
        data = {keys.get(d.get("key")): d.text for d in edge.findall("g:data", ns)}
        u, v = edge.get("source"), edge.get("target")
        if u not in nodes or v not in nodes:
            raise DataError(f"{path}: edge {u}→{v} names a node that does not exist")
        wkt = data.pop("geometry", None)
        geometry.append(from_wkt(wkt) if wkt else LineString([nodes[u], nodes[v]]))
        rows.append({"u": u, "v": v, **data})
    crs = graph_data.get("crs") or "EPSG:4326"
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geometry, crs=crs)


def _no_roads(path: Path | str, what: str) -> str:
    return (
        f"{path}: the network {what}, so nothing can be reached along it; export the graph "
        "with its streets (e.g. OSMnx's save_graphml / save_graph_geopackage of a graph with "
        "edges) or point `network:` (`path:`, `layer:`) at the layer of road lines"
    )


def read_network_lines(spec: NetworkSpec) -> tuple[gpd.GeoDataFrame, dict[str, str | None]]:
    """The network's lines and the column mapping (OSMnx defaults filled in).

    Raises
    ------
    DataError
        When the file holds no edges (e.g. an OSMnx graph of nodes only).
    """
    path = Path(spec.path)
    mapping = {
        "length": spec.length,
        "speed_kmh": spec.speed_kmh,
        "class": spec.road_class,
        "oneway": spec.oneway,
    }
    osmnx = False
    if path.suffix.lower() == ".graphml":
        frame, osmnx = _graphml_lines(path), True
    else:
        layer = spec.layer
        if layer is None and path.suffix.lower() == ".gpkg":
            import pyogrio

            names = {name for name, _ in pyogrio.list_layers(path)}
            if {"nodes", "edges"} <= names:
                layer, osmnx = "edges", True
        frame = read_layer(LayerSpec(path=path, layer=layer, id="__none__"))
    if osmnx:  # OSMnx's own column names, unless the scenario maps others
        defaults = {
            "length": "length",
            "speed_kmh": "speed_kph",
            "class": "highway",
            "oneway": "oneway",
        }
        for key, column in defaults.items():
            if mapping[key] is None and column in frame.columns:
                mapping[key] = column
    if frame.crs is None:
        raise DataError(f"{path}: the network has no coordinate reference system")
    if len(frame) == 0:
        raise DataError(_no_roads(path, "holds no edges (road lines)"))
    missing = [c for c in mapping.values() if c is not None and c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: network column(s) {missing} not found; columns are "
            f"{_listing(c for c in frame.columns if c != 'geometry')}"
        )
    kinds = set(frame.geometry.geom_type.dropna())
    if not kinds <= {"LineString", "MultiLineString"}:
        raise DataError(f"{path}: the network must hold lines (found {sorted(kinds)})")
    return frame, mapping


def load_network(spec: NetworkSpec, crs: CRS) -> Network:
    """Read a road network and split it into straight segments in the working CRS.

    ``oneway`` follows OSM (see ``_ONEWAY``): yes/true/1 one-way along the line as digitised,
    -1/reverse one-way against it (the line is reversed), no/false/0 and blank both ways;
    reversible/alternating (time-dependent) are read as two-way, as OSMnx does; any other
    value is refused. A street stored once per direction (OSMnx's directed GraphML and
    GeoPackage exports) becomes one two-way street: see :func:`network_from_segments`.

    Raises
    ------
    DataError
        For a network without edges, bad ``oneway`` or ``length`` values, unknown classes.
    """
    frame, mapping = read_network_lines(spec)
    where = str(spec.path)
    direction = np.zeros(len(frame), dtype=np.int64)
    if mapping["oneway"] is not None:
        direction = _oneway_directions(frame[mapping["oneway"]], mapping["oneway"], where)
    frame = frame.assign(**{_DIRECTION: direction})
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    frame = frame.explode(index_parts=False, ignore_index=True).to_crs(crs)
    speed = np.full(len(frame), spec.default_speed_kmh)
    if mapping["class"] is not None:
        classes = [_first_of_list(v) for v in frame[mapping["class"]]]
        known = np.array([spec.class_speeds.get(c or "", np.nan) for c in classes], dtype=float)
        speed = np.where(np.isfinite(known), known, speed)
        unknown = sorted(
            {c for c, k in zip(classes, known, strict=True) if c is not None and not np.isfinite(k)}
        )
        if spec.class_speeds and unknown:
            raise DataError(
                f"{where}: road class(es) {_listing(unknown)} have no speed in "
                "network.class_speeds; add them"
            )
    if mapping["speed_kmh"] is not None:
        given = pd.to_numeric(
            pd.Series([_first_of_list(v) for v in frame[mapping["speed_kmh"]]]), errors="coerce"
        ).to_numpy(float)
        speed = np.where(np.isfinite(given) & (given > 0), given, speed)
    direction = frame[_DIRECTION].to_numpy(np.int64)
    oneway = direction != 0
    lines = frame.geometry.to_numpy().copy()
    lines[direction < 0] = shapely.reverse(lines[direction < 0])  # one-way against the line
    coords, line_index = shapely.get_coordinates(lines, return_index=True)
    same_line = line_index[1:] == line_index[:-1]
    start, end = coords[:-1][same_line], coords[1:][same_line]
    owner = line_index[:-1][same_line]
    seg_len = np.hypot(*(end - start).T)
    if not (seg_len > 0).any():
        raise DataError(_no_roads(where, "holds only empty or zero-length lines"))
    length = seg_len
    if mapping["length"] is not None:
        stated = pd.to_numeric(frame[mapping["length"]], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(stated) | (stated < 0)
        if bad.any():
            raise DataError(
                f"{where}: column {mapping['length']!r} (length) must be a number ≥ 0 in "
                f"{int(bad.sum())} row(s)"
            )
        line_len = np.bincount(owner, weights=seg_len, minlength=len(frame))
        scale = np.where(line_len > 0, stated / np.maximum(line_len, 1e-12), 1.0)
        length = seg_len * scale[owner]
    return network_from_segments(
        start, end, length_m=length, speed_kmh=speed[owner], oneway=oneway[owner]
    )


def load_regions(spec: RegionSpec) -> gpd.GeoDataFrame:
    """Region polygons in EPSG:4326 with columns ``region`` and geometry."""
    where = f"{spec.path}" + (f" (layer {spec.layer})" if spec.layer else "")
    try:
        frame = gpd.read_file(spec.path, layer=spec.layer, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise DataError(f"{where}: cannot read the region layer: {exc}") from None
    if frame.crs is None:
        raise DataError(f"{where}: the region layer has no coordinate reference system")
    if spec.name not in frame.columns:
        raise DataError(
            f"{where}: column {spec.name!r} (mapped by `regions.name:`) not found; columns are "
            f"{_listing(c for c in frame.columns if c != 'geometry')}"
        )
    polygonal = frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
    if not polygonal.all():
        raise DataError(f"{where}: region layer must hold polygons")
    return gpd.GeoDataFrame(
        {"region": frame[spec.name].astype(str).to_numpy()},
        geometry=frame.geometry.to_crs(4326).to_numpy(),
        crs=4326,
    )


def _empty_sites(crs: CRS) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in schema.SITE_FRAME}, geometry=[], crs=crs)


def xy(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Point coordinates as an (n, 2) float array."""
    if len(frame) == 0:
        return np.empty((0, 2))
    return np.column_stack([frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()])
