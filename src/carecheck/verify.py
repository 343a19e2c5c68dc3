"""Check a plan independently: coverage from plain distances, every constraint, every claim.

Nothing here uses the reach matrices, the reductions or the solver. Coverage is recomputed
by brute force — the distance from every demand point to every open site, in chunks — so a bug
in the KD-tree reach, a reduction or the model shows up as a disagreement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csgraph, csr_matrix

# A pair whose distance lies this close to the reach counts as a tie: either verdict is accepted.
TIE_TOLERANCE_M = 1e-6
# Along roads, metres: segments this close to a point's nearest distance tie (the lowest-numbered
# wins); a snap this close to a segment's end is at its node; points this close to the previous
# one along a segment are at its position (tied to it both ways at no cost).
SNAP_TOLERANCE_M = 1e-6
# pairs per block: 262,144 float64 (2 MB) stay in cache; 4,000,000-element blocks measured
# up to 20× slower (fresh pages for every temporary), 100,000 points × 200 sites 1.7 s → 0.09 s
_CHUNK_ELEMENTS = 262_144


@dataclass(frozen=True)
class TypePlan:
    """One facility type: all candidates, the existing facilities, and what was opened."""

    name: str
    candidate_ids: np.ndarray
    candidate_xy: np.ndarray
    candidate_reach: np.ndarray
    existing_ids: np.ndarray
    existing_xy: np.ndarray
    existing_reach: np.ndarray
    selected_ids: list[str]
    candidate_tier: np.ndarray | None = None
    candidate_cost: np.ndarray | None = None
    candidate_region: np.ndarray | None = None
    candidate_beds: np.ndarray | None = None
    min_beds: float = 0.0
    alpha: float = 1.0
    count: tuple[int, int | None] = (0, None)
    tier_counts: Mapping[str, tuple[int, int | None]] = field(default_factory=dict)
    region_min_sites: Mapping[str, int] = field(default_factory=dict)
    region_min_coverage: Mapping[str, float] = field(default_factory=dict)
    target: float | None = None  # min_sites: share of the weight to cover
    # linked tiers: tier → (referral distance, referring tiers)
    referral: Mapping[str, tuple[float, tuple[str, ...]]] = field(default_factory=dict)
    existing_tier: np.ndarray | None = None
    candidate_reach_kind: np.ndarray | None = None  # radius_m | network_m | travel_min
    candidate_reach_mode: np.ndarray | None = None  # walk | drive for travel_min
    existing_reach_kind: np.ndarray | None = None
    existing_reach_mode: np.ndarray | None = None


@dataclass(frozen=True)
class Roads:
    """The road network as plain arrays: segments between nodes (metric CRS)."""

    node_xy: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length_m: np.ndarray
    speed_kmh: np.ndarray
    oneway: np.ndarray
    walk_m_per_min: float = 60.0
    max_snap_m: float = float("inf")


@dataclass(frozen=True)
class TypeCoverage:
    """Recomputed per-demand state of one type."""

    covered_before: np.ndarray
    covered_after: np.ndarray
    ambiguous: np.ndarray  # demand whose verdict rests on a distance tie
    nearest_id: np.ndarray  # nearest open site (existing or selected), None when none
    nearest_m: np.ndarray


@dataclass(frozen=True)
class Verification:
    """The verdict: ``problems`` is empty when the plan and every claim check out."""

    problems: list[str]
    coverage: dict[str, TypeCoverage]
    summary: dict

    @property
    def ok(self) -> bool:
        return not self.problems


def nearest_and_margin(
    demand_xy: np.ndarray, site_xy: np.ndarray, site_reach: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each demand point: index of the nearest site, its distance, and min(d − reach).

    Brute force over all pairs, ``_CHUNK_ELEMENTS`` at a time. Index −1 and infinite
    distance/margin when there are no sites.
    """
    n = len(demand_xy)
    nearest = np.full(n, -1, dtype=np.int64)
    distance = np.full(n, np.inf)
    margin = np.full(n, np.inf)
    if len(site_xy) == 0 or n == 0:
        return nearest, distance, margin
    step = max(1, _CHUNK_ELEMENTS // len(site_xy))
    # sites grouped by reach: min over a group of (d − r) is sqrt(min d²) − r, as sqrt is
    # monotone, so the square root is taken once per point and group, not per pair
    reaches, group = np.unique(np.asarray(site_reach, dtype=float), return_inverse=True)
    members = [np.flatnonzero(group == g) for g in range(len(reaches))]
    sx, sy = site_xy[:, 0][None, :], site_xy[:, 1][None, :]
    for start in range(0, n, step):
        stop = min(n, start + step)
        dx = demand_xy[start:stop, 0][:, None] - sx
        dy = demand_xy[start:stop, 1][:, None] - sy
        d2 = dx * dx + dy * dy
        best = np.argmin(d2, axis=1)
        nearest[start:stop] = best
        distance[start:stop] = np.sqrt(d2[np.arange(stop - start), best])
        if len(reaches) == 1:
            margin[start:stop] = distance[start:stop] - reaches[0]
            continue
        for r, cols in zip(reaches, members, strict=True):
            closest = np.sqrt(d2[:, cols].min(axis=1))
            margin[start:stop] = np.minimum(margin[start:stop], closest - r)
    return nearest, distance, margin


def _referred(tp: TypePlan, chosen: np.ndarray) -> np.ndarray:
    """Which chosen sites count: a linked tier's site needs a referring site nearby."""
    counts = np.ones(len(chosen), dtype=bool)
    if not tp.referral or tp.candidate_tier is None:
        return counts
    existing_tier = np.asarray(
        tp.existing_tier if tp.existing_tier is not None else [None] * len(tp.existing_xy),
        dtype=object,
    )
    chosen_tier = np.asarray(tp.candidate_tier, dtype=object)[chosen]
    open_xy = np.vstack([tp.existing_xy.reshape(-1, 2), tp.candidate_xy[chosen]])
    open_tier = np.concatenate([existing_tier, chosen_tier])
    for k, tier in enumerate(chosen_tier):
        if tier not in tp.referral:
            continue
        within, tiers = tp.referral[tier]
        referring = np.isin(open_tier, list(tiers))
        d = np.hypot(*(open_xy[referring] - tp.candidate_xy[chosen[k]]).T)
        counts[k] = bool((d <= within).any())
    return counts


def _kinds(values: np.ndarray | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, "radius_m", dtype=object)
    return np.array([v if v is not None else "" for v in values], dtype=object)


def _margin(
    demand_xy: np.ndarray,
    site_xy: np.ndarray,
    reach: np.ndarray,
    kind: np.ndarray,
    mode: np.ndarray,
    roads: Roads | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per demand point: the nearest site in a straight line (index, distance) and the margin,
    min over sites of (cost to the site − the site's reach)."""
    straight = kind == "radius_m"
    # one pass over all sites: a site measured along roads gets reach −∞ here (margin +∞)
    nearest, distance, margin = nearest_and_margin(
        demand_xy, site_xy, np.where(straight, reach, -np.inf)
    )
    on_roads = np.flatnonzero(~straight)
    if len(on_roads):
        if roads is None:
            raise ValueError("network reach needs the road network to verify")
        costs = road_costs_to_sites(
            roads, demand_xy, site_xy[on_roads], kind[on_roads], mode[on_roads], reach[on_roads]
        )
        margin = np.minimum(margin, (costs - reach[on_roads][:, None]).min(axis=0))
    return nearest, distance, margin


def _snap_brute(roads: Roads, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest segment, position on it (0..1) and distance, checking every segment.

    Exact: the distance to a segment's midpoint bounds the distance to the segment from above,
    and (minus half its length) from below, so only segments whose lower bound does not exceed
    the best upper bound need the full projection. Segments within ``SNAP_TOLERANCE_M`` of the
    nearest distance tie: the lowest-numbered one wins.
    """
    a, b = roads.node_xy[roads.u], roads.node_xy[roads.v]
    ab = b - a
    denom = np.maximum((ab * ab).sum(axis=1), 1e-300)
    mid = (a + b) / 2
    half = np.sqrt(denom) / 2
    edge = np.empty(len(points), dtype=np.int64)
    frac = np.empty(len(points))
    dist = np.empty(len(points))
    step = max(1, _CHUNK_ELEMENTS // max(1, len(a)))
    for start in range(0, len(points), step):
        p = points[start : start + step]
        to_mid = np.hypot(p[:, 0:1] - mid[None, :, 0], p[:, 1:2] - mid[None, :, 1])
        best_upper = to_mid.min(axis=1)
        slack = 2 * SNAP_TOLERANCE_M
        rows, cols = np.nonzero(to_mid - half[None, :] <= best_upper[:, None] + slack)
        t = np.clip(((p[rows] - a[cols]) * ab[cols]).sum(axis=1) / denom[cols], 0, 1)
        d = np.hypot(*(p[rows] - (a[cols] + t[:, None] * ab[cols])).T)
        nearest = np.full(len(p), np.inf)
        np.minimum.at(nearest, rows, d)
        # per point, the lowest segment among those tied with the nearest (rows, then cols,
        # come sorted from np.nonzero)
        tied = np.flatnonzero(d <= nearest[rows] + SNAP_TOLERANCE_M)
        first = tied[np.r_[True, rows[tied][1:] != rows[tied][:-1]]]
        edge[start : start + step] = cols[first]
        frac[start : start + step] = t[first]
        dist[start : start + step] = d[first]
    return edge, frac, dist


# Grid snapping: rings of cells searched for a point's nearest segment midpoint before the point
# is left to the brute force (it is then farther than this many cells from every road, which
# is rare, and costs what every point cost before).
_SNAP_RINGS = 8
_SNAP_BLOCK = 4096  # points per block of the grid snapping: bounds its candidate pairs


@dataclass(frozen=True)
class _SegmentGrid:
    """A uniform grid over the road segments: per cell the midpoints inside it, and the
    segments whose disc (around the midpoint, radius half the length) the cell touches."""

    origin: np.ndarray  # (x, y) of cell (0, 0)'s lower left corner
    cell: float
    shape: tuple[int, int]
    tol: float  # metres: far above the rounding of any coordinate the grid compares
    mid_start: np.ndarray  # cell k's midpoints are mid_segment[mid_start[k] : mid_start[k + 1]]
    mid_segment: np.ndarray
    disc_start: np.ndarray
    disc_segment: np.ndarray


def _segment_grid(roads: Roads) -> _SegmentGrid:
    """The grid of the road segments (midpoints and half lengths as :func:`_snap_brute`
    computes them); about one midpoint a cell, at most 3 × segments + 1 cells."""
    a, b = roads.node_xy[roads.u], roads.node_xy[roads.v]
    ab = b - a
    mid = (a + b) / 2
    half = np.sqrt(np.maximum((ab * ab).sum(axis=1), 1e-300)) / 2
    low = (mid - half[:, None]).min(axis=0)
    high = (mid + half[:, None]).max(axis=0)
    tol = 1e-10 * max(float(np.abs(low).max()), float(np.abs(high).max()), 1.0)
    low, high = low - tol, high + tol
    width, height = high - low
    m = len(mid)
    # sqrt(area / m) gives ~1 midpoint a cell; the longer side / m keeps a thin network's
    # grid at most m + 1 cells long
    cell = max(float(np.sqrt(width * height / m)), float(max(width, height)) / m, tol)
    nx, ny = int(width // cell) + 1, int(height // cell) + 1
    n_cells = nx * ny
    ix, iy = ((mid - low) // cell).astype(np.int64).T
    mid_start, mid_segment = _cell_lists(ix * ny + iy, np.arange(m), n_cells)
    # every cell the disc's bounding box (widened by tol) touches
    x0, y0 = (
        np.clip((mid - half[:, None] - tol - low) // cell, 0, [nx - 1, ny - 1]).astype(np.int64).T
    )
    x1, y1 = (
        np.clip((mid + half[:, None] + tol - low) // cell, 0, [nx - 1, ny - 1]).astype(np.int64).T
    )
    cells_x = x1 - x0 + 1
    owner, k = _ranges(np.zeros(m, dtype=np.int64), cells_x * (y1 - y0 + 1))
    cx, cy = x0[owner] + k % cells_x[owner], y0[owner] + k // cells_x[owner]
    disc_start, disc_segment = _cell_lists(cx * ny + cy, owner, n_cells)
    return _SegmentGrid(low, cell, (nx, ny), tol, mid_start, mid_segment, disc_start, disc_segment)


def _cell_lists(cell: np.ndarray, segment: np.ndarray, n_cells: int) -> tuple[np.ndarray, ...]:
    """Per cell, its segments (given in ascending order: they stay so), as (start per cell,
    segments)."""
    order = np.argsort(cell, kind="stable")
    start = np.zeros(n_cells + 1, dtype=np.int64)
    np.cumsum(np.bincount(cell, minlength=n_cells), out=start[1:])
    return start, segment[order]


def _ranges(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ranges ``start, …, start + count − 1`` one after another, and the range each
    element comes from: (owner, value)."""
    owner = np.repeat(np.arange(len(counts)), counts)
    offset = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, starts[owner] + offset


def _ring(r: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets (dx, dy) at Chebyshev distance exactly ``r``."""
    if r == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    side, inner = np.arange(-r, r + 1), np.arange(-r + 1, r)
    dx = np.concatenate([side, side, np.full(2 * r - 1, -r), np.full(2 * r - 1, r)])
    dy = np.concatenate([np.full(2 * r + 1, -r), np.full(2 * r + 1, r), inner, inner])
    return dx, dy


def _in_cells(
    grid: _SegmentGrid, point: np.ndarray, cx: np.ndarray, cy: np.ndarray, by_disc: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The (point, segment) pairs of the given (point, cell x, cell y) triples; cells off the
    grid hold nothing. ``by_disc``: the segments whose disc touches the cell, else those whose
    midpoint lies in it."""
    nx, ny = grid.shape
    on_grid = (cx >= 0) & (cx < nx) & (cy >= 0) & (cy < ny)
    point, cell = point[on_grid], cx[on_grid] * ny + cy[on_grid]
    start, segment = (
        (grid.disc_start, grid.disc_segment) if by_disc else (grid.mid_start, grid.mid_segment)
    )
    owner, k = _ranges(start[cell], start[cell + 1] - start[cell])
    return point[owner], segment[k]


def _snap_grid(
    roads: Roads, points: np.ndarray, grid: _SegmentGrid | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_snap_brute`'s answer, from the segments near each point only.

    The brute force projects a point onto every segment whose lower bound (the distance to
    its midpoint minus half its length) is within the slack of the least distance to any
    midpoint. Here a uniform grid (:func:`_segment_grid`) finds those segments: first the
    nearest midpoint, searching rings of cells around the point until every cell not yet
    searched lies farther than the nearest midpoint found; then, among the segments whose
    disc (which holds the segment) touches a cell within that distance plus the slack, the
    brute force's own test picks the same segments. Distances, projections and ties are
    computed by the brute force's own expressions, so the answer is identical, bit for bit.
    Points the rings do not settle (more than ``_SNAP_RINGS`` cells from every midpoint),
    no points, no segments or coordinates that are not finite are left to the brute force.
    ``grid``: :func:`_segment_grid` of these roads, if already built.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    n = len(points)
    finite = np.isfinite(points).all() and np.isfinite(roads.node_xy).all()
    if n == 0 or len(roads.u) == 0 or not finite:
        return _snap_brute(roads, points)
    a, b = roads.node_xy[roads.u], roads.node_xy[roads.v]
    ab = b - a
    denom = np.maximum((ab * ab).sum(axis=1), 1e-300)
    mid = (a + b) / 2
    half = np.sqrt(denom) / 2
    if grid is None:
        grid = _segment_grid(roads)
    edge = np.empty(n, dtype=np.int64)
    frac = np.empty(n)
    dist = np.empty(n)
    unsettled = []
    for start in range(0, n, _SNAP_BLOCK):
        block = np.arange(start, min(n, start + _SNAP_BLOCK))
        best, settled = _nearest_midpoint(grid, mid, points, block)
        unsettled.append(block[~settled])
        block = block[settled]
        if not len(block):
            continue
        rows, cols = _near_discs(grid, points, block, best[settled])
        # from here on the brute force's own expressions and test, on the same pairs
        p = points
        to_mid = np.hypot(p[rows, 0] - mid[cols, 0], p[rows, 1] - mid[cols, 1])
        best_upper = np.full(n, np.inf)
        best_upper[block] = best[settled]
        slack = 2 * SNAP_TOLERANCE_M
        keep = to_mid - half[cols] <= best_upper[rows] + slack
        rows, cols = rows[keep], cols[keep]
        t = np.clip(((p[rows] - a[cols]) * ab[cols]).sum(axis=1) / denom[cols], 0, 1)
        d = np.hypot(*(p[rows] - (a[cols] + t[:, None] * ab[cols])).T)
        nearest = np.full(n, np.inf)
        np.minimum.at(nearest, rows, d)
        # per point, the lowest segment among those tied with the nearest (rows, then cols,
        # come sorted from _near_discs)
        tied = np.flatnonzero(d <= nearest[rows] + SNAP_TOLERANCE_M)
        first = tied[np.r_[True, rows[tied][1:] != rows[tied][:-1]]]
        edge[block], frac[block], dist[block] = cols[first], t[first], d[first]
    far = np.concatenate(unsettled)
    if len(far):
        edge[far], frac[far], dist[far] = _snap_brute(roads, points[far])
    return edge, frac, dist


def _nearest_midpoint(
    grid: _SegmentGrid, mid: np.ndarray, points: np.ndarray, block: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per point of ``block``: the least distance to a segment midpoint (as the brute force
    computes it), and whether the rings settled it."""
    xy = points[block]
    cell_xy = (xy - grid.origin) // grid.cell
    # a point more than the rings away from the grid never settles (and its cell index could
    # overflow an integer)
    reachable = (cell_xy >= -_SNAP_RINGS - 1) & (cell_xy <= np.array(grid.shape) + _SNAP_RINGS)
    reachable = reachable.all(axis=1)
    ix, iy = np.where(reachable[:, None], cell_xy, 0).astype(np.int64).T
    best = np.full(len(block), np.inf)
    settled = np.zeros(len(block), dtype=bool)
    active = np.flatnonzero(reachable)
    for r in range(_SNAP_RINGS + 1):
        dx, dy = _ring(r)
        local = np.repeat(active, len(dx))
        rows, cols = _in_cells(
            grid,
            local,
            np.repeat(ix[active], len(dx)) + np.tile(dx, len(active)),
            np.repeat(iy[active], len(dy)) + np.tile(dy, len(active)),
            by_disc=False,
        )
        p = xy[rows]
        np.minimum.at(best, rows, np.hypot(p[:, 0] - mid[cols, 0], p[:, 1] - mid[cols, 1]))
        # every midpoint not yet seen lies outside the (2r + 1)² cells around the point's,
        # so at least as far as the nearest side of that square
        left = grid.origin + (np.stack([ix[active], iy[active]], axis=1) - r) * grid.cell
        right = left + (2 * r + 1) * grid.cell
        xa = xy[active]
        margin = np.minimum((xa - left).min(axis=1), (right - xa).min(axis=1))
        done = best[active] <= margin - grid.tol
        settled[active[done]] = True
        active = active[~done]
        if not len(active):
            break
    return best, settled


def _near_discs(
    grid: _SegmentGrid, points: np.ndarray, block: np.ndarray, within: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(point, segment) pairs, sorted, of every segment whose disc's bounding box comes
    within ``within`` plus the slack of the point (``block`` holds the points)."""
    reach = within + 2 * SNAP_TOLERANCE_M + grid.tol
    xy = points[block]
    nx, ny = grid.shape
    low = np.clip((xy - reach[:, None] - grid.origin) // grid.cell, -1, [nx, ny]).astype(np.int64)
    high = np.clip((xy + reach[:, None] - grid.origin) // grid.cell, -1, [nx, ny]).astype(np.int64)
    wide = high[:, 0] - low[:, 0] + 1
    owner, k = _ranges(np.zeros(len(block), dtype=np.int64), wide * (high[:, 1] - low[:, 1] + 1))
    rows, cols = _in_cells(
        grid,
        block[owner],
        low[owner, 0] + k % wide[owner],
        low[owner, 1] + k // wide[owner],
        by_disc=True,
    )
    # a segment whose disc touches several of the cells comes once, and in order
    key = np.unique(rows * len(grid.mid_segment) + cols)
    return key // len(grid.mid_segment), key % len(grid.mid_segment)


_SNAPPED: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
_SNAPPED_KEEP = 8  # a plan's check snaps the same demand points once per type and reach
# the last road network's grid: a plan's check snaps several point sets onto the same roads
_GRID: dict[bytes, _SegmentGrid] = {}


def _digest(*arrays: np.ndarray) -> bytes:
    """A fingerprint of the arrays' types, shapes and values."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        values = np.ascontiguousarray(array)
        digest.update(str((values.dtype, values.shape)).encode())
        digest.update(values.tobytes())
    return digest.digest()


def _snap_once(roads: Roads, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_snap_brute`'s snapping of ``points`` (found by :func:`_snap_grid`), remembered
    for the same points on the same segments (the check of one plan asks for the demand
    points' snapping several times)."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    on_roads = _digest(roads.node_xy, roads.u, roads.v)
    key = on_roads + _digest(points)
    if key not in _SNAPPED:
        if len(_SNAPPED) >= _SNAPPED_KEEP:
            _SNAPPED.pop(next(iter(_SNAPPED)))
        grid = _GRID.get(on_roads)
        if grid is None and len(roads.u) and np.isfinite(roads.node_xy).all():
            _GRID.clear()
            grid = _GRID[on_roads] = _segment_grid(roads)
        _SNAPPED[key] = _snap_grid(roads, points, grid)
    edge, frac, dist = _SNAPPED[key]
    return edge.copy(), frac.copy(), dist.copy()


def road_costs_to_sites(
    roads: Roads,
    demand_xy: np.ndarray,
    site_xy: np.ndarray,
    kind: np.ndarray,
    mode: np.ndarray,
    bound: np.ndarray,
) -> np.ndarray:
    """Cost (sites × demand) to reach each site along the roads; inf beyond its ``bound``.

    Snapping onto the nearest segment (the brute force's answer, found with the verifier's own
    grid: :func:`_snap_grid`), the graph built afresh with the sites and demand
    points inserted where they snap (legs walked), and a Dijkstra per site over the reversed
    roads — written apart from :mod:`carecheck.network`, so the two can check each other.
    """
    n_demand, n_sites = len(demand_xy), len(site_xy)
    points = np.vstack([demand_xy, site_xy])
    at_demand, at_sites = _snap_once(roads, demand_xy), _snap_once(roads, site_xy)
    edge, frac, leg = (np.concatenate([a, b]) for a, b in zip(at_demand, at_sites, strict=True))
    n_nodes = len(roads.node_xy)
    span = np.hypot(*(roads.node_xy[roads.v] - roads.node_xy[roads.u]).T)  # metres
    inside, ends = _snapped_points(roads, span, edge, frac, leg)
    piece, ties = _road_pieces(roads, span, inside)
    join = np.vstack([ends, ties])
    costs = np.full((n_sites, n_demand), np.inf)
    n_total = n_nodes + len(points)
    on_road = leg <= roads.max_snap_m
    for group in sorted({(str(k), str(m or "walk")) for k, m in zip(kind, mode, strict=True)}):
        g_kind, g_mode = group
        graph = _reversed_graph(roads, piece, join, g_kind, g_mode, n_total)
        leg_cost = leg if g_kind == "network_m" else leg / roads.walk_m_per_min
        members = np.array(
            [s for s in range(n_sites) if (str(kind[s]), str(mode[s] or "walk")) == group],
            dtype=np.int64,
        )
        members = members[on_road[n_demand + members]]
        _costs_from_sites(costs, graph, members, bound, leg_cost, on_road, n_nodes, n_demand)
    return costs


def _snapped_points(
    roads: Roads, span: np.ndarray, edge: np.ndarray, frac: np.ndarray, leg: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Where the points within snapping distance join the roads.

    Returns the points inside a segment, as (segment, fraction along it, node) arrays, and the
    points at a segment's end, tied to that node both ways at no cost, as (node, road node)
    rows. Point ``k`` is node ``len(roads.node_xy) + k``.
    """
    k = np.flatnonzero(leg <= roads.max_snap_m)
    segment, f, node = edge[k], frac[k], len(roads.node_xy) + k
    metres = span[segment]
    at_u = f * metres <= SNAP_TOLERANCE_M
    at_end = at_u | ((1.0 - f) * metres <= SNAP_TOLERANCE_M)
    road_node = np.where(at_u, roads.u[segment], roads.v[segment])
    joins = np.stack([node[at_end], road_node[at_end]], axis=1).astype(np.int64)
    inside = ~at_end
    return (segment[inside], f[inside], node[inside]), joins


def _road_pieces(
    roads: Roads, span: np.ndarray, inside: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Every segment cut at the points inserted along it (``inside``: their segment, fraction
    along it and node).

    Returns the pieces as (segment, from node, to node, fraction of the segment) rows and the
    points at the position of the point before them along their segment (within
    ``SNAP_TOLERANCE_M``), tied to the last point kept before them, as (node, node) rows.
    """
    order = np.lexsort((inside[2], inside[1], inside[0]))
    segment, f, node = (values[order] for values in inside)
    near_previous = np.zeros(len(order), dtype=bool)
    near_previous[1:] = (segment[1:] == segment[:-1]) & (
        (f[1:] - f[:-1]) * span[segment[1:]] <= SNAP_TOLERANCE_M
    )
    # a segment's first inserted point is always kept, so the last kept one stays on the segment
    last_kept = np.maximum.accumulate(np.where(near_previous, 0, np.arange(len(order))))
    ties = np.stack([node[near_previous], node[last_kept[near_previous]]], axis=1)
    kept = ~near_previous
    m = len(roads.u)
    # the stops along each segment: its start, the points kept in order, its end
    stop_segment = np.concatenate([np.arange(m), segment[kept], np.arange(m)])
    rank = np.concatenate([np.zeros(m), np.ones(kept.sum()), np.full(m, 2.0)])
    stop_f = np.concatenate([np.zeros(m), f[kept], np.ones(m)])
    stop_node = np.concatenate([roads.u, node[kept], roads.v])
    by_stop = np.lexsort((stop_node, stop_f, rank, stop_segment))
    stop_segment, stop_f, stop_node = stop_segment[by_stop], stop_f[by_stop], stop_node[by_stop]
    step = np.flatnonzero(stop_segment[1:] == stop_segment[:-1])
    pieces = np.column_stack(
        [stop_segment[step], stop_node[step], stop_node[step + 1], stop_f[step + 1] - stop_f[step]]
    ).astype(float)
    return pieces, ties.astype(np.int64).reshape(-1, 2)


def _reversed_graph(
    roads: Roads, piece: np.ndarray, join: np.ndarray, g_kind: str, g_mode: str, n_total: int
) -> csr_matrix:
    """The road pieces and joins as a graph of moves towards a site, costed for one reach kind.

    ``piece`` holds (segment, from node, to node, fraction) rows; ``g_kind`` is ``network_m``
    (metres) or ``travel_min`` (minutes walked, or driven when ``g_mode`` is ``drive``: one-way
    segments then go one way only).
    """
    e, x, y, part = (
        piece[:, 0].astype(np.int64),
        piece[:, 1].astype(np.int64),
        piece[:, 2].astype(np.int64),
        piece[:, 3],
    )
    drive = g_kind == "travel_min" and g_mode == "drive"
    metres = part * roads.length_m[e]
    if g_kind == "network_m":
        cost = metres
    elif drive:
        cost = metres / (roads.speed_kmh[e] * 1000.0 / 60.0)
    else:
        cost = metres / roads.walk_m_per_min
    both = ~(drive & roads.oneway[e].astype(bool))
    # reversed moves (to the site): an edge x → y is stored as y → x
    rows = np.concatenate([y, x[both], join[:, 0], join[:, 1]])
    cols = np.concatenate([x, y[both], join[:, 1], join[:, 0]])
    data = np.concatenate([cost, cost[both], np.zeros(2 * len(join))])
    return _min_graph(rows, cols, data, n_total)


def _costs_from_sites(
    costs: np.ndarray,
    graph: csr_matrix,
    members: np.ndarray,
    bound: np.ndarray,
    leg_cost: np.ndarray,
    on_road: np.ndarray,
    n_nodes: int,
    n_demand: int,
) -> None:
    """Fill ``costs[members]``: a Dijkstra from each site (32 at a time), legs added."""
    for start in range(0, len(members), 32):
        batch = members[start : start + 32]
        sources = n_nodes + n_demand + batch
        limit = float(np.max(bound[batch] - leg_cost[n_demand + batch]))
        if limit < 0:
            continue
        dist = csgraph.dijkstra(graph, directed=True, indices=sources, limit=limit)
        reached = dist[:, n_nodes : n_nodes + n_demand] + leg_cost[n_demand + batch][:, None]
        total = reached + leg_cost[:n_demand][None, :]
        total[:, ~on_road[:n_demand]] = np.inf
        costs[batch] = total


def _min_graph(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, n: int) -> csr_matrix:
    """Sparse graph keeping the cheapest of parallel moves; stored zeros stay edges."""
    order = np.lexsort((data, cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    first = np.r_[True, (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])]
    return csr_matrix((data[first], (rows[first], cols[first])), shape=(n, n))


def _bounds_problem(label: str, opened: int, bounds: tuple[int, int | None]) -> str | None:
    lower, upper = bounds
    if upper is not None and lower == upper and opened != lower:
        return f"{label}: {opened} opened, exactly {lower} required"
    if opened < lower:
        return f"{label}: {opened} opened, at least {lower} required"
    if upper is not None and opened > upper:
        return f"{label}: {opened} opened, at most {upper} allowed"
    return None


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def verify_plan(
    demand_xy: np.ndarray,
    weight: np.ndarray,
    types: list[TypePlan],
    *,
    region: np.ndarray | None = None,
    budget: float | None = None,
    roads: Roads | None = None,
    claimed: Mapping | None = None,
    claimed_masks: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    minimize: str | None = None,
    by_region: bool = False,
) -> Verification:
    """Recompute coverage of the plan and check every constraint and every claim.

    Parameters
    ----------
    demand_xy, weight, region
        Projected demand points, weights and region labels (None = no regions).
    types
        The plan per facility type.
    budget
        Upper bound on the total cost of opened candidates.
    claimed
        What the run reports: ``{"objective": …, "coverage": {…}}`` in the result.json shape.
    claimed_masks
        Per type, the run's (covered_before, covered_after) boolean vectors.
    minimize, by_region
        ``None``: the objective is weighted coverage. ``"count"`` / ``"cost"``: the plan is the
        fewest sites / least cost meeting each type's target (checked, in every region with
        ``by_region``), and the objective is that count or cost.
    """
    weight = np.asarray(weight, dtype=float)
    problems: list[str] = []
    coverage: dict[str, TypeCoverage] = {}
    total_cost = 0.0
    labels = None if region is None else np.asarray(region, dtype=object)
    region_names = [] if labels is None else sorted({str(r) for r in labels if r is not None})
    for tp in types:
        chosen, found = _chosen(tp)
        problems += found
        problems += _count_problems(tp, chosen)
        if tp.candidate_cost is not None:
            total_cost += float(np.asarray(tp.candidate_cost, float)[chosen].sum())
        problems += _site_problems(tp, chosen)
        cov = _type_coverage(tp, chosen, demand_xy, roads)
        coverage[tp.name] = cov
        problems += _region_coverage_problems(tp, cov, weight, labels)
        problems += _mask_problems(tp, cov, claimed_masks)
    if budget is not None and total_cost > budget * (1 + 1e-9) + 1e-9:
        problems.append(f"budget: opened sites cost {total_cost:g}, the budget is {budget:g}")
    summary = coverage_summary(weight, labels, region_names, types, coverage)
    summary["total_cost"] = total_cost
    if minimize is not None:  # fewest sites or least cost that meet the targets
        problems += _target_problems(types, coverage, weight, labels, region_names, by_region)
        n_sites = sum(len(tp.selected_ids) for tp in types)
        summary["objective"] = total_cost if minimize == "cost" else float(n_sites)
    if claimed is not None:
        problems += _compare_claims(
            claimed, summary, types, coverage, weight, exact_objective=minimize is not None
        )
    return Verification(problems=problems, coverage=coverage, summary=summary)


def _chosen(tp: TypePlan) -> tuple[np.ndarray, list[str]]:
    """The selected candidates' indices, with problems for unknown or repeated ids."""
    problems = []
    cand_index = {str(c): k for k, c in enumerate(tp.candidate_ids)}
    unknown = [s for s in tp.selected_ids if str(s) not in cand_index]
    if unknown:
        problems.append(f"{tp.name}: selected id(s) not among the candidates: {unknown[:5]}")
    if len(set(map(str, tp.selected_ids))) != len(tp.selected_ids):
        problems.append(f"{tp.name}: a selected id appears more than once")
    chosen = np.array(
        [cand_index[str(s)] for s in tp.selected_ids if str(s) in cand_index], dtype=np.int64
    )
    return chosen, problems


def _count_problems(tp: TypePlan, chosen: np.ndarray) -> list[str]:
    """The number of sites opened, in all and per tier, against its bounds."""
    problems = []
    problem = _bounds_problem(f"{tp.name} count", len(chosen), tp.count)
    if problem:
        problems.append(problem)
    if tp.candidate_tier is not None:
        chosen_tiers = [tp.candidate_tier[k] for k in chosen]
        for tier, bounds in tp.tier_counts.items():
            problem = _bounds_problem(
                f"{tp.name} tier {tier} count", chosen_tiers.count(tier), bounds
            )
            if problem:
                problems.append(problem)
    return problems


def _site_problems(tp: TypePlan, chosen: np.ndarray) -> list[str]:
    """The new beds, and the sites opened per region, against their minima."""
    problems = []
    if tp.min_beds > 0:
        beds = (
            np.asarray(tp.candidate_beds, float)[chosen]
            if tp.candidate_beds is not None
            else np.zeros(len(chosen))
        )
        if beds.sum() < tp.min_beds - 1e-9:
            problems.append(
                f"{tp.name} beds: {beds.sum():g} new beds, at least {tp.min_beds:g} required"
            )
    if tp.region_min_sites:
        chosen_regions = [str(tp.candidate_region[k]) for k in chosen]  # type: ignore[index]
        for name, minimum in tp.region_min_sites.items():
            got = chosen_regions.count(str(name))
            if got < minimum:
                problems.append(
                    f"{tp.name} in region {name}: {got} site(s) opened, at least {minimum} required"
                )
    return problems


def _type_coverage(
    tp: TypePlan, chosen: np.ndarray, demand_xy: np.ndarray, roads: Roads | None
) -> TypeCoverage:
    """Coverage before (existing sites) and after (existing and chosen), from plain distances."""
    n_existing = len(tp.existing_xy)
    existing_kind = _kinds(tp.existing_reach_kind, n_existing)
    existing_mode = _kinds(tp.existing_reach_mode, n_existing)
    candidate_kind = _kinds(tp.candidate_reach_kind, len(tp.candidate_xy))[chosen]
    candidate_mode = _kinds(tp.candidate_reach_mode, len(tp.candidate_xy))[chosen]
    # the existing sites, then the chosen ones: minima over both are minima over the open
    # sites (nearest: an existing site wins a tie, as in one pass over existing + chosen)
    before_idx, before_d, before_margin = _margin(
        demand_xy,
        tp.existing_xy.reshape(-1, 2),
        np.asarray(tp.existing_reach, float),
        existing_kind,
        existing_mode,
        roads,
    )
    counts = _referred(tp, chosen)
    new_idx, new_d, new_margin = _margin(
        demand_xy,
        tp.candidate_xy[chosen].reshape(-1, 2),
        np.where(counts, tp.candidate_reach[chosen], -np.inf),
        candidate_kind,
        candidate_mode,
        roads,
    )
    open_ids = np.concatenate(
        [
            np.asarray(tp.existing_ids, dtype=object),
            np.asarray(tp.candidate_ids, dtype=object)[chosen],
        ]
    )
    newer = new_d < before_d
    after_idx = np.where(newer, new_idx + n_existing, before_idx)
    after_d = np.where(newer, new_d, before_d)
    after_margin = np.minimum(before_margin, new_margin)
    nearest_id = np.full(len(demand_xy), None, dtype=object)
    has_site = after_idx >= 0
    nearest_id[has_site] = open_ids[after_idx[has_site]]
    return TypeCoverage(
        covered_before=before_margin <= 0,
        covered_after=after_margin <= 0,
        ambiguous=(np.abs(before_margin) <= TIE_TOLERANCE_M)
        | (np.abs(after_margin) <= TIE_TOLERANCE_M),
        nearest_id=nearest_id,
        nearest_m=after_d,
    )


def _region_coverage_problems(
    tp: TypePlan, cov: TypeCoverage, weight: np.ndarray, labels: np.ndarray | None
) -> list[str]:
    """Each region's covered share against the type's minimum for it (ties count as covered)."""
    problems = []
    if tp.region_min_coverage and labels is not None:
        for name, share in tp.region_min_coverage.items():
            in_region = labels == name
            region_total = float(weight[in_region].sum())
            reached = float(weight[in_region & cov.covered_after].sum())
            slack = float(weight[in_region & cov.ambiguous].sum())
            if reached + slack < share * region_total - 1e-6 * max(1.0, region_total):
                fraction = reached / region_total if region_total else 0.0
                problems.append(
                    f"{tp.name} in region {name}: {fraction:.4f} of the elderly covered, "
                    f"at least {share} required"
                )
    return problems


def _mask_problems(
    tp: TypePlan,
    cov: TypeCoverage,
    claimed_masks: Mapping[str, tuple[np.ndarray, np.ndarray]] | None,
) -> list[str]:
    """The run's covered_before / covered_after vectors against plain distances (ties aside)."""
    problems = []
    if claimed_masks is not None and tp.name in claimed_masks:
        for label, mine, theirs in zip(
            ("covered_before", "covered_after"),
            (cov.covered_before, cov.covered_after),
            claimed_masks[tp.name],
            strict=True,
        ):
            differ = (mine != np.asarray(theirs, bool)) & ~cov.ambiguous
            if differ.any():
                problems.append(
                    f"{tp.name}: {label} disagrees with plain distances for "
                    f"{int(differ.sum())} demand unit(s) (first rows: "
                    f"{np.flatnonzero(differ)[:5].tolist()})"
                )
    return problems


def coverage_summary(
    weight: np.ndarray,
    region: np.ndarray | None,
    region_names: list[str],
    types: list[TypePlan],
    coverage: Mapping[str, TypeCoverage],
) -> dict:
    """Weights covered before/after per type, overall and per region (result.json shape)."""

    def block(mask: np.ndarray) -> dict:
        return {
            tp.name: {
                "covered_before": float(weight[mask & coverage[tp.name].covered_before].sum()),
                "covered_after": float(weight[mask & coverage[tp.name].covered_after].sum()),
            }
            for tp in types
        }

    everything = np.ones(len(weight), dtype=bool)
    summary: dict = {"demand_total": float(weight.sum()), "types": block(everything)}
    by_region = []
    if region is not None:
        for name in region_names:
            mask = region == name
            by_region.append(
                {"region": name, "demand_total": float(weight[mask].sum()), "types": block(mask)}
            )
    summary["by_region"] = by_region
    summary["objective"] = float(
        sum(tp.alpha * summary["types"][tp.name]["covered_after"] for tp in types)
    )
    return summary


def _target_problems(
    types: list[TypePlan],
    coverage: Mapping[str, TypeCoverage],
    weight: np.ndarray,
    labels: np.ndarray | None,
    region_names: list[str],
    by_region: bool,
) -> list[str]:
    """min_sites: each type's covered share meets its target (in every region if asked)."""
    problems = []
    for tp in types:
        if tp.target is None:
            continue
        cov = coverage[tp.name]
        groups = [("", np.ones(len(weight), dtype=bool))]
        if by_region and labels is not None:
            groups = [(f" in region {r}", labels == r) for r in region_names]
        for where, mask in groups:
            total = float(weight[mask].sum())
            reached = float(weight[mask & cov.covered_after].sum())
            slack = float(weight[mask & cov.ambiguous].sum())
            if reached + slack < tp.target * total - 1e-6 * max(1.0, total):
                problems.append(
                    f"{tp.name}{where}: {reached / total if total else 0:.4f} of the elderly "
                    f"covered, the target is {tp.target}"
                )
    return problems


def _compare_claims(
    claimed: Mapping,
    summary: dict,
    types: list[TypePlan],
    coverage: Mapping[str, TypeCoverage],
    weight: np.ndarray,
    *,
    exact_objective: bool = False,
) -> list[str]:
    problems = []
    slack = {tp.name: float(weight[coverage[tp.name].ambiguous].sum()) for tp in types}
    theirs = claimed.get("coverage", {})

    def check(label: str, mine: float, their: float | None, tolerance: float) -> None:
        if their is None:
            problems.append(f"{label}: missing from the result")
        elif abs(mine - their) > tolerance + 1e-6 * max(1.0, abs(mine)):
            problems.append(f"{label}: result says {their:g}, plain distances give {mine:g}")

    check("demand_total", summary["demand_total"], theirs.get("demand_total"), 0.0)
    for tp in types:
        for key in ("covered_before", "covered_after"):
            their = theirs.get("types", {}).get(tp.name, {}).get(key)
            check(f"{tp.name} {key}", summary["types"][tp.name][key], their, slack[tp.name])
    their_regions = {r.get("region"): r for r in theirs.get("by_region", [])}
    for block in summary["by_region"]:
        other = their_regions.get(block["region"])
        if other is None:
            problems.append(f"region {block['region']}: missing from the result")
            continue
        for tp in types:
            for key in ("covered_before", "covered_after"):
                their = other.get("types", {}).get(tp.name, {}).get(key)
                check(
                    f"{tp.name} {key} in region {block['region']}",
                    block["types"][tp.name][key],
                    their,
                    slack[tp.name],
                )
    if "objective" in claimed and claimed["objective"] is not None:
        total_slack = 0.0 if exact_objective else sum(tp.alpha * slack[tp.name] for tp in types)
        check("objective", summary["objective"], float(claimed["objective"]), total_slack)
    return problems


# --------------------------------------------------------------------------- beds


def reach_pairs(
    demand_xy: np.ndarray,
    site_xy: np.ndarray,
    reach: np.ndarray,
    kind: np.ndarray,
    mode: np.ndarray,
    roads: Roads | None,
) -> np.ndarray:
    """Boolean (n_demand × n_sites): the site is within reach, by plain distances or roads."""
    n_demand, n_sites = len(demand_xy), len(site_xy)
    within = np.zeros((n_demand, n_sites), dtype=bool)
    straight = np.flatnonzero(kind == "radius_m")
    step = max(1, _CHUNK_ELEMENTS // max(1, len(straight)))
    for start in range(0, n_demand, step):
        block = demand_xy[start : start + step]
        d = np.sqrt(((block[:, None, :] - site_xy[None, straight, :]) ** 2).sum(axis=2))
        within[start : start + step, straight] = d <= reach[straight][None, :]
    on_roads = np.flatnonzero(kind != "radius_m")
    if len(on_roads):
        if roads is None:
            raise ValueError("network reach needs the road network to verify")
        costs = road_costs_to_sites(
            roads, demand_xy, site_xy[on_roads], kind[on_roads], mode[on_roads], reach[on_roads]
        )
        within[:, on_roads] = (costs <= reach[on_roads][:, None]).T
    return within


def served_beds(
    need: np.ndarray, within: np.ndarray, beds: np.ndarray, *, resolution: float = 1e-3
) -> tuple[float, np.ndarray]:
    """Most bed need the sites can serve (max flow: source → demand → site in reach → sink).

    Capacities are integers in units of ``resolution`` beds (scaled down if the total would not
    fit in 32 bits), so the result is exact to about ``n_demand × resolution`` beds. Returns the
    total and the need served per demand unit.
    """
    from scipy.sparse import csgraph, csr_matrix

    n_demand, n_sites = within.shape
    total = float(need.sum()) + float(beds.sum())
    scale = min(1.0 / resolution, 2.0e9 / max(total, 1.0))
    q = np.floor(np.asarray(need, float) * scale).astype(np.int64)
    b = np.floor(np.asarray(beds, float) * scale).astype(np.int64)
    source, sink = n_demand + n_sites, n_demand + n_sites + 1
    d_idx, s_idx = np.nonzero(within)
    big = int(q.sum()) + 1
    rows = np.concatenate([np.full(n_demand, source), d_idx, n_demand + np.arange(n_sites)])
    cols = np.concatenate([np.arange(n_demand), n_demand + s_idx, np.full(n_sites, sink)])
    caps = np.concatenate([q, np.full(len(d_idx), big), b]).astype(np.int32)
    graph = csr_matrix((caps, (rows, cols)), shape=(sink + 1, sink + 1))
    flow = csgraph.maximum_flow(graph, source, sink)
    per_demand = np.asarray(flow.flow[source, :n_demand].todense()).ravel() / scale
    return float(flow.flow_value) / scale, per_demand
