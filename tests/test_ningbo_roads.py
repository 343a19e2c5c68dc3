"""Checks of the synthetic Ningbo road network (geodata/ningbo/roads.gpkg) and of its rebuild."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from scipy import sparse
from scipy.sparse import csgraph

HERE = Path(__file__).resolve()
DATA = HERE.parents[1] / "geodata" / "ningbo"
ROADS = DATA / "roads.gpkg"
NINGBO = DATA / "ningbo.gpkg"
SCRIPT = DATA / "roads.py"

COLUMNS = ["road_id", "class", "oneway", "bridge", "name", "source"]
CLASSES = {"expressway", "arterial", "local", "street"}
SITE_LAYERS = ["institutions", "embedded_existing", "institution_sites", "embedded_sites"]
BRIDGES = {"象山港大桥"}  # the only roads allowed over water (stated in SOURCES.md)
LAND_TOLERANCE_DEG = 1e-6  # coordinates are rounded to 6 decimals
METRIC = "EPSG:32651"


@pytest.fixture(scope="module")
def roads() -> gpd.GeoDataFrame:
    return gpd.read_file(ROADS, layer="roads", engine="pyogrio")


@pytest.fixture(scope="module")
def ningbo() -> dict[str, gpd.GeoDataFrame]:
    names = ["counties", "townships", "demand", *SITE_LAYERS]
    return {name: gpd.read_file(NINGBO, layer=name, engine="pyogrio") for name in names}


@pytest.fixture(scope="module")
def generator():
    """roads.py as a module (for its harbour model)."""
    spec = importlib.util.spec_from_file_location("ningbo_roads", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


@pytest.fixture(scope="module")
def graph(roads):
    """Node ids of each edge's start and end: lines meet where their endpoints are equal."""
    geoms = roads.geometry.to_numpy()
    ends = np.vstack(
        [
            shapely.get_coordinates(shapely.get_point(geoms, 0)),
            shapely.get_coordinates(shapely.get_point(geoms, -1)),
        ]
    )
    nodes, inverse = np.unique(ends, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    return inverse[: len(roads)], inverse[len(roads) :], nodes


def weak_components(u, v, n):
    matrix = sparse.csr_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
    return csgraph.connected_components(matrix, directed=False)[1]


def xy(frame: gpd.GeoDataFrame) -> np.ndarray:
    return shapely.get_coordinates(frame.geometry.to_numpy())


def test_layer_contract(roads):
    assert "roads" in pyogrio.list_layers(ROADS)[:, 0]
    assert list(roads.columns) == [*COLUMNS, "geometry"]
    assert roads.crs.to_epsg() == 4326
    assert (roads.geom_type == "LineString").all()
    assert roads["road_id"].is_unique
    assert roads["road_id"].str.fullmatch(r"R\d{6}").all()
    assert set(roads["class"]) == CLASSES
    assert set(roads["oneway"]) <= {0, 1} and set(roads["bridge"]) <= {0, 1}
    assert roads["source"].str.fullmatch(r"synthetic \(roads\.py, seed \d+\)").all()
    coords = xy(roads)
    assert np.array_equal(coords, np.round(coords, 6))
    assert (shapely.length(roads.geometry.to_numpy()) > 0).all()


def test_size_and_one_way_streets(roads):
    assert 20_000 <= len(roads) <= 60_000
    assert ROADS.stat().st_size < 6e6
    oneway = roads[roads["oneway"] == 1]
    # a few urban streets only; expressways are modelled two-way
    assert 0 < len(oneway) < 0.1 * (roads["class"] == "street").sum()
    assert (oneway["class"] == "street").all()


def test_roads_stay_on_land(roads, ningbo):
    land = shapely.buffer(shapely.union_all(ningbo["counties"].geometry.to_numpy()), 1e-6)
    shapely.prepare(land)
    onshore = roads[roads["bridge"] == 0].geometry.to_numpy()
    assert shapely.within(onshore, land).all()


def test_only_the_stated_bridge_crosses_the_harbour(roads, ningbo, generator):
    points = np.vstack([xy(ningbo[name]) for name in ["townships", "demand", *SITE_LAYERS]])
    water = generator.harbour_water(ningbo["counties"], points)
    assert not shapely.contains_xy(water, points[:, 0], points[:, 1]).any()
    wet = shapely.buffer(water, -LAND_TOLERANCE_DEG)
    shapely.prepare(wet)
    bridges = roads[roads["bridge"] == 1]
    assert set(bridges["name"]) == BRIDGES
    assert (bridges["class"] == "expressway").all()
    assert shapely.intersects(bridges.geometry.to_numpy(), wet).all()
    onshore = roads[roads["bridge"] == 0].geometry.to_numpy()
    assert not shapely.intersects(onshore, wet).any()


def test_network_is_connected_but_for_islands(roads, ningbo, graph):
    u, v, nodes = graph
    label = weak_components(u, v, len(nodes))[u]
    sizes = np.bincount(label)
    main = sizes.argmax()
    assert sizes[main] >= 0.95 * len(roads)
    assert sizes[main] >= 0.999 * len(roads)  # in fact all but a few island roads
    # every other component lies on an island, off the mainland polygon
    parts = shapely.get_parts(shapely.union_all(ningbo["counties"].geometry.to_numpy()))
    mainland = parts[np.argmax(shapely.area(parts))]
    others = roads.geometry.to_numpy()[label != main]
    assert not shapely.intersects(others, mainland).any()


def test_junctions_are_shared_endpoints(roads):
    """At-grade roads meet only at exact shared endpoints: none ends on another's middle,
    none crosses another. Expressways cross them grade-separated."""
    grade = roads[roads["class"] != "expressway"].geometry.to_numpy()
    start = shapely.get_coordinates(shapely.get_point(grade, 0))
    end = shapely.get_coordinates(shapely.get_point(grade, -1))
    ends = np.vstack([start, end])
    tree = shapely.STRtree(grade)
    hit_end, hit_line = tree.query(shapely.points(ends), predicate="dwithin", distance=1e-7)
    at_start = np.all(ends[hit_end] == start[hit_line], axis=1)
    at_end = np.all(ends[hit_end] == end[hit_line], axis=1)
    assert (at_start | at_end).all()
    crossing = tree.query(grade, predicate="crosses")
    assert crossing.shape[1] == 0


def test_expressways_meet_other_roads_at_interchanges(roads, graph):
    u, v, nodes = graph
    express = (roads["class"] == "expressway").to_numpy()
    ex_nodes = np.unique(np.r_[u[express], v[express]])
    grade_nodes = np.unique(np.r_[u[~express], v[~express]])
    shared = np.intersect1d(ex_nodes, grade_nodes)
    assert len(shared) >= 10  # at least the county cores
    degree = np.bincount(np.r_[u, v], minlength=len(nodes))
    assert (degree[ex_nodes] >= 2).all()  # no expressway dead ends


def test_every_component_can_be_driven_through(roads, graph):
    u, v, nodes = graph
    two_way = (roads["oneway"] == 0).to_numpy()
    rows, cols = np.r_[u, v[two_way]], np.r_[v, u[two_way]]
    matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(nodes),) * 2)
    n_strong = csgraph.connected_components(matrix, directed=True, connection="strong")[0]
    assert n_strong == weak_components(u, v, len(nodes)).max() + 1


def test_demand_and_sites_are_near_a_road(roads, ningbo):
    lines = roads.to_crs(METRIC).geometry.to_numpy()
    tree = shapely.STRtree(lines)
    for name in ["demand", *SITE_LAYERS]:
        points = ningbo[name].to_crs(METRIC).geometry.to_numpy()
        _, dist = tree.query_nearest(points, return_distance=True, all_matches=False)
        assert len(dist) == len(points), name
        assert (dist <= 500).mean() >= 0.99, name
        assert dist.max() <= 300, name


def test_rebuild_reproduces_the_shipped_layer(roads, tmp_path):
    command = [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--quiet"]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    fresh = gpd.read_file(tmp_path / "roads.gpkg", layer="roads", engine="pyogrio")
    assert list(fresh.columns) == list(roads.columns)
    pd.testing.assert_frame_equal(fresh.drop(columns="geometry"), roads.drop(columns="geometry"))
    assert (fresh.geom_type == roads.geom_type).all()
    assert xy(fresh).shape == xy(roads).shape
    assert np.allclose(xy(fresh), xy(roads), rtol=0, atol=1e-9)
