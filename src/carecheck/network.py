"""Reach along a road network: snapping onto edges and bounded multi-source Dijkstra.

The network is a set of straight segments (lines are split at their vertices) between nodes.
A point is snapped to the nearest point on the nearest segment — not only to a node — and
reaches the network over a straight off-network leg walked at walking speed. Every segment
that holds snapped points is split at them, so two points on one street reach each other
along it. Reach is then one bounded Dijkstra per site on the reversed graph (the elderly
travel to the site), batched so memory stays at batch × nodes.

Costs are metres (``network_m``) or minutes (``travel_min``). Walking ignores one-way
restrictions; driving respects them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse import csgraph

_BATCH = 64
_END = 1e-12  # a snap this close to a segment's end is at its node


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
    """A network from straight segments; endpoints closer than ``precision_m`` are one node."""
    start_xy = np.asarray(start_xy, float).reshape(-1, 2)
    end_xy = np.asarray(end_xy, float).reshape(-1, 2)
    n = len(start_xy)
    keys = np.round(np.vstack([start_xy, end_xy]) / precision_m).astype(np.int64)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    node_xy = np.zeros((len(unique), 2))
    node_xy[inverse] = np.vstack([start_xy, end_xy])
    geometric = np.hypot(*(end_xy - start_xy).T)
    return Network(
        node_xy=node_xy,
        u=inverse[:n],
        v=inverse[n:],
        length_m=geometric if length_m is None else np.asarray(length_m, float),
        speed_kmh=np.broadcast_to(np.asarray(speed_kmh, float), (n,)).copy(),
        oneway=np.broadcast_to(np.asarray(oneway, bool), (n,)).copy(),
    )


@dataclass(frozen=True)
class Snap:
    """Where points meet the network: segment, position along it (0..1) and leg length."""

    edge: np.ndarray
    fraction: np.ndarray
    leg_m: np.ndarray


def snap_points(network: Network, points_xy: np.ndarray) -> Snap:
    """Nearest point on the nearest segment for every point (STRtree, vectorised)."""
    points_xy = np.asarray(points_xy, float).reshape(-1, 2)
    if network.n_edges == 0 or len(points_xy) == 0:
        empty = np.zeros(len(points_xy))
        return Snap(np.full(len(points_xy), -1), empty, np.full(len(points_xy), np.inf))
    a = network.node_xy[network.u]
    b = network.node_xy[network.v]
    segments = shapely.linestrings(np.stack([a, b], axis=1))
    tree = shapely.STRtree(segments)
    points = shapely.points(points_xy)
    pairs = tree.query_nearest(points, all_matches=False)
    edge = np.full(len(points_xy), -1, dtype=np.int64)
    edge[pairs[0]] = pairs[1]
    ab = b[edge] - a[edge]
    denom = (ab * ab).sum(axis=1)
    t = np.where(
        denom > 0, ((points_xy - a[edge]) * ab).sum(axis=1) / np.maximum(denom, 1e-300), 0.0
    )
    t = np.clip(t, 0.0, 1.0)
    nearest = a[edge] + t[:, None] * ab
    leg = np.hypot(*(points_xy - nearest).T)
    return Snap(edge=edge, fraction=t, leg_m=leg)


def _augmented_edges(
    network: Network, snap: Snap
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split snapped segments at their points: (u, v, length, speed, oneway) of all edges.

    Point k becomes node ``n_nodes + k``. A point that snaps onto a segment's end is joined
    to that node both ways at no cost (so it can leave along any street at the node, also
    against a one-way segment it happened to snap to).
    """
    n_nodes = network.n_nodes
    has = snap.edge >= 0
    at_start = has & (snap.fraction <= _END)
    at_end = has & (snap.fraction >= 1.0 - _END) & ~at_start
    ends = np.flatnonzero(at_start | at_end)
    end_node = np.where(at_start[ends], network.u[snap.edge[ends]], network.v[snap.edge[ends]])
    join_u = np.concatenate([n_nodes + ends, end_node])
    join_v = np.concatenate([end_node, n_nodes + ends])
    points = np.flatnonzero(has & ~at_start & ~at_end)
    split_edges = np.unique(snap.edge[points])
    keep = np.ones(network.n_edges, dtype=bool)
    keep[split_edges] = False
    order = points[np.lexsort((snap.fraction[points], snap.edge[points]))]
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
            hull = shapely.concave_hull(shapely.multipoints(nodes), ratio=0.3)
            areas[site] = shapely.buffer(hull, buffer_m)
    return areas


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
    combined = Snap(
        edge=np.concatenate([demand_snap.edge, site_snap.edge]),
        fraction=np.concatenate([demand_snap.fraction, site_snap.fraction]),
        leg_m=np.concatenate([demand_snap.leg_m, site_snap.leg_m]),
    )
    reverse, leg = _reverse_graph(network, combined, kind, mode, walk_m_per_min)
    valid = combined.leg_m <= max_snap_m
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
