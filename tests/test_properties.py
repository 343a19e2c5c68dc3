"""Property tests (Hypothesis, derandomised): reductions, solvers and monotonicity.

Random small instances are solved three ways — reduced model, unreduced model, and brute-force
enumeration of every subset of candidates — and must agree.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carecheck.coverage import reach_matrix
from carecheck.model import (
    Bounds,
    Problem,
    TypeProblem,
    at_most_counts,
    build_milp,
    identity_reduction,
    pad_counts,
    problem_from_reach,
    reduce_problem,
    selection_from_solution,
)
from carecheck.solve import SolverOptions, solve_milp
from carecheck.verify import TypePlan, verify_plan

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def problems(draw, *, max_candidates: int = 7, budgets: bool = True, tier_uppers: bool = False):
    """A random multi-type problem with every kind of constraint (each maybe absent).

    ``budgets=False``: never a budget; ``tier_uppers``: tier counts may have upper bounds too.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_demand = draw(st.integers(1, 12))
    n_regions = draw(st.integers(1, 3))
    weight = rng.integers(0, 20, n_demand).astype(float)
    region = rng.integers(0, n_regions, n_demand)
    n_types = draw(st.integers(1, 2))
    budget = float(rng.integers(3, 15)) if budgets and draw(st.booleans()) else None
    types = []
    for t in range(n_types):
        n_cand = draw(st.integers(1, max_candidates // n_types))
        density = draw(st.sampled_from([0.1, 0.3, 0.6]))
        reach = sp.csr_matrix(rng.random((n_demand, n_cand)) < density)
        if draw(st.booleans()):  # duplicate demand rows, to exercise merging
            reach = sp.vstack([reach, reach[: max(1, n_demand // 2)]]).tocsr()[:n_demand]
        covered_before = rng.random(n_demand) < draw(st.sampled_from([0.0, 0.3]))
        tier = rng.integers(0, 2, n_cand)
        lower = int(rng.integers(0, n_cand + 1))
        upper = int(rng.integers(lower, n_cand + 1))
        count = Bounds(lower, upper) if draw(st.booleans()) else Bounds(upper, upper)
        tier_counts = {0: Bounds(int(rng.integers(0, 2)), None)} if draw(st.booleans()) else {}
        if tier_uppers and draw(st.booleans()):
            low = int(rng.integers(0, 2))
            tier_counts = {k: Bounds(low, low + int(rng.integers(0, 3))) for k in (0, 1)}
        region_min_sites = (
            {r: int(rng.integers(0, 2)) for r in range(n_regions)} if draw(st.booleans()) else {}
        )
        region_min_coverage = (
            {int(rng.integers(0, n_regions)): float(rng.choice([0.2, 0.5, 0.8]))}
            if draw(st.booleans())
            else {}
        )
        beds = rng.integers(0, 4, n_cand).astype(float)
        linked = {}
        if draw(st.booleans()):  # linked tiers: some candidates count only with a referral
            needs = rng.random(n_cand) < 0.5
            referral = sp.csr_matrix((rng.random((n_cand, n_cand)) < 0.4) & needs[:, None])
            referral.setdiag(False)
            referral.eliminate_zeros()
            linked = {"needs_referral": needs, "referral": referral}
        min_beds = float(rng.integers(1, 6)) if draw(st.booleans()) else 0.0
        types.append(
            TypeProblem(
                name=f"t{t}",
                beds=beds,
                min_beds=min_beds,
                **linked,
                reach=reach,
                covered_before=covered_before,
                cost=rng.integers(0, 6, n_cand).astype(float),
                tier=tier,
                region=rng.integers(0, n_regions, n_cand),
                tier_names=("a", "b"),
                alpha=float(draw(st.sampled_from([1.0, 0.5, 2.0]))),
                count=count,
                tier_counts=tier_counts,
                region_min_sites=region_min_sites,
                region_min_coverage=region_min_coverage,
            )
        )
    return Problem(
        weight=weight,
        types=tuple(types),
        region=region,
        region_names=tuple(f"r{k}" for k in range(n_regions)),
        budget=budget,
    )


def brute_force(problem: Problem) -> float | None:
    """Best objective over every subset of candidates; None when none is feasible."""
    weight = problem.weight
    region = problem.demand_region()
    best = None
    per_type_options = []
    for tp in problem.types:
        options = []
        for mask in itertools.product([False, True], repeat=tp.n_candidates):
            chosen = np.flatnonzero(mask)
            if not _counts_ok(tp, chosen, region):
                continue
            covered = _covered(tp, chosen)
            if not _floors_ok(tp, covered, weight, region):
                continue
            options.append((tp.alpha * weight[covered].sum(), tp.cost[chosen].sum()))
        per_type_options.append(options)
    for combo in itertools.product(*per_type_options):
        cost = sum(c for _, c in combo)
        if problem.budget is not None and cost > problem.budget + 1e-9:
            continue
        value = sum(v for v, _ in combo)
        best = value if best is None else max(best, value)
    return best


def _covered(tp: TypeProblem, chosen: np.ndarray) -> np.ndarray:
    """Demand covered by the existing sites and the chosen ones that count (linked ones only
    with an opened site to refer to)."""
    counted = [
        j
        for j in chosen
        if tp.needs_referral is None
        or not tp.needs_referral[j]
        or tp.referral[j, chosen].toarray().any()
    ]
    return tp.covered_before | (np.asarray(tp.reach[:, counted].sum(axis=1)).ravel() > 0)


def _counts_ok(tp: TypeProblem, chosen: np.ndarray, region: np.ndarray) -> bool:
    def within(n: int, b: Bounds) -> bool:
        return n >= b.lower and (b.upper is None or n <= b.upper)

    if not within(len(chosen), tp.count):
        return False
    if tp.beds is not None and tp.beds[chosen].sum() < tp.min_beds:
        return False
    for tier, bounds in tp.tier_counts.items():
        if not within(int((tp.tier[chosen] == tier).sum()), bounds):
            return False
    return all(int((tp.region[chosen] == r).sum()) >= m for r, m in tp.region_min_sites.items())


def _floors_ok(tp, covered, weight, region) -> bool:
    for r, share in tp.region_min_coverage.items():
        total = weight[region == r].sum()
        if weight[(region == r) & covered].sum() < share * total - 1e-9:
            return False
    return True


def solve(problem: Problem, *, reduce: bool = True, solver: str = "cbc"):
    reduced = reduce_problem(problem) if reduce else identity_reduction(problem)
    outcome = solve_milp(build_milp(reduced), SolverOptions(name=solver))
    return reduced, outcome


@SETTINGS
@given(problems())
def test_reductions_keep_the_optimum_and_match_brute_force(problem):
    expected = brute_force(problem)
    _, reduced_outcome = solve(problem, reduce=True)
    _, plain_outcome = solve(problem, reduce=False)
    if expected is None:
        assert reduced_outcome.status == "infeasible"
        assert plain_outcome.status == "infeasible"
        return
    assert reduced_outcome.status == "optimal"
    assert plain_outcome.status == "optimal"
    assert (
        reduced_outcome.objective == np.float64(expected)
        or abs(reduced_outcome.objective - expected) < 1e-6
    )
    assert abs(plain_outcome.objective - expected) < 1e-6


@SETTINGS
@given(problems(max_candidates=6))
def test_cbc_and_highs_agree(problem):
    _, cbc = solve(problem, solver="cbc")
    _, highs = solve(problem, solver="highs")
    assert cbc.status == highs.status
    if cbc.status == "optimal":
        assert abs(cbc.objective - highs.objective) < 1e-6


@st.composite
def point_instances(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_demand = draw(st.integers(5, 60))
    n_sites = draw(st.integers(2, 12))
    demand_xy = rng.uniform(0, 5000, (n_demand, 2)).round(draw(st.sampled_from([0, 3])))
    site_xy = rng.uniform(0, 5000, (n_sites, 2)).round(0)
    weight = rng.lognormal(3, 1, n_demand).round()
    radius = float(draw(st.sampled_from([300, 700, 1200, 2000])))
    count = draw(st.integers(1, n_sites))
    return demand_xy, site_xy, weight, radius, count


def _solve_points(demand_xy, site_xy, weight, radius, count):
    reach = reach_matrix(demand_xy, site_xy, radius)
    tp = TypeProblem(
        name="home",
        reach=reach,
        covered_before=np.zeros(len(weight), bool),
        cost=np.zeros(len(site_xy)),
        tier=np.full(len(site_xy), -1),
        region=np.full(len(site_xy), -1),
        count=Bounds(count, count),
    )
    problem = Problem(weight=weight, types=(tp,))
    reduced, outcome = solve(problem)
    return reduced, outcome


@SETTINGS
@given(point_instances())
def test_verifier_agrees_with_every_solve(instance):
    demand_xy, site_xy, weight, radius, count = instance
    reduced, outcome = _solve_points(*instance)
    assert outcome.status == "optimal"
    opened = selection_from_solution(reduced, outcome.values)[0]
    ids = np.array([f"s{k}" for k in range(len(site_xy))], dtype=object)
    plan = TypePlan(
        name="home",
        candidate_ids=ids,
        candidate_xy=site_xy,
        candidate_reach=np.full(len(site_xy), radius),
        existing_ids=np.array([], dtype=object),
        existing_xy=np.empty((0, 2)),
        existing_reach=np.empty(0),
        selected_ids=list(ids[opened]),
        count=(count, count),
    )
    verification = verify_plan(
        demand_xy, weight, [plan], claimed={"objective": outcome.objective, "coverage": {}}
    )
    problems = [p for p in verification.problems if "missing from the result" not in p]
    assert problems == []
    assert abs(verification.summary["objective"] - outcome.objective) < 1e-6


@SETTINGS
@given(point_instances())
def test_coverage_never_falls_as_radius_or_count_grows(instance):
    demand_xy, site_xy, weight, radius, count = instance
    _, base = _solve_points(*instance)
    _, wider = _solve_points(demand_xy, site_xy, weight, radius * 1.5, count)
    assert wider.objective >= base.objective - 1e-9
    if count < len(site_xy):
        _, more = _solve_points(demand_xy, site_xy, weight, radius, count + 1)
        assert more.objective >= base.objective - 1e-9


def _plan_value(problem: Problem, opened: list[np.ndarray]) -> float | None:
    """A plan's objective by brute force, None when it breaks a constraint of ``problem``."""
    weight, region = problem.weight, problem.demand_region()
    value, cost = 0.0, 0.0
    for tp, chosen in zip(problem.types, opened, strict=True):
        if not _counts_ok(tp, chosen, region):
            return None
        covered = _covered(tp, chosen)
        if not _floors_ok(tp, covered, weight, region):
            return None
        value += tp.alpha * weight[covered].sum()
        cost += tp.cost[chosen].sum()
    if problem.budget is not None and cost > problem.budget + 1e-9:
        return None
    return value


@settings(SETTINGS, max_examples=200)
@given(problems(budgets=False, tier_uppers=True))
def test_counts_as_upper_bounds_then_padding_keep_the_optimum(problem):
    """Drop the counts' lower bounds, solve, pad (cheapest first): the brute-force optimum of
    the problem as asked, with every constraint kind but a budget (which the relaxation
    refuses)."""
    expected = brute_force(problem)
    relaxed = at_most_counts(problem)
    if relaxed is None:
        assert all(tp.count.lower == 0 for tp in problem.types)
        return
    assert all(tp.count.lower == 0 for tp in relaxed.types)
    assert [tp.count.upper for tp in relaxed.types] == [tp.count.upper for tp in problem.types]
    reduced, outcome = solve(relaxed)
    if outcome.status == "infeasible":
        assert expected is None  # a relaxation without a plan: none as asked either
        return
    assert outcome.status == "optimal"
    opened = pad_counts(problem, selection_from_solution(reduced, outcome.values))
    if expected is None:
        # no plan as asked: padding must fail (the tier upper bounds leave too few sites)
        assert opened is None or _plan_value(problem, opened) is None
        return
    assert opened is not None
    assert _plan_value(problem, opened) == pytest.approx(expected, abs=1e-6)
    assert outcome.objective == pytest.approx(expected, abs=1e-6)


def test_the_relaxation_is_refused_where_it_is_not_exact():
    reach = sp.csr_matrix(np.eye(3, dtype=bool))
    base = problem_from_reach(reach, np.array([5.0, 3.0, 1.0]), 2)
    assert at_most_counts(base) is not None
    assert at_most_counts(replace(base, budget=10.0)) is None  # padding may not fit
    assert at_most_counts(replace(base, minimize="count")) is None  # the count is the goal
    assert at_most_counts(replace(base, bed_types=("site",))) is None  # bed assignment
    negative = replace(base, types=(replace(base.types[0], alpha=-1.0),))
    assert at_most_counts(negative) is None
    at_most = replace(base, types=(replace(base.types[0], count=Bounds(0, 2)),))
    assert at_most_counts(at_most) is None  # nothing to drop


def test_padding_takes_the_cheapest_then_the_first_within_tier_room():
    # six candidates: 0 and 1 cover everyone; 2..5 add nothing
    reach = sp.csr_matrix(
        np.array([[1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]], dtype=bool), shape=(2, 6)
    )
    tp = TypeProblem(
        name="t",
        reach=reach,
        covered_before=np.zeros(2, dtype=bool),
        cost=np.array([9.0, 9.0, 4.0, 1.0, 4.0, 1.0]),
        tier=np.array([0, 0, 0, 1, 0, 1]),
        region=np.full(6, -1),
        tier_names=("town", "village"),
        count=Bounds(5, 5),
    )
    problem = Problem(weight=np.array([3.0, 2.0]), types=(tp,))
    relaxed = at_most_counts(problem)
    reduced, outcome = solve(relaxed)
    found = selection_from_solution(reduced, outcome.values)
    assert found[0].tolist() == [0, 1]  # the relaxed optimum opens only what covers
    # cheapest first (3, 5 at 1), then cost 4 by index (2 before 4)
    assert pad_counts(problem, found)[0].tolist() == [0, 1, 2, 3, 5]
    # villages full at one site: 3 (the first of the cheapest), then 2 and 4
    capped = replace(tp, tier_counts={1: Bounds(0, 1)})
    padded = pad_counts(replace(problem, types=(capped,)), found)
    assert padded[0].tolist() == [0, 1, 2, 3, 4]
    # villages allowed none and towns at most three: five sites cannot be opened
    tight = replace(tp, tier_counts={0: Bounds(0, 3), 1: Bounds(0, 0)})
    assert pad_counts(replace(problem, types=(tight,)), found) is None
