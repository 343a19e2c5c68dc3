"""The p-median objective: hand-computed cases, brute force, reductions and OR-Library optima.

Every solve is checked against an independent recomputation: the cost of the returned sites
from the raw distance matrix (``brute_cost``), and on small instances against the best of all
p-subsets (``brute_optimum``).
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecheck.errors import DataError
from carecheck.pmedian import (
    assignment_cost,
    pmedian_heuristic,
    pmedian_milp,
    solve_pmedian,
    unreachable_demand,
)
from carecheck.solve import SolverOptions, solve_milp

ROOT = Path(__file__).resolve().parents[1]
ORLIB = Path(__file__).resolve().parents[2] / "shared" / "benchdata" / "orlib-pmed"
SOLVERS = ["cbc", "highs"]
INF = np.inf


def brute_cost(distance: np.ndarray, weight: np.ndarray, sites, max_distance=None) -> float:
    """Σ w_i min_j d_ij from the dense matrix; inf when a demand has no open site in reach."""
    nearest = np.asarray(distance, float)[:, list(sites)].min(axis=1)
    limit = INF if max_distance is None else max_distance
    if np.any(~np.isfinite(nearest) | (nearest > limit)):
        return INF
    return float(weight @ nearest)


def brute_optimum(distance: np.ndarray, weight: np.ndarray, p: int, max_distance=None) -> float:
    """The best cost over all p-subsets of sites (inf when none is feasible)."""
    return min(
        brute_cost(distance, weight, subset, max_distance)
        for subset in itertools.combinations(range(distance.shape[1]), p)
    )


def check(result, distance, weight, p, max_distance=None) -> None:
    """The result's sites, objective and bound agree with the raw distances."""
    assert result.status == "optimal", result
    assert len(result.sites) == p == len(set(result.sites.tolist()))
    assert result.objective == pytest.approx(
        brute_cost(distance, weight, result.sites, max_distance)
    )
    assert result.bound <= result.objective + 1e-6
    assert result.gap == pytest.approx(0.0, abs=1e-9)


# --------------------------------------------------------------------------- by hand

# Points on a line. Demand A(0) w1, B(2) w2, C(6) w1, D(10) w3; sites s0(1), s1(5), s2(9).
LINE = np.array(
    [
        [1.0, 5.0, 9.0],  # A
        [1.0, 3.0, 7.0],  # B
        [5.0, 1.0, 3.0],  # C
        [9.0, 5.0, 1.0],  # D
    ]
)
LINE_WEIGHT = np.array([1.0, 2.0, 1.0, 3.0])


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("heuristic", [True, False])
def test_line_by_hand(solver, heuristic):
    # p = 1: s0 costs 1 + 2 + 5 + 27 = 35, s1 costs 5 + 6 + 1 + 15 = 27, s2 costs
    #        9 + 14 + 3 + 3 = 29, so s1 with 27.
    # p = 2: {s0, s1} 1 + 2 + 1 + 15 = 19, {s0, s2} 1 + 2 + 3 + 3 = 9, {s1, s2} 5 + 6 + 1 + 3
    #        = 15, so {s0, s2} with 9.
    # p = 3: every demand at its nearest site, 1 + 2 + 1 + 3 = 7.
    options = SolverOptions(name=solver)
    for p, sites, cost in [(1, [1], 27), (2, [0, 2], 9), (3, [0, 1, 2], 7)]:
        result = solve_pmedian(LINE, LINE_WEIGHT, p, options=options, heuristic=heuristic)
        check(result, LINE, LINE_WEIGHT, p)
        assert result.sites.tolist() == sites
        assert result.objective == cost


@pytest.mark.parametrize("solver", SOLVERS)
def test_line_max_distance(solver):
    # Within 4: p = 2 forces {s0, s2} (A1 B1 C3 D1), still 9; {s0, s1} leaves D at 5.
    # p = 1 is infeasible: s0 leaves D at 9, s1 leaves A at 5, s2 leaves A at 9.
    options = SolverOptions(name=solver)
    result = solve_pmedian(LINE, LINE_WEIGHT, 2, options=options, max_distance=4)
    check(result, LINE, LINE_WEIGHT, 2, max_distance=4)
    assert result.sites.tolist() == [0, 2]
    for heuristic in (True, False):
        result = solve_pmedian(
            LINE, LINE_WEIGHT, 1, options=options, max_distance=4, heuristic=heuristic
        )
        assert result.status == "infeasible"
        assert result.objective is None and len(result.sites) == 0


@pytest.mark.parametrize("solver", SOLVERS)
def test_unreachable_demand_is_infeasible(solver):
    # E at 20 is 11 from the nearest site (s2), beyond a maximum distance of 4.
    distance = np.vstack([LINE, [19.0, 15.0, 11.0]])
    weight = np.append(LINE_WEIGHT, 1.0)
    result = solve_pmedian(distance, weight, 3, options=SolverOptions(name=solver), max_distance=4)
    assert result.status == "infeasible"
    assert result.unreachable.tolist() == [4]
    assert unreachable_demand(distance, max_distance=4).tolist() == [4]
    # the MILP alone says so too: an empty row that needs ≥ 1
    milp = pmedian_milp(distance, weight, 3, max_distance=4).milp
    assert solve_milp(milp, SolverOptions(name=solver)).status == "infeasible"
    # out of reach as inf: the same
    distance[4] = INF
    assert solve_pmedian(distance, weight, 3).unreachable.tolist() == [4]


def test_line_model_value_matches_by_hand():
    # the MILP itself (no heuristic, no fixing) for p = 2: −9 as a maximisation
    model = pmedian_milp(LINE, LINE_WEIGHT, 2)
    outcome = solve_milp(model.milp, SolverOptions(name="highs"))
    assert outcome.status == "optimal"
    assert -outcome.objective == pytest.approx(9)
    assert model.sites(outcome.values).tolist() == [0, 2]


# --------------------------------------------------------------------------- brute force


def random_instance(seed: int):
    """A small instance with ties, out-of-reach pairs, zero weights and sometimes a limit."""
    rng = np.random.default_rng(seed)
    n_demand, n_sites = int(rng.integers(1, 9)), int(rng.integers(1, 8))
    p = int(rng.integers(1, n_sites + 1))
    distance = rng.integers(0, 12, size=(n_demand, n_sites)).astype(float)
    if seed % 3 == 0:
        distance[rng.random(distance.shape) < 0.25] = INF
    weight = rng.integers(0, 5, size=n_demand).astype(float)
    if seed % 4 == 0:
        weight = weight + rng.random(n_demand)  # non-integer costs
    max_distance = float(rng.integers(2, 12)) if seed % 5 == 0 else None
    return distance, weight, p, max_distance


@pytest.mark.parametrize("solver", SOLVERS)
def test_brute_force_random(solver):
    options = SolverOptions(name=solver)
    paths = set()
    for seed in range(40):
        distance, weight, p, max_distance = random_instance(seed)
        best = brute_optimum(distance, weight, p, max_distance)
        result = solve_pmedian(distance, weight, p, options=options, max_distance=max_distance)
        if not np.isfinite(best):
            assert result.status == "infeasible", seed
            continue
        check(result, distance, weight, p, max_distance)
        assert result.objective == pytest.approx(best), seed
        paths.add("lp proof" if result.size is None else "milp")
    assert paths == {"lp proof", "milp"}


@pytest.mark.parametrize("solver", SOLVERS)
def test_milp_after_fixing_finds_better_plans(solver):
    # A bad start and no heuristic: the LP bound cannot prove the start optimal, so the
    # fixed MILP must find the optimum.
    options = SolverOptions(name=solver)
    improved = 0
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        distance = rng.integers(1, 30, size=(12, 8)).astype(float)
        weight = rng.integers(1, 6, size=12).astype(float)
        p = 3
        worst = max(
            itertools.combinations(range(8), p),
            key=lambda s: brute_cost(distance, weight, s),
        )
        result = solve_pmedian(
            distance, weight, p, options=options, start=np.array(worst), heuristic=False
        )
        check(result, distance, weight, p)
        assert result.objective == pytest.approx(brute_optimum(distance, weight, p))
        assert result.heuristic_objective == pytest.approx(brute_cost(distance, weight, worst))
        improved += result.objective < result.heuristic_objective and result.size is not None
    assert improved >= 6


@pytest.mark.parametrize("solver", SOLVERS)
def test_sparse_input_matches_dense(solver):
    options = SolverOptions(name=solver)
    for seed in range(0, 30, 3):
        distance, weight, p, max_distance = random_instance(seed)
        rows, cols = np.nonzero(np.isfinite(distance))
        sparse = sp.csr_matrix(
            (distance[rows, cols], (rows, cols)), shape=distance.shape
        )  # zero distances stay stored: an absent entry means out of reach
        dense_result = solve_pmedian(
            distance, weight, p, options=options, max_distance=max_distance
        )
        sparse_result = solve_pmedian(sparse, weight, p, options=options, max_distance=max_distance)
        assert sparse_result.status == dense_result.status
        if dense_result.status == "optimal":
            assert sparse_result.objective == pytest.approx(dense_result.objective)


# --------------------------------------------------------------------------- reductions


def milp_optimum(distance, weight, p, *, max_distance=None, reduce=True, cap=None):
    """Optimal cost of the bare MILP (HiGHS), or None when infeasible."""
    model = pmedian_milp(distance, weight, p, max_distance=max_distance, reduce=reduce, cap=cap)
    outcome = solve_milp(model.milp, SolverOptions(name="highs"))
    if outcome.status == "infeasible":
        return None
    assert outcome.status == "optimal"
    return -outcome.objective


instances = st.integers(min_value=0, max_value=10_000).map(random_instance)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance=instances)
def test_reductions_keep_the_optimum(instance):
    distance, weight, p, max_distance = instance
    plain = milp_optimum(distance, weight, p, max_distance=max_distance, reduce=False)
    reduced = milp_optimum(distance, weight, p, max_distance=max_distance)
    best = brute_optimum(distance, weight, p, max_distance)
    if not np.isfinite(best):
        assert plain is None and reduced is None
        return
    assert plain == pytest.approx(best)
    assert reduced == pytest.approx(best)
    full = solve_pmedian(
        distance, weight, p, max_distance=max_distance, options=SolverOptions("highs")
    )
    bare = solve_pmedian(
        distance,
        weight,
        p,
        max_distance=max_distance,
        options=SolverOptions("highs"),
        reduce=False,
        heuristic=False,
    )
    assert full.objective == pytest.approx(best) and bare.objective == pytest.approx(best)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance=instances, cap=st.floats(min_value=0, max_value=12))
def test_capped_model_is_a_relaxation(instance, cap):
    distance, weight, p, max_distance = instance
    best = brute_optimum(distance, weight, p, max_distance)
    capped = milp_optimum(distance, weight, p, max_distance=max_distance, cap=cap)
    if not np.isfinite(best):
        return
    assert capped is not None and capped <= best + 1e-6
    # and exact once the cap covers every distance
    assert milp_optimum(distance, weight, p, max_distance=max_distance, cap=INF) == (
        pytest.approx(best)
    )


def test_merging_shrinks_the_model():
    # ten copies of one demand share every level
    distance = np.tile(LINE[:1], (10, 1))
    plain = pmedian_milp(distance, np.ones(10), 1, reduce=False).size
    merged = pmedian_milp(distance, np.ones(10), 1).size
    assert plain.z_variables == 20 and merged.z_variables == 2
    assert merged.levels == plain.levels == 20


def test_count_truncation():
    # p = 3 of 3 sites: every level's set has ≥ m − p + 1 = 1 site, so no z is needed
    size = pmedian_milp(LINE, LINE_WEIGHT, 3).size
    assert size.z_variables == 0


def test_heuristic_is_a_local_optimum():
    rng = np.random.default_rng(7)
    distance = rng.random((30, 12))
    weight = rng.random(30)
    sites = pmedian_heuristic(distance, weight, 4)
    cost = brute_cost(distance, weight, sites)
    for out, into in itertools.product(sites, sorted(set(range(12)) - set(sites.tolist()))):
        swapped = [s for s in sites if s != out] + [into]
        assert brute_cost(distance, weight, swapped) >= cost - 1e-9


def test_assignment_cost_sparse_and_dense_agree():
    distance = np.array([[0.0, INF], [3.0, 1.0]])
    cost, nearest = assignment_cost(distance, np.array([2.0, 1.0]), np.array([1]))
    assert cost == INF and nearest.tolist() == [INF, 1.0]
    sparse = sp.csr_matrix(([0.0, 3.0, 1.0], ([0, 1, 1], [0, 0, 1])), shape=(2, 2))
    cost, nearest = assignment_cost(sparse, np.array([2.0, 1.0]), np.array([0]))
    assert cost == 3.0 and nearest.tolist() == [0.0, 3.0]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"distance": np.ones(3)}, "2-D"),
        ({"weight": np.ones(3)}, r"weight has shape \(3,\), expected \(4,\)"),
        ({"weight": np.array([1.0, -1.0, 1.0, 1.0])}, r"demand rows \[1\]"),
        ({"distance": -LINE}, "distances must be ≥ 0"),
        ({"distance": np.where(LINE > 4, np.nan, LINE)}, "NaN"),
        ({"p": 0}, r"p must be an integer from 1 to the number of sites \(3\)"),
        ({"p": 4}, "got 4"),
        ({"p": 1.5}, "got 1.5"),
        ({"max_distance": -1.0}, "max_distance must be ≥ 0"),
        ({"start": np.array([0, 0])}, "p = 2 distinct site indices from 0 to 2"),
        ({"start": np.array([0, 5])}, "got \\[0, 5\\]"),
    ],
)
def test_errors(kwargs, message):
    arguments = {"distance": LINE, "weight": LINE_WEIGHT, "p": 2, **kwargs}
    with pytest.raises(DataError, match=message):
        solve_pmedian(
            arguments.pop("distance"), arguments.pop("weight"), arguments.pop("p"), **arguments
        )


def test_errors_are_collected():
    with pytest.raises(DataError) as caught:
        pmedian_milp(-LINE, np.ones(2), 9)
    assert len(caught.value.problems) == 3


# --------------------------------------------------------------------------- OR-Library


def load_benchmark_module():
    """benchmarks/orlib_pmed.py, whose reader (last listed cost wins) the tests share."""
    path = ROOT / "benchmarks" / "orlib_pmed.py"
    spec = importlib.util.spec_from_file_location("orlib_pmed", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("orlib_pmed", module)
    spec.loader.exec_module(module)
    return module


def test_orlib_reader_last_listed_cost_wins(tmp_path):
    # 1–2 is listed twice (10, then 40): the last wins, so 1→2 goes round by 3 (5 + 6 = 11)
    path = tmp_path / "tiny.txt"
    path.write_text(" 3 4 1\n 1 2 10\n 2 3 6\n 1 3 5\n 2 1 40\n", encoding="utf-8")
    distance, p = load_benchmark_module().orlib_pmed_distances(path)
    assert p == 1
    assert distance.tolist() == [[0, 11, 5], [11, 0, 6], [5, 6, 0]]


needs_orlib = pytest.mark.skipif(not ORLIB.exists(), reason=f"benchmark data absent: {ORLIB}")


@needs_orlib
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("instance", ["pmed1", "pmed2", "pmed3", "pmed4", "pmed5", "pmed7"])
def test_orlib_optima(instance, solver):
    optima = pd.read_csv(ORLIB / "optima.csv").set_index("instance")
    distance, p = load_benchmark_module().orlib_pmed_distances(ORLIB / f"{instance}.txt")
    n = len(distance)
    assert (n, p) == (optima.loc[instance, "n"], optima.loc[instance, "p"])
    result = solve_pmedian(
        distance, np.ones(n), p, options=SolverOptions(name=solver, time_limit_s=60)
    )
    check(result, distance, np.ones(n), p)
    assert result.objective == optima.loc[instance, "optimal_value"]


@needs_orlib
def test_orlib_pmed1_without_fixing():
    # the plain reduced MILP (no heuristic, no LP bound) reaches the optimum as well
    distance, p = load_benchmark_module().orlib_pmed_distances(ORLIB / "pmed1.txt")
    result = solve_pmedian(
        distance, np.ones(len(distance)), p, options=SolverOptions("highs"), heuristic=False
    )
    check(result, distance, np.ones(len(distance)), p)
    assert result.objective == 5819
    assert result.lp_bound is None and result.size is not None


def test_options_time_limit_is_respected_in_kind():
    # a time limit too short for a proof still returns a plan, never silently "optimal"
    rng = np.random.default_rng(3)
    distance = rng.integers(1, 100, size=(60, 60)).astype(float)
    result = solve_pmedian(
        distance,
        np.ones(60),
        6,
        options=replace(SolverOptions("highs"), time_limit_s=1e-3),
    )
    assert result.status in ("optimal", "time_limit")
    assert result.objective == pytest.approx(brute_cost(distance, np.ones(60), result.sites))
    if result.status == "time_limit":
        assert result.bound is None or result.bound <= result.objective
