"""Sparse demand × site reach matrices from projected coordinates (cKDTree, never dense).

Demand ``i`` is reached by site ``j`` when their straight-line distance is ≤ the site's reach.
Sites are grouped by reach (one group per tier), and each group is one KD-tree range query, so
the work grows with the number of reached pairs, not with demand × sites.
"""

from __future__ import annotations

from itertools import chain

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree


def reach_matrix(
    demand_xy: np.ndarray,
    site_xy: np.ndarray,
    site_reach: np.ndarray | float,
    *,
    demand_tree: cKDTree | None = None,
) -> sp.csr_matrix:
    """Boolean CSR matrix (n_demand × n_sites): True where distance ≤ the site's reach.

    Parameters
    ----------
    demand_xy, site_xy
        Projected coordinates in metres, shape (n, 2).
    site_reach
        Reach of each site in metres (or one value for all).
    demand_tree
        A prebuilt tree over ``demand_xy`` to reuse across calls.
    """
    n_demand, n_sites = len(demand_xy), len(site_xy)
    reach = np.broadcast_to(np.asarray(site_reach, dtype=float), (n_sites,))
    if n_demand == 0 or n_sites == 0:
        return sp.csr_matrix((n_demand, n_sites), dtype=bool)
    tree = demand_tree if demand_tree is not None else cKDTree(demand_xy)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for radius in np.unique(reach):
        members = np.flatnonzero(reach == radius)
        found = tree.query_ball_point(site_xy[members], r=radius, return_sorted=False)
        lengths = np.fromiter(map(len, found), dtype=np.int64, count=len(found))
        total = int(lengths.sum())
        if total == 0:
            continue
        rows.append(np.fromiter(chain.from_iterable(found), dtype=np.int64, count=total))
        cols.append(np.repeat(members, lengths))
    if not rows:
        return sp.csr_matrix((n_demand, n_sites), dtype=bool)
    row = np.concatenate(rows)
    col = np.concatenate(cols)
    data = np.ones(len(row), dtype=bool)
    return sp.csr_matrix((data, (row, col)), shape=(n_demand, n_sites), dtype=bool)


def covered_by(reach: sp.spmatrix, open_sites: np.ndarray | None = None) -> np.ndarray:
    """Boolean vector: demand reached by at least one of ``open_sites`` (all sites if None)."""
    matrix = sp.csc_matrix(reach)
    if open_sites is not None:
        matrix = matrix[:, np.asarray(open_sites)]
    return np.asarray(matrix.sum(axis=1)).ravel() > 0
