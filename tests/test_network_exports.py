"""Road networks as OSMnx exports them (issue 18): a two-way street stored once per direction,
snaps a rounding error apart on a one-way street, OSM `oneway` values, networks without edges."""

from __future__ import annotations

import subprocess
import sys

import geopandas as gpd
import numpy as np
import pytest
from pyproj import CRS
from shapely.geometry import LineString

from carecheck import DataError, run_scenario
from carecheck.config import NetworkSpec
from carecheck.data import load_network
from carecheck.network import network_from_segments, network_reach, snap_points
from carecheck.verify import Roads, road_costs_to_sites

from .conftest import METRIC, points_layer, write_scenario

X0, Y0 = 360_000.0, 3_305_000.0  # UTM 51N, Ningbo: coordinates as large as real ones
ORIGIN = np.array([X0, Y0])
# a bent two-way street 1 → 2 through a bend: two segments of √4000 ≈ 63.2 m
STREET = [(X0, Y0), (X0 + 60, Y0 + 20), (X0 + 120, Y0)]
ALONG = np.array([3.0, 1.0]) / np.sqrt(10)  # direction of the street's first segment
SIDE = np.array([-1.0, 3.0]) / np.sqrt(10)  # its left-hand normal


def beside(metres_along: float, metres_off: float) -> list[float]:
    """A point ``metres_along`` the street's first segment and ``metres_off`` to its left."""
    return (np.array(STREET[0]) + metres_along * ALONG + metres_off * SIDE).tolist()


def graphml(nodes: dict[int, tuple[float, float]], edges: list[dict], crs: str = METRIC) -> str:
    """GraphML as OSMnx's save_graphml writes it (a MultiDiGraph: edge id is the key)."""
    edge_keys = ["osmid", "oneway", "reversed", "length", "highway", "geometry"]
    keys = [
        '<key id="d0" for="graph" attr.name="crs" attr.type="string" />',
        '<key id="d1" for="node" attr.name="y" attr.type="string" />',
        '<key id="d2" for="node" attr.name="x" attr.type="string" />',
        '<key id="d3" for="node" attr.name="street_count" attr.type="string" />',
        *(
            f'<key id="e{k}" for="edge" attr.name="{name}" attr.type="string" />'
            for k, name in enumerate(edge_keys)
        ),
    ]
    body = [
        f'<node id="{i}"><data key="d1">{y!r}</data><data key="d2">{x!r}</data>'
        f'<data key="d3">1</data></node>'
        for i, (x, y) in nodes.items()
    ]
    for edge in edges:
        data = "".join(
            f'<data key="e{k}">{edge[name]}</data>'
            for k, name in enumerate(edge_keys)
            if edge.get(name) is not None
        )
        ends = f'source="{edge["u"]}" target="{edge["v"]}" id="{edge.get("key", 0)}"'
        body.append(f"<edge {ends}>{data}</edge>")
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        + "\n".join(keys)
        + f'\n<graph edgedefault="directed"><data key="d0">{crs}</data>\n'
        + "\n".join(body)
        + "\n</graph></graphml>\n"
    )


def wkt(coords) -> str:
    return LineString(coords).wkt


def two_way_street_stored_twice(tmp_path, fmt: str):
    """The street as OSMnx's directed exports store it: 1 → 2 and 2 → 1, reversed geometry."""
    length = LineString(STREET).length
    copies = [
        {"u": 1, "v": 2, "coords": STREET},
        {"u": 2, "v": 1, "coords": STREET[::-1]},
    ]
    common = {"osmid": 4242, "oneway": "False", "length": length, "highway": "residential"}
    if fmt == "graphml":
        path = tmp_path / "osm.graphml"
        edges = [
            {
                **common,
                "u": c["u"],
                "v": c["v"],
                "reversed": str(c["u"] == 2),
                "geometry": wkt(c["coords"]),
            }
            for c in copies
        ]
        path.write_text(graphml({1: STREET[0], 2: STREET[-1]}, edges), encoding="utf-8")
        return path
    path = tmp_path / "osm.gpkg"
    nodes = gpd.GeoDataFrame(
        {"osmid": [1, 2], "x": [STREET[0][0], STREET[-1][0]], "y": [STREET[0][1], STREET[-1][1]]},
        geometry=gpd.points_from_xy([STREET[0][0], STREET[-1][0]], [STREET[0][1], STREET[-1][1]]),
        crs=METRIC,
    )
    edges = gpd.GeoDataFrame(
        {
            "u": [1, 2],
            "v": [2, 1],
            "key": [0, 0],
            "osmid": [4242, 4242],
            "oneway": [False, False],
            "reversed": [False, True],
            "length": [length, length],
            "highway": ["residential", "residential"],
        },
        geometry=[LineString(c["coords"]) for c in copies],
        crs=METRIC,
    )
    nodes.to_file(path, layer="nodes", engine="pyogrio")
    edges.to_file(path, layer="edges", engine="pyogrio")
    return path


def both_costs(network, demand, sites, budget, *, kind="network_m", mode="walk"):
    """network.py's verdicts and the verifier's costs (sites × demand) for the same points."""
    demand, sites = np.array(demand, float), np.array(sites, float)
    budget = np.broadcast_to(np.asarray(budget, float), (len(sites),)).copy()
    reach = network_reach(
        network,
        snap_points(network, demand),
        snap_points(network, sites),
        budget,
        kind=kind,
        mode=mode,
    ).toarray()
    roads = Roads(
        network.node_xy, network.u, network.v, network.length_m, network.speed_kmh, network.oneway
    )
    costs = road_costs_to_sites(
        roads,
        demand,
        sites,
        np.full(len(sites), kind, dtype=object),
        np.full(len(sites), mode, dtype=object),
        budget,
    )
    return reach, costs


# --------------------------------------------------------------------------- 1. both directions


@pytest.mark.parametrize("fmt", ["graphml", "gpkg"])
def test_a_street_stored_once_per_direction_is_one_two_way_street(tmp_path, fmt):
    network = load_network(
        NetworkSpec(path=two_way_street_stored_twice(tmp_path, fmt)), CRS.from_epsg(32651)
    )
    assert network.n_edges == 2 and not network.oneway.any()  # one copy: the street's 2 segments
    assert network.length_m.sum() == pytest.approx(2 * np.sqrt(4000))
    # site 3 m left of the street, demand 5 m further along and 3 m right: 3 + 5 + 3 = 11 m
    site, demand = [beside(20, 3)], [beside(25, -3), beside(15, -3), beside(20, -3)]
    reach, costs = both_costs(network, demand, site, 11.0 + 1e-6)
    assert costs[0] == pytest.approx([11.0, 11.0, 6.0])
    assert reach[:, 0].tolist() == [True, True, True]
    reach, costs = both_costs(network, demand, site, 10.99)
    assert reach[:, 0].tolist() == [False, False, True]
    assert (costs[0] <= 10.99).tolist() == [False, False, True]


def test_a_two_way_street_stored_twice_runs_and_verifies(tmp_path):
    path = two_way_street_stored_twice(tmp_path, "graphml")
    # demand on both sides all along the first segment, each within 12 m of the site by road
    demand = [
        {"id": f"d{k}", "x": x, "y": y, "w": 1 + k}
        for k, (x, y) in enumerate(
            beside(20 + dx, side) for dx in np.linspace(-5, 5, 11) for side in (-3, 3)
        )
    ]
    points_layer(demand).to_file(tmp_path / "d.gpkg", engine="pyogrio")
    far = {"id": "far", "x": beside(60, 3)[0], "y": beside(60, 3)[1]}
    site = {"id": "s", "x": beside(20, 3)[0], "y": beside(20, 3)[1]}
    points_layer([site, far]).to_file(tmp_path / "s.gpkg", engine="pyogrio")
    body = {
        "name": "osm-directed",
        "crs": METRIC,
        "demand": {"path": "d.gpkg", "id": "id", "weight": "w"},
        "network": {"path": path.name},
        "facilities": {
            "home": {"network_m": 12, "count": 1, "candidates": {"path": "s.gpkg", "id": "id"}}
        },
    }
    scenario = write_scenario(tmp_path, body)
    result = run_scenario(scenario, write=False)
    assert result.verification.ok, result.verification.problems
    assert result.objective == sum(d["w"] for d in demand)
    assert result.selected["id"].tolist() == ["s"]
    proc = subprocess.run(
        [sys.executable, "-m", "carecheck", "run", str(scenario), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "verified: yes" in proc.stdout


def test_reverse_copies_merge_by_geometry_in_a_line_layer():
    # a plain line layer: the same street drawn twice, reversed; a one-way copy and a copy the
    # other way make the street two-way, two one-way copies the same way keep it one-way
    a, b, c = (X0, Y0), (X0 + 100, Y0), (X0 + 100, Y0 + 100)
    network = network_from_segments(
        np.array([a, b, b, c, b]),
        np.array([b, a, c, b, c]),
        oneway=np.array([True, False, True, False, True]),
    )
    assert network.n_edges == 2
    assert network.u.tolist() == [0, 1] and network.v.tolist() == [1, 2]
    assert network.oneway.tolist() == [False, False]
    network = network_from_segments(
        np.array([a, a, b]), np.array([b, b, c]), oneway=np.array([True, True, False])
    )
    assert network.n_edges == 2 and network.oneway.tolist() == [True, False]
    # endpoints within 1 mm are one node: a copy a fraction of a millimetre off is the same
    network = network_from_segments(np.array([a, np.add(b, 2e-4)]), np.array([b, a]))
    assert network.n_edges == 1


def test_parallel_streets_between_the_same_junctions_stay_apart(tmp_path):
    # two different streets 1 → 2 (straight and bent, keys 0 and 1) with their reverse copies
    straight, bent = [STREET[0], STREET[-1]], STREET
    edges = [
        {"u": 1, "v": 2, "key": 0, "oneway": "False", "geometry": wkt(straight)},
        {"u": 1, "v": 2, "key": 1, "oneway": "False", "geometry": wkt(bent)},
        {"u": 2, "v": 1, "key": 0, "oneway": "False", "geometry": wkt(bent[::-1])},
        {"u": 2, "v": 1, "key": 1, "oneway": "False", "geometry": wkt(straight[::-1])},
    ]
    path = tmp_path / "parallel.graphml"
    path.write_text(graphml({1: STREET[0], 2: STREET[-1]}, edges), encoding="utf-8")
    network = load_network(NetworkSpec(path=path), CRS.from_epsg(32651))
    assert network.n_edges == 3 and not network.oneway.any()  # 1 + 2 segments
    assert network.length_m.sum() == pytest.approx(120 + 2 * np.sqrt(4000))


def test_snapping_ties_go_to_the_lowest_segment_in_both_implementations():
    # a point midway between two parallel streets (10 m each way, up to rounding)
    network = network_from_segments(
        np.array([(X0, Y0 + 20), (X0, Y0)]), np.array([(X0 + 100, Y0 + 20), (X0 + 100, Y0)])
    )
    points = np.array([(X0 + 50.3, Y0 + 10.0), (X0 + 7.1, Y0 + 10.0 + 1e-9)])
    snap = snap_points(network, points)
    assert snap.edge.tolist() == [0, 0]
    from carecheck.verify import _snap_brute

    roads = Roads(
        network.node_xy, network.u, network.v, network.length_m, network.speed_kmh, network.oneway
    )
    edge, frac, _ = _snap_brute(roads, points)
    assert edge.tolist() == [0, 0] and frac == pytest.approx(snap.fraction)


# --------------------------------------------------------------------------- 2. snap tolerance


def one_way_street():
    # one-way from west to east, 1000 m at 30 km/h (500 m/min)
    return network_from_segments(
        np.array([(X0, Y0)]), np.array([(X0 + 1000, Y0)]), speed_kmh=30.0, oneway=True
    )


def test_a_point_a_rounding_error_downstream_still_reaches():
    network = one_way_street()
    site_x = X0 + 500
    # the demand beside the site, one float step (5.8e-11 m) downstream: a 10 m walk, 1/6 min
    demand = [
        [np.nextafter(site_x, np.inf), Y0 - 5],
        [np.nextafter(np.nextafter(site_x, np.inf), np.inf), Y0 + 5],
        [site_x + 1.0, Y0 - 5],  # 1 m downstream: it would have to drive against the street
        [site_x - 1.0, Y0 - 5],  # 1 m upstream: 1 m drive (0.002 min) + the walk
    ]
    site = [[site_x, Y0 + 5]]
    walk = 10 / 60
    reach, costs = both_costs(network, demand, site, walk + 0.01, kind="travel_min", mode="drive")
    assert reach[:, 0].tolist() == [True, True, False, True]
    assert costs[0] == pytest.approx([walk, walk, np.inf, walk + 0.002])
    # walking ignores the one-way street: 1 m downstream is 11 m
    reach, costs = both_costs(network, demand, site, 11.0 + 1e-6)
    assert reach[:, 0].tolist() == [True, True, True, True]
    assert costs[0] == pytest.approx([10, 10, 11, 11])


def test_a_snap_within_a_micrometre_of_a_node_is_at_the_node():
    # two one-way segments west → east; the site just before the junction on the first
    network = network_from_segments(
        np.array([(X0, Y0), (X0 + 1000, Y0)]),
        np.array([(X0 + 1000, Y0), (X0 + 2000, Y0)]),
        speed_kmh=30.0,
        oneway=True,
    )
    site = [[X0 + 1000 - 4e-7, Y0 + 5]]
    demand = [[X0 + 1000 + 4e-7, Y0 - 5]]  # just after the junction, on the second segment
    reach, costs = both_costs(
        network, demand, site, 10 / 60 + 0.01, kind="travel_min", mode="drive"
    )
    assert reach[0, 0] and costs[0, 0] == pytest.approx(10 / 60)


# --------------------------------------------------------------------------- 3. oneway values


def oneway_layer(tmp_path, values, name="r.gpkg"):
    """One street per value, each 1000 m west → east, 1000 m apart (north of each other)."""
    lines = [
        LineString([(X0, Y0 + 1000 * k), (X0 + 1000, Y0 + 1000 * k)]) for k in range(len(values))
    ]
    frame = gpd.GeoDataFrame({"oneway": values}, geometry=lines, crs=METRIC)
    frame.to_file(tmp_path / name, engine="pyogrio")
    return tmp_path / name


def drivable(network, k):
    """Whether the street k can be driven west → east and east → west (site 1 min away)."""
    west, east = [X0, Y0 + 1000 * k], [X0 + 1000, Y0 + 1000 * k]
    reach, costs = both_costs(
        network, [west, east], [east, west], 2.0 + 1e-6, kind="travel_min", mode="drive"
    )
    forward, backward = bool(reach[0, 0]), bool(reach[1, 1])
    assert (costs[0, 0] <= 2.0 + 1e-6, costs[1, 1] <= 2.0 + 1e-6) == (forward, backward)
    return forward, backward


def test_oneway_values_as_osm_defines_them(tmp_path):
    values = ["yes", "-1", "no", "reverse", "reversible", None, "1", "['yes', 'no']", "alternating"]
    network = load_network(
        NetworkSpec(path=oneway_layer(tmp_path, values), oneway="oneway"), CRS.from_epsg(32651)
    )
    assert [drivable(network, k) for k in range(len(values))] == [
        (True, False),  # yes: along the line
        (False, True),  # -1: against it — driving only v → u
        (True, True),
        (False, True),  # reverse
        (True, True),  # reversible: time-dependent, read as two-way (as OSMnx does)
        (True, True),  # blank
        (True, False),
        (True, False),  # a list: its first value
        (True, True),  # alternating
    ]


def test_oneway_minus_one_in_graphml_and_through_the_pipeline(tmp_path):
    a, b = (X0, Y0), (X0 + 1000, Y0)
    edges = [{"u": 1, "v": 2, "oneway": "-1", "length": 1000.0, "geometry": wkt([a, b])}]
    path = tmp_path / "rev.graphml"
    path.write_text(graphml({1: a, 2: b}, edges), encoding="utf-8")
    network = load_network(NetworkSpec(path=path), CRS.from_epsg(32651))
    assert network.oneway.tolist() == [True]
    assert network.node_xy[network.u[0]].tolist() == list(b)  # the edge now runs v → u
    assert drivable(network, 0) == (False, True)
    # OSMnx's True / False
    edges[0]["oneway"] = "True"
    path.write_text(graphml({1: a, 2: b}, edges), encoding="utf-8")
    assert drivable(load_network(NetworkSpec(path=path), CRS.from_epsg(32651)), 0) == (True, False)
    edges[0]["oneway"] = "-1"
    path.write_text(graphml({1: a, 2: b}, edges), encoding="utf-8")
    # the elderly at the east end drive to a site at the west end in 2 min (30 km/h) …
    points_layer(
        [
            {"id": "east", "x": b[0], "y": b[1] + 5, "w": 3},
            {"id": "west", "x": a[0], "y": a[1] - 5, "w": 4},
        ]
    ).to_file(tmp_path / "d.gpkg", engine="pyogrio")
    points_layer([{"id": "s", "x": a[0], "y": a[1] + 5}]).to_file(
        tmp_path / "s.gpkg", engine="pyogrio"
    )
    body = {
        "name": "against",
        "crs": METRIC,
        "demand": {"path": "d.gpkg", "id": "id", "weight": "w"},
        "network": {"path": path.name},
        "facilities": {
            "home": {
                "travel_min": 2.5,
                "mode": "drive",
                "count": 1,
                "candidates": {"path": "s.gpkg", "id": "id"},
            }
        },
    }
    result = run_scenario(write_scenario(tmp_path, body), write=False)
    assert result.verification.ok and result.objective == 7
    # … but not the other way: a site at the east end reaches only the east end's elderly
    points_layer([{"id": "s", "x": b[0], "y": b[1] - 5}]).to_file(
        tmp_path / "s.gpkg", engine="pyogrio"
    )
    result = run_scenario(write_scenario(tmp_path, body), write=False)
    assert result.verification.ok and result.objective == 3


def test_unknown_oneway_value_is_named_with_its_rows(tmp_path):
    path = oneway_layer(tmp_path, ["yes", "maybe", "no", "maybe", "2"])
    with pytest.raises(DataError) as info:
        load_network(NetworkSpec(path=path, oneway="oneway"), CRS.from_epsg(32651))
    message = str(info.value)
    assert str(path) in message and "column 'oneway'" in message
    assert "'2', 'maybe'" in message and "row(s) 2, 4, 5" in message
    assert "-1/reverse" in message


# --------------------------------------------------------------------------- 4. no edges


def test_a_network_without_edges_is_refused_at_load(tmp_path):
    path = tmp_path / "short.graphml"
    path.write_text(graphml({1: (X0, Y0), 2: (X0 + 50, Y0)}, []), encoding="utf-8")
    with pytest.raises(DataError, match="the network holds no edges"):
        load_network(NetworkSpec(path=path), CRS.from_epsg(32651))
    empty = gpd.GeoDataFrame({"oneway": []}, geometry=gpd.GeoSeries([], crs=METRIC), crs=METRIC)
    empty.to_file(tmp_path / "empty.gpkg", engine="pyogrio", geometry_type="LineString")
    with pytest.raises(DataError, match="the network holds no edges"):
        load_network(NetworkSpec(path=tmp_path / "empty.gpkg"), CRS.from_epsg(32651))
    point_lines = gpd.GeoDataFrame(geometry=[LineString([(X0, Y0), (X0, Y0)])], crs=METRIC)
    point_lines.to_file(tmp_path / "dots.gpkg", engine="pyogrio")
    with pytest.raises(DataError, match="only empty or zero-length lines"):
        load_network(NetworkSpec(path=tmp_path / "dots.gpkg"), CRS.from_epsg(32651))


def test_validate_and_run_exit_2_for_a_network_without_edges(tmp_path):
    path = tmp_path / "short.graphml"
    path.write_text(graphml({1: (X0, Y0), 2: (X0 + 50, Y0)}, []), encoding="utf-8")
    points_layer([{"id": "d", "x": X0, "y": Y0, "w": 1}]).to_file(
        tmp_path / "d.gpkg", engine="pyogrio"
    )
    points_layer([{"id": "s", "x": X0, "y": Y0}]).to_file(tmp_path / "s.gpkg", engine="pyogrio")
    body = {
        "name": "no-edges",
        "crs": METRIC,
        "demand": {"path": "d.gpkg", "id": "id", "weight": "w"},
        "network": {"path": path.name},
        "facilities": {
            "home": {"network_m": 100, "count": 1, "candidates": {"path": "s.gpkg", "id": "id"}}
        },
    }
    scenario = write_scenario(tmp_path, body)
    for command in (
        ["validate", str(scenario)],
        ["run", str(scenario), "--out", str(tmp_path / "o")],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "carecheck", *command],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=300,
        )
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert "short.graphml: the network holds no edges" in proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("seed", [5, 6])
def test_near_coincident_points_network_and_verifier_agree(seed):
    """Points piled up a rounding error apart along one-way streets: the same verdicts."""
    rng = np.random.default_rng(seed)
    grid = [((x, y), (x + 400, y)) for x in range(0, 2000, 400) for y in range(0, 2400, 400)]
    grid += [((x, y), (x, y + 400)) for x in range(0, 2400, 400) for y in range(0, 2000, 400)]
    start = np.array([s for s, _ in grid], float) + ORIGIN
    end = np.array([e for _, e in grid], float) + ORIGIN
    flip = rng.random(len(grid)) < 0.5  # and every street digitised either way, some twice
    start[flip], end[flip] = end[flip].copy(), start[flip].copy()
    twice = rng.random(len(grid)) < 0.3
    network = network_from_segments(
        np.vstack([start, end[twice]]),
        np.vstack([end, start[twice]]),
        speed_kmh=30.0,
        oneway=np.r_[rng.random(len(grid)) < 0.5, rng.random(twice.sum()) < 0.5],
    )
    on = rng.choice(len(grid), 10)  # sites beside streets, up to 5 m off
    sites = start[on] + rng.random((10, 1)) * (end[on] - start[on]) + rng.uniform(-3, 3, (10, 2))
    offsets = rng.choice([0.0, 6e-11, -6e-11, 3e-7, 2e-6], (10, 8, 2))
    demand = (sites[:, None, :] + offsets).reshape(-1, 2)
    demand = np.vstack([demand, rng.uniform(0, 2000, (60, 2)) + ORIGIN])
    budget = rng.uniform(0.5, 4.0, len(sites))
    reach, costs = both_costs(network, demand, sites, budget, kind="travel_min", mode="drive")
    assert np.array_equal(reach, (costs <= budget[:, None]).T)
    # every demand point piled within 1 µm of a site reaches it
    piled = reach[:80].reshape(10, 8, 10)[np.arange(10), :, np.arange(10)]
    close = (np.abs(offsets) < 1e-6).all(axis=2)
    assert piled[close].all() and close.sum() > 20
