"""The verifier's grid snapping (verify._snap_grid) against its brute force (verify._snap_brute).

The grid only narrows down which segments each point is projected onto; segment, position and
distance must be the brute force's, bit for bit, ties included: on random networks, on street
grids (points on junctions and midway between parallel streets tie exactly), with zero-length
segments, clustered points, points far from every road, one segment, and no points.
"""

from __future__ import annotations

import numpy as np
import pytest

from carecheck import verify
from carecheck.verify import Roads, _snap_brute, _snap_grid, road_costs_to_sites

ORIGIN = np.array([360_000.0, 3_305_000.0])  # UTM 51N: coordinates as large as Ningbo's


def roads_of(node_xy: np.ndarray, u: np.ndarray, v: np.ndarray, **kw: float) -> Roads:
    m = len(u)
    length = np.hypot(*(node_xy[v] - node_xy[u]).T)
    return Roads(node_xy, u, v, length, np.full(m, 30.0), np.zeros(m, dtype=bool), **kw)


def assert_same_snap(roads: Roads, points: np.ndarray) -> tuple[np.ndarray, ...]:
    brute, grid = _snap_brute(roads, points), _snap_grid(roads, points)
    for name, mine, theirs in zip(("edge", "fraction", "distance"), grid, brute, strict=True):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape, name
        assert np.array_equal(mine, theirs), (name, np.flatnonzero(mine != theirs)[:5])
    return brute


def random_network(rng: np.random.Generator, scale: float) -> Roads:
    """Random nodes joined at random: long, crossing and repeated segments."""
    n_nodes = int(rng.integers(2, 400))
    xy = ORIGIN + rng.uniform(0, scale, (n_nodes, 2))
    m = int(rng.integers(1, 800))
    return roads_of(xy, rng.integers(0, n_nodes, m), rng.integers(0, n_nodes, m))


def street_grid(rng: np.random.Generator, step: float) -> tuple[Roads, np.ndarray]:
    """A street lattice, streets in random order and direction, some stored twice, and the
    lattice's junctions as nodes."""
    k = int(rng.integers(2, 12))
    gx, gy = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    xy = ORIGIN + np.stack([gx.ravel(), gy.ravel()], axis=1) * step
    node = np.arange(k * k).reshape(k, k)
    u = np.r_[node[:-1, :].ravel(), node[:, :-1].ravel()]
    v = np.r_[node[1:, :].ravel(), node[:, 1:].ravel()]
    twice = rng.random(len(u)) < 0.2
    u, v = np.r_[u, v[twice]], np.r_[v, u[twice]]
    flip = rng.random(len(u)) < 0.5
    u, v = np.where(flip, v, u), np.where(flip, u, v)
    order = rng.permutation(len(u))
    return roads_of(xy, u[order], v[order]), xy


@pytest.mark.parametrize("seed", range(24))
def test_random_networks(seed):
    rng = np.random.default_rng(seed)
    scale = [100.0, 5_000.0, 50_000.0][seed % 3]
    roads = random_network(rng, scale)
    points = ORIGIN + rng.uniform(-0.1 * scale, 1.1 * scale, (int(rng.integers(1, 600)), 2))
    assert_same_snap(roads, points)


@pytest.mark.parametrize("seed", range(16))
def test_street_grids_with_exact_ties(seed):
    rng = np.random.default_rng(100 + seed)
    step = [50.0, 400.0, 0.25, 1000.0][seed % 4]
    roads, junctions = street_grid(rng, step)
    lo, hi = junctions.min(axis=0), junctions.max(axis=0)
    # on junctions (every street there at distance 0), midway between parallel streets and on
    # the quarter lattice (equally far from two or four streets), and anywhere
    quarter = lo + np.round(rng.uniform(-1, (hi - lo) / step * 4 + 1, (300, 2))) * step / 4
    anywhere = rng.uniform(lo - step, hi + step, (200, 2))
    points = np.vstack([junctions, quarter, anywhere])
    edge, _, dist = assert_same_snap(roads, points)
    on_junction = dist[: len(junctions)]
    assert (on_junction == 0).all()
    # the ties are real: junctions lie on several streets, and the lowest-numbered one wins
    assert len(np.unique(edge)) < len(roads.u)


@pytest.mark.parametrize("seed", range(12))
def test_the_rings_find_the_nearest_midpoint_exactly(seed):
    """The bound the brute force filters with (the least distance to a midpoint) is found by
    the rings, to the bit, for every point among the roads."""
    rng = np.random.default_rng(150 + seed)
    if seed % 2:
        roads, _ = street_grid(rng, 100.0)
    else:
        roads = random_network(rng, [300.0, 30_000.0][seed % 4 // 2])
    a, b = roads.node_xy[roads.u], roads.node_xy[roads.v]
    mid = (a + b) / 2
    points = rng.uniform(a.min(axis=0), a.max(axis=0), (400, 2))
    best, settled = verify._nearest_midpoint(
        verify._segment_grid(roads), mid, points, np.arange(len(points))
    )
    to_mid = np.hypot(points[:, 0:1] - mid[None, :, 0], points[:, 1:2] - mid[None, :, 1])
    assert settled.all()
    assert np.array_equal(best, to_mid.min(axis=1))


@pytest.mark.parametrize("seed", range(8))
def test_zero_length_segments(seed):
    rng = np.random.default_rng(200 + seed)
    roads = random_network(rng, 2_000.0)
    m = len(roads.u)
    # a share of segments from a node to itself, and others between two nodes at one place
    u, v = roads.u.copy(), roads.v.copy()
    loop = rng.random(m) < 0.3
    v[loop] = u[loop]
    xy = np.vstack([roads.node_xy, roads.node_xy[:5]])
    u[:5], v[:5] = np.arange(5), len(roads.node_xy) + np.arange(5)
    roads = roads_of(xy, u, v)
    points = np.vstack([xy, ORIGIN + rng.uniform(-100, 2_100, (300, 2))])
    assert_same_snap(roads, points)
    only_points = roads_of(xy, u[loop], u[loop])  # every segment of length zero
    assert_same_snap(only_points, points)


@pytest.mark.parametrize("seed", range(8))
def test_clustered_and_coincident_points(seed):
    rng = np.random.default_rng(300 + seed)
    roads = random_network(rng, 10_000.0)
    centres = ORIGIN + rng.uniform(0, 10_000, (5, 2))
    spread = rng.choice([1e-9, 1e-3, 1.0, 50.0], (5, 1, 1))
    points = (centres[:, None, :] + rng.normal(0, 1, (5, 200, 2)) * spread).reshape(-1, 2)
    points = np.vstack([points, points[:50]])  # the same points twice
    assert_same_snap(roads, points)


@pytest.mark.parametrize("seed", range(6))
def test_points_far_from_every_road(seed):
    """Points beyond the grid's rings (and beyond max_snap_m) get the brute force's answer."""
    rng = np.random.default_rng(400 + seed)
    roads = random_network(rng, 1_000.0)
    roads = roads_of(roads.node_xy, roads.u, roads.v, max_snap_m=100.0)
    far = ORIGIN + rng.choice([-1, 1], (100, 2)) * rng.uniform(2e3, 1e6, (100, 2))
    near = ORIGIN + rng.uniform(0, 1_000, (100, 2))
    points = rng.permutation(np.vstack([far, near]))
    assert_same_snap(roads, points)
    assert_same_snap(roads, far)


def test_more_points_than_a_block():
    rng = np.random.default_rng(500)
    roads = random_network(rng, 20_000.0)
    points = ORIGIN + rng.uniform(0, 20_000, (verify._SNAP_BLOCK * 2 + 17, 2))
    assert_same_snap(roads, points)


def test_long_segments_among_short_ones_and_a_thin_network():
    rng = np.random.default_rng(600)
    short = random_network(rng, 300.0)
    xy = np.vstack([short.node_xy, ORIGIN + np.array([[-2e4, 150.0], [2e4, 150.0]])])
    n = len(short.node_xy)
    roads = roads_of(xy, np.r_[short.u, n], np.r_[short.v, n + 1])
    points = ORIGIN + rng.uniform([-21_000, -500], [21_000, 800], (500, 2))
    assert_same_snap(roads, points)
    # every node on one line: a grid one cell high
    line = ORIGIN + np.c_[np.sort(rng.uniform(0, 50_000, 300)), np.zeros(300)]
    roads = roads_of(line, np.arange(299), np.arange(1, 300))
    assert_same_snap(roads, ORIGIN + rng.uniform([-1_000, -3_000], [51_000, 3_000], (400, 2)))


@pytest.mark.parametrize(
    ("node_xy", "u", "v"),
    [
        (ORIGIN + np.array([[0.0, 0.0], [300.0, 40.0]]), [0], [1]),
        (ORIGIN + np.zeros((1, 2)), [0], [0]),  # one segment of length zero
    ],
    ids=["one segment", "one point-like segment"],
)
def test_a_single_segment(node_xy, u, v):
    rng = np.random.default_rng(700)
    roads = roads_of(np.array(node_xy), np.array(u), np.array(v))
    points = ORIGIN + rng.uniform(-5_000, 5_000, (300, 2))
    assert_same_snap(roads, np.vstack([points, node_xy]))


def test_no_points_and_no_segments():
    rng = np.random.default_rng(800)
    roads = random_network(rng, 1_000.0)
    edge, frac, dist = assert_same_snap(roads, np.zeros((0, 2)))
    assert edge.shape == frac.shape == dist.shape == (0,)
    empty = roads_of(np.zeros((0, 2)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert_same_snap(empty, np.zeros((0, 2)))
    # points but no road: the brute force refuses, and so does the grid, the same way
    for snap in (_snap_brute, _snap_grid):
        with pytest.raises(ValueError, match="zero-size array"):
            snap(empty, ORIGIN[None, :])


@pytest.mark.parametrize("seed", range(4))
def test_road_costs_are_the_brute_forces(seed, monkeypatch):
    """Costs along the roads, legs beyond max_snap_m included, with either snapping."""
    rng = np.random.default_rng(900 + seed)
    roads, junctions = street_grid(rng, 200.0)
    roads = roads_of(roads.node_xy, roads.u, roads.v, max_snap_m=60.0)
    lo, hi = junctions.min(axis=0) - 100, junctions.max(axis=0) + 100
    demand, sites = rng.uniform(lo, hi, (150, 2)), rng.uniform(lo, hi, (12, 2))
    kind = np.array(["network_m", "travel_min"] * 6, dtype=object)
    mode = np.array(["walk", "walk", "walk", "drive"] * 3, dtype=object)
    bound = np.where(kind == "network_m", 1_500.0, 20.0)
    verify._SNAPPED.clear()
    fast = road_costs_to_sites(roads, demand, sites, kind, mode, bound)
    verify._SNAPPED.clear()
    monkeypatch.setattr(
        verify, "_snap_grid", lambda roads, points, grid: _snap_brute(roads, points)
    )
    brute = road_costs_to_sites(roads, demand, sites, kind, mode, bound)
    verify._SNAPPED.clear()
    assert np.array_equal(fast, brute)
    assert np.isfinite(fast).any() and np.isinf(fast).any()


def test_snapped_points_cut_the_segments_in_order():
    """Where snapped points join the roads: at a segment's end they are tied to its node, inside
    they cut it in order, and a point within 1 µm of the one before it along the segment is
    tied to the last point kept (not cut again), even when that one is farther."""
    xy = ORIGIN + np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 50.0]])
    roads = roads_of(xy, np.array([0, 1]), np.array([1, 2]), max_snap_m=10.0)
    span = np.hypot(*(xy[roads.v] - xy[roads.u]).T)
    # points 0..6 are nodes 3..9; point 6 is beyond max_snap_m and joins nothing
    edge = np.array([0, 0, 0, 0, 1, 1, 0])
    frac = np.array([0.5, 0.25, 0.5 + 8e-9, 0.5 + 1.6e-8, 1.0 - 1e-9, 0.5, 0.75])
    leg = np.array([1.0, 2.0, 0.0, 3.0, 0.5, 4.0, 11.0])
    inside, ends = verify._snapped_points(roads, span, edge, frac, leg)
    assert ends.tolist() == [[7, 2]]  # 1e-9 of 50 m before node 2
    pieces, ties = verify._road_pieces(roads, span, inside)
    # 0.8 µm past point 0, and 0.8 µm past that (1.6 µm past point 0): both at point 0
    assert ties.tolist() == [[5, 3], [6, 3]]
    assert pieces[:, :3].tolist() == [[0, 0, 4], [0, 4, 3], [0, 3, 1], [1, 1, 8], [1, 8, 2]]
    assert pieces[:, 3].tolist() == [0.25, 0.25, 0.5, 0.5, 0.5]
