"""The swap search that gives plain covering models a starting plan, and MIP starts."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from carecheck.heuristic import _State, greedy, mip_start, plain_counts, swap_search
from carecheck.model import build_milp, problem_from_reach, reduce_problem
from carecheck.solve import SolverOptions, solve_milp


def instance(seed: int, n_rows: int = 30, n_cand: int = 12, density: float = 0.2):
    rng = np.random.default_rng(seed)
    reach = sp.csr_matrix(rng.random((n_rows, n_cand)) < density)
    weight = rng.integers(1, 50, n_rows).astype(float)
    return reach, weight


def covered(reach, weight, opened) -> float:
    """Brute force: weight of rows with an opened column."""
    return float(weight[reach.toarray()[:, list(opened)].any(axis=1)].sum())


def best_by_enumeration(reach, weight, p) -> float:
    return max(covered(reach, weight, s) for s in combinations(range(reach.shape[1]), p))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.integers(1, 5))
def test_every_swap_changes_coverage_by_what_best_swap_says(seed, p):
    reach, weight = instance(seed)
    state = _State(reach, weight)
    for j in greedy(reach, weight, p):
        state.open(int(j))
    while (move := state.best_swap()) is not None:
        k, j, change = move
        before = state.covered()
        state.close(k)
        state.open(j)
        assert state.covered() - before == pytest.approx(change)
        assert change > 0
    # at the local optimum no single swap improves (checked by brute force)
    opened = set(np.flatnonzero(state.opened).tolist())
    now = covered(reach, weight, opened)
    for k in opened:
        for j in set(range(reach.shape[1])) - opened:
            assert covered(reach, weight, (opened - {k}) | {j}) <= now + 1e-9


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.integers(1, 4))
def test_search_reports_the_true_coverage_of_its_plan_and_finds_small_optima(seed, p):
    reach, weight = instance(seed)
    found = swap_search(reach, weight, p, seconds=5.0, rounds=200, seed=1)
    assert len(found.opened) == p == len(set(found.opened.tolist()))
    assert found.covered == pytest.approx(covered(reach, weight, found.opened))
    # 12 candidates, p ≤ 4: 200 perturbation rounds find the optimum on these instances
    assert found.covered == pytest.approx(best_by_enumeration(reach, weight, p))


def test_search_is_repeatable_for_a_fixed_number_of_rounds():
    reach, weight = instance(7, n_rows=200, n_cand=60, density=0.05)
    a = swap_search(reach, weight, 6, seconds=60.0, rounds=50, seed=3)
    b = swap_search(reach, weight, 6, seconds=60.0, rounds=50, seed=3)
    assert a.opened.tolist() == b.opened.tolist() and a.covered == b.covered


def test_mip_start_is_feasible_and_solvers_keep_the_optimum():
    reach, weight = instance(11, n_rows=120, n_cand=40, density=0.08)
    reduced = reduce_problem(problem_from_reach(reach, weight, 5))
    milp = build_milp(reduced)
    values, value = mip_start(reduced, milp, seconds=2.0, rounds=20)
    activity = milp.matrix @ values
    assert np.all(activity >= milp.row_lower - 1e-9) and np.all(activity <= milp.row_upper + 1e-9)
    assert value == pytest.approx(float(milp.objective @ values) + milp.constant)
    plain = solve_milp(milp, SolverOptions(name="cbc"))
    for name in ("cbc", "highs"):
        started = solve_milp(milp, SolverOptions(name=name), start=values)
        assert started.status == "optimal"
        assert started.objective == pytest.approx(plain.objective)
    assert value <= plain.objective + 1e-9


def test_a_solve_from_a_start_is_never_below_it():
    reach, weight = instance(5, n_rows=60, n_cand=20, density=0.1)
    reduced = reduce_problem(problem_from_reach(reach, weight, 3))
    milp = build_milp(reduced)
    values, value = mip_start(reduced, milp, seconds=1.0, rounds=0)
    # a MILP solver asked to stop at once: whatever it returns, it is never below the start
    # and never called optimal unless proved
    for name in ("cbc", "highs"):
        outcome = solve_milp(milp, SolverOptions(name=name, time_limit_s=1e-3), start=values)
        assert outcome.values is not None and outcome.objective >= value - 1e-9


def test_not_plain_when_other_rows_tie_the_plan():
    reach, weight = instance(3)
    cost = np.ones(12)
    budgeted = reduce_problem(problem_from_reach(reach, weight, 3, cost=cost, budget=2.0))
    assert plain_counts(budgeted) is None
    assert mip_start(budgeted, build_milp(budgeted), seconds=1.0) is None
    assert plain_counts(reduce_problem(problem_from_reach(reach, weight, 3))) == [3]


def test_highs_options_reach_the_solver():
    reach, weight = instance(2)
    milp = build_milp(reduce_problem(problem_from_reach(reach, weight, 3)))
    plain = solve_milp(milp, SolverOptions(name="highs"))
    no_presolve = solve_milp(
        milp, SolverOptions(name="highs", highs_options=(("presolve", "off"),))
    )
    assert no_presolve.objective == pytest.approx(plain.objective)
    with pytest.raises(ValueError, match="no_such_option"):
        solve_milp(milp, SolverOptions(name="highs", highs_options=(("no_such_option", 1),)))
