"""Reach along a road network: snapping onto edges and bounded multi-source Dijkstra.

The network is a set of straight segments (lines are split at their vertices) between nodes.
A point is snapped to the nearest point on the nearest segment — not only to a node — and
reaches the network over a straight off-network leg walked at walking speed. Every segment
that holds snapped points is split at them, so two points on one street reach each other
along it. Reach is then one bounded Dijkstra per site on the reversed graph (the elderly
travel to the site), batched so memory stays at batch × nodes.

Costs are metres (``network_m``) or minutes (``travel_min``). Walking ignores one-way
restrictions; driving respects them.

Tolerances (``_TOL_M``, 1 µm; :mod:`carecheck.verify` applies the same rules, written apart):
segments that join the same two nodes are one street piece (a two-way street exported once
per direction, as OSMnx's directed graphs do, is one two-way segment); a point snaps to the
lowest-numbered of the segments within 1 µm of its nearest one; a snap within 1 µm of a
segment's end is at the end's node; and points snapped within 1 µm of each other along a
segment (the previous one, in order along it) are at one position, joined both ways at no
cost, so a point a rounding error downstream on a one-way street still reaches its neighbour.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse import csgraph

_BATCH = 64
# GEOS releases the GIL while it triangulates, so the reach-area hulls run on threads, one
# per core (the hulls are most of a road-reach run's area stage; the answer is the same)
_HULL_THREADS = max(1, min(4, os.cpu_count() or 1))
_TOL_M = 1e-6  # metres: snapping ties, snaps at a segment's end, points at one position


@dataclass(frozen=True)
class Network:
    """Straight road segments between nodes, in a metric CRS.

    ``length_m`` is the segment's length for routing (it may differ from the geometry's,
    e.g. a stated road length); ``speed_kmh`` its driving speed; ``oneway`` whether driving is
    allowed only from ``u`` to ``v``.
    """

    node_xy: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length_m: np.ndarray
    speed_kmh: np.ndarray
    oneway: np.ndarray
    # the segments' STRtree, built on first use (a run snaps its points several times)
    _tree: shapely.STRtree | None = field(default=None, init=False, repr=False, compare=False)

    def segment_tree(self) -> shapely.STRtree:
        """An STRtree of the segments; item ``k`` is segment ``u[k]``–``v[k]``."""
        if self._tree is None:
            a, b = self.node_xy[self.u], self.node_xy[self.v]
            tree = shapely.STRtree(shapely.linestrings(np.stack([a, b], axis=1)))
            object.__setattr__(self, "_tree", tree)  # frozen: a cache, not a field of its value
        assert self._tree is not None
        return self._tree

    @property
    def n_nodes(self) -> int:
        return len(self.node_xy)

    @property
    def n_edges(self) -> int:
        return len(self.u)

    def components(self) -> np.ndarray:
        """Weakly connected component label of each node."""
        graph = sp.csr_matrix(
            (np.ones(self.n_edges), (self.u, self.v)), shape=(self.n_nodes, self.n_nodes)
        )
        _, labels = csgraph.connected_components(graph, directed=True, connection="weak")
        return labels


def network_from_segments(
    start_xy: np.ndarray,
    end_xy: np.ndarray,
    *,
    length_m: np.ndarray | None = None,
    speed_kmh: np.ndarray | float = 30.0,
    oneway: np.ndarray | bool = False,
    precision_m: float = 0.001,
) -> Network:
    """A network from straight segments; endpoints closer than ``precision_m`` are one node.

    Segments between the same two nodes (either direction: e.g. a two-way street stored once
    per direction, or a street drawn twice) are one segment: the first one, with its length
    and speed, one-way only if every copy is one-way in its direction — a copy the other way
    or a two-way copy makes it two-way. Left apart, two points a few metres apart on the
    street could snap to different copies and meet only through the street's ends.
    """
    start_xy = np.asarray(start_xy, float).reshape(-1, 2)
    end_xy = np.asarray(end_xy, float).reshape(-1, 2)
    n = len(start_xy)
    keys = np.round(np.vstack([start_xy, end_xy]) / precision_m).astype(np.int64)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    node_xy = np.zeros((len(unique), 2))
    node_xy[inverse] = np.vstack([start_xy, end_xy])
    u, v = inverse[:n], inverse[n:]
    length = np.hypot(*(end_xy - start_xy).T) if length_m is None else np.asarray(length_m, float)
    speed = np.broadcast_to(np.asarray(speed_kmh, float), (n,))
    blocked = np.broadcast_to(np.asarray(oneway, bool), (n,))
    pairs = np.stack([np.minimum(u, v), np.maximum(u, v)], axis=1).reshape(-1, 2)
    _, first, group = np.unique(pairs, axis=0, return_index=True, return_inverse=True)
    group = group.ravel()
    # a copy allows the first copy's direction only when it is one-way and runs the same way
    same_way = blocked & (u == u[first[group]])
    one_way = np.bincount(group, weights=~same_way, minlength=len(first)) == 0
    keep = np.sort(first)
    return Network(
        node_xy=node_xy,
        u=u[keep],
        v=v[keep],
        length_m=length[keep].astype(float),
        speed_kmh=speed[keep].astype(float),
        oneway=one_way[group[keep]],
    )


@dataclass(frozen=True)
class Snap:
    """Where points meet the network: segment, position along it (0..1) and leg length."""

    edge: np.ndarray
    fraction: np.ndarray
    leg_m: np.ndarray


def _project(points_xy: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position (0..1) of each point's foot on its segment a–b, and the distance to it."""
    ab = b - a
    denom = (ab * ab).sum(axis=1)
    t = np.where(denom > 0, ((points_xy - a) * ab).sum(axis=1) / np.maximum(denom, 1e-300), 0.0)
    t = np.clip(t, 0.0, 1.0)
    return t, np.hypot(*(points_xy - (a + t[:, None] * ab)).T)


def snap_points(network: Network, points_xy: np.ndarray) -> Snap:
    """Nearest point on the nearest segment for every point (STRtree, vectorised).

    Segments within ``_TOL_M`` of the nearest distance tie: the lowest-numbered one wins.
    """
    points_xy = np.asarray(points_xy, float).reshape(-1, 2)
    n = len(points_xy)
    if network.n_edges == 0 or n == 0:
        return Snap(np.full(n, -1), np.zeros(n), np.full(n, np.inf))
    a = network.node_xy[network.u]
    b = network.node_xy[network.v]
    tree = network.segment_tree()
    points = shapely.points(points_xy)
    _, nearest_m = tree.query_nearest(points, all_matches=False, return_distance=True)
    # every segment about as near (margin for shapely's and numpy's rounding), then the rule
    point, segment = tree.query(points, predicate="dwithin", distance=nearest_m + 4 * _TOL_M)
    _, dist = _project(points_xy[point], a[segment], b[segment])
    best = np.full(n, np.inf)
    np.minimum.at(best, point, dist)
    tied = dist <= best[point] + _TOL_M
    edge = np.full(n, network.n_edges, dtype=np.int64)
    np.minimum.at(edge, point[tied], segment[tied])
    t, leg = _project(points_xy, a[edge], b[edge])
    return Snap(edge=edge, fraction=t, leg_m=leg)


def _augmented_edges(
    network: Network, snap: Snap
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split snapped segments at their points: (u, v, length, speed, oneway) of all edges.

    Point k becomes node ``n_nodes + k``. A point that snaps within ``_TOL_M`` of a
    segment's end is joined to that node both ways at no cost (so it can leave along any
    street at the node, also against a one-way segment it happened to snap to). Along a
    segment, a point within ``_TOL_M`` of the previous one is at its position: joined both
    ways at no cost to the first point of that position, which alone splits the segment.
    """
    n_nodes = network.n_nodes
    has = snap.edge >= 0
    seg_m = np.hypot(*(network.node_xy[network.v] - network.node_xy[network.u]).T)
    along_m = seg_m[np.where(has, snap.edge, 0)]
    at_start = has & (snap.fraction * along_m <= _TOL_M)
    at_end = has & ((1.0 - snap.fraction) * along_m <= _TOL_M) & ~at_start
    ends = np.flatnonzero(at_start | at_end)
    end_node = np.where(at_start[ends], network.u[snap.edge[ends]], network.v[snap.edge[ends]])
    points = np.flatnonzero(has & ~at_start & ~at_end)
    order = points[np.lexsort((snap.fraction[points], snap.edge[points]))]
    # a new position where the segment changes or the point is beyond _TOL_M of the previous
    gap_m = np.diff(snap.fraction[order]) * seg_m[snap.edge[order][1:]]
    lead = np.r_[True, (np.diff(snap.edge[order]) != 0) | (gap_m > _TOL_M)][: len(order)]
    same_as = order[lead][np.cumsum(lead) - 1][~lead]
    joined = order[~lead]
    join_u = np.concatenate([n_nodes + ends, end_node, n_nodes + joined, n_nodes + same_as])
    join_v = np.concatenate([end_node, n_nodes + ends, n_nodes + same_as, n_nodes + joined])
    order = order[lead]
    split_edges = np.unique(snap.edge[order])
    keep = np.ones(network.n_edges, dtype=bool)
    keep[split_edges] = False
    edge_of = snap.edge[order]
    # chain per split edge: u → p1 → … → pk → v
    boundary = edge_of[1:] != edge_of[:-1]
    first = np.r_[True, boundary] if len(order) else np.zeros(0, dtype=bool)
    last = np.r_[boundary, True] if len(order) else np.zeros(0, dtype=bool)
    chain_u = np.where(first, network.u[edge_of], n_nodes + np.r_[0, order[:-1]])
    chain_frac_u = np.where(first, 0.0, np.r_[0.0, snap.fraction[order][:-1]])
    chain_v = n_nodes + order
    chain_frac_v = snap.fraction[order]
    tail_u = n_nodes + order[last]
    tail_v = network.v[edge_of[last]]
    tail_frac = snap.fraction[order[last]]
    n_join = len(join_u)
    u = np.concatenate([network.u[keep], chain_u, tail_u, join_u])
    v = np.concatenate([network.v[keep], chain_v, tail_v, join_v])
    length = np.concatenate(
        [
            network.length_m[keep],
            (chain_frac_v - chain_frac_u) * network.length_m[edge_of],
            (1.0 - tail_frac) * network.length_m[edge_of[last]],
            np.zeros(n_join),
        ]
    )
    speed = np.concatenate(
        [
            network.speed_kmh[keep],
            network.speed_kmh[edge_of],
            network.speed_kmh[edge_of[last]],
            np.ones(n_join),
        ]
    )
    oneway = np.concatenate(
        [
            network.oneway[keep],
            network.oneway[edge_of],
            network.oneway[edge_of[last]],
            np.ones(n_join, dtype=bool),  # the two directions are listed separately
        ]
    )
    return u, v, length, speed, oneway


def _graph(
    n: int, u: np.ndarray, v: np.ndarray, cost: np.ndarray, directed: np.ndarray
) -> sp.csr_matrix:
    """Sparse graph with both directions for undirected edges; parallel edges keep the min."""
    rows = np.concatenate([u, v[~directed]])
    cols = np.concatenate([v, u[~directed]])
    # zero-length pieces (a point snapped onto a node) stay as stored zeros: csgraph reads a
    # stored zero in a sparse matrix as an edge of weight 0
    data = np.concatenate([cost, cost[~directed]])
    order = np.lexsort((data, cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    first = np.r_[True, (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])]
    return sp.csr_matrix((data[first], (rows[first], cols[first])), shape=(n, n))


def _reverse_graph(
    network: Network, snap: Snap, kind: str, mode: str, walk_m_per_min: float
) -> tuple[sp.csr_matrix, np.ndarray]:
    """The reversed cost graph with the snapped points inserted, and each point's leg cost."""
    u, v, length, speed, oneway = _augmented_edges(network, snap)
    if kind == "network_m":
        cost, directed, leg = length, np.zeros(len(u), bool), snap.leg_m
    elif kind == "travel_min" and mode == "walk":
        cost = length / walk_m_per_min
        directed, leg = np.zeros(len(u), bool), snap.leg_m / walk_m_per_min
    elif kind == "travel_min" and mode == "drive":
        cost = length / (speed * 1000.0 / 60.0)
        directed, leg = oneway, snap.leg_m / walk_m_per_min
    else:
        raise ValueError(f"unknown reach kind {kind!r} / mode {mode!r}")
    n_total = network.n_nodes + len(snap.edge)
    # the elderly travel to the site: distances *to* a site are distances from it on G^T
    return _graph(n_total, u, v, cost, directed).T.tocsr(), leg


def reach_areas(
    network: Network,
    site_snap: Snap,
    site_reach: np.ndarray,
    *,
    kind: str,
    mode: str = "walk",
    walk_m_per_min: float = 60.0,
    buffer_m: float = 60.0,
) -> list[shapely.Geometry | None]:
    """Per site, the area from which the site is within reach: a hull of the road nodes that
    reach it, buffered by ``buffer_m`` (None when no road reaches it)."""
    reverse, leg = _reverse_graph(network, site_snap, kind, mode, walk_m_per_min)
    budget = np.asarray(site_reach, float) - leg
    areas: list[shapely.Geometry | None] = [None] * len(site_snap.edge)
    usable = np.flatnonzero((budget >= 0) & (site_snap.edge >= 0))
    sites: list[int] = []
    vertices: list[shapely.Geometry] = []
    for start in range(0, len(usable), _BATCH):
        batch = usable[start : start + _BATCH]
        dist = csgraph.dijkstra(
            reverse,
            directed=True,
            indices=network.n_nodes + batch,
            limit=float(budget[batch].max()),
        )
        reached = dist[:, : network.n_nodes] <= budget[batch][:, None]
        for row, site in enumerate(batch):
            nodes = network.node_xy[reached[row]]
            if len(nodes) == 0:
                continue
            # the hull is computed from the vertices alone, and a line through the nodes holds
            # the same vertices as a MultiPoint of them, made in one piece (not a Point each)
            sites.append(int(site))
            vertices.append(
                shapely.linestrings(nodes) if len(nodes) > 1 else shapely.multipoints(nodes)
            )
    if not sites:
        return areas
    hulls = _concave_hulls(np.array(vertices, dtype=object), ratio=0.3)
    for site, area in zip(sites, shapely.buffer(hulls, buffer_m), strict=True):
        areas[site] = area
    return areas


def _concave_hulls(vertices: np.ndarray, *, ratio: float) -> np.ndarray:
    """``shapely.concave_hull`` of each geometry, in chunks on :data:`_HULL_THREADS` threads
    (the same hulls as one call; the largest first so that the threads finish together)."""
    if _HULL_THREADS == 1 or len(vertices) < 2:
        return shapely.concave_hull(vertices, ratio=ratio)
    order = np.argsort(-shapely.get_num_coordinates(vertices), kind="stable")
    chunks = [order[k :: 4 * _HULL_THREADS] for k in range(4 * _HULL_THREADS)]
    hulls = np.empty(len(vertices), dtype=object)
    with ThreadPoolExecutor(_HULL_THREADS) as pool:
        done = pool.map(lambda idx: shapely.concave_hull(vertices[idx], ratio=ratio), chunks)
        for idx, part in zip(chunks, done, strict=True):
            hulls[idx] = part
    return hulls


def network_reach(
    network: Network,
    demand_snap: Snap,
    site_snap: Snap,
    site_reach: np.ndarray,
    *,
    kind: str,
    mode: str = "walk",
    walk_m_per_min: float = 60.0,
    max_snap_m: float = np.inf,
) -> sp.csr_matrix:
    """Boolean (n_demand × n_sites): the demand can get to the site within the site's reach.

    ``kind`` is ``network_m`` (reach and cost in metres) or ``travel_min`` (minutes, by
    ``mode`` walk or drive). Off-network legs are walked. Points snapped farther than
    ``max_snap_m`` reach nothing and are reached by nothing.
    """
    n_demand, n_sites = len(demand_snap.edge), len(site_snap.edge)
    if n_demand == 0 or n_sites == 0 or network.n_edges == 0:
        return sp.csr_matrix((n_demand, n_sites), dtype=bool)
    leg_m = np.concatenate([demand_snap.leg_m, site_snap.leg_m])
    valid = leg_m <= max_snap_m
    # points too far from the roads are left out of the graph (not merely unreachable), as
    # the verifier leaves them out
    combined = Snap(
        edge=np.where(valid, np.concatenate([demand_snap.edge, site_snap.edge]), -1),
        fraction=np.concatenate([demand_snap.fraction, site_snap.fraction]),
        leg_m=leg_m,
    )
    reverse, leg = _reverse_graph(network, combined, kind, mode, walk_m_per_min)
    demand_leg, site_leg = leg[:n_demand], leg[n_demand:]
    demand_nodes = network.n_nodes + np.arange(n_demand)
    budget = np.asarray(site_reach, float) - site_leg
    usable = np.flatnonzero(valid[n_demand:] & (budget >= 0) & (site_snap.edge >= 0))
    demand_ok = valid[:n_demand] & (demand_snap.edge >= 0)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for start in range(0, len(usable), _BATCH):
        batch = usable[start : start + _BATCH]
        sources = network.n_nodes + n_demand + batch
        dist = csgraph.dijkstra(
            reverse, directed=True, indices=sources, limit=float(budget[batch].max())
        )
        total = dist[:, demand_nodes] + demand_leg[None, :]
        hit = (total <= budget[batch][:, None]) & demand_ok[None, :]
        site_idx, demand_idx = np.nonzero(hit)
        rows.append(demand_idx)
        cols.append(batch[site_idx])
    if not rows:
        return sp.csr_matrix((n_demand, n_sites), dtype=bool)
    row, col = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(len(row), bool), (row, col)), shape=(n_demand, n_sites))
