"""Generate a synthetic road network for Ningbo (``roads.gpkg``), seeded and deterministic.

No real road network of Ningbo is available offline, so this script draws a plausible one on
the synthetic Ningbo data set (``ningbo.gpkg`` beside it), for computing reach along roads:

- expressways between the county urban cores (a greedy spanner over their Delaunay graph),
  with interchanges every ~12 km linked to the arterial network, and the Xiangshan Harbour
  Bridge (象山港大桥), the only road allowed over water;
- arterials between all 157 township seats, across county borders too (a greedy spanner over
  the Delaunay graph of the seats);
- street grids (300-400 m spacing) over the urban cores around the 街道 seats, the
  communities there, and the larger town centres;
- local roads joining every village and community outside the grids to its township seat
  (a Prim-Dijkstra tree per township), shortcuts between neighbouring villages where the
  roads would otherwise be more than 1.5 x the straight distance (a greedy spanner), half of
  the dead-end villages continued to the nearest road of another township within 1.5 km,
  and access roads to every demand point and care site still more than 150 m from a road;
- one-way couplets (every 8th grid line, alternating) in the three largest street grids,
  kept only where every component can still be driven through.

Roads stay on land: inside the county polygons and out of the Xiangshan Harbour, which the
county polygons include as land (their boundary runs along the harbour's midline) and which
this script models as a water strip around that boundary (:func:`harbour_water`). Lines are
noded where they cross or touch (at-grade roads among themselves, expressways among
themselves), so every junction is an exact shared endpoint; expressways meet the other roads
only at county cores and interchanges (grade separation).

Usage::

    python geodata/ningbo/roads.py [--input ningbo.gpkg] [--out DIR] [--quiet]

Metric work uses the same local equirectangular projection as ``build.py`` (centred at
121.55 E, 29.85 N); the output is EPSG:4326 with coordinates rounded to 6 decimals. Speeds are
not stored: a scenario maps ``class`` to a speed (see SOURCES.md).
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import Delaunay, cKDTree

SEED = 20260101
SYNTHETIC = f"synthetic (roads.py, seed {SEED})"
HERE = Path(__file__).resolve().parent
INPUT = HERE / "ningbo.gpkg"
OUTPUT_NAME = "roads.gpkg"
LAYER = "roads"
COLUMNS = ["road_id", "class", "oneway", "bridge", "name", "source"]

CLASSES = ("expressway", "arterial", "local", "street")
# Suggested speeds for scenarios (not stored per edge): class -> km/h.
SPEED_KMH = {"expressway": 90.0, "arterial": 50.0, "local": 30.0, "street": 20.0}
# When roads overlap after noding, the piece takes the first class in this order.
AT_GRADE_PRIORITY = ("arterial", "street", "local")

SITE_LAYERS = ("institutions", "embedded_existing", "institution_sites", "embedded_sites")

# Local equirectangular projection (metres), as in build.py.
LON0, LAT0 = 121.55, 29.85
M_PER_DEG = 6_371_008.8 * math.pi / 180.0
KX = math.cos(math.radians(LAT0))

GRID_DEG = 1e-6  # output precision: 6 decimals, and the noding grid
LAND_EROSION_M = 0.25  # generated roads keep this far inside the land polygons

# Xiangshan Harbour (象山港): a water strip along the boundary between the north shore
# (奉化, 鄞州) and the south shore (象山, 宁海), east of its head near 西店.
HARBOUR_NORTH = ("奉化区", "鄞州区")
HARBOUR_SOUTH = ("象山县", "宁海县")
HARBOUR_HEAD_LON = 121.46
HARBOUR_PIECE_M = 250.0
HARBOUR_CLEARANCE_M = 100.0  # keep the water this far from every seat, village and site
HARBOUR_HALF_WIDTH_M = (50.0, 1500.0)
HARBOUR_SMOOTH_PIECES = 8  # half-width = min over +-8 pieces (+-2 km): a smoother shore
HARBOUR_TAPER_M = 8000.0  # the harbour narrows over its last 8 km towards the head

BRIDGE_NAME = "象山港大桥"
BRIDGE_NEAR = (121.78, 29.63)  # lon, lat: where the bridge crosses the harbour
BRIDGE_LENGTH_M = 6800.0  # abutment to abutment, approach viaducts included
BRIDGE_LANDING_M = 150.0  # at least this far beyond the water's edge

# Network design parameters.
EXPRESSWAY_STRETCH = 1.3  # greedy spanner: add a link if the network is > 1.3 x longer
ARTERIAL_STRETCH = 1.4
INTERCHANGE_SPACING_M = 12_000.0
INTERCHANGE_END_GAP_M = 4_000.0
INTERCHANGE_LINK_MAX_M = 5_000.0
STREET_SPACING_M = (300.0, 400.0)
STREET_MIN_PIECE_M = 40.0
URBAN_SEAT_RADIUS_M = 900.0  # 街道 seat
URBAN_COMMUNITY_RADIUS_M = 450.0
TOWN_SEAT_RADIUS_M = 500.0  # 镇/乡 seat with at least two communities
TOWN_COMMUNITY_RADIUS_M = 350.0
URBAN_CLOSING_M = 500.0
URBAN_MIN_KM2 = 0.25
ONEWAY_CLUSTERS = 3  # one-way couplets in the 3 largest urban grids
ONEWAY_EVERY = 8  # every 8th grid line, directions alternating
TREE_TRADEOFF = 0.4  # village roads: between a spanning tree (0) and a star (1)
DEAD_END_SHARE = 0.5
DEAD_END_REACH_M = 1500.0
LOOP_LENGTH_M = (300.0, 4000.0)  # shortcuts between neighbouring villages
LOCAL_STRETCH = 1.5  # add a shortcut where the roads so far are > 1.5 x longer
LOCAL_SINUOSITY = 1.12  # expected length / straight distance of a local road
ACCESS_MIN_M = 150.0  # demand points and sites farther than this from a road get an access road
ROUTER_SPACING_M = 600.0
ROUTER_COAST_GAP_M = 150.0

# (sinuosity range, vertex spacing in metres, max interior vertices) by road kind.
WIGGLE = {
    "expressway": ((1.03, 1.08), 2000.0, 40),
    "arterial": ((1.05, 1.18), 700.0, 40),
    "local": ((1.05, 1.25), 400.0, 5),
}


# --------------------------------------------------------------------------- projection


def to_metres(lonlat: np.ndarray) -> np.ndarray:
    lonlat = np.asarray(lonlat, dtype=float)
    return np.column_stack(
        [(lonlat[:, 0] - LON0) * M_PER_DEG * KX, (lonlat[:, 1] - LAT0) * M_PER_DEG]
    )


def to_lonlat(xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, dtype=float)
    return np.column_stack([xy[:, 0] / (M_PER_DEG * KX) + LON0, xy[:, 1] / M_PER_DEG + LAT0])


def on_grid(xy: np.ndarray) -> np.ndarray:
    """Metres moved to the output grid (6-decimal lon/lat) so that a point computed on a
    road in metres lies on the stored road too (the projection is affine)."""
    return to_metres(np.round(to_lonlat(xy), 6))


def polylines(xys: list[np.ndarray]) -> np.ndarray:
    """LineStrings from a list of (k, 2) vertex arrays of varying k."""
    lengths = [len(xy) for xy in xys]
    return shapely.linestrings(np.concatenate(xys), indices=np.repeat(np.arange(len(xys)), lengths))


def nearest_on(line, p: np.ndarray) -> np.ndarray:
    """The point of ``line`` nearest to ``p`` (metres)."""
    point = shapely.Point(p)
    return np.array(shapely.line_interpolate_point(line, line.project(point)).coords[0])


def geom_m(geom):
    return shapely.transform(geom, to_metres)


def short(name: str) -> str:
    """西店镇 -> 西店, 莼湖街道 -> 莼湖, 余姚市 -> 余姚."""
    for suffix in ("街道", "镇", "乡", "区", "县", "市"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


# --------------------------------------------------------------------------- inputs


@dataclass
class Points:
    """Named points in metres, with their township code where known."""

    xy: np.ndarray
    name: np.ndarray
    code: np.ndarray


def read_inputs(path: Path) -> dict[str, gpd.GeoDataFrame]:
    names = ("counties", "townships", "demand", *SITE_LAYERS)
    return {name: gpd.read_file(path, layer=name, engine="pyogrio") for name in names}


def xy_m(frame: gpd.GeoDataFrame) -> np.ndarray:
    return to_metres(shapely.get_coordinates(frame.geometry.to_numpy()))


def all_sites(layers) -> Points:
    xy = np.vstack([xy_m(layers[name]) for name in SITE_LAYERS])
    names = np.concatenate([layers[name]["name"].to_numpy() for name in SITE_LAYERS])
    return Points(xy, names, np.full(len(xy), "", dtype=object))


# --------------------------------------------------------------------------- water and land


def harbour_arc(counties: gpd.GeoDataFrame):
    """The county boundary along the Xiangshan Harbour (lon/lat), east of its head."""
    geom = dict(zip(counties["name"], counties.geometry, strict=True))
    north = shapely.union_all([geom[n] for n in HARBOUR_NORTH])
    south = shapely.union_all([geom[n] for n in HARBOUR_SOUTH])
    shared = shapely.line_merge(shapely.intersection(north.boundary, south.boundary))
    arc = shapely.intersection(shared, shapely.box(HARBOUR_HEAD_LON, -90.0, 180.0, 90.0))
    return shapely.line_merge(arc)


def harbour_water(counties: gpd.GeoDataFrame, keep_dry_lonlat: np.ndarray):
    """The Xiangshan Harbour as a water polygon (lon/lat, 6 decimals).

    The county polygons run their shared boundary down the harbour's midline and count the
    water as land. The harbour is modelled as a strip around that boundary: each 250 m piece
    is buffered by (distance to the nearest seat, village or site - 100 m), smoothed (the
    minimum over +-2 km), clipped to 50-1,500 m and narrowed over the last 8 km towards the
    head, so no given point is in the water.
    """
    arc = geom_m(harbour_arc(counties))
    pieces = []
    for line in shapely.get_parts(arc):
        n = max(1, math.ceil(line.length / HARBOUR_PIECE_M))
        pts = shapely.get_coordinates(
            shapely.line_interpolate_point(line, np.linspace(0.0, line.length, n + 1))
        )
        pieces.append(shapely.linestrings(np.stack([pts[:-1], pts[1:]], axis=1)))
    chords = np.concatenate(pieces)
    points = shapely.points(to_metres(keep_dry_lonlat))
    _, dist = shapely.STRtree(points).query_nearest(chords, return_distance=True, all_matches=False)
    room = dist - HARBOUR_CLEARANCE_M
    k = HARBOUR_SMOOTH_PIECES
    padded = np.pad(room, k, mode="edge")
    smooth = np.min(np.lib.stride_tricks.sliding_window_view(padded, 2 * k + 1), axis=1)
    # distance of each piece from the harbour's head (the arc's western end)
    mids = shapely.get_coordinates(shapely.line_interpolate_point(chords, 0.5, normalized=True))
    head = mids[np.argmin(mids[:, 0])]
    from_head = np.hypot(*(mids - head).T)
    taper = np.clip(0.2 + 0.8 * from_head / HARBOUR_TAPER_M, 0.2, 1.0)
    half = np.clip(smooth, *HARBOUR_HALF_WIDTH_M) * taper
    half = np.maximum(half, HARBOUR_HALF_WIDTH_M[0])
    water = shapely.union_all(shapely.buffer(chords, half, quad_segs=4))
    water = shapely.transform(water, to_lonlat)
    return shapely.set_precision(water, GRID_DEG)


class Geography:
    """Land (county union minus harbour water), its parts, and the harbour bridge."""

    def __init__(self, counties: gpd.GeoDataFrame, dry_points_lonlat: np.ndarray):
        self.land_lonlat = shapely.union_all(counties.geometry.to_numpy())
        self.water_lonlat = harbour_water(counties, dry_points_lonlat)
        land = geom_m(self.land_lonlat).difference(geom_m(self.water_lonlat))
        land = shapely.buffer(land, -LAND_EROSION_M)
        parts = shapely.get_parts(land)
        self.parts = parts[np.argsort(-shapely.area(parts), kind="stable")]
        for part in self.parts:
            shapely.prepare(part)
        self.mainland = self.parts[0]
        self.tree = shapely.STRtree(self.parts)
        self.bridge = self._bridge(counties)

    def part_of(self, xy: np.ndarray) -> np.ndarray:
        """Index of the land part holding each point (metres); the nearest part if none."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        part = np.full(len(xy), -1)
        for k, poly in enumerate(self.parts):
            todo = np.flatnonzero(part < 0)
            if not len(todo):
                break
            part[todo[shapely.contains_xy(poly, xy[todo, 0], xy[todo, 1])]] = k
        lost = np.flatnonzero(part < 0)
        if len(lost):
            near = self.tree.query_nearest(shapely.points(xy[lost]), all_matches=False)
            part[lost[near[0]]] = near[1]
        return part

    def on_land(self, lines: np.ndarray, part: np.ndarray) -> np.ndarray:
        """Whether each line (metres) lies inside its land part."""
        ok = np.zeros(len(lines), dtype=bool)
        for p in np.unique(part):
            mask = part == p
            ok[mask] = shapely.within(lines[mask], self.parts[p])
        return ok

    def _bridge(self, counties) -> np.ndarray:
        """Two landings (metres) of the bridge across the harbour, near BRIDGE_NEAR."""
        arc = geom_m(harbour_arc(counties))
        near = shapely.points(to_metres(np.array([BRIDGE_NEAR])))[0]
        line = shapely.get_parts(arc)[np.argmin(shapely.distance(shapely.get_parts(arc), near))]
        s = line.project(near)
        a = np.array(line.interpolate(max(s - 1000.0, 0.0)).coords[0])
        b = np.array(line.interpolate(min(s + 1000.0, line.length)).coords[0])
        mid = np.array(line.interpolate(s).coords[0])
        normal = np.array([-(b - a)[1], (b - a)[0]]) / np.hypot(*(b - a))
        water = geom_m(self.water_lonlat)
        landings = []
        for sign in (1.0, -1.0):
            for step in np.arange(0.0, 5000.0, 10.0):
                p = mid + sign * normal * step
                if not shapely.intersects(water, shapely.Point(p)):
                    break
            reach = max(step + BRIDGE_LANDING_M, BRIDGE_LENGTH_M / 2)
            p = mid + sign * normal * reach
            assert shapely.contains_xy(self.mainland, *p), "bridge landing not on land"
            landings.append(p)
        # north landing first
        landings.sort(key=lambda p: -p[1])
        return on_grid(np.array(landings))


# --------------------------------------------------------------------------- routing on land


class Router:
    """Shortest paths over a lattice on the mainland, for links whose straight line hits water."""

    def __init__(self, geo: Geography, spacing: float = ROUTER_SPACING_M):
        self.geo = geo
        region = geo.mainland
        inner = shapely.buffer(region, -ROUTER_COAST_GAP_M)
        shapely.prepare(inner)
        x0, y0, x1, y1 = shapely.bounds(region)
        xs = np.arange(x0, x1 + spacing, spacing)
        ys = np.arange(y0, y1 + spacing, spacing)
        gx, gy = np.meshgrid(xs, ys)
        index = np.full(gx.shape, -1)
        inside = shapely.contains_xy(inner, gx, gy)
        index[inside] = np.arange(inside.sum())
        self.xy = np.column_stack([gx[inside], gy[inside]])
        deep = shapely.buffer(inner, -2.0 * spacing)
        shapely.prepare(deep)
        is_deep = shapely.contains_xy(deep, self.xy[:, 0], self.xy[:, 1])
        rows, cols = np.nonzero(inside)
        us, vs = [], []
        for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):
            r2, c2 = rows + di, cols + dj
            valid = (r2 >= 0) & (r2 < index.shape[0]) & (c2 >= 0) & (c2 < index.shape[1])
            u = index[rows[valid], cols[valid]]
            v = index[r2[valid], c2[valid]]
            u, v = u[v >= 0], v[v >= 0]
            check = ~(is_deep[u] & is_deep[v])  # a short edge between deep nodes is inside
            segs = shapely.linestrings(np.stack([self.xy[u[check]], self.xy[v[check]]], axis=1))
            good = np.ones(len(u), dtype=bool)
            good[check] = shapely.within(segs, inner)
            us.append(u[good])
            vs.append(v[good])
        u, v = np.concatenate(us), np.concatenate(vs)
        w = np.hypot(*(self.xy[u] - self.xy[v]).T)
        n = len(self.xy)
        self.n = n
        self.kdtree = cKDTree(self.xy)
        self.without_bridge = sparse.csr_matrix((w, (u, v)), shape=(n, n))
        # The bridge: two extra nodes (the landings) joined by one edge.
        landing = geo.bridge
        bu, bv, bw = [n], [n + 1], [float(np.hypot(*(landing[0] - landing[1])))]
        for k, p in enumerate(landing):
            node = self._attach(p)
            bu.append(n + k)
            bv.append(node)
            bw.append(float(np.hypot(*(self.xy[node] - p))))
        self.with_bridge = sparse.csr_matrix(
            (np.r_[w, bw], (np.r_[u, bu], np.r_[v, bv])), shape=(n + 2, n + 2)
        )

    def node_xy(self, i: int) -> np.ndarray:
        return self.xy[i] if i < self.n else self.geo.bridge[i - self.n]

    def _attach(self, p: np.ndarray) -> int:
        """The nearest lattice node in straight sight of ``p`` over land."""
        k = min(24, len(self.xy))
        _, idx = self.kdtree.query(p, k=k)
        segs = shapely.linestrings(np.stack([np.broadcast_to(p, (k, 2)), self.xy[idx]], axis=1))
        ok = shapely.within(segs, self.geo.mainland)
        if not ok.any():
            raise RuntimeError(f"no lattice node in sight of {p}")
        return int(idx[np.argmax(ok)])

    def route(self, a: np.ndarray, b: np.ndarray, bridge: bool) -> list[tuple[np.ndarray, int]]:
        """Polyline pieces (xy, is_bridge) from a to b over land (and the bridge if allowed)."""
        graph = self.with_bridge if bridge else self.without_bridge
        src, dst = self._attach(a), self._attach(b)
        dist, pred = csgraph.dijkstra(graph, directed=False, indices=src, return_predecessors=True)
        if not np.isfinite(dist[dst]):
            raise RuntimeError("no land route")
        path = [dst]
        while path[-1] != src:
            path.append(int(pred[path[-1]]))
        path.reverse()
        xy = np.array([self.node_xy(i) for i in path])
        cross = [i for i in range(len(path) - 1) if path[i] >= self.n and path[i + 1] >= self.n]
        if not cross:
            return [(self.pull(np.vstack([a, xy, b])), 0)]
        i = cross[0]
        return [
            (self.pull(np.vstack([a, xy[: i + 1]])), 0),
            (xy[i : i + 2], 1),
            (self.pull(np.vstack([xy[i + 1 :], b])), 0),
        ]

    def pull(self, path: np.ndarray, lookahead: int = 80) -> np.ndarray:
        """Shorten a lattice path: jump to the farthest vertex in straight sight over land."""
        keep = [0]
        i = 0
        while i < len(path) - 1:
            js = np.arange(i + 1, min(len(path), i + 1 + lookahead))
            segs = shapely.linestrings(
                np.stack([np.broadcast_to(path[i], (len(js), 2)), path[js]], axis=1)
            )
            ok = shapely.within(segs, self.geo.mainland)
            ok[0] = True
            i = int(js[np.flatnonzero(ok)[-1]])
            keep.append(i)
        return path[keep]


# --------------------------------------------------------------------------- link shapes


def wiggle_profile(rng, length: float, kind: str) -> tuple[np.ndarray, float]:
    """A unit meander profile (Brownian bridge) at interior vertices, and the target sinuosity."""
    (lo, hi), spacing, max_n = WIGGLE[kind]
    target = rng.uniform(lo, hi)
    n = int(np.clip(round(length / spacing) - 1, 0, max_n))
    steps = rng.normal(size=n + 1)
    if n == 0:
        return np.zeros(0), target
    walk = np.concatenate([[0.0], np.cumsum(steps)])
    t = np.linspace(0.0, 1.0, n + 2)
    bridge = walk - t * walk[-1]
    return bridge[1:-1], target


def meander(a: np.ndarray, b: np.ndarray, profile: np.ndarray, target: float) -> np.ndarray:
    """Vertices from a to b whose length is ``target`` x the straight distance (Newton)."""
    d = b - a
    length = float(np.hypot(*d))
    n = len(profile)
    if n == 0 or length == 0.0 or not np.any(profile):
        return np.array([a, b])
    t = np.linspace(0.0, 1.0, n + 2)
    dx = np.diff(t) * length
    dp = np.diff(np.concatenate([[0.0], profile, [0.0]]))
    goal = target * length
    scale = math.sqrt(max(2.0 * (target - 1.0) * length / float(np.sum(dp**2 / dx)), 0.0))
    for _ in range(8):
        seg = np.sqrt(dx**2 + (scale * dp) ** 2)
        f = float(seg.sum()) - goal
        fp = float(np.sum(scale * dp**2 / seg))
        if fp <= 0:
            break
        scale = max(scale - f / fp, 0.0)
    normal = np.array([-d[1], d[0]]) / length
    inner = a + np.outer(t[1:-1], d) + np.outer(scale * profile, normal)
    return np.vstack([a, inner, b])


@dataclass
class Road:
    xy: np.ndarray  # metres
    cls: str
    name: str
    bridge: int = 0
    group: str = ""  # village roads: the township code of their tree
    key: tuple = ()  # street grid line: (cluster, family, index)
    direction: tuple = ()  # unit vector along a street grid line

    def __post_init__(self):
        self.xy = on_grid(self.xy)


def shape_links(
    rng,
    geo: Geography,
    router_fn,
    ends: list[tuple[np.ndarray, np.ndarray]],
    kind: str,
    route: bool,
    bridge: bool = False,
) -> list[list[tuple[np.ndarray, int]] | None]:
    """Meandering polylines on land for each (a, b); halves the meander, goes straight, then
    routes around water (if ``route``); None when no land link is found."""
    draws = [wiggle_profile(rng, float(np.hypot(*(b - a))), kind) for a, b in ends]
    part_a = geo.part_of(np.array([a for a, _ in ends]).reshape(-1, 2))
    part_b = geo.part_of(np.array([b for _, b in ends]).reshape(-1, 2))
    result: list = [None] * len(ends)
    pending = np.flatnonzero(part_a == part_b)
    for factor in (1.0, 0.5, 0.25, 0.0):
        if not len(pending):
            break
        shapes = []
        for i in pending:
            (a, b), (profile, target) = ends[i], draws[i]
            if factor == 0.0:
                shapes.append(np.array([a, b]))
            else:
                shapes.append(meander(a, b, profile, 1.0 + (target - 1.0) * factor))
        ok = geo.on_land(polylines(shapes), part_a[pending])
        for i, shape, good in zip(pending, shapes, ok, strict=True):
            if good:
                result[i] = [(shape, 0)]
        pending = pending[~ok]
    if route:
        for i in pending:
            a, b = ends[i]
            if part_a[i] == 0 and part_b[i] == 0:
                result[i] = router_fn().route(a, b, bridge)
    return result


# --------------------------------------------------------------------------- graphs


def delaunay_edges(xy: np.ndarray) -> np.ndarray:
    tri = Delaunay(xy)
    s = tri.simplices
    e = np.vstack([s[:, [0, 1]], s[:, [1, 2]], s[:, [0, 2]]])
    e = np.sort(e, axis=1)
    return np.unique(e, axis=0)


def greedy_spanner(n: int, edges: np.ndarray, cost: np.ndarray, stretch: float) -> np.ndarray:
    """Edges (in cost order) kept when the network so far is more than ``stretch`` x longer."""
    adj: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    keep = []
    for k in np.argsort(cost, kind="stable"):
        i, j = int(edges[k, 0]), int(edges[k, 1])
        limit = stretch * cost[k]
        if shortest(adj, i, j, limit) > limit:
            adj[i].append((j, float(cost[k])))
            adj[j].append((i, float(cost[k])))
            keep.append(k)
    return np.array(sorted(keep), dtype=np.int64)


def shortest(adj, src: int, dst: int, limit: float) -> float:
    best = {src: 0.0}
    heap = [(0.0, src)]
    while heap:
        d, u = heapq.heappop(heap)
        if u == dst:
            return d
        if d > best.get(u, math.inf) or d > limit:
            continue
        for v, w in adj[u]:
            nd = d + w
            if nd < best.get(v, math.inf):
                best[v] = nd
                heapq.heappush(heap, (nd, v))
    return math.inf


def prim_dijkstra_edges(xy: np.ndarray, tradeoff: float) -> np.ndarray:
    """A spanning tree rooted at point 0 (Prim-Dijkstra trade-off, Alpert et al. 1995).

    Grows from the root, always adding the point p and tree point q that minimise
    ``tradeoff * path(q) + d(p, q)``, where path(q) is q's road distance to the root:
    0 gives the minimum spanning tree, 1 the star of shortest paths.
    """
    n = len(xy)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    path = np.zeros(n)
    in_tree = np.zeros(n, dtype=bool)
    in_tree[0] = True
    best = d[0].copy()
    parent = np.zeros(n, dtype=np.int64)
    edges = []
    for _ in range(n - 1):
        cand = np.where(in_tree, np.inf, best)
        p = int(np.argmin(cand))
        q = int(parent[p])
        edges.append((q, p))
        in_tree[p] = True
        path[p] = path[q] + d[q, p]
        key = tradeoff * path[p] + d[p]
        better = key < best
        best = np.where(better, key, best)
        parent = np.where(better, p, parent)
    return np.array(edges, dtype=np.int64)


def mst_edges(xy: np.ndarray) -> np.ndarray:
    """Euclidean minimum spanning tree edges (i, j) of a small point set."""
    if len(xy) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    d = d + 1e-9 * (d == 0) * (1 - np.eye(len(xy)))  # coincident points still link
    tree = csgraph.minimum_spanning_tree(sparse.csr_matrix(np.triu(d))).tocoo()
    e = np.column_stack([tree.row, tree.col])
    return e[np.lexsort((e[:, 1], e[:, 0]))]


# --------------------------------------------------------------------------- the network


class Builder:
    def __init__(self, rng, layers):
        self.rng = rng
        counties = layers["counties"]
        towns = layers["townships"]
        demand = layers["demand"]
        self.seats = Points(xy_m(towns), towns["name"].to_numpy(), towns["code"].to_numpy())
        self.seat_county = towns["county"].to_numpy()
        self.seat_type = towns["type"].to_numpy()
        self.demand = Points(
            xy_m(demand), demand["name"].to_numpy(), demand["township_code"].to_numpy()
        )
        self.kind = demand["kind"].to_numpy()
        self.elderly = demand["elderly"].to_numpy(float)
        self.demand_county = demand["county"].to_numpy()
        self.sites = all_sites(layers)
        dry = np.vstack([self.seats.xy, self.demand.xy, self.sites.xy])
        self.geo = Geography(counties, to_lonlat(dry))
        self.counties = counties["name"].tolist()
        self._router: Router | None = None
        self.roads: list[Road] = []

    def router(self) -> Router:
        if self._router is None:
            self._router = Router(self.geo)
        return self._router

    # county cores ------------------------------------------------------------------

    def cores(self) -> np.ndarray:
        """Per county, the 街道 seat closest (elderly-weighted) to the county's communities."""
        out = []
        for county in self.counties:
            cand = np.flatnonzero((self.seat_county == county) & (self.seat_type == "街道"))
            comm = (self.demand_county == county) & (self.kind == "community")
            diff = self.seats.xy[cand][:, None, :] - self.demand.xy[comm][None, :, :]
            score = (np.hypot(diff[..., 0], diff[..., 1]) * self.elderly[comm]).sum(axis=1)
            out.append(cand[np.argmin(score)])
        return np.array(out)

    def add(self, pieces, cls: str, name: str, group: str = "") -> None:
        for xy, is_bridge in pieces:
            self.roads.append(
                Road(xy, cls, BRIDGE_NAME if is_bridge else name, int(is_bridge), group)
            )

    # arterials ----------------------------------------------------------------------

    def arterials(self) -> None:
        xy = self.seats.xy
        edges = delaunay_edges(xy)
        lines = shapely.linestrings(np.stack([xy[edges[:, 0]], xy[edges[:, 1]]], axis=1))
        dry = shapely.within(lines, self.geo.mainland)
        cost = np.hypot(*(xy[edges[:, 0]] - xy[edges[:, 1]]).T)
        kept = greedy_spanner(len(xy), edges[dry], cost[dry], ARTERIAL_STRETCH)
        chosen = edges[dry][kept]
        n_comp, labels = csgraph.connected_components(
            sparse.csr_matrix((np.ones(len(chosen)), (chosen[:, 0], chosen[:, 1])), (len(xy),) * 2),
            directed=False,
        )
        extra = []
        if n_comp > 1:  # join components with the shortest water-crossing candidates, routed
            for k in np.argsort(cost, kind="stable"):
                i, j = edges[k]
                if not dry[k] and labels[i] != labels[j]:
                    extra.append((i, j))
                    labels[labels == labels[j]] = labels[i]
        ends = [(xy[i], xy[j]) for i, j in chosen] + [(xy[i], xy[j]) for i, j in extra]
        pairs = [tuple(p) for p in chosen] + extra
        shapes = shape_links(self.rng, self.geo, self.router, ends, "arterial", route=True)
        self.arterial_pairs = [(int(i), int(j)) for i, j in pairs]
        for (i, j), pieces in zip(pairs, shapes, strict=True):
            if pieces is not None:
                name = f"{short(self.seats.name[i])}—{short(self.seats.name[j])}公路"
                self.add(pieces, "arterial", name)
        self.n_arterial_links = len(pairs)

    # expressways --------------------------------------------------------------------

    def expressways(self, cores: np.ndarray) -> None:
        xy = self.seats.xy[cores]
        edges = delaunay_edges(xy)
        lines = shapely.linestrings(np.stack([xy[edges[:, 0]], xy[edges[:, 1]]], axis=1))
        dry = shapely.within(lines, self.geo.mainland)
        cost = np.hypot(*(xy[edges[:, 0]] - xy[edges[:, 1]]).T)
        for k in np.flatnonzero(~dry):  # across water: the length of the land route
            pieces = self.router().route(xy[edges[k, 0]], xy[edges[k, 1]], bridge=True)
            cost[k] = sum(shapely.length(shapely.LineString(p)) for p, _ in pieces)
        kept = greedy_spanner(len(xy), edges, cost, EXPRESSWAY_STRETCH)
        ends = [(xy[edges[k, 0]], xy[edges[k, 1]]) for k in kept]
        shapes = shape_links(
            self.rng, self.geo, self.router, ends, "expressway", route=True, bridge=True
        )
        arterial = [r for r in self.roads if r.cls == "arterial"]
        art_tree = shapely.STRtree(polylines([r.xy for r in arterial]))
        self.n_expressway_links = len(kept)
        self.interchanges = 0
        for k, pieces in zip(kept, shapes, strict=True):
            a, b = (short(self.counties[i]) for i in edges[k])
            name = f"{a}—{b}高速"
            for piece, is_bridge in pieces:
                if is_bridge:
                    self.add([(piece, 1)], "expressway", name)
                    continue
                for part in self.interchange_split(piece, art_tree, arterial, name):
                    self.add([(part, 0)], "expressway", name)

    def interchange_split(self, xy: np.ndarray, tree, arterial, name) -> list[np.ndarray]:
        """Split an expressway at interchanges every ~12 km; link each to the arterials."""
        line = shapely.segmentize(shapely.LineString(xy), 1000.0)
        coords = shapely.get_coordinates(line)
        along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(coords, axis=0).T))])
        total = along[-1]
        usable = total - 2 * INTERCHANGE_END_GAP_M
        if usable <= 0:
            return [xy]
        count = int(usable // INTERCHANGE_SPACING_M) + 1
        stations = INTERCHANGE_END_GAP_M + (np.arange(count) + 0.5) * usable / count
        cuts = []
        for s in stations:
            i = int(np.argmin(np.abs(along - s)))
            if i in (0, len(coords) - 1) or (cuts and i <= cuts[-1]):
                continue
            p = coords[i]
            j = tree.query_nearest(shapely.Point(p), all_matches=False)[0]
            q = nearest_on(shapely.LineString(arterial[j].xy), p)
            dist = float(np.hypot(*(q - p)))
            if dist > INTERCHANGE_LINK_MAX_M or dist < 1.0:
                continue
            link = shapely.linestrings([p, q])
            if not shapely.within(link, self.geo.mainland):
                continue
            self.roads.append(Road(np.array([p, q]), "arterial", f"{name}互通连接线"))
            cuts.append(i)
            self.interchanges += 1
        bounds = [0, *cuts, len(coords) - 1]
        return [coords[bounds[k] : bounds[k + 1] + 1] for k in range(len(bounds) - 1)]

    # street grids -------------------------------------------------------------------

    def urban_region(self):
        discs = []
        codes_street = set(self.seats.code[self.seat_type == "街道"])
        for i, code in enumerate(self.seats.code):
            comm = (self.demand.code == code) & (self.kind == "community")
            if self.seat_type[i] == "街道":
                r_seat, r_comm = URBAN_SEAT_RADIUS_M, URBAN_COMMUNITY_RADIUS_M
            elif comm.sum() >= 2:
                r_seat, r_comm = TOWN_SEAT_RADIUS_M, TOWN_COMMUNITY_RADIUS_M
            else:
                continue
            discs.append(shapely.buffer(shapely.points(self.seats.xy[i]), r_seat, quad_segs=8))
            if code in codes_street or comm.sum() >= 2:
                pts = shapely.points(self.demand.xy[comm])
                discs.extend(shapely.buffer(pts, r_comm, quad_segs=8))
        urban = shapely.union_all(discs)
        urban = shapely.buffer(shapely.buffer(urban, URBAN_CLOSING_M), -URBAN_CLOSING_M)
        urban = shapely.intersection(urban, shapely.union_all(self.geo.parts))
        parts = shapely.get_parts(urban)
        parts = parts[shapely.area(parts) >= URBAN_MIN_KM2 * 1e6]
        west_east = shapely.get_coordinates(shapely.centroid(parts))[:, 0]
        return parts[np.lexsort((west_east, -shapely.area(parts)))]

    def streets(self) -> None:
        clusters = self.urban_region()
        self.urban = shapely.union_all(clusters)
        shapely.prepare(self.urban)
        self.n_clusters = len(clusters)
        for c, poly in enumerate(clusters):
            theta = self.rng.uniform(0.0, math.pi / 2)
            spacing = self.rng.uniform(*STREET_SPACING_M)
            centre = np.array(poly.centroid.coords[0])
            x0, y0, x1, y1 = poly.bounds
            radius = math.hypot(x1 - x0, y1 - y0) / 2 + spacing
            shift = self.rng.uniform(0.0, spacing, size=2)
            for family in (0, 1):
                angle = theta + family * math.pi / 2
                along = np.array([math.cos(angle), math.sin(angle)])
                across = np.array([-along[1], along[0]])
                ks = np.arange(-math.ceil(radius / spacing), math.ceil(radius / spacing) + 1)
                offsets = ks * spacing + shift[family]
                starts = centre + np.outer(offsets, across) - radius * along
                ends = centre + np.outer(offsets, across) + radius * along
                full = shapely.linestrings(np.stack([starts, ends], axis=1))
                clipped = shapely.intersection(full, poly)
                for k, geom in zip(ks, clipped, strict=True):
                    for piece in shapely.get_parts(geom):
                        if piece.geom_type != "LineString" or piece.length < STREET_MIN_PIECE_M:
                            continue
                        xy = shapely.get_coordinates(piece)
                        if np.dot(xy[-1] - xy[0], along) < 0:
                            xy = xy[::-1]
                        # grid streets stay unnamed (the names would add ~0.3 MB)
                        self.roads.append(
                            Road(xy, "street", "", key=(c, family, int(k)), direction=tuple(along))
                        )

    # local roads --------------------------------------------------------------------

    def locals(self) -> None:
        geo = self.geo
        d_part = geo.part_of(self.demand.xy)
        in_grid = shapely.contains_xy(self.urban, self.demand.xy[:, 0], self.demand.xy[:, 1])
        served = ~((self.kind == "community") & in_grid)
        seat_of = dict(zip(self.seats.code, range(len(self.seats.xy)), strict=True))
        ends, names, groups, tree_pairs = [], [], [], set()
        degree: dict = {}
        node_xy = []  # all local nodes (seats + served demand), for loops
        node_key = []
        for code in self.seats.code:
            s = seat_of[code]
            mine = np.flatnonzero((self.demand.code == code) & served)
            for part in np.unique(d_part[mine]) if len(mine) else []:
                here = mine[d_part[mine] == part]
                if part == 0:
                    pts = np.vstack([self.seats.xy[s], self.demand.xy[here]])
                    keys = [("seat", s)] + [("demand", int(i)) for i in here]
                else:
                    pts = self.demand.xy[here]
                    keys = [("demand", int(i)) for i in here]
                    if len(here) == 1:  # a lone island village: a short road to the island centre
                        pts = np.vstack([pts, self.island_anchor(part, pts[0])])
                        keys.append(("anchor", int(here[0])))
                tree = prim_dijkstra_edges(pts, TREE_TRADEOFF) if part == 0 else mst_edges(pts)
                for i, j in tree:
                    ends.append((pts[i], pts[j]))
                    names.append(f"{self.seats.name[s]}村道")
                    groups.append(code)
                    tree_pairs.add(tuple(sorted((keys[i], keys[j]))))
                    if part == 0:
                        for key in (keys[i], keys[j]):
                            degree[key] = degree.get(key, 0) + 1
                if part == 0:
                    node_xy.append(pts)
                    node_key.extend(keys)
        shapes = shape_links(self.rng, geo, self.router, ends, "local", route=False)
        lost = 0
        for pieces, name, group in zip(shapes, names, groups, strict=True):
            if pieces is None:
                lost += 1
                continue
            self.add(pieces, "local", name, group)
        self.dead_ends = sorted(k[1] for k, n in degree.items() if n == 1 and k[0] == "demand")
        # shortcuts between neighbours (mainland only): a greedy spanner over the local nodes
        xy = np.vstack(node_xy)
        _, first = np.unique(np.round(xy, 3), axis=0, return_index=True)
        first = np.sort(first)
        xy = xy[first]
        keys = [node_key[i] for i in first]
        at = {key: i for i, key in enumerate(keys)}
        adj: list[list[tuple[int, float]]] = [[] for _ in range(len(xy))]

        def link(i: int, j: int) -> None:
            w = LOCAL_SINUOSITY * float(np.hypot(*(xy[i] - xy[j])))
            adj[i].append((j, w))
            adj[j].append((i, w))

        for a, b in sorted(tree_pairs):
            if a in at and b in at:
                link(at[a], at[b])
        for i, j in self.arterial_pairs:
            if ("seat", i) in at and ("seat", j) in at:
                link(at[("seat", i)], at[("seat", j)])
        edges = delaunay_edges(xy)
        length = np.hypot(*(xy[edges[:, 0]] - xy[edges[:, 1]]).T)
        pick = []
        for k in np.argsort(length, kind="stable"):
            if not LOOP_LENGTH_M[0] <= length[k] <= LOOP_LENGTH_M[1]:
                continue
            i, j = int(edges[k, 0]), int(edges[k, 1])
            limit = LOCAL_STRETCH * LOCAL_SINUOSITY * length[k]
            if shortest(adj, i, j, limit) > limit:
                link(i, j)
                pick.append(k)
        ends = [(xy[edges[k, 0]], xy[edges[k, 1]]) for k in pick]
        shapes = shape_links(self.rng, geo, self.router, ends, "local", route=False)
        self.shortcuts = 0
        for pieces in shapes:
            if pieces is not None:
                self.add(pieces, "local", "乡村道路")
                self.shortcuts += 1
        self.lost_local = lost

    def close_dead_ends(self) -> None:
        """Most dead-end villages get a road on to the nearest road of another township's tree
        (or an arterial or street) within 1.5 km: rural roads form a mesh, not only trees."""
        grade = [r for r in self.roads if r.cls != "expressway"]
        lines = polylines([r.xy for r in grade])
        group = np.array([r.group for r in grade])
        leaves = np.array(self.dead_ends, dtype=np.int64)
        leaves = leaves[self.rng.random(len(leaves)) < DEAD_END_SHARE]
        pts = shapely.points(self.demand.xy[leaves])
        hit_leaf, hit_line = shapely.STRtree(lines).query(
            pts, predicate="dwithin", distance=DEAD_END_REACH_M
        )
        dist = shapely.distance(pts[hit_leaf], lines[hit_line])
        own = np.array([self.demand.code[i] for i in leaves])
        ok = (group[hit_line] != own[hit_leaf]) & (dist >= 50.0)
        hit_leaf, hit_line, dist = hit_leaf[ok], hit_line[ok], dist[ok]
        order = np.lexsort((hit_line, dist, hit_leaf))
        hit_leaf, hit_line = hit_leaf[order], hit_line[order]
        first = np.r_[True, hit_leaf[1:] != hit_leaf[:-1]]
        ends = []
        for k, j in zip(hit_leaf[first], hit_line[first], strict=True):
            p = self.demand.xy[leaves[k]]
            ends.append((p, nearest_on(lines[j], p)))
        shapes = shape_links(self.rng, self.geo, self.router, ends, "local", route=False)
        self.dead_ends_closed = 0
        for pieces in shapes:
            if pieces is not None:
                self.add(pieces, "local", "乡村道路")
                self.dead_ends_closed += 1

    def island_anchor(self, part: int, p: np.ndarray) -> np.ndarray:
        poly = self.geo.parts[part]
        q = np.array(shapely.point_on_surface(poly).coords[0])
        if np.hypot(*(q - p)) >= 100.0 and shapely.within(shapely.linestrings([p, q]), poly):
            return q
        for angle in np.linspace(0.0, 2 * math.pi, 16, endpoint=False):
            for r in (200.0, 120.0, 60.0):
                q = p + r * np.array([math.cos(angle), math.sin(angle)])
                if shapely.within(shapely.linestrings([p, q]), poly):
                    return q
        return p + np.array([1.0, 0.0])

    # access roads -------------------------------------------------------------------

    def access(self) -> None:
        """An access road to every demand point and site still far from an at-grade road."""
        grade = [r for r in self.roads if r.cls != "expressway"]
        lines = polylines([r.xy for r in grade])
        tree = shapely.STRtree(lines)
        pts_xy = np.vstack([self.demand.xy, self.sites.xy])
        labels = np.concatenate([self.demand.name, self.sites.name])
        pts = shapely.points(pts_xy)
        _, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
        far = np.flatnonzero(dist > ACCESS_MIN_M)
        part = self.geo.part_of(pts_xy)
        self.access_added = 0
        self.access_failed = 0
        for i in far:
            p = pts_xy[i]
            options = tree.query(shapely.buffer(pts[i], dist[i] * 3 + 200.0))
            near = np.argsort(shapely.distance(lines[options], pts[i]), kind="stable")
            for j in options[near][:6]:
                q = nearest_on(lines[j], p)
                seg = shapely.linestrings([p, q])
                if shapely.within(seg, self.geo.parts[part[i]]):
                    cls = "street" if shapely.contains_xy(self.urban, *p) else "local"
                    self.roads.append(Road(np.array([p, q]), cls, f"{labels[i]}支路"))
                    self.access_added += 1
                    break
            else:
                self.access_failed += 1


# --------------------------------------------------------------------------- noding and output


def round_ll(xy_m: np.ndarray) -> np.ndarray:
    return np.round(to_lonlat(xy_m), 6)


def node_lines(roads: list[Road], priority: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Node the roads (lon/lat) at every crossing and touch on the 1e-6 degree grid.

    Returns the noded pieces and, for each, the index of the road it came from (where roads
    overlap, the first class in ``priority``, then the first road).
    """
    lines = polylines([round_ll(r.xy) for r in roads])
    noded = shapely.get_parts(shapely.union_all(lines, grid_size=GRID_DEG))
    noded = noded[shapely.get_type_id(noded) == 1]
    coords, index = shapely.get_coordinates(noded, return_index=True)
    coords = np.round(coords, 6)
    keep = np.r_[True, (index[1:] != index[:-1]) | np.any(coords[1:] != coords[:-1], axis=1)]
    coords, index = coords[keep], index[keep]
    counts = np.bincount(index, minlength=len(noded))
    ok = counts >= 2
    keep = ok[index]
    noded = shapely.linestrings(coords[keep], indices=np.cumsum(ok)[index[keep]] - 1)
    mids = shapely.line_interpolate_point(noded, 0.5, normalized=True)
    tree = shapely.STRtree(lines)
    hit_piece, hit_road = tree.query(mids, predicate="dwithin", distance=1.5 * GRID_DEG)
    rank = np.array([priority.index(r.cls) for r in roads])
    order = np.lexsort((hit_road, rank[hit_road], hit_piece))
    hit_piece, hit_road = hit_piece[order], hit_road[order]
    first = np.r_[True, hit_piece[1:] != hit_piece[:-1]]
    owner = np.full(len(noded), -1)
    owner[hit_piece[first]] = hit_road[first]
    lost = np.flatnonzero(owner < 0)
    if len(lost):
        near = tree.query_nearest(mids[lost], all_matches=False)
        owner[lost[near[0]]] = near[1]
    return noded, owner


def endpoints_graph(lines: np.ndarray):
    """Node ids of each line's start and end (exact coordinates) and the node coordinates."""
    start = shapely.get_coordinates(shapely.get_point(lines, 0))
    end = shapely.get_coordinates(shapely.get_point(lines, -1))
    both = np.vstack([start, end])
    nodes, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    return inverse[: len(lines)], inverse[len(lines) :], nodes


def components(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    graph = sparse.csr_matrix((np.ones(len(u)), (u, v)), shape=(n, n))
    return csgraph.connected_components(graph, directed=False)[1]


def keep_drivable(u: np.ndarray, v: np.ndarray, oneway: np.ndarray, n: int) -> int:
    """Make one-way edges two-way until every connected component can be driven through
    (is strongly connected); returns how many were reverted. Changes ``oneway`` in place."""
    reverted = 0
    weak = components(u, v, n)
    while True:
        two = oneway == 0
        rows, cols = np.r_[u, v[two]], np.r_[v, u[two]]
        graph = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        strong = csgraph.connected_components(graph, directed=True, connection="strong")[1]
        # within each weak component, the nodes outside its largest strong component are stuck
        size = np.bincount(strong)[strong]
        order = np.lexsort((strong, -size, weak))
        first = np.r_[True, weak[order][1:] != weak[order][:-1]]
        main_strong = np.zeros(weak.max() + 1, dtype=np.int64)
        main_strong[weak[order][first]] = strong[order][first]
        stuck = strong != main_strong[weak]
        bad = (oneway == 1) & (stuck[u] | stuck[v])
        if not bad.any():
            return reverted
        oneway[bad] = 0
        reverted += int(bad.sum())


def assemble(builder: Builder) -> tuple[gpd.GeoDataFrame, dict]:
    """Node everything, join stray mainland fragments, set one-way streets, number the edges."""
    geo = builder.geo
    express = [r for r in builder.roads if r.cls == "expressway"]
    joined = 0
    for attempt in range(4):
        grade = [r for r in builder.roads if r.cls != "expressway"]
        g_lines, g_owner = node_lines(grade, AT_GRADE_PRIORITY)
        e_lines, e_owner = node_lines(express, ("expressway",))
        lines = np.concatenate([e_lines, g_lines])
        u, v, nodes = endpoints_graph(lines)
        label = components(u, v, len(nodes))
        if attempt == 3:
            break
        node_m = to_metres(nodes)
        node_part = geo.part_of(node_m)
        size = np.bincount(label[u], minlength=label.max() + 1)  # edges per component
        first_node = np.unique(label, return_index=True)[1]
        comp_part = node_part[first_node]
        added = 0
        for part in np.unique(comp_part):
            comps = np.flatnonzero(comp_part == part)
            if len(comps) < 2:
                continue
            # join every other component of this land part to its largest one
            main = comps[np.argmax(size[comps])]
            main_nodes = np.flatnonzero(label == main)
            k_near = min(4, len(main_nodes))
            main_tree = cKDTree(node_m[main_nodes])
            for comp in comps[comps != main]:
                members = np.flatnonzero(label == comp)
                dist, near = main_tree.query(node_m[members], k=k_near)
                dist, near = dist.reshape(len(members), -1), near.reshape(len(members), -1)
                for k in np.argsort(dist.ravel(), kind="stable")[:12]:
                    a = node_m[members[k // k_near]]
                    b = node_m[main_nodes[near.ravel()[k]]]
                    if shapely.within(shapely.linestrings([a, b]), geo.parts[part]):
                        in_city = shapely.contains_xy(builder.urban, *a)
                        cls = "street" if in_city else "local"
                        builder.roads.append(Road(np.array([a, b]), cls, "连接道路"))
                        added += 1
                        break
        joined += added
        if not added:
            break
    grade_roads = [r for r in builder.roads if r.cls != "expressway"]
    owners = [express[i] for i in e_owner] + [grade_roads[i] for i in g_owner]
    degree = np.bincount(np.r_[u, v], minlength=len(nodes))

    # one-way couplets: every 8th line of the largest grids, directions alternating
    oneway = np.zeros(len(lines), dtype=np.int64)
    coords = [shapely.get_coordinates(g) for g in lines]
    for k, road in enumerate(owners):
        if road.cls != "street" or not road.key:
            continue
        cluster, _, idx = road.key
        if cluster >= ONEWAY_CLUSTERS or idx % ONEWAY_EVERY != 2:
            continue
        if degree[u[k]] < 3 or degree[v[k]] < 3:
            continue
        sign = 1.0 if (idx // ONEWAY_EVERY) % 2 == 0 else -1.0
        d = to_metres(coords[k][-1:]) - to_metres(coords[k][:1])
        if np.dot(d[0], np.array(road.direction)) * sign < 0:
            coords[k] = coords[k][::-1]
            u[k], v[k] = v[k], u[k]
        oneway[k] = 1
    reverted = keep_drivable(u, v, oneway, len(nodes))
    lines = polylines(coords)

    cls = np.array([r.cls for r in owners])
    rank = np.array([CLASSES.index(c) for c in cls])
    start = np.array([c[0] for c in coords])
    end = np.array([c[-1] for c in coords])
    order = np.lexsort((end[:, 1], end[:, 0], start[:, 1], start[:, 0], rank))
    frame = pd.DataFrame(
        {
            "road_id": [f"R{i:06d}" for i in range(1, len(order) + 1)],
            "class": cls[order],
            "oneway": oneway[order],
            "bridge": np.array([r.bridge for r in owners], dtype=np.int64)[order],
            "name": np.array([r.name for r in owners], dtype=object)[order],
        }
    )
    roads = gpd.GeoDataFrame(frame, geometry=lines[order], crs="EPSG:4326")
    roads["source"] = SYNTHETIC
    stats = {"joined_fragments": joined, "oneway_reverted_to_two_way": reverted}
    return roads[[*COLUMNS, "geometry"]], stats


def build(path: Path) -> tuple[gpd.GeoDataFrame, dict, dict]:
    layers = read_inputs(path)
    rng = np.random.default_rng(SEED)
    b = Builder(rng, layers)
    cores = b.cores()
    b.arterials()
    b.expressways(cores)
    b.streets()
    b.locals()
    b.close_dead_ends()
    b.access()
    roads, stats = assemble(b)
    stats.update(
        arterial_links=b.n_arterial_links,
        expressway_links=b.n_expressway_links,
        interchange_links=b.interchanges,
        urban_grids=b.n_clusters,
        access_roads=b.access_added,
        access_failed=b.access_failed,
        local_links_lost=b.lost_local,
        local_shortcuts=b.shortcuts,
        dead_ends_closed=f"{b.dead_ends_closed} of {len(b.dead_ends)}",
        cores=[f"{c}: {b.seats.name[i]}" for c, i in zip(b.counties, cores, strict=True)],
    )
    return roads, stats, layers


# --------------------------------------------------------------------------- report


def network_components(roads: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Component label per edge (lines joined by exact shared endpoints)."""
    u, v, nodes = endpoints_graph(roads.geometry.to_numpy())
    label = components(u, v, len(nodes))
    return label[u], nodes


def snap_distances(roads: gpd.GeoDataFrame, points: gpd.GeoDataFrame) -> np.ndarray:
    lines = roads.to_crs("EPSG:32651").geometry.to_numpy()
    pts = points.to_crs("EPSG:32651").geometry.to_numpy()
    _, dist = shapely.STRtree(lines).query_nearest(pts, return_distance=True, all_matches=False)
    return dist


def detour_factors(roads: gpd.GeoDataFrame, demand: gpd.GeoDataFrame, rng) -> np.ndarray:
    """Road distance / straight distance between random pairs of demand points 2-40 km apart
    (each point taken at its nearest road node; undirected)."""
    metric = roads.to_crs("EPSG:32651")
    u, v, nodes = endpoints_graph(roads.geometry.to_numpy())
    node_xy = shapely.get_coordinates(
        gpd.GeoSeries(shapely.points(nodes), crs="EPSG:4326").to_crs("EPSG:32651").to_numpy()
    )
    graph = sparse.csr_matrix((metric.length.to_numpy(), (u, v)), shape=(len(nodes),) * 2)
    pts = shapely.get_coordinates(demand.to_crs("EPSG:32651").geometry.to_numpy())
    _, at = cKDTree(node_xy).query(pts)
    src = rng.choice(len(pts), size=40, replace=False)
    dist = csgraph.dijkstra(graph, directed=False, indices=at[src])
    ratios = []
    for k, i in enumerate(src):
        straight = np.hypot(*(pts - pts[i]).T)
        ok = (straight > 2000) & (straight < 40000) & np.isfinite(dist[k, at])
        ratios.append(dist[k, at[ok]] / straight[ok])
    return np.concatenate(ratios)


def report(roads, stats, layers, path: Path, seconds: float) -> None:
    print(f"{path}: {len(roads)} edges, {path.stat().st_size / 1e6:.2f} MB, {seconds:.1f} s")
    length = roads.to_crs("EPSG:32651").length
    for cls in CLASSES:
        mask = (roads["class"] == cls).to_numpy()
        print(f"  {cls:10s} {mask.sum():6d} edges {length[mask].sum() / 1000:9.1f} km")
    print(f"  one-way {int(roads['oneway'].sum())}, bridge edges {int(roads['bridge'].sum())}")
    label, _ = network_components(roads)
    sizes = np.sort(np.bincount(label))[::-1]
    print(f"  components: {len(sizes)}; edges per component: {sizes[:12].tolist()}")
    q = [50, 90, 99, 100]
    for name, frame in [("demand", layers["demand"])] + [(n, layers[n]) for n in SITE_LAYERS]:
        d = snap_distances(roads, frame)
        print(f"  snap {name:18s} p50/p90/p99/max m: {np.round(np.percentile(d, q), 1).tolist()}")
    ratio = detour_factors(roads, layers["demand"], np.random.default_rng(0))
    pct = np.round(np.percentile(ratio, [10, 50, 90]), 2).tolist()
    print(f"  detour (road / straight, demand pairs 2-40 km) p10/p50/p90: {pct}")
    for key, value in stats.items():
        print(f"  {key}: {value}")


def write(roads: gpd.GeoDataFrame, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    # No spatial index: it would add ~1.5 MB; carecheck reads the whole layer anyway.
    roads.to_file(
        tmp, layer=LAYER, driver="GPKG", engine="pyogrio", layer_options={"SPATIAL_INDEX": "NO"}
    )
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=INPUT, help="ningbo.gpkg to read")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: here)")
    parser.add_argument("--quiet", action="store_true", help="skip the summary")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    roads, stats, layers = build(args.input)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / OUTPUT_NAME
    write(roads, path)
    if not args.quiet:
        report(roads, stats, layers, path, time.perf_counter() - start)


if __name__ == "__main__":
    main()
