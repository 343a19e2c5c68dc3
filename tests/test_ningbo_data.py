"""Checks of the shipped Ningbo data set (geodata/ningbo/ningbo.gpkg) and of its rebuild."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

HERE = Path(__file__).resolve()
DATA = HERE.parents[1] / "geodata" / "ningbo"
GPKG = DATA / "ningbo.gpkg"
SOURCES = HERE.parents[2] / "shared" / "ningbo-sources"

# The column contract other code depends on (geometry comes last in every layer).
COLUMNS = {
    "counties": [
        "adcode", "name", "name_en", "pop_2020",
        "elderly60_2020", "elderly65_2020", "elderly80_2020",
        "elderly60_2024", "elderly65_2024", "elderly80_2024",
        "disabled_2024", "urban_share", "source",
    ],
    "townships": ["code", "name", "county", "type", "seat_source", "source"],
    "township_zones": ["code", "name", "county", "type", "source"],
    "demand": [
        "demand_id", "name", "county", "township", "township_code", "kind", "urban",
        "elderly", "elderly80", "disabled", "source",
    ],
    "institutions": [
        "site_id", "name", "county", "township", "tier", "beds", "nursing_beds", "source",
    ],
    "embedded_existing": ["site_id", "name", "county", "township", "beds", "source"],
    "institution_sites": [
        "site_id", "name", "tier", "action", "expands", "beds", "nursing_beds", "cost",
        "county", "township", "source",
    ],
    "embedded_sites": ["site_id", "name", "action", "beds", "cost", "county", "township", "source"],
}  # fmt: skip
ID = {
    "counties": "adcode",
    "townships": "code",
    "township_zones": "code",
    "demand": "demand_id",
    "institutions": "site_id",
    "embedded_existing": "site_id",
    "institution_sites": "site_id",
    "embedded_sites": "site_id",
}
ID_PREFIX = {
    "demand": "D",
    "institutions": "I",
    "embedded_existing": "E",
    "institution_sites": "C",
    "embedded_sites": "M",
}
COUNTY_NAMES = {
    "海曙区", "江北区", "北仑区", "镇海区", "鄞州区",
    "奉化区", "象山县", "宁海县", "余姚市", "慈溪市",
}  # fmt: skip
SITE_LAYERS = ["institutions", "embedded_existing", "institution_sites", "embedded_sites"]
TIERS = {"county", "town", "village"}
BOUNDARY_TOLERANCE_DEG = 1e-6  # zones are cut from the counties on a 1e-6 degree grid


def read_layers(path: Path) -> dict[str, gpd.GeoDataFrame]:
    return {name: gpd.read_file(path, layer=name) for name in COLUMNS}


@pytest.fixture(scope="module")
def layers() -> dict[str, gpd.GeoDataFrame]:
    return read_layers(GPKG)


@pytest.fixture(scope="module")
def county_geom(layers) -> dict[str, shapely.Geometry]:
    return dict(zip(layers["counties"]["name"], layers["counties"].geometry, strict=True))


@pytest.fixture(scope="module")
def zone_geom(layers) -> dict[tuple[str, str], shapely.Geometry]:
    zones = layers["township_zones"]
    return dict(zip(zip(zones["county"], zones["name"], strict=True), zones.geometry, strict=True))


def xy(frame: gpd.GeoDataFrame) -> np.ndarray:
    return shapely.get_coordinates(frame.geometry.to_numpy())


def test_layers_have_the_contract_columns(layers):
    for name, columns in COLUMNS.items():
        assert list(layers[name].columns) == [*columns, "geometry"], name
        assert layers[name].crs.to_epsg() == 4326, name


def test_ids_are_unique(layers):
    for name, column in ID.items():
        ids = layers[name][column]
        assert ids.is_unique, name
        assert ids.notna().all() and (ids.str.len() > 0).all(), name
        if name in ID_PREFIX:
            assert ids.str.fullmatch(ID_PREFIX[name] + r"\d{4,5}").all(), name


def test_counties_match_the_census(layers):
    counties = layers["counties"]
    assert len(counties) == 10
    assert counties.is_valid.all()
    assert (counties.geom_type == "MultiPolygon").all()
    assert set(counties["name"]) == COUNTY_NAMES
    totals = counties.drop(columns=["geometry"]).select_dtypes("number").sum()
    # 2020 census bulletin, 2024 population bulletin (210.1万 / 145.7万), 7.45 % disabled.
    assert totals["pop_2020"] == 9_404_283
    assert totals["elderly60_2020"] == 1_702_702
    assert totals["elderly65_2020"] == 1_184_309
    assert totals["elderly60_2024"] == 2_101_000
    assert totals["elderly65_2024"] == 1_457_000
    assert totals["disabled_2024"] == 156_525
    factor = 2_101_000 / 1_702_702
    assert totals["elderly80_2024"] == round(totals["elderly80_2020"] * factor)
    assert (counties["elderly80_2024"] < counties["elderly65_2024"]).all()
    assert (counties["elderly65_2024"] < counties["elderly60_2024"]).all()
    if SOURCES.is_dir():
        compare_with_census_csv(counties)


def compare_with_census_csv(counties: gpd.GeoDataFrame) -> None:
    """Each county's integers are within one person of population x census share."""
    kw = {"encoding": "utf-8", "dtype": {"CODE": str}}
    pop = pd.read_csv(SOURCES / "census2020_population_ningbo.csv", **kw)
    ages = pd.read_csv(SOURCES / "census2020_ages_ningbo.csv", **kw)
    census = pop.merge(ages, on=["CODE", "NAME"]).set_index("CODE")
    ours = counties.set_index("adcode").loc[census.index]
    expected = {
        "elderly60_2020": census["POPU"] * (census["AGES_60-64"] + census["AGES_65P"]),
        "elderly65_2020": census["POPU"] * census["AGES_65P"],
        "elderly80_2020": census["POPU"] * (census["AGES_80-84"] + census["AGES_85P"]),
    }
    assert (ours["pop_2020"] == census["POPU"]).all()
    assert (ours["name"] == census["NAME"]).all()
    assert np.allclose(ours["urban_share"], census["POPU_URB"])
    for column, exact in expected.items():
        assert ours[column].sum() == round(exact.sum()), column
        assert (abs(ours[column] - exact) < 1).all(), column


def test_townships_are_the_157_seats(layers, county_geom):
    towns = layers["townships"]
    assert len(towns) == 157
    assert towns["code"].str.fullmatch(r"\d{12}").all()
    assert (towns["seat_source"] == "geonames").sum() == 100
    assert set(towns["seat_source"]) == {"geonames", "synthetic"}
    assert towns["type"].value_counts().to_dict() == {"街道": 74, "镇": 74, "乡": 9}
    assert set(towns["county"]) == set(county_geom)
    for county, group in towns.groupby("county"):
        assert shapely.contains_xy(county_geom[county], xy(group)).all(), county


def test_zones_tile_their_county(layers, county_geom):
    zones, towns = layers["township_zones"], layers["townships"]
    assert len(zones) == 157
    assert zones.is_valid.all()
    assert (zones["code"] == towns["code"]).all()
    assert shapely.contains(zones.geometry.to_numpy(), towns.geometry.to_numpy()).all()
    for county, group in zones.groupby("county"):
        area = county_geom[county]
        grown = area.buffer(BOUNDARY_TOLERANCE_DEG)
        assert shapely.covers(grown, group.geometry.to_numpy()).all(), county
        union = shapely.union_all(group.geometry.to_numpy())
        assert union.area == pytest.approx(area.area, rel=1e-5), county
        # No overlaps: the parts add up to the union.
        assert shapely.area(group.geometry.to_numpy()).sum() == pytest.approx(union.area, rel=1e-9)


def test_demand_sums_equal_county_totals(layers):
    demand, counties = layers["demand"], layers["counties"]
    assert 3000 <= len(demand) <= 3600
    sums = demand.groupby("county")[["elderly", "elderly80", "disabled"]].sum()
    expected = counties.set_index("name").loc[sums.index]
    assert (sums["elderly"] == expected["elderly60_2024"]).all()
    assert (sums["elderly80"] == expected["elderly80_2024"]).all()
    assert (sums["disabled"] == expected["disabled_2024"]).all()
    assert (demand["elderly80"] <= demand["elderly"]).all()
    assert (demand["disabled"] <= demand["elderly"]).all()
    assert (demand["elderly"] > 0).all()


def test_demand_kinds(layers):
    demand, towns = layers["demand"], layers["townships"]
    assert set(demand["kind"]) == {"village", "community"}
    assert (demand["urban"] == (demand["kind"] == "community").astype(int)).all()
    assert (demand["kind"] == "community").sum() == 800
    assert (demand["kind"] == "village").sum() == 2500
    code_of = dict(
        zip(zip(towns["county"], towns["name"], strict=True), towns["code"], strict=True)
    )
    keys = zip(demand["county"], demand["township"], strict=True)
    assert [code_of[key] for key in keys] == demand["township_code"].tolist()


@pytest.mark.parametrize("layer", ["demand", *SITE_LAYERS])
def test_points_lie_in_their_county_and_township(layers, county_geom, zone_geom, layer):
    points = layers[layer]
    assert (points.geom_type == "Point").all()
    for (county, township), group in points.groupby(["county", "township"]):
        coords = xy(group)
        assert shapely.contains_xy(county_geom[county], coords).all(), (county, township)
        assert shapely.contains_xy(zone_geom[(county, township)], coords).all(), township


def test_expansions_sit_on_existing_institutions(layers):
    sites, existing = layers["institution_sites"], layers["institutions"]
    assert set(sites["action"]) == {"new", "expand"}
    expand = sites[sites["action"] == "expand"]
    assert (sites.loc[sites["action"] == "new", "expands"] == "").all()
    assert expand["expands"].isin(existing["site_id"]).all()
    assert expand["expands"].is_unique
    target = existing.set_index("site_id").loc[expand["expands"]]
    assert np.array_equal(xy(expand), xy(target))
    assert (expand["tier"].to_numpy() == target["tier"].to_numpy()).all()


def test_tiers_actions_beds_and_costs(layers):
    sites, existing = layers["institution_sites"], layers["institutions"]
    embedded, embedded_existing = layers["embedded_sites"], layers["embedded_existing"]
    assert set(existing["tier"]) == TIERS
    assert set(sites["tier"]) == TIERS
    assert (embedded["action"] == "new").all()
    assert 150 <= len(sites) <= 300 and 150 <= len(embedded) <= 300
    assert (sites["cost"] > 0).all() and (embedded["cost"] > 0).all()
    for frame in (existing, sites):
        assert (frame["beds"] > 0).all()
        assert ((frame["nursing_beds"] >= 0) & (frame["nursing_beds"] <= frame["beds"])).all()
    assert embedded["beds"].between(10, 40).all()
    assert embedded_existing["beds"].between(10, 40).all()
    # township nursing homes (one per 镇/乡) 60–150 beds; urban-core homes 200–600 beds, of
    # which the two largest per county are county tier and the rest street-level (town tier)
    town = existing[existing["tier"] == "town"]
    assert (town["beds"].between(60, 150) | town["beds"].between(200, 600)).all()
    assert existing.loc[existing["tier"] == "county", "beds"].between(200, 600).all()
    assert (existing[existing["tier"] == "county"].groupby("county").size() == 2).all()
    # Candidates in every county, rural ones included.
    counties = set(layers["counties"]["name"])
    assert set(sites["county"]) == counties and set(embedded["county"]) == counties


def test_existing_beds_per_thousand_elderly(layers):
    beds = layers["institutions"].groupby("county")["beds"].sum()
    elderly = layers["counties"].set_index("name")["elderly60_2024"]
    per_thousand = 1000 * beds / elderly.loc[beds.index]
    assert per_thousand.between(30, 40).all()


def test_source_labels(layers):
    synthetic = r"synthetic \(build\.py, seed \d+\)"
    for name in ["township_zones", "demand", *SITE_LAYERS]:
        assert layers[name]["source"].str.fullmatch(synthetic).all(), name
    assert layers["counties"]["source"].str.startswith("real:").all()
    towns = layers["townships"]
    real = towns["seat_source"] == "geonames"
    assert towns.loc[real, "source"].str.startswith("real:").all()
    assert towns.loc[~real, "source"].str.fullmatch(synthetic).all()


@pytest.mark.skipif(not SOURCES.is_dir(), reason="shared Ningbo sources not available")
def test_build_reproduces_the_shipped_layers(layers, tmp_path):
    command = [sys.executable, str(DATA / "build.py"), "--out", str(tmp_path)]
    command += ["--sources", str(SOURCES), "--no-preview"]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    rebuilt = read_layers(tmp_path / "ningbo.gpkg")
    for name, shipped in layers.items():
        fresh = rebuilt[name]
        assert list(fresh.columns) == list(shipped.columns), name
        pd.testing.assert_frame_equal(
            fresh.drop(columns="geometry"), shipped.drop(columns="geometry"), obj=name
        )
        assert (fresh.geom_type == shipped.geom_type).all(), name
        assert xy(fresh).shape == xy(shipped).shape, name
        assert np.allclose(xy(fresh), xy(shipped), rtol=0, atol=1e-9), name
