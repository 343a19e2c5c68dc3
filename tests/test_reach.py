"""Reach matrices equal a brute-force distance check; boundaries are inclusive."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from carecheck.coverage import covered_by, reach_matrix


def brute(demand_xy, site_xy, reach):
    d = np.sqrt(((demand_xy[:, None, :] - site_xy[None, :, :]) ** 2).sum(axis=2))
    return d <= reach[None, :]


def test_random_points_mixed_radii_equal_brute_force():
    rng = np.random.default_rng(7)
    demand = rng.uniform(0, 10_000, (2_000, 2)).round()
    sites = rng.uniform(0, 10_000, (150, 2)).round()
    reach = rng.choice([500.0, 1200.0, 3000.0], 150)
    matrix = reach_matrix(demand, sites, reach)
    assert sp.issparse(matrix) and matrix.dtype == bool
    assert np.array_equal(matrix.toarray(), brute(demand, sites, reach))


def test_boundary_and_coincident_points():
    demand = np.array([[0.0, 0.0], [300.0, 0.0], [300.0, 400.0], [0.0, 500.0001]])
    sites = np.array([[0.0, 0.0]])
    matrix = reach_matrix(demand, sites, 500.0).toarray().ravel()
    # d = 0 (same point), 300, 500 exactly (3-4-5), and just beyond 500
    assert matrix.tolist() == [True, True, True, False]


def test_empty_inputs():
    assert reach_matrix(np.empty((0, 2)), np.ones((3, 2)), 1.0).shape == (0, 3)
    empty = reach_matrix(np.ones((4, 2)), np.empty((0, 2)), 1.0)
    assert empty.shape == (4, 0)
    assert covered_by(empty).tolist() == [False] * 4


def test_covered_by_subset_of_sites():
    reach = sp.csr_matrix(np.array([[1, 0], [0, 1], [0, 0]], dtype=bool))
    assert covered_by(reach).tolist() == [True, True, False]
    assert covered_by(reach, np.array([1])).tolist() == [False, True, False]
