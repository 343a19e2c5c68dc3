"""Reading layers: formats, projection, and one clear message per bad input."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from carecheck import DataError, load_scenario, run_scenario
from carecheck.data import load_layers

from .conftest import points_layer, write_scenario

DEMAND = [{"id": f"d{k}", "x": 1000.0 * k, "y": 0.0, "w": 10} for k in range(4)]
SITES = [{"id": "s0", "x": 0.0, "y": 0.0}, {"id": "s1", "x": 3000.0, "y": 0.0}]


def scenario(tmp_path, demand_file, sites_file, **extra):
    demand = {"path": demand_file, "id": "id", "weight": "w", **extra.pop("demand", {})}
    candidates = {"path": sites_file, "id": "id", **extra.pop("candidates", {})}
    body = {
        "name": "t",
        "crs": extra.pop("crs", "EPSG:32651"),
        "demand": demand,
        "facilities": {
            "home": {
                "radius_m": 500,
                "count": 1,
                "candidates": candidates,
                **extra.pop("facility", {}),
            }
        },
        **extra,
    }
    return write_scenario(tmp_path, body)


@pytest.mark.parametrize(
    "suffix,driver", [(".gpkg", "GPKG"), (".geojson", "GeoJSON"), (".shp", "ESRI Shapefile")]
)
def test_vector_formats(tmp_path, suffix, driver):
    points_layer(DEMAND).to_file(tmp_path / f"demand{suffix}", driver=driver, engine="pyogrio")
    points_layer(SITES).to_file(tmp_path / f"sites{suffix}", driver=driver, engine="pyogrio")
    path = scenario(tmp_path, f"demand{suffix}", f"sites{suffix}")
    result = run_scenario(path, write=False)
    assert result.objective == 10  # s0 reaches d0, s1 reaches d3 (weight 10 each)
    assert result.layers.crs.to_epsg() == 32651


def test_csv_with_lon_lat_and_chinese_path_with_spaces(tmp_path):
    folder = tmp_path / "宁波 数据"
    folder.mkdir()
    demand = points_layer(DEMAND).to_crs(4326)
    frame = pd.DataFrame(
        {
            "编号": [r["id"] for r in DEMAND],
            "老人": [10, 20, 30, 40],
            "经度": demand.geometry.x,
            "纬度": demand.geometry.y,
        }
    )
    frame.to_csv(folder / "需求.csv", index=False, encoding="utf-8-sig")
    points_layer(SITES).to_file(folder / "候选 点.geojson", driver="GeoJSON", engine="pyogrio")
    body = {
        "name": "t",
        "demand": {
            "path": "需求.csv",
            "id": "编号",
            "weight": "老人",
            "lon": "经度",
            "lat": "纬度",
        },
        "facilities": {
            "home": {
                "radius_m": 500,
                "count": 1,
                "candidates": {"path": "候选 点.geojson", "id": "id"},
            }
        },
    }
    path = write_scenario(folder, body, name="情景 1.yaml")
    out = folder / "输出 结果"
    result = run_scenario(path, out=out)
    assert result.objective == 40  # s1 at 3000 m reaches d3 (weight 40)
    # no `crs:`: the UTM zone of the demand (these points lie near 118.5°E: zone 50)
    assert result.layers.crs.to_epsg() == 32650
    assert (out / "demand_coverage.csv").exists()


def test_polygons_become_representative_points(tmp_path):
    squares = gpd.GeoDataFrame(
        {"id": ["a", "b"], "w": [5, 7]},
        geometry=[box(-100, -100, 100, 100), box(2900, -100, 3100, 100)],
        crs="EPSG:32651",
    )
    squares.to_file(tmp_path / "d.gpkg", layer="blocks", engine="pyogrio")
    points_layer(SITES).to_file(tmp_path / "s.geojson", driver="GeoJSON", engine="pyogrio")
    path = scenario(
        tmp_path, "d.gpkg", "s.geojson", demand={"layer": "blocks"}, facility={"count": 2}
    )
    layers = load_layers(load_scenario(path))
    assert set(layers.demand.geometry.geom_type) == {"Point"}
    assert run_scenario(path, write=False).objective == 12


def test_working_crs_from_scenario_must_be_metric(tmp_path):
    points_layer(DEMAND).to_file(tmp_path / "d.geojson", driver="GeoJSON", engine="pyogrio")
    points_layer(SITES).to_file(tmp_path / "s.geojson", driver="GeoJSON", engine="pyogrio")
    path = scenario(tmp_path, "d.geojson", "s.geojson", crs="EPSG:4326")
    with pytest.raises(DataError, match="EPSG:4326 is geographic"):
        load_layers(load_scenario(path))


def bad_case(tmp_path, demand_rows, site_rows, **extra):
    points_layer(demand_rows).to_file(tmp_path / "d.gpkg", engine="pyogrio")
    points_layer(site_rows).to_file(tmp_path / "s.gpkg", engine="pyogrio")
    path = scenario(tmp_path, "d.gpkg", "s.gpkg", **extra)
    with pytest.raises(DataError) as info:
        load_layers(load_scenario(path))
    return str(info.value)


def test_layer_without_crs_is_refused(tmp_path):
    # GeoJSON always implies WGS 84, so use a Shapefile without .prj
    frame = gpd.GeoDataFrame({"id": ["a"], "w": [1]}, geometry=[Point(0, 0)])
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        frame.to_file(tmp_path / "d.shp", engine="pyogrio")
    points_layer(SITES).to_file(tmp_path / "s.gpkg", engine="pyogrio")
    path = scenario(tmp_path, "d.shp", "s.gpkg")
    with pytest.raises(DataError, match="has no coordinate reference system"):
        load_layers(load_scenario(path))


def test_duplicate_ids_named(tmp_path):
    rows = [*DEMAND, {"id": "d1", "x": 5.0, "y": 5.0, "w": 1}]
    message = bad_case(tmp_path, rows, SITES)
    assert "d.gpkg: column 'id' has duplicate id(s): d1" in message


def test_negative_and_missing_weights_named(tmp_path):
    rows = [dict(r) for r in DEMAND]
    rows[1]["w"] = -3
    rows[2]["w"] = None
    message = bad_case(tmp_path, rows, SITES)
    assert "column 'w' (demand weight) must be a number ≥ 0" in message
    assert "d1=-3" in message and "d2=" in message


def test_missing_mapped_column_lists_columns(tmp_path):
    message = bad_case(tmp_path, DEMAND, SITES, demand={"region": "county"})
    assert "column 'county' (mapped by `region:`) not found; columns are id, w" in message


def test_empty_geometry_named(tmp_path):
    frame = points_layer(DEMAND)
    frame.loc[2, "geometry"] = None
    frame.to_file(tmp_path / "d.gpkg", engine="pyogrio")
    points_layer(SITES).to_file(tmp_path / "s.gpkg", engine="pyogrio")
    path = scenario(tmp_path, "d.gpkg", "s.gpkg")
    with pytest.raises(DataError, match="missing or empty geometry for id\\(s\\) d2"):
        load_layers(load_scenario(path))


def test_unknown_tier_bad_action_negative_cost(tmp_path):
    sites = [
        {"id": "s0", "x": 0.0, "y": 0.0, "tier": "town", "action": "new", "cost": 1},
        {"id": "s1", "x": 1.0, "y": 0.0, "tier": "city", "action": "build", "cost": 2},
    ]
    message = bad_case(
        tmp_path,
        DEMAND,
        sites,
        candidates={"tier": "tier", "action": "action"},
        facility={"tiers": {"town": {}, "village": {}}},
    )
    assert "tier(s) not in facilities.home.tiers (['town', 'village']) at id s1='city'" in message
    assert (
        "must be 'new' (新建) or 'expand' (扩建, 改扩建, 改建); bad value(s) at id s1='build'"
        in (message)
    )
    sites[1].update(tier="town", action="expand", cost=-2)
    message = bad_case(tmp_path, DEMAND, sites, candidates={"cost": "cost"})
    assert "column 'cost' (cost) must be a number ≥ 0; bad value(s) at id s1=-2" in message


def test_csv_without_coordinates(tmp_path):
    pd.DataFrame({"id": ["a"], "w": [1]}).to_csv(tmp_path / "d.csv", index=False)
    points_layer(SITES).to_file(tmp_path / "s.gpkg", engine="pyogrio")
    path = scenario(tmp_path, "d.csv", "s.gpkg")
    with pytest.raises(DataError, match="coordinate column\\(s\\) \\['lon', 'lat'\\] not found"):
        load_layers(load_scenario(path))


def test_unreadable_layer_names_file_and_layer(tmp_path):
    points_layer(DEMAND).to_file(tmp_path / "d.gpkg", layer="demand", engine="pyogrio")
    points_layer(SITES).to_file(tmp_path / "s.gpkg", engine="pyogrio")
    path = scenario(tmp_path, "d.gpkg", "s.gpkg", demand={"layer": "missing"})
    with pytest.raises(DataError, match=r"d\.gpkg \(layer missing\): cannot read the layer"):
        load_layers(load_scenario(path))


def test_inputs_are_not_modified(tmp_path):
    points_layer(DEMAND).to_file(tmp_path / "d.gpkg", engine="pyogrio")
    points_layer(SITES).to_file(tmp_path / "s.gpkg", engine="pyogrio")
    before = (tmp_path / "d.gpkg").read_bytes()
    run_scenario(scenario(tmp_path, "d.gpkg", "s.gpkg"), write=False)
    assert (tmp_path / "d.gpkg").read_bytes() == before
    assert np.isclose(
        load_layers(load_scenario(tmp_path / "scenario.yaml")).demand.geometry.x.iloc[1], 1000.0
    )


def test_demand_growth_overall_and_per_region(make_case):
    from carecheck import DataError

    demand = [
        {"id": "a", "x": 0.0, "y": 0.0, "w": 10, "region": "north"},
        {"id": "b", "x": 5000.0, "y": 0.0, "w": 20, "region": "south"},
    ]
    sites = [{"id": "s", "x": 0.0, "y": 0.0}]
    facility = {"home": {"radius_m": 100, "count": 1, "candidates": sites}}
    path = make_case(demand, facility)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("weight: w", "weight: w\n  growth: 1.5"), encoding="utf-8")
    result = run_scenario(path, write=False)
    assert result.coverage["demand_total"] == 45 and result.objective == 15
    path.write_text(
        text.replace("weight: w", "weight: w\n  growth: {north: 2, default: 1.1}"), encoding="utf-8"
    )
    result = run_scenario(path, write=False)
    assert result.coverage["demand_total"] == pytest.approx(20 + 22)
    path.write_text(text.replace("weight: w", "weight: w\n  growth: {west: 2}"), encoding="utf-8")
    with pytest.raises(DataError, match=r"demand\.growth: unknown region\(s\) west"):
        run_scenario(path, write=False)
