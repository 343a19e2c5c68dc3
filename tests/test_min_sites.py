"""min_sites: the fewest sites (or least cost) covering a target share; set covering optima."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from benchmarks.orlib_scp import read_scp

from carecheck import InfeasibleError, run_scenario
from carecheck.model import Bounds, Problem, TypeProblem, build_milp, reduce_problem
from carecheck.solve import SolverOptions, solve_milp

from .test_model_cases import DEMAND, S1, S2, S3, site, solve

SCP = Path(__file__).resolve().parents[2] / "shared" / "benchdata" / "orlib-scp"


def min_sites(target, **extra):
    return {"kind": "min_sites", "target": {"home": target}, **extra}


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_full_cover_needs_three(make_case, solver):
    # A only by s1, C only by s2, D only by s3: all three
    path = make_case(
        DEMAND, {"home": {"radius_m": 600, "candidates": [S1, S2, S3]}}, objective=min_sites(1.0)
    )
    result, opened = solve(path, solver)
    assert (result.objective, opened["home"]) == (3, ["s1", "s2", "s3"])
    assert result.status == "optimal"


def test_half_cover_needs_two(make_case):
    # ≥ 9 of 18: no single site (8, 7, 6); s1 + s3 = 14 or s2 + s3 = 13 or s1 + s2 = 12: 2 sites
    path = make_case(
        DEMAND, {"home": {"radius_m": 600, "candidates": [S1, S2, S3]}}, objective=min_sites(0.5)
    )
    result, opened = solve(path)
    assert result.objective == 2 and len(opened["home"]) == 2


def test_least_cost(make_case):
    # costs s1 5, s2 3, s3 4; ≥ 9 covered: s1+s3 (9) 14, s2+s3 (7) 13, s1+s2 (8) 12 → 7
    cands = [site("s1", 500, cost=5), site("s2", 1500, cost=3), site("s3", 5000, cost=4)]
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "candidates": cands}},
        objective=min_sites(0.5, minimize="cost"),
    )
    result, opened = solve(path)
    assert (result.objective, opened["home"]) == (7, ["s2", "s3"])


def test_existing_coverage_counts_towards_the_target(make_case):
    # an existing home covers A (5); ≥ 9 needs 4 more: s2 (+7) or s3 (+6) alone
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "candidates": [S1, S2, S3], "existing": [site("e", 0)]}},
        objective=min_sites(0.5),
    )
    result, _ = solve(path)
    assert result.objective == 1


def test_target_in_every_region(make_case):
    # north (A 5, B 3) ≥ 4 needs s1; south (C 4, D 6) ≥ 5 needs s3 → 2 sites: s1, s3
    path = make_case(
        DEMAND,
        {"home": {"radius_m": 600, "candidates": [S1, S2, S3]}},
        objective=min_sites(0.5, by_region=True),
    )
    result, opened = solve(path)
    assert (result.objective, opened["home"]) == (2, ["s1", "s3"])


def test_unreachable_demand_makes_full_cover_infeasible(make_case):
    demand = [*DEMAND, {"id": "E", "x": 9000, "y": 0, "w": 1, "region": "south"}]
    path = make_case(
        demand, {"home": {"radius_m": 600, "candidates": [S1, S2, S3]}}, objective=min_sites(1.0)
    )
    with pytest.raises(InfeasibleError) as info:
        run_scenario(path, write=False)
    text = "\n".join(info.value.diagnosis)
    assert "objective.target.home (100%)" in text
    assert "every candidate open would cover 94.7% of the elderly" in text


def scp_problem(matrix: sp.csr_matrix, cost: np.ndarray) -> Problem:
    m, n = matrix.shape
    home = TypeProblem(
        name="site",
        reach=matrix,
        covered_before=np.zeros(m, bool),
        cost=cost,
        tier=np.full(n, -1),
        region=np.full(n, -1),
        count=Bounds(0, None),
        target=1.0,
    )
    return Problem(weight=np.ones(m), types=(home,), minimize="cost")


@pytest.mark.skipif(not SCP.exists(), reason="../shared/benchdata/orlib-scp not present")
@pytest.mark.parametrize("name,optimum", [("scp41", 429), ("scp42", 512), ("scp43", 516)])
def test_orlib_set_covering_optima(name, optimum):
    matrix, cost = read_scp(SCP / f"{name}.txt")
    reduced = reduce_problem(scp_problem(matrix, cost))
    outcome = solve_milp(build_milp(reduced), SolverOptions(name="cbc"))
    assert outcome.status == "optimal"
    assert -outcome.objective == pytest.approx(optimum)
    chosen = reduced.types[0].candidates[outcome.values[: len(reduced.types[0].candidates)] > 0.5]
    # brute-force check of the answer: every row covered, and the cost adds up
    assert (np.asarray(matrix[:, chosen].sum(axis=1)).ravel() > 0).all()
    assert cost[chosen].sum() == pytest.approx(optimum)
