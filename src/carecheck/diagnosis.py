"""Why a scenario is infeasible: the constraint groups (and regions) whose relaxation makes it
feasible, with the numbers a planner needs to relax them."""

from __future__ import annotations

from itertools import combinations

import numpy as np

from carecheck.config import CountSpec, Scenario
from carecheck.coverage import covered_by
from carecheck.model import Milp, Problem, ReducedProblem
from carecheck.solve import SolverOptions, solve_milp


def _asked(spec: CountSpec) -> str:
    if spec.count is not None:
        return f"exactly {spec.count}"
    parts = []
    if spec.min_count is not None:
        parts.append(f"at least {spec.min_count}")
    if spec.max_count is not None:
        parts.append(f"at most {spec.max_count}")
    return " and ".join(parts) or "any number"


def _family_label(group: tuple, problem: Problem, scenario: Scenario) -> str:
    kind = group[0]
    if kind == "count":
        return f"facilities.{group[1]} count ({_asked(scenario.facilities[group[1]])})"
    if kind == "tier_count":
        tier = (scenario.facilities[group[1]].tiers or {})[group[2]]
        return f"facilities.{group[1]}.tiers.{group[2]} count ({_asked(tier)})"
    if kind == "budget":
        return f"constraints.budget ({scenario.constraints.budget:g})"
    if kind == "min_beds":
        return f"constraints.min_beds.{group[1]} ({scenario.constraints.min_beds[group[1]]:g})"
    if kind == "target":
        return f"objective.target.{group[1]} ({scenario.objective.target[group[1]]:.0%})"
    return f"constraints.{kind}.{group[1]}"


def diagnose(
    milp: Milp, reduced: ReducedProblem, scenario: Scenario, options: SolverOptions
) -> list[str]:
    """Name the constraint groups (and regions) whose relaxation makes the scenario feasible."""
    problem = reduced.problem
    families: dict[tuple, list[int]] = {}
    for gid, group in enumerate(milp.groups):
        if group[0] in ("link", "referral"):
            continue
        key = group[:2] if group[0].startswith("region_") or group[0] == "target" else group
        families.setdefault(key, []).append(gid)
    keys = list(families)
    found = conflicting_groups(milp, options, families=[families[k] for k in keys])
    lines = []
    for combo in found:
        labels = [_family_label(keys[k], problem, scenario) for k in combo]
        line = "relax " + " together with ".join(labels)
        if len(combo) == 1:
            key = keys[combo[0]]
            detail = _family_detail(key, families[key], milp, reduced, scenario, options)
            if detail:
                line += f": {detail}"
        lines.append(line)
    if not lines:
        lines.append(
            "no single constraint group or pair explains it; check counts against the number "
            "of candidates, the budget against costs, and the regional quotas and floors"
        )
    return lines


def _family_detail(
    key: tuple,
    gids: list[int],
    milp: Milp,
    reduced: ReducedProblem,
    scenario: Scenario,
    options: SolverOptions,
) -> str:
    problem = reduced.problem
    kind = key[0]
    if kind == "budget":
        cheapest = _cheapest_plan(milp, gids, options)
        return (
            f"the cheapest plan meeting the other constraints costs {cheapest:g}; raise the "
            f"budget to at least that or lower the counts"
            if cheapest is not None
            else "lower the counts or raise the budget"
        )
    if kind == "count":
        tp = next(t for t in problem.types if t.name == key[1])
        return f"{tp.n_candidates} candidate(s) exist for this type"
    if kind == "min_beds":
        tp = next(t for t in problem.types if t.name == key[1])
        total = float(np.nansum(tp.beds)) if tp.beds is not None else 0.0
        return f"all {tp.n_candidates} candidates together add {total:g} beds"
    if kind == "target":
        tp = next(t for t in problem.types if t.name == key[1])
        weight = np.asarray(problem.weight, float)
        reachable = covered_by(tp.reach) | np.asarray(tp.covered_before, bool)
        total = float(weight.sum())
        best = float(weight[reachable].sum()) / total if total else 0.0
        return (
            f"every candidate open would cover {best:.1%} of the elderly; lower the target or "
            "add candidates"
        )
    if not kind.startswith("region_"):
        return ""

    def facts(members: list[int]) -> str:
        return "; ".join(_region_fact(kind, key[1], milp.groups[g][2], reduced) for g in members)

    # a region that cannot meet its own requirement even when no other region has one
    alone = [g for g in gids if not feasible_without(milp, set(gids) - {g}, options)]
    if alone:
        return "impossible even on its own: " + facts(alone)
    singles = [g for g in gids if feasible_without(milp, {g}, options)]
    if singles:
        return "relaxing any one of these is enough: " + facts(singles)
    # jointly infeasible: drop requirements, largest first, until the rest can be met
    order = sorted(gids, key=lambda g: -_requirement(kind, key[1], milp.groups[g][2], reduced))
    dropped: list[int] = []
    for g in order:
        dropped.append(g)
        if feasible_without(milp, set(dropped), options):
            break
    return "they cannot all be met together; relaxing these together is enough: " + facts(dropped)


def _requirement(kind: str, type_name: str, region: int, reduced: ReducedProblem) -> float:
    """How much a region's requirement asks beyond what it has (for ordering)."""
    problem = reduced.problem
    tp = next(t for t in problem.types if t.name == type_name)
    if kind == "region_min_sites":
        return float(tp.region_min_sites[region])
    weight = np.asarray(problem.weight, float)
    in_region = problem.demand_region() == region
    before = float(weight[in_region & np.asarray(tp.covered_before, bool)].sum())
    return tp.region_min_coverage[region] * float(weight[in_region].sum()) - before


def _region_fact(kind: str, type_name: str, region: int, reduced: ReducedProblem) -> str:
    problem = reduced.problem
    name = problem.region_names[region]
    tp = next(t for t in problem.types if t.name == type_name)
    if kind == "region_min_sites":
        have = int((tp.region == region).sum())
        return (
            f"region {name} needs {tp.region_min_sites[region]} site(s) and has {have} candidate(s)"
        )
    weight = np.asarray(problem.weight, float)
    in_region = problem.demand_region() == region
    before = np.asarray(tp.covered_before, bool)
    reachable = covered_by(tp.reach) | before
    total = float(weight[in_region].sum())
    now = float(weight[in_region & before].sum()) / total if total else 0.0
    best = float(weight[in_region & reachable].sum()) / total if total else 0.0
    return (
        f"region {name} asks for {tp.region_min_coverage[region]:.0%} covered (now {now:.1%}; "
        f"every candidate open would reach {best:.1%})"
    )


def _cheapest_plan(milp: Milp, budget_groups: list[int], options: SolverOptions) -> float | None:
    budget_row = np.flatnonzero(np.isin(milp.row_group, budget_groups))
    if len(budget_row) != 1:
        return None
    costs = milp.matrix[budget_row[0]].toarray().ravel()
    relaxed = milp.without_groups(set(budget_groups))
    cheapest = Milp(
        objective=-costs,
        integer=relaxed.integer,
        lower=relaxed.lower,
        upper=relaxed.upper,
        matrix=relaxed.matrix,
        row_lower=relaxed.row_lower,
        row_upper=relaxed.row_upper,
        row_group=relaxed.row_group,
        groups=relaxed.groups,
        x_offset=relaxed.x_offset,
    )
    outcome = solve_milp(cheapest, options)
    if outcome.status != "optimal" or outcome.objective is None:
        return None
    return -outcome.objective


# --------------------------------------------------------------------------- the probes


def conflicting_groups(
    milp: Milp,
    options: SolverOptions,
    *,
    families: list[list[int]],
    max_pairs: int = 30,
) -> list[tuple[int, ...]]:
    """Which families of constraint groups, dropped alone (or in pairs), restore feasibility.

    ``families`` lists groups that belong together (e.g. every region's row of one quota).
    Returns the smallest combinations found: single families first, pairs only if no single
    family is enough. Each entry is a tuple of family indices.
    """
    probe = SolverOptions(
        name=options.name,
        time_limit_s=options.time_limit_s or 60,
        mip_gap=0.0,
        threads=options.threads,
    )

    def feasible(dropped: set[int]) -> bool:
        outcome = solve_milp(milp.without_groups(dropped, zero_objective=True), probe)
        return outcome.status in ("optimal", "time_limit")

    singles: list[tuple[int, ...]] = [(k,) for k, fam in enumerate(families) if feasible(set(fam))]
    if singles:
        return singles
    pairs: list[tuple[int, ...]] = []
    for a, b in list(combinations(range(len(families)), 2))[:max_pairs]:
        if feasible(set(families[a]) | set(families[b])):
            pairs.append((a, b))
    return pairs


def feasible_without(milp: Milp, dropped: set[int], options: SolverOptions) -> bool:
    """True when the MILP is feasible once the ``dropped`` groups are removed."""
    probe = SolverOptions(
        name=options.name,
        time_limit_s=options.time_limit_s or 60,
        mip_gap=0.0,
        threads=options.threads,
    )
    outcome = solve_milp(milp.without_groups(dropped, zero_objective=True), probe)
    return outcome.status in ("optimal", "time_limit")
