"""Reach along roads: hand-derived shortest paths, snapping, one-way streets, formats."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse import csgraph
from shapely.geometry import LineString

from carecheck import run_scenario
from carecheck.network import network_from_segments, network_reach, snap_points
from carecheck.verify import Roads, road_costs_to_sites

from .conftest import METRIC, points_layer, write_scenario


def line_network(segments, **kwargs):
    start = np.array([s[0] for s in segments], float)
    end = np.array([s[1] for s in segments], float)
    return network_from_segments(start, end, **kwargs)


def reach_of(network, demand, sites, reach, **kwargs):
    return network_reach(
        network,
        snap_points(network, np.array(demand, float)),
        snap_points(network, np.array(sites, float)),
        np.array(reach, float),
        **kwargs,
    ).toarray()


# An L-shaped street: (0,0) → (1000,0) → (1000,1000). A river runs along y = 500 west of x = 1000,
# so a point at (0, 1000) is 1000 m from (0,0) as the crow flies but not reachable that way.
L_STREET = [((0, 0), (1000, 0)), ((1000, 0), (1000, 1000))]


def test_snap_onto_the_middle_of_an_edge():
    network = line_network(L_STREET)
    snap = snap_points(network, np.array([[400.0, 30.0], [1020.0, 700.0]]))
    assert snap.edge.tolist() == [0, 1]
    assert snap.fraction == pytest.approx([0.4, 0.7])
    assert snap.leg_m == pytest.approx([30.0, 20.0])


def test_hand_derived_network_distances():
    network = line_network(L_STREET)
    # site at (400, 0) on the first street; demand at (1000, 600) on the second (leg 0):
    # along the road 600 + 600 = 1200 m; straight line only 848.5 m
    demand = [[1000, 600], [0, 0], [990, 600]]
    sites = [[400, 0]]
    reach = reach_of(network, demand, sites, [1200.0], kind="network_m")
    # third point: leg 10 m + 1200 m along → 1210 > 1200
    assert reach[:, 0].tolist() == [True, True, False]
    reach = reach_of(network, demand, sites, [1199.0], kind="network_m")
    assert reach[:, 0].tolist() == [False, True, False]
    # 20-minute walk at 60 m/min = 1200 m
    reach = reach_of(network, demand, sites, [20.0], kind="travel_min", mode="walk")
    assert reach[:, 0].tolist() == [True, True, False]


def test_two_points_on_one_edge_reach_each_other_along_it():
    network = line_network([((0, 0), (10_000, 0))])
    reach = reach_of(network, [[5000, 0], [5300, 0]], [[5100, 0]], [250.0], kind="network_m")
    # 100 m and 200 m along the same street, both within 250 m
    assert reach[:, 0].tolist() == [True, True]


def test_one_way_streets_only_when_driving():
    # a one-way street from (0,0) to (3000,0) at 60 km/h (1 km/min)
    network = line_network([((0, 0), (3000, 0))], speed_kmh=60.0, oneway=True)
    west, east = [[0, 0]], [[3000, 0]]
    # the elderly at the west end can drive to a site at the east end in 3 min ...
    assert reach_of(network, west, east, [3.0], kind="travel_min", mode="drive")[0, 0]
    # ... but from the east end they cannot drive back against the one-way street
    assert not reach_of(network, east, west, [60.0], kind="travel_min", mode="drive")[0, 0]
    # walking ignores one-way streets: 3000 m at 60 m/min = 50 min
    assert reach_of(network, east, west, [50.0], kind="travel_min", mode="walk")[0, 0]
    assert not reach_of(network, east, west, [49.9], kind="travel_min", mode="walk")[0, 0]


def test_points_too_far_from_roads_reach_nothing():
    network = line_network(L_STREET)
    reach = reach_of(
        network, [[500, 0], [500, 900]], [[500, 10]], [5000.0], kind="network_m", max_snap_m=300.0
    )
    assert reach[:, 0].tolist() == [True, False]


def test_disconnected_components_do_not_reach_each_other():
    network = line_network([((0, 0), (100, 0)), ((200, 0), (300, 0))])
    assert len(set(network.components())) == 2
    reach = reach_of(network, [[250, 0]], [[50, 0]], [10_000.0], kind="network_m")
    assert not reach[0, 0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_grids_equal_an_all_pairs_reference(seed):
    """Sites and demand at nodes of a random graph: reach = all-pairs Dijkstra ≤ reach."""
    rng = np.random.default_rng(seed)
    n = 120
    xy = rng.uniform(0, 5000, (n, 2))
    tri_edges = set()
    for i in range(n):  # connect each node to its 3 nearest neighbours
        d = np.hypot(*(xy - xy[i]).T)
        for j in np.argsort(d)[1:4]:
            tri_edges.add((min(i, j), max(i, j)))
    edges = np.array(sorted(tri_edges))
    oneway = rng.random(len(edges)) < 0.3
    speed = rng.choice([20.0, 40.0, 60.0], len(edges))
    network = network_from_segments(
        xy[edges[:, 0]], xy[edges[:, 1]], speed_kmh=speed, oneway=oneway
    )
    minutes = np.hypot(*(xy[edges[:, 1]] - xy[edges[:, 0]]).T) / (speed * 1000 / 60)
    rows = np.concatenate([edges[:, 0], edges[~oneway, 1]])
    cols = np.concatenate([edges[:, 1], edges[~oneway, 0]])
    data = np.concatenate([minutes, minutes[~oneway]])
    graph = sp.csr_matrix((data, (rows, cols)), shape=(n, n))
    all_pairs = csgraph.dijkstra(graph, directed=True)  # reference, from demand to site
    demand = rng.choice(n, 60, replace=False)
    sites = rng.choice(n, 15, replace=False)
    budget = rng.uniform(2, 8, len(sites))
    reach = reach_of(network, xy[demand], xy[sites], budget, kind="travel_min", mode="drive")
    expected = all_pairs[np.ix_(demand, sites)] <= budget[None, :]
    assert np.array_equal(reach, expected)
    # and the verifier's independent heap Dijkstra agrees
    roads = Roads(
        network.node_xy, network.u, network.v, network.length_m, network.speed_kmh, network.oneway
    )
    costs = road_costs_to_sites(
        roads,
        xy[demand],
        xy[sites],
        np.full(len(sites), "travel_min"),
        np.full(len(sites), "drive"),
        budget,
    )
    assert np.array_equal(budget[None, :] >= costs.T, expected)


# --------------------------------------------------------------------------- through the pipeline


def roads_layer(lines, **columns):
    return gpd.GeoDataFrame(columns, geometry=[LineString(c) for c in lines], crs=METRIC)


def network_case(tmp_path, network_spec, reach):
    demand = [
        {"id": "near", "x": 1000, "y": 600, "w": 5},
        {"id": "across", "x": 0, "y": 1000, "w": 7},
        {"id": "far", "x": 5000, "y": 5000, "w": 11},
    ]
    points_layer(demand).to_file(tmp_path / "d.gpkg", engine="pyogrio")
    points_layer([{"id": "s", "x": 400, "y": 0}]).to_file(tmp_path / "s.gpkg", engine="pyogrio")
    body = {
        "name": "roads",
        "crs": METRIC,
        "demand": {"path": "d.gpkg", "id": "id", "weight": "w"},
        "network": network_spec,
        "facilities": {"home": {**reach, "count": 1, "candidates": {"path": "s.gpkg", "id": "id"}}},
    }
    return run_scenario(write_scenario(tmp_path, body), out=tmp_path / "out")


def test_line_layer_with_classes_through_the_pipeline(tmp_path):
    # the L street plus a spur to (0, 1000)'s neighbourhood that is a long detour
    lines = [[(0, 0), (1000, 0)], [(1000, 0), (1000, 1000)], [(1000, 1000), (0, 1000)]]
    roads_layer(lines, kind=["local", "local", "street"]).to_file(
        tmp_path / "r.gpkg", engine="pyogrio"
    )
    spec = {
        "path": "r.gpkg",
        "class": "kind",
        "class_speeds": {"local": 30, "street": 20},
        "max_snap_m": 300,
    }
    result = network_case(tmp_path, spec, {"network_m": 1500})
    # near: 600 + 600 = 1200 ✓; across: 600 + 1000 + 1000 = 2600 ✗ (straight line 1077 m)
    assert result.objective == 5
    assert result.verification.ok
    assert result.network["unreachable_demand"] == ["far"]
    assert "1 个需求点距任何道路超过 300 米" in (tmp_path / "out" / "report.md").read_text(
        encoding="utf-8"
    )
    result = network_case(tmp_path, spec, {"network_m": 2600})
    assert result.objective == 12
    # the map draws the area reached along the roads, not a circle
    areas = gpd.read_file(tmp_path / "out" / "reach_areas.geojson")
    assert areas["id"].tolist() == ["s"] and areas.geometry.iloc[0].geom_type == "Polygon"
    assert '"area":{"type":"Polygon"' in (tmp_path / "out" / "map.html").read_text(
        encoding="utf-8"
    ).replace(" ", "")


@pytest.mark.parametrize("seed", range(4))
def test_reach_area_hulls_of_a_line_through_the_nodes_are_those_of_the_points(seed):
    """network.reach_areas takes the concave hull of a line through the reached nodes (made in
    one piece) for that of their MultiPoint: GEOS hulls the vertices alone, so the two agree
    to the coordinate, degenerate sets (collinear, repeated, on a lattice) included."""
    import shapely

    rng = np.random.default_rng(seed)
    for n in [2, 3, 5, 40, 400, 3000]:
        sets = [
            rng.uniform(0, 5_000, (n, 2)),
            np.outer(rng.uniform(0, 1, n), [300.0, 40.0]),
            rng.uniform(0, 100, (max(1, n // 3), 2))[rng.integers(0, max(1, n // 3), n)],
            np.round(rng.uniform(0, 8, (n, 2))) * 50.0,
        ]
        for nodes in sets:
            nodes = nodes + np.array([360_000.0, 3_305_000.0])
            line = shapely.concave_hull(shapely.linestrings(nodes), ratio=0.3)
            points = shapely.concave_hull(shapely.multipoints(nodes), ratio=0.3)
            assert line.geom_type == points.geom_type
            assert np.array_equal(shapely.get_coordinates(line), shapely.get_coordinates(points))


@pytest.mark.parametrize("threads", [2, 3])
def test_reach_area_hulls_on_threads_are_those_of_one_call(monkeypatch, threads):
    """The hulls computed in chunks on threads land on the right sites and equal one vectorised
    call, coordinate for coordinate (sizes mixed so that the size-ordered chunks interleave)."""
    import shapely

    from carecheck import network

    monkeypatch.setattr(network, "_HULL_THREADS", threads)
    rng = np.random.default_rng(7)
    sizes = rng.choice([1, 2, 3, 30, 700], size=41)
    geoms = np.array(
        [
            shapely.linestrings(rng.uniform(0, 2_000, (n, 2)))
            if n > 1
            else shapely.multipoints(rng.uniform(0, 2_000, (1, 2)))
            for n in sizes
        ],
        dtype=object,
    )
    threaded = network._concave_hulls(geoms, ratio=0.3)
    single = shapely.concave_hull(geoms, ratio=0.3)
    assert len(threaded) == len(single) == len(geoms)
    for a, b in zip(threaded, single, strict=True):
        assert a.geom_type == b.geom_type
        assert np.array_equal(shapely.get_coordinates(a), shapely.get_coordinates(b))


def test_travel_time_uses_class_speeds(tmp_path):
    lines = [[(0, 0), (1000, 0)], [(1000, 0), (1000, 1000)]]
    roads_layer(lines, kind=["fast", "slow"]).to_file(tmp_path / "r.gpkg", engine="pyogrio")
    spec = {"path": "r.gpkg", "class": "kind", "class_speeds": {"fast": 60, "slow": 6}}
    # drive: 600 m at 1 km/min = 0.6 min, then 600 m at 0.1 km/min = 6 min → 6.6 min
    assert network_case(tmp_path, spec, {"travel_min": 6.7, "mode": "drive"}).objective == 5
    assert network_case(tmp_path, spec, {"travel_min": 6.5, "mode": "drive"}).objective == 0


def test_unknown_road_class_is_named(tmp_path):
    from carecheck import DataError

    roads_layer([[(0, 0), (10, 0)]], kind=["track"]).to_file(tmp_path / "r.gpkg", engine="pyogrio")
    with pytest.raises(DataError, match="road class\\(es\\) track have no speed"):
        network_case(
            tmp_path,
            {"path": "r.gpkg", "class": "kind", "class_speeds": {"x": 5}},
            {"network_m": 100},
        )


def test_network_reach_needs_a_network_section(tmp_path):
    from carecheck import ScenarioError

    with pytest.raises(ScenarioError, match="needs a `network:` section"):
        points_layer([{"id": "a", "x": 0, "y": 0, "w": 1}]).to_file(
            tmp_path / "d.gpkg", engine="pyogrio"
        )
        points_layer([{"id": "s", "x": 0, "y": 0}]).to_file(tmp_path / "s.gpkg", engine="pyogrio")
        body = {
            "name": "n",
            "demand": {"path": "d.gpkg", "id": "id", "weight": "w"},
            "facilities": {
                "home": {"travel_min": 15, "count": 1, "candidates": {"path": "s.gpkg", "id": "id"}}
            },
        }
        run_scenario(write_scenario(tmp_path, body), write=False)


OSMNX_GRAPHML = """<?xml version='1.0' encoding='utf-8'?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key id="d9" for="edge" attr.name="geometry" attr.type="string" />
  <key id="d8" for="edge" attr.name="length" attr.type="string" />
  <key id="d7" for="edge" attr.name="highway" attr.type="string" />
  <key id="d6" for="edge" attr.name="oneway" attr.type="string" />
  <key id="d3" for="node" attr.name="x" attr.type="string" />
  <key id="d2" for="node" attr.name="y" attr.type="string" />
  <key id="d0" for="graph" attr.name="crs" attr.type="string" />
  <graph edgedefault="directed">
    <data key="d0">epsg:4326</data>
    <node id="1"><data key="d2">29.87</data><data key="d3">121.55</data></node>
    <node id="2"><data key="d2">29.87</data><data key="d3">121.56</data></node>
    <node id="3"><data key="d2">29.88</data><data key="d3">121.56</data></node>
    <edge source="1" target="2" id="0">
      <data key="d6">False</data><data key="d7">['residential', 'tertiary']</data>
      <data key="d8">2000.0</data></edge>
    <edge source="2" target="1" id="0">
      <data key="d6">False</data><data key="d7">residential</data><data key="d8">2000.0</data>
    </edge>
    <edge source="2" target="3" id="0">
      <data key="d6">True</data><data key="d7">primary</data><data key="d8">1111.0</data>
      <data key="d9">LINESTRING (121.56 29.87, 121.5605 29.875, 121.56 29.88)</data></edge>
  </graph>
</graphml>
"""


def test_osmnx_graphml_and_geopackage_read(tmp_path):
    from pyproj import CRS

    from carecheck.config import NetworkSpec
    from carecheck.data import load_network

    path = tmp_path / "osm.graphml"
    path.write_text(OSMNX_GRAPHML, encoding="utf-8")
    spec = NetworkSpec(
        path=path, **{"class": "highway"}, class_speeds={"residential": 30, "primary": 60}
    )
    network = load_network(spec, CRS.from_epsg(32651))
    # edge 1-2 stored twice (both directions) is one two-way segment; edge 2-3 has 2 segments
    assert network.n_edges == 3
    assert network.n_nodes == 4  # 3 nodes plus the bend of the geometry
    # the stated OSM length is kept (2000 m, not the ~966 m of the straight line) …
    assert sorted(np.round(network.length_m, 1))[-1:] == [2000.0]
    # … and spread over a bent edge's segments in proportion to their geometric length
    bent = network.speed_kmh == 60
    assert network.length_m[bent].sum() == pytest.approx(1111.0)
    assert network.oneway[bent].all() and not network.oneway[~bent].any()
    # the same graph as OSMnx's GeoPackage (layers nodes + edges) reads alike
    nodes = gpd.GeoDataFrame(
        {"osmid": [1, 2, 3]},
        geometry=gpd.points_from_xy([121.55, 121.56, 121.56], [29.87, 29.87, 29.88]),
        crs=4326,
    )
    edges = gpd.GeoDataFrame(
        {
            "u": [1, 2, 2],
            "v": [2, 1, 3],
            "key": [0, 0, 0],
            "length": [2000.0, 2000.0, 1111.0],
            "oneway": [False, False, True],
            "highway": ["residential", "residential", "primary"],
        },
        geometry=[
            LineString([(121.55, 29.87), (121.56, 29.87)]),
            LineString([(121.56, 29.87), (121.55, 29.87)]),
            LineString([(121.56, 29.87), (121.5605, 29.875), (121.56, 29.88)]),
        ],
        crs=4326,
    )
    gpkg = tmp_path / "osm.gpkg"
    nodes.to_file(gpkg, layer="nodes", engine="pyogrio")
    edges.to_file(gpkg, layer="edges", engine="pyogrio")
    again = load_network(
        NetworkSpec(
            path=gpkg, **{"class": "highway"}, class_speeds={"residential": 30, "primary": 60}
        ),
        CRS.from_epsg(32651),
    )
    assert again.n_edges == network.n_edges
    assert np.sort(again.length_m) == pytest.approx(np.sort(network.length_m))


@pytest.mark.parametrize(
    "kind,mode", [("network_m", None), ("travel_min", "walk"), ("travel_min", "drive")]
)
def test_points_anywhere_network_and_verifier_agree(kind, mode):
    """Points off the nodes (snapped mid-edge, with legs): the two implementations agree."""
    rng = np.random.default_rng(11)
    grid = [((x, y), (x + 500, y)) for x in range(0, 3000, 500) for y in range(0, 3500, 500)]
    grid += [((x, y), (x, y + 500)) for x in range(0, 3500, 500) for y in range(0, 3000, 500)]
    network = line_network(
        grid, speed_kmh=rng.choice([20.0, 50.0], len(grid)), oneway=rng.random(len(grid)) < 0.25
    )
    demand = rng.uniform(-100, 3100, (150, 2))
    sites = rng.uniform(0, 3000, (12, 2))
    budget = rng.uniform(500, 2500, 12) if kind == "network_m" else rng.uniform(3, 20, 12)
    reach = reach_of(
        network, demand, sites, budget, kind=kind, mode=mode or "walk", max_snap_m=80.0
    )
    roads = Roads(
        network.node_xy,
        network.u,
        network.v,
        network.length_m,
        network.speed_kmh,
        network.oneway,
        max_snap_m=80.0,
    )
    costs = road_costs_to_sites(
        roads,
        demand,
        sites,
        np.full(12, kind, dtype=object),
        np.full(12, mode or "walk", dtype=object),
        budget,
    )
    assert np.array_equal(reach, (costs <= budget[:, None]).T)
    assert 0 < reach.sum() < reach.size


def test_tiers_mixing_kinds_of_reach(tmp_path):
    """One type whose tiers reach by drive time, road distance and straight line."""
    lines = [[(0, 0), (1000, 0)], [(1000, 0), (1000, 1000)], [(1000, 1000), (0, 1000)]]
    roads_layer(lines, kind=["local", "local", "street"]).to_file(
        tmp_path / "r.gpkg", engine="pyogrio"
    )
    demand = [
        {"id": f"d{k}", "x": x, "y": y, "w": 1 + k}
        for k, (x, y) in enumerate([(0, 0), (1000, 300), (1000, 900), (300, 1000)])
    ]
    points_layer(demand).to_file(tmp_path / "d.gpkg", engine="pyogrio")
    sites = [
        {"id": "c1", "x": 0, "y": 0, "tier": "county"},
        {"id": "v1", "x": 1000, "y": 1000, "tier": "village"},
        {"id": "t1", "x": 500, "y": 1000, "tier": "town"},
    ]
    existing = [
        {"id": "e1", "x": 1000, "y": 0, "tier": "village"},
        {"id": "e2", "x": 0, "y": 1000, "tier": "county"},
    ]
    points_layer(sites).to_file(tmp_path / "s.gpkg", engine="pyogrio")
    points_layer(existing).to_file(tmp_path / "e.gpkg", engine="pyogrio")
    body = {
        "name": "mixed",
        "crs": METRIC,
        "demand": {"path": "d.gpkg", "id": "id", "weight": "w"},
        "network": {"path": "r.gpkg", "class": "kind", "class_speeds": {"local": 30, "street": 30}},
        "facilities": {
            "home": {
                "count": 1,
                "tiers": {
                    "county": {"travel_min": 1, "mode": "drive"},  # 500 m at 30 km/h
                    "town": {"radius_m": 300},
                    "village": {"network_m": 400},
                },
                "candidates": {"path": "s.gpkg", "id": "id", "tier": "tier"},
                "existing": {"path": "e.gpkg", "id": "id", "tier": "tier"},
            }
        },
    }
    result = run_scenario(write_scenario(tmp_path, body), write=False)
    assert result.verification.ok
    # before: e1 (village, 400 m by road) reaches d1 (300 m up the second street) → 2;
    # e2 (county, 1 min drive = 500 m) reaches d3 (300 m along the top street) → 4
    assert result.coverage["types"]["home"]["covered_before"] == 6


def test_the_segment_tree_is_built_once_and_snaps_as_a_fresh_one():
    """snap_points reuses the network's STRtree; a copy (pickled, as for a Dask worker) builds
    its own and snaps the same."""
    import pickle

    rng = np.random.default_rng(3)
    start = rng.uniform(0, 2_000, (300, 2))
    network = network_from_segments(start, start + rng.uniform(-200, 200, (300, 2)))
    points = rng.uniform(0, 2_000, (500, 2))
    first = snap_points(network, points)
    tree = network.segment_tree()
    again = snap_points(network, points)
    assert network.segment_tree() is tree
    copied = pickle.loads(pickle.dumps(network))
    fresh = snap_points(copied, points)
    for snap in (again, fresh):
        assert np.array_equal(snap.edge, first.edge)
        assert np.array_equal(snap.fraction, first.fraction)
        assert np.array_equal(snap.leg_m, first.leg_m)
