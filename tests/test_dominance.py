"""Reduction 4 (dominated candidates) on hand-made reach matrices."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import numpy as np
import pytest
import scipy.sparse as sp

from carecheck.model import (
    Bounds,
    build_milp,
    dominated_columns,
    problem_from_reach,
    reduce_problem,
    selection_from_solution,
)
from carecheck.solve import solve_milp

# rows × candidates. Candidate 1 reaches {0, 1} ⊂ candidate 0's {0, 1, 2}; candidate 3 has
# the same set as candidate 2 ({3, 4}); candidate 4 reaches {2, 5} (inside nobody's).
REACH = sp.csr_matrix(
    np.array(
        [
            [1, 1, 0, 0, 0],
            [1, 1, 0, 0, 0],
            [1, 0, 0, 0, 1],
            [0, 0, 1, 1, 0],
            [0, 0, 1, 1, 0],
            [0, 0, 0, 0, 1],
        ],
        dtype=bool,
    )
)
WEIGHT = np.array([5.0, 1.0, 2.0, 4.0, 3.0, 6.0])


def brute_force(reach, weight, p):
    dense = reach.toarray()
    return max(weight[dense[:, list(s)].any(axis=1)].sum() for s in combinations(range(5), p))


def test_dominated_columns_are_the_strict_subsets_and_later_equal_sets():
    assert dominated_columns(REACH).tolist() == [1, 3]


@pytest.mark.parametrize("p", [1, 2, 3])
def test_dropping_dominated_candidates_keeps_the_optimum(p):
    reduced = reduce_problem(problem_from_reach(REACH, WEIGHT, p))
    (rt,) = reduced.types
    assert rt.candidates.tolist() == [0, 2, 4]
    outcome = solve_milp(build_milp(reduced))
    # p = 1: site 0 (5 + 1 + 2) or site 4 (2 + 6) covers 8; p = 2: {2, 4} covers
    # 4 + 3 + 2 + 6 = 15 ({0, 4}: 14, {0, 2}: 15 too); p = 3: {0, 2, 4} covers all 21
    assert outcome.objective == pytest.approx({1: 8.0, 2: 15.0, 3: 21.0}[p])
    assert outcome.objective == pytest.approx(brute_force(REACH, WEIGHT, p))
    assert len(selection_from_solution(reduced, outcome.values)[0]) == p


def test_not_applied_when_too_few_would_remain_or_with_a_budget():
    # exactly 4 of 5 must open: only 3 would remain, so nothing is dropped
    problem = problem_from_reach(REACH, WEIGHT, 4)
    assert len(reduce_problem(problem).types[0].candidates) == 5
    assert solve_milp(build_milp(reduce_problem(problem))).objective == pytest.approx(21.0)
    # with a budget a dominated candidate may be the affordable one
    cost = np.array([10.0, 1.0, 1.0, 1.0, 10.0])
    priced = problem_from_reach(REACH, WEIGHT, 1, cost=cost, budget=2.0)
    assert 1 in reduce_problem(priced).types[0].candidates.tolist()
    assert solve_milp(build_milp(reduce_problem(priced))).objective == pytest.approx(7.0)


def test_not_applied_with_regional_minimum_sites():
    problem = problem_from_reach(REACH, WEIGHT, 2)
    (tp,) = problem.types
    regional = replace(
        problem,
        types=(
            replace(
                tp,
                region=np.array([0, 1, 0, 0, 0]),
                region_min_sites={1: 1},
                count=Bounds(2, 2),
            ),
        ),
        region_names=("a", "b"),
    )
    reduced = reduce_problem(regional)
    assert 1 in reduced.types[0].candidates.tolist()
    # candidate 1 must open: best partner is 4 → 5 + 1 + 2 + 6 = 14
    assert solve_milp(build_milp(reduced)).objective == pytest.approx(14.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blockwise_overlaps_find_the_same_columns_as_a_plain_subset_check(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    dense = rng.random((60, 40)) < 0.08
    dense[:, 7] = dense[:, 3]  # equal sets: the later one goes
    reach = sp.csr_matrix(dense)
    expected = [
        j
        for j in range(40)
        if dense[:, j].any()  # empty columns are reduction 3's, not this one's
        and any(
            k != j
            and not (dense[:, j] & ~dense[:, k]).any()
            and (dense[:, k].sum() > dense[:, j].sum() or k < j)
            for k in range(40)
        )
    ]
    assert dominated_columns(reach).tolist() == expected
    monkeypatch.setattr("carecheck.model._DOMINANCE_BLOCK", 3)  # many one- or two-column blocks
    assert dominated_columns(reach).tolist() == expected
