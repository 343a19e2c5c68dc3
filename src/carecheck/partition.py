r"""Reach and the exact demand reductions for millions of demand points, a partition at a time.

The in-memory path builds the whole demand × site reach matrix and then merges demand units
whose reach sets are identical (:func:`carecheck.model.reduce_type`). For a province-scale
demand layer that matrix is the largest object of the run, yet the model only needs its
distinct rows. Here the demand points are taken ``chunk`` at a time: a KD-tree over the chunk
is matched against one KD-tree per site reach (the inclusive distance test of
:func:`carecheck.coverage.reach_matrix`), rows that are covered before, have zero weight or
reach nothing are dropped, identical rows are merged inside the chunk and then with the
distinct rows of earlier chunks. Memory grows with the chunk and with the number of
distinct reach sets, never with demand × sites.

Merging is vectorised. Each row gets two 64-bit keys, sums (mod :math:`2^{64}`) of a random
64-bit word per site in the row plus a word for its region; rows are grouped by their keys and
every row is then compared element by element with the first row of its group, so a key
collision can never merge two different rows (colliding groups are split exactly). Groups are
numbered in order of first appearance, as :func:`carecheck.model.reduce_type` numbers them.

Several facility types share one demand layer but merge differently. :func:`classes_from_merged`
groups the points by their state in every type at once (merged row, covered before or out of
reach, and region); these demand classes form an ordinary, much smaller
:class:`~carecheck.model.Problem` with the same optimum, which
:func:`carecheck.model.reduce_problem` reduces like any other (each reduction is implemented
once, in :mod:`carecheck.model`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

_KEY_SEED = 20_240_611  # fixed: keys (and so the merge) are reproducible from run to run
_GOLDEN = 0x9E3779B97F4A7C15


@dataclass(frozen=True)
class MergedDemand:
    """The distinct reach sets of one facility type's demand and how the points map onto them.

    ``reach`` is (n_rows × n_sites) with sorted indices; ``row_region`` is -1 everywhere when
    regions were not kept apart (``by_region`` False). ``demand_rows`` gives each demand point
    its row, or -1 when the point was dropped (covered before, zero weight or out of reach of
    every site); ``covered_before`` is the per-point input, kept to tell those cases apart.
    """

    reach: sp.csr_matrix
    row_weight: np.ndarray
    row_region: np.ndarray
    covered_before_weight: float
    demand_rows: np.ndarray
    covered_before: np.ndarray
    by_region: bool

    @property
    def n_rows(self) -> int:
        return int(self.reach.shape[0])

    @property
    def nnz(self) -> int:
        return int(self.reach.nnz)


@dataclass(frozen=True)
class DemandClasses:
    """Demand points grouped by their state in every type: the demand units of a small Problem.

    Per type ``k``: ``reach[k]`` (n_classes × n_sites) is the merged row of each class (empty
    when the class is covered before or out of reach), ``covered_before[k]`` flags the classes
    covered before and ``rows[k]`` gives each class its row of ``merged[k]`` (-1 when none).
    ``demand_class`` maps each demand point to its class, -1 for points of zero weight (they
    change no objective, constraint or total).
    """

    weight: np.ndarray
    region: np.ndarray
    reach: tuple[sp.csr_matrix, ...]
    covered_before: tuple[np.ndarray, ...]
    rows: tuple[np.ndarray, ...]
    merged: tuple[MergedDemand, ...]
    demand_class: np.ndarray

    @property
    def n_classes(self) -> int:
        return len(self.weight)


# --------------------------------------------------------------------------- reach


def reach_in_partitions(
    demand_xy: np.ndarray,
    weight: np.ndarray,
    site_xy: np.ndarray,
    site_reach: np.ndarray | float,
    *,
    covered_before: np.ndarray | None = None,
    chunk: int = 200_000,
    region: np.ndarray | None = None,
) -> MergedDemand:
    """The distinct reach sets of the demand, computed ``chunk`` points at a time.

    Parameters
    ----------
    demand_xy, site_xy
        Projected coordinates in metres, shape (n, 2).
    weight
        Demand weight of each point (finite, ≥ 0).
    site_reach
        Reach of each site in metres (or one value for all); reached means distance ≤ reach.
    covered_before
        Points already covered by existing facilities of this type (dropped; their weight is
        the constant ``covered_before_weight``).
    chunk
        Demand points per partition: peak memory grows with it.
    region
        Integer region code of each point (-1 = none). When given, rows of different regions
        are kept apart, as regional coverage floors need.

    Returns
    -------
    MergedDemand
        Identical, row for row, to what :func:`carecheck.model.reduce_type` merges from the
        full reach matrix (before it drops candidate columns), with the same row order.
    """
    demand_xy = np.asarray(demand_xy, dtype=float).reshape(-1, 2)
    site_xy = np.asarray(site_xy, dtype=float).reshape(-1, 2)
    n_demand, n_sites = len(demand_xy), len(site_xy)
    weight = _per_point(weight, n_demand, "weight", float)
    if not np.isfinite(weight).all() or (weight < 0).any():
        raise ValueError("weight: every demand weight must be finite and ≥ 0")
    covered = (
        np.zeros(n_demand, dtype=bool)
        if covered_before is None
        else _per_point(covered_before, n_demand, "covered_before", bool)
    )
    codes = (
        np.full(n_demand, -1, dtype=np.int64)
        if region is None
        else _per_point(region, n_demand, "region", np.int64)
    )
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of points, got {chunk}")
    site_trees = _site_trees(site_xy, site_reach)
    site_keys = _site_keys(n_sites)
    merged = _RowSet.empty()
    demand_rows = np.full(n_demand, -1, dtype=np.int32)
    for start in range(0, n_demand, chunk):
        stop = min(start + chunk, n_demand)
        # only points that could become a row are queried
        points = start + np.flatnonzero(~covered[start:stop] & (weight[start:stop] > 0))
        if not len(points) or not n_sites:
            continue
        block = _reach_block(demand_xy[points], site_trees, n_sites)
        reaching = np.flatnonzero(np.diff(block.indptr) > 0)
        if not len(reaching):
            continue
        block = block[reaching]
        points = points[reaching]
        rows = _RowSet.from_csr(block, codes[points], site_keys)
        group, firsts = _group_rows(rows)
        merged, numbers = merged.absorb(rows.take(firsts))
        demand_rows[points] = numbers[group]
    active = demand_rows >= 0
    # one pass in point order, so the sums are bit for bit those of reduce_type
    row_weight = np.bincount(demand_rows[active], weights=weight[active], minlength=merged.n_rows)
    return MergedDemand(
        reach=merged.to_csr(n_sites),
        row_weight=row_weight,
        row_region=merged.region if region is not None else np.full(merged.n_rows, -1),
        covered_before_weight=float(weight[covered].sum()),
        demand_rows=demand_rows,
        covered_before=covered,
        by_region=region is not None,
    )


def covered_in_partitions(
    demand_xy: np.ndarray,
    site_xy: np.ndarray,
    site_reach: np.ndarray | float,
    *,
    chunk: int = 200_000,
) -> np.ndarray:
    """Boolean vector: demand points within reach of at least one site, ``chunk`` at a time.

    The covered-before state from existing facilities, or the coverage of a plan's opened
    sites per demand point, without a demand × site matrix.
    """
    demand_xy = np.asarray(demand_xy, dtype=float).reshape(-1, 2)
    site_xy = np.asarray(site_xy, dtype=float).reshape(-1, 2)
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of points, got {chunk}")
    site_trees = _site_trees(site_xy, site_reach)
    covered = np.zeros(len(demand_xy), dtype=bool)
    for start in range(0, len(demand_xy), chunk):
        block = _reach_block(demand_xy[start : start + chunk], site_trees, len(site_xy))
        covered[start : start + chunk] = np.diff(block.indptr) > 0
    return covered


def _site_trees(
    site_xy: np.ndarray, site_reach: np.ndarray | float
) -> list[tuple[float, np.ndarray, cKDTree]]:
    """One KD-tree per distinct reach: (reach, the sites' indices, tree over those sites)."""
    reach = np.asarray(site_reach, dtype=float)
    if reach.ndim and reach.shape != (len(site_xy),):
        raise ValueError(
            f"site_reach has shape {reach.shape}; expected one value per site "
            f"({len(site_xy)},) or a single value"
        )
    reach = np.broadcast_to(reach, (len(site_xy),))
    trees = []
    for radius in np.unique(reach):
        members = np.flatnonzero(reach == radius)
        trees.append((float(radius), members, cKDTree(site_xy[members])))
    return trees


def _reach_block(
    points_xy: np.ndarray, site_trees: list[tuple[float, np.ndarray, cKDTree]], n_sites: int
) -> sp.csr_matrix:
    """Boolean CSR (points × sites) with sorted indices: distance ≤ the site's reach.

    The same pairs as :func:`carecheck.coverage.reach_matrix` (the same inclusive test on the
    same squared distances; the tests compare the two), but found tree against tree, so no
    Python list is built per point or per site.
    """
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    if len(points_xy) and site_trees:
        tree = cKDTree(points_xy)
        for radius, members, site_tree in site_trees:
            pairs = tree.sparse_distance_matrix(site_tree, radius, output_type="ndarray")
            rows.append(pairs["i"])
            cols.append(members[pairs["j"]])
    row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    col = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    block = sp.csr_matrix(
        (np.ones(len(row), dtype=bool), (row, col)), shape=(len(points_xy), n_sites), dtype=bool
    )
    block.sort_indices()
    return block


# --------------------------------------------------------------------------- classes


def classes_from_merged(
    merged: Sequence[MergedDemand],
    weight: np.ndarray,
    *,
    region: np.ndarray | None = None,
) -> DemandClasses:
    """Group the demand points by (row or state in every type, region): the demand classes.

    Points in one class are interchangeable for the model: the same merged row (or the same
    "covered before" / "out of reach" state) in every type and the same region. Their weights
    add up. Points of zero weight belong to no class. Classes are numbered in order of their
    first point, so :func:`carecheck.model.reduce_problem` on the class problem merges rows in
    the same order as the partitions did.

    Parameters
    ----------
    merged
        One :class:`MergedDemand` per facility type, all over the same demand points.
    weight
        Demand weight of each point.
    region
        Integer region code of each point (-1 = none); classes never mix regions.
    """
    if not merged:
        raise ValueError("merged: give the merged demand of at least one facility type")
    n_demand = len(merged[0].demand_rows)
    weight = _per_point(weight, n_demand, "weight", float)
    for k, m in enumerate(merged):
        if len(m.demand_rows) != n_demand:
            raise ValueError(
                f"merged[{k}] has {len(m.demand_rows)} demand points, merged[0] has {n_demand}: "
                "every type must be computed over the same demand layer"
            )
    codes = (
        np.full(n_demand, -1, dtype=np.int64)
        if region is None
        else _per_point(region, n_demand, "region", np.int64)
    )
    present = np.flatnonzero(weight != 0)
    # one integer key per point, compressed after each type so the product cannot overflow
    key = np.unique(codes[present], return_inverse=True)[1].astype(np.int64)
    for m in merged:
        state = _state(m)[present]  # row ≥ 0, -1 covered before, -2 out of reach
        key = np.unique(key * (m.n_rows + 2) + (state + 2), return_inverse=True)[1]
        key = key.astype(np.int64)
    # number the classes in order of their first point, as reduce_type numbers merged rows
    first = np.unique(key, return_index=True)[1]
    n_classes = len(first)
    by_first = np.argsort(first)
    renumber = np.empty(n_classes, dtype=np.int64)
    renumber[by_first] = np.arange(n_classes)
    key = renumber[key]
    first_point = present[first[by_first]]
    demand_class = np.full(n_demand, -1, dtype=np.int32)
    demand_class[present] = key
    rows, covered, reach = [], [], []
    for m in merged:
        state = _state(m)[first_point]
        rows.append(np.where(state >= 0, state, -1).astype(np.int64))
        covered.append(state == -1)
        reach.append(_take_rows(m.reach, rows[-1]))
    return DemandClasses(
        weight=np.bincount(key, weights=weight[present], minlength=n_classes),
        region=codes[first_point],
        reach=tuple(reach),
        covered_before=tuple(covered),
        rows=tuple(rows),
        merged=tuple(merged),
        demand_class=demand_class,
    )


@dataclass(frozen=True)
class _RowSet:
    """CSR rows with their two 64-bit keys and region codes."""

    indptr: np.ndarray  # int64
    indices: np.ndarray  # int32
    region: np.ndarray  # int64
    key_a: np.ndarray  # uint64
    key_b: np.ndarray  # uint64

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def empty(cls) -> _RowSet:
        return cls(
            indptr=np.zeros(1, dtype=np.int64),
            indices=np.zeros(0, dtype=np.int32),
            region=np.zeros(0, dtype=np.int64),
            key_a=np.zeros(0, dtype=np.uint64),
            key_b=np.zeros(0, dtype=np.uint64),
        )

    @classmethod
    def from_csr(
        cls, block: sp.csr_matrix, region: np.ndarray, site_keys: tuple[np.ndarray, np.ndarray]
    ) -> _RowSet:
        indptr = block.indptr.astype(np.int64)
        indices = block.indices.astype(np.int32)
        region = np.asarray(region, dtype=np.int64)
        keys = []
        for table, salt in zip(site_keys, (1, 2), strict=True):
            total = np.zeros(len(indices) + 1, dtype=np.uint64)
            np.cumsum(table[indices], out=total[1:])  # wraps mod 2**64, as intended
            keys.append(total[indptr[1:]] - total[indptr[:-1]] + _mix(region, salt))
        return cls(indptr, indices, region, keys[0], keys[1])

    def take(self, rows: np.ndarray) -> _RowSet:
        indptr, indices = _gather(self.indptr, self.indices, rows)
        return _RowSet(indptr, indices, self.region[rows], self.key_a[rows], self.key_b[rows])

    def concat(self, other: _RowSet) -> _RowSet:
        return _RowSet(
            indptr=np.concatenate([self.indptr, other.indptr[1:] + self.indptr[-1]]),
            indices=np.concatenate([self.indices, other.indices]),
            region=np.concatenate([self.region, other.region]),
            key_a=np.concatenate([self.key_a, other.key_a]),
            key_b=np.concatenate([self.key_b, other.key_b]),
        )

    def absorb(self, distinct: _RowSet) -> tuple[_RowSet, np.ndarray]:
        """This (distinct) set grown by the new ones of ``distinct``, and their row numbers."""
        combined = self.concat(distinct)
        group, firsts = _group_rows(combined)
        # rows already here are distinct and come first, so they keep their numbers
        grown = combined.take(firsts) if len(firsts) > self.n_rows else self
        return grown, group[self.n_rows :]

    def to_csr(self, n_sites: int) -> sp.csr_matrix:
        matrix = sp.csr_matrix(
            (np.ones(len(self.indices), dtype=bool), self.indices, self.indptr),
            shape=(self.n_rows, n_sites),
        )
        matrix.has_sorted_indices = True
        return matrix


def _group_rows(rows: _RowSet) -> tuple[np.ndarray, np.ndarray]:
    """Group identical rows (same sites, same region): (group of each row, first row of each).

    Groups are numbered in order of their first row. Rows are grouped by their two keys and
    then checked element by element against their group's first row; a group whose rows differ
    (a key collision) is split exactly.
    """
    n = rows.n_rows
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.lexsort((rows.key_b, rows.key_a))  # stable: ties stay in row order
    key_a, key_b = rows.key_a[order], rows.key_b[order]
    starts = np.concatenate([[True], (key_a[1:] != key_a[:-1]) | (key_b[1:] != key_b[:-1])])
    run = np.cumsum(starts) - 1
    first = np.empty(n, dtype=np.int64)
    first[order] = order[starts][run]
    others = np.flatnonzero(first != np.arange(n))
    differ = others[~_rows_equal(rows, others, first[others])]
    if len(differ):
        first = _split_collisions(rows, first, np.unique(first[differ]))
    firsts = np.flatnonzero(first == np.arange(n))
    number = np.full(n, -1, dtype=np.int64)
    number[firsts] = np.arange(len(firsts))
    return number[first], firsts


def _rows_equal(rows: _RowSet, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise: is row ``a[k]`` identical to row ``b[k]`` (sites and region)?"""
    length_a = rows.indptr[a + 1] - rows.indptr[a]
    length_b = rows.indptr[b + 1] - rows.indptr[b]
    equal = (length_a == length_b) & (rows.region[a] == rows.region[b])
    check = np.flatnonzero(equal)
    lengths = length_a[check]
    offset = np.repeat(np.cumsum(lengths) - lengths, lengths)
    position = np.arange(int(lengths.sum())) - offset
    left = rows.indices[np.repeat(rows.indptr[a[check]], lengths) + position]
    right = rows.indices[np.repeat(rows.indptr[b[check]], lengths) + position]
    mismatches = np.bincount(
        np.repeat(np.arange(len(check)), lengths), weights=left != right, minlength=len(check)
    )
    equal[check[mismatches > 0]] = False
    return equal


def _split_collisions(rows: _RowSet, first: np.ndarray, colliding: np.ndarray) -> np.ndarray:
    """Regroup the rows of groups whose keys collided, comparing rows exactly."""
    first = first.copy()
    seen: dict[bytes, int] = {}
    for row in np.flatnonzero(np.isin(first, colliding)):  # in row order: firsts come first
        sites = rows.indices[rows.indptr[row] : rows.indptr[row + 1]]
        key = sites.tobytes() + b"r" + rows.region[row].tobytes()
        first[row] = seen.setdefault(key, int(row))
    return first


def _site_keys(n_sites: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(_KEY_SEED)
    high = np.iinfo(np.uint64).max
    return (
        rng.integers(0, high, size=n_sites, dtype=np.uint64, endpoint=True),
        rng.integers(0, high, size=n_sites, dtype=np.uint64, endpoint=True),
    )


def _mix(values: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of integer codes: a well-spread 64-bit word per region code."""
    z = values.astype(np.uint64) + np.uint64(salt * _GOLDEN % 2**64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


# --------------------------------------------------------------------------- helpers


def _per_point(values: object, n: int, name: str, dtype: type) -> np.ndarray:
    array: np.ndarray = np.asarray(values, dtype=dtype)
    if array.shape != (n,):
        raise ValueError(f"{name} has shape {array.shape}; expected one value per point ({n},)")
    return array


def _state(m: MergedDemand) -> np.ndarray:
    """Per point: merged row (≥ 0), -1 covered before, -2 neither (no row: out of reach)."""
    state = m.demand_rows.astype(np.int64)
    state[(state < 0) & m.covered_before] = -1
    state[(state < 0) & ~m.covered_before] = -2
    return state


def _gather(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """indptr and indices of the given rows of a CSR structure, in that order."""
    lengths = indptr[rows + 1] - indptr[rows]
    new_indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_indptr[1:])
    offset = np.repeat(indptr[rows] - new_indptr[:-1], lengths)
    return new_indptr, indices[np.arange(int(new_indptr[-1])) + offset]


def _take_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """Rows of ``matrix`` in the given order; -1 gives an empty row."""
    if matrix.shape[0] == 0:
        return sp.csr_matrix((len(rows), matrix.shape[1]), dtype=bool)
    has = rows >= 0
    lengths = np.diff(matrix.indptr)
    source = np.where(has, rows, 0)
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.where(has, lengths[source], 0), out=indptr[1:])
    _, indices = _gather(matrix.indptr.astype(np.int64), matrix.indices, source[has])
    result = sp.csr_matrix(
        (np.ones(len(indices), dtype=bool), indices, indptr), shape=(len(rows), matrix.shape[1])
    )
    result.has_sorted_indices = matrix.has_sorted_indices
    return result
