r"""The multi-type maximal covering model: problem data, exact reductions, and the MILP.

Formulation
-----------
Sets and data: demand units :math:`i` with weight :math:`w_i \ge 0` and region :math:`r(i)`;
facility types :math:`t` with objective weight :math:`\alpha_t \ge 0`; candidates
:math:`j \in J_t` with cost :math:`c_j`, tier and region; :math:`N_t(i) \subseteq J_t` the
candidates of type :math:`t` whose reach (that of their tier) includes :math:`i`;
:math:`E_t` the existing facilities of type :math:`t`, always open, and
:math:`C_t = \{ i : \text{some } e \in E_t \text{ reaches } i \}` the demand they already cover.

Variables: :math:`x_j \in \{0, 1\}` opens candidate :math:`j`; :math:`y_{it} \in [0, 1]` marks
demand :math:`i \notin C_t` as covered by type :math:`t`.

.. math::

    \max\ & \sum_t \alpha_t \Big( \sum_{i \in C_t} w_i + \sum_{i \notin C_t} w_i y_{it} \Big) \\
    \text{s.t. } & y_{it} \le \sum_{j \in N_t(i)} x_j
        && \forall t,\ i \notin C_t \quad \text{(link)} \\
    & L_t \le \sum_{j \in J_t} x_j \le U_t && \forall t \quad \text{(count)} \\
    & L_{tk} \le \sum_{j \in J_t,\ \mathrm{tier}(j) = k} x_j \le U_{tk}
        && \forall t, k \quad \text{(tier count)} \\
    & \sum_t \sum_{j \in J_t} c_j x_j \le B && \text{(budget)} \\
    & \sum_{j \in J_t,\ \mathrm{region}(j) = r} x_j \ge m_{tr}
        && \forall t, r \quad \text{(region minimum sites)} \\
    & \sum_{i \in C_t,\ r(i) = r} w_i + \sum_{i \notin C_t,\ r(i) = r} w_i y_{it}
        \ge \varphi_{tr} \sum_{r(i) = r} w_i && \forall t, r \quad
        \text{(region minimum coverage)} \\
    & \sum_{j \in J_t} b_j x_j \ge \beta_t && \forall t \quad
        \text{(minimum new beds; } b_j \text{ beds added by } j)

Linked tiers (county → town → village): a candidate :math:`j` of a tier with a referral rule
counts only when a site of a referring tier lies within the referral distance. When no
existing facility does, :math:`j` gets a continuous :math:`v_j` that replaces :math:`x_j` in the
link rows, with :math:`v_j \le x_j` and :math:`v_j \le \sum_{k \in R(j)} x_k` (:math:`R(j)`: the
referring candidates within reach of :math:`j`).

``count`` sets :math:`L = U`, ``min_count`` / ``max_count`` one side each. Covered-before
demand enters as a constant. The ``y`` are continuous: for binary ``x`` an optimal ``y`` is
integral, and reported coverage is always recomputed from ``x``.

Reductions (each keeps the optimal objective; tests prove it)
--------------------------------------------------------------
1. Demand already covered by :math:`E_t`, with zero weight, or with no candidate in reach is a
   constant for type :math:`t` and gets no :math:`y`.
2. Demand rows with identical reach sets (and, when the type has region coverage floors, the same
   region) merge into one row whose weight is their sum.
3. Candidates that reach no remaining row only matter through lower bounds on counts. Among
   such "filler" candidates with the same tier and region, any solution can swap to the
   cheapest ones, so only the cheapest ``m`` of each group are kept, where ``m`` is the largest
   lower bound that could draw on that group (zero when there is none). A type with a
   minimum of new beds keeps every filler that adds beds (an expansion of an existing home
   reaches nobody new but adds beds).
4. Dominated candidates: if candidate :math:`j` reaches a subset of the rows candidate
   :math:`k` reaches, a plan with :math:`j` does no worse with :math:`k` instead, or, when
   :math:`k` is already open, with any closed candidate instead (so at least :math:`L_t`
   candidates must remain). :math:`j` is dropped (of equal sets, all but the first), rows
   that became identical merge again. Only where candidates differ by nothing but reach:
   maximal covering or fewest sites, no budget or cost objective, no tier counts, regional
   minimum sites, bed minimum, linked tiers or fillers, and not for a type whose beds serve
   the capacitated objective.

Counts as upper bounds (exact, then padded)
-------------------------------------------
A lower bound on a type's count (``count: p`` sets :math:`L_t = U_t = p`, ``min_count`` sets
:math:`L_t`) is dropped when solving maximal coverage, and the plan is padded afterwards
(:func:`at_most_counts`, :func:`pad_counts`). This is exact when

(a) the objective maximises coverage (``minimize`` is None, no bed assignment) with every
    :math:`\alpha_t \ge 0`,
(b) there is no budget.

Proof. Write :math:`P` for the problem and :math:`P'` for it with every :math:`L_t` set to 0;
:math:`P'` is a relaxation, so :math:`\mathrm{opt}(P') \ge \mathrm{opt}(P)`. Take an optimal
:math:`(x, y, v)` of :math:`P'` opening :math:`q_t \le U_t` sites of type :math:`t`, and open
:math:`\max(0, L_t - q_t)` closed candidates more, keeping :math:`y` and :math:`v`. Every row of
the model stays satisfied: the link rows :math:`y \le \sum x + \sum v` and the referral rows
:math:`v_j \le x_j`, :math:`v_j \le \sum_k x_k` only gain on their right; the region minimum
sites and minimum beds rows are lower bounds on :math:`\sum x` with non-negative coefficients
(beds :math:`b_j \ge 0`); the region coverage rows involve only :math:`y`; the count now meets
:math:`L_t \le q_t + (L_t - q_t) \le U_t`. The only rows that could break are upper bounds on
sums of :math:`x`: the budget, excluded by (b), and the tier counts :math:`U_{tk}` — the padding
takes only candidates of tiers with room, which is possible whenever
:math:`\sum_k \min(U_{tk}, n_{tk}) + n_{t,\text{free}} \ge L_t` (:math:`n_{tk}` candidates of
tier :math:`k`, :math:`n_{t,\text{free}}` those of tiers without an upper bound); if it is not,
:math:`P` has no plan with :math:`L_t` sites at all and the caller solves :math:`P` as it is. The
objective involves only :math:`y`, so the padded plan has the value :math:`\mathrm{opt}(P') \ge
\mathrm{opt}(P)` and is feasible for :math:`P`: it is optimal for :math:`P`. A budget breaks
this (one dear site may beat two cheap ones, and padding the dear one with a second site may
not fit), as does a minimised count or cost (``min_sites``: the count is the objective) and a
negative type weight (coverage would then cost). The same argument holds for a bound
:math:`B'` proved for :math:`P'` when the solve stops early: it bounds :math:`P` too.

Padding rule: per type, the closed candidates of the *full* candidate list (the reductions of
:math:`P'` may drop fillers and dominated sites that :math:`P` would keep), cheapest first, then
by candidate order, skipping those of a tier already at its upper bound. The padded sites add
no one; the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

INF = float("inf")


@dataclass(frozen=True)
class Bounds:
    """Lower and upper bound on a number of opened sites (upper None = unbounded)."""

    lower: int = 0
    upper: int | None = None


@dataclass(frozen=True)
class TypeProblem:
    """One facility type as arrays: reach, covered-before state and candidate attributes.

    ``reach`` is (n_demand × n_candidates); ``tier`` and ``region`` are integer codes into
    ``tier_names`` and the problem's ``region_names`` (-1 = none).
    """

    name: str
    reach: sp.csr_matrix
    covered_before: np.ndarray
    cost: np.ndarray
    tier: np.ndarray
    region: np.ndarray
    tier_names: tuple[str, ...] = ()
    alpha: float = 1.0
    count: Bounds = field(default_factory=Bounds)
    tier_counts: dict[int, Bounds] = field(default_factory=dict)
    region_min_sites: dict[int, int] = field(default_factory=dict)
    region_min_coverage: dict[int, float] = field(default_factory=dict)
    beds: np.ndarray | None = None
    min_beds: float = 0.0
    target: float | None = None  # min_sites: share of the weight to cover
    # linked tiers: candidate j counts only if some candidate k with referral[j, k] is open
    needs_referral: np.ndarray | None = None
    referral: sp.csr_matrix | None = None
    # capacitated coverage: beds of the existing facilities and who they reach
    existing_reach: sp.csr_matrix | None = None
    existing_beds: np.ndarray | None = None

    @property
    def n_candidates(self) -> int:
        return int(self.reach.shape[1])


@dataclass(frozen=True)
class Problem:
    """Everything the model needs, as arrays: no geometry, no file names."""

    weight: np.ndarray
    types: tuple[TypeProblem, ...]
    region: np.ndarray | None = None
    region_names: tuple[str, ...] = ()
    budget: float | None = None
    bed_need: np.ndarray | None = None  # capacitated: beds each demand unit needs
    # the types whose beds serve the need: non-empty = bed assignment (capacitated coverage)
    bed_types: tuple[str, ...] = ()
    # None: maximise weighted coverage; "count" / "cost": fewest sites / least cost that meet
    # every type's target (min_sites)
    minimize: str | None = None
    by_region: bool = False  # min_sites: the target holds in every region

    @property
    def n_demand(self) -> int:
        return len(self.weight)

    def demand_region(self) -> np.ndarray:
        if self.region is None:
            return np.full(self.n_demand, -1, dtype=np.int64)
        return np.asarray(self.region, dtype=np.int64)


def problem_from_reach(
    reach: sp.spmatrix,
    weight: np.ndarray,
    count: int,
    *,
    covered_before: np.ndarray | None = None,
    cost: np.ndarray | None = None,
    budget: float | None = None,
) -> Problem:
    """A single-type, exactly-``count`` maximal covering problem from a reach matrix.

    The array-level entry point for benchmarks and researchers (no geometry needed).

    Parameters
    ----------
    reach
        Demand × sites, true where a site reaches a demand unit.
    weight
        The weight (elderly) of each demand unit.
    count
        The number of sites to open, exactly.
    covered_before
        Demand already covered by existing facilities (default: none).
    cost, budget
        Cost of each site and the most the opened sites may cost (default: no budget).

    Returns
    -------
    Problem
        For :func:`reduce_problem`, then :func:`build_milp`.
    """
    reach = sp.csr_matrix(reach, dtype=bool)
    n_demand, n_sites = reach.shape
    type_problem = TypeProblem(
        name="site",
        reach=reach,
        covered_before=(
            np.zeros(n_demand, dtype=bool)
            if covered_before is None
            else np.asarray(covered_before, bool)
        ),
        cost=np.zeros(n_sites) if cost is None else np.asarray(cost, dtype=float),
        tier=np.full(n_sites, -1),
        region=np.full(n_sites, -1),
        count=Bounds(count, count),
    )
    return Problem(weight=np.asarray(weight, dtype=float), types=(type_problem,), budget=budget)


# --------------------------------------------------------------------------- reductions


@dataclass(frozen=True)
class ReducedType:
    """A type after reductions: kept candidates, merged demand rows and the constants."""

    source: TypeProblem
    candidates: np.ndarray  # indices of kept candidates into the type's candidate list
    reach: sp.csr_matrix  # merged rows × kept candidates
    row_weight: np.ndarray
    row_region: np.ndarray  # region code of each row (-1 when regions were not kept apart)
    covered_before_weight: float
    covered_before_by_region: np.ndarray
    demand_rows: np.ndarray  # for each original demand unit, its merged row or -1


@dataclass(frozen=True)
class ReducedProblem:
    problem: Problem
    types: tuple[ReducedType, ...]
    weight_by_region: np.ndarray

    @property
    def constant(self) -> float:
        """Objective value of the covered-before demand."""
        return float(sum(t.source.alpha * t.covered_before_weight for t in self.types))


def _filler_quota(tp: TypeProblem, tier: int, region: int) -> int:
    """Largest lower bound that fillers of this (tier, region) group might have to meet."""
    lowers = [tp.count.lower]
    if tier in tp.tier_counts:
        lowers.append(tp.tier_counts[tier].lower)
    if region >= 0:
        lowers.append(tp.region_min_sites.get(region, 0))
    return max(lowers)


def _merge_rows(reach: sp.csr_matrix, region: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Group identical rows (and equal region when given): (group of each row, first row)."""
    reach = reach.tocsr()
    reach.sort_indices()
    indices, indptr = reach.indices.astype(np.int64), reach.indptr
    keys: dict[bytes, int] = {}
    groups = np.empty(reach.shape[0], dtype=np.int64)
    firsts: list[int] = []
    suffix = region.astype(np.int64) if region is not None else None
    for row in range(reach.shape[0]):
        key = indices[indptr[row] : indptr[row + 1]].tobytes()
        if suffix is not None:
            key += b"r" + suffix[row].tobytes()
        group = keys.setdefault(key, len(keys))
        if group == len(firsts):
            firsts.append(row)
        groups[row] = group
    return groups, np.asarray(firsts, dtype=np.int64)


def reduce_type(
    tp: TypeProblem,
    weight: np.ndarray,
    demand_region: np.ndarray,
    n_regions: int,
    *,
    keep_regions: bool = False,
    keep_reaching: bool = False,
    dominance: bool = False,
) -> ReducedType:
    """Apply the reductions to one type (see the module docstring); ``dominance`` allows the
    fourth (the caller decides whether the problem's objective and budget permit it)."""
    reach = sp.csr_matrix(tp.reach, dtype=bool)
    covered = np.asarray(tp.covered_before, dtype=bool)
    region_valid = demand_region >= 0
    covered_by_region = np.bincount(
        demand_region[covered & region_valid],
        weights=weight[covered & region_valid],
        minlength=n_regions,
    )
    reachable = np.diff(reach.indptr) > 0
    active = np.flatnonzero(~covered & (weight > 0) & reachable)
    sub = reach[active]
    useful = np.flatnonzero(np.diff(sp.csc_matrix(sub).indptr) > 0)
    if keep_reaching:  # beds count even where coverage is not new
        positive = reach[np.flatnonzero(weight > 0)]
        useful = np.union1d(useful, np.flatnonzero(np.diff(sp.csc_matrix(positive).indptr) > 0))
    fillers = np.setdiff1d(np.arange(tp.n_candidates), useful)
    kept_fillers = []
    if len(fillers):
        order = fillers[np.lexsort((fillers, tp.cost[fillers]))]
        groups: dict[tuple[int, int], list[int]] = {}
        for j in order:
            groups.setdefault((int(tp.tier[j]), int(tp.region[j])), []).append(int(j))
        for (tier, region), members in groups.items():
            kept_fillers.extend(members[: _filler_quota(tp, tier, region)])
        if tp.min_beds > 0 and tp.beds is not None:
            kept_fillers.extend(int(j) for j in fillers if tp.beds[j] > 0)
        if tp.referral is not None:  # a site others refer to is needed even if it covers nobody
            providers = np.flatnonzero(np.diff(sp.csc_matrix(tp.referral).indptr) > 0)
            kept_fillers.extend(int(j) for j in np.intersect1d(fillers, providers))
        kept_fillers = sorted(set(kept_fillers))
    candidates = np.sort(np.concatenate([useful, np.asarray(kept_fillers, dtype=np.int64)]))
    sub = sub[:, candidates]
    by_region = demand_region[active] if (tp.region_min_coverage or keep_regions) else None
    groups_of_rows, firsts = _merge_rows(sub, by_region)
    if dominance and not kept_fillers and _dominance_applies(tp):
        drop = dominated_columns(sub[firsts])
        if len(drop) and len(candidates) - len(drop) >= tp.count.lower:
            keep = np.setdiff1d(np.arange(len(candidates)), drop)
            candidates = candidates[keep]
            sub = sub[:, keep]
            merged = sub[firsts]
            again, second = _merge_rows(merged, None if by_region is None else by_region[firsts])
            groups_of_rows, firsts = again[groups_of_rows], firsts[second]
    row_weight = np.bincount(groups_of_rows, weights=weight[active], minlength=len(firsts))
    row_region = (
        demand_region[active][firsts]
        if by_region is not None
        else np.full(len(firsts), -1, dtype=np.int64)
    )
    demand_rows = np.full(len(weight), -1, dtype=np.int64)
    demand_rows[active] = groups_of_rows
    return ReducedType(
        source=tp,
        candidates=candidates,
        reach=sp.csr_matrix(sub[firsts], dtype=bool),
        row_weight=row_weight,
        row_region=row_region,
        covered_before_weight=float(weight[covered].sum()),
        covered_before_by_region=covered_by_region,
        demand_rows=demand_rows,
    )


# limits of the containment test: pairs touched in total (Σ row entries², ~0.25 s per 80 M
# measured), and per block of columns, so the stored overlaps stay small (≤ ~160 MB a block)
_DOMINANCE_WORK = 500_000_000
_DOMINANCE_BLOCK = 10_000_000


def _dominance_applies(tp: TypeProblem) -> bool:
    """Reduction 4 needs a type whose candidates differ only by reach (see the docstring)."""
    return not (
        tp.tier_counts
        or any(v > 0 for v in tp.region_min_sites.values())
        or tp.min_beds > 0
        or tp.needs_referral is not None
        or tp.referral is not None
    )


def dominated_columns(reach: sp.spmatrix) -> np.ndarray:
    """Columns whose set of rows is inside another column's (of equal sets, all but the first).

    Computed from the column overlaps ``reachᵀ reach`` (sparse), one block of columns at a
    time so the overlaps held at once stay small; skipped (nothing returned) when the whole
    product would touch more than ``_DOMINANCE_WORK`` pairs.
    """
    a = sp.csc_matrix(reach, dtype=np.int32)
    rows = sp.csr_matrix(a)
    per_row = np.diff(rows.indptr).astype(np.int64)
    if int((per_row**2).sum()) > _DOMINANCE_WORK:
        return np.zeros(0, dtype=np.int64)
    size = np.diff(a.indptr)
    # pairs each column touches: the entries of the rows it reaches; blocks of columns whose
    # touched pairs add up to at most _DOMINANCE_BLOCK are multiplied one block at a time
    touched = np.asarray(a.T @ per_row, dtype=np.int64).ravel()
    found = []
    start, n = 0, a.shape[1]
    bounds = np.cumsum(touched)
    while start < n:
        base = bounds[start - 1] if start else 0
        stop = int(np.searchsorted(bounds, base + _DOMINANCE_BLOCK, side="right"))
        stop = min(n, max(stop, start + 1))
        overlap = (a[:, start:stop].T @ a).tocoo()
        j, k = overlap.row + start, overlap.col
        inside = (overlap.data == size[j]) & (j != k)
        larger = (size[k] > size[j]) | ((size[k] == size[j]) & (k < j))
        found.append(j[inside & larger])
        start = stop
    return np.unique(np.concatenate(found)).astype(np.int64) if found else np.zeros(0, np.int64)


def reduce_problem(problem: Problem) -> ReducedProblem:
    """Exact reductions of every type (see the module docstring).

    Parameters
    ----------
    problem
        The array problem.

    Returns
    -------
    ReducedProblem
        Merged demand rows and kept candidates per type, with the same optimum.
    """
    weight = np.asarray(problem.weight, dtype=float)
    region = problem.demand_region()
    n_regions = len(problem.region_names)
    types = tuple(
        reduce_type(
            tp,
            weight,
            region,
            n_regions,
            keep_regions=problem.by_region and tp.target is not None,
            keep_reaching=tp.name in problem.bed_types,
            dominance=not problem.bed_types
            and problem.budget is None
            and problem.minimize != "cost",
        )
        for tp in problem.types
    )
    valid = region >= 0
    weight_by_region = np.bincount(region[valid], weights=weight[valid], minlength=n_regions)
    return ReducedProblem(problem=problem, types=types, weight_by_region=weight_by_region)


def identity_reduction(problem: Problem) -> ReducedProblem:
    """The problem as it is, in reduced form but with nothing merged or dropped (for tests)."""
    weight = np.asarray(problem.weight, dtype=float)
    region = problem.demand_region()
    n_regions = len(problem.region_names)
    types = []
    for tp in problem.types:
        covered = np.asarray(tp.covered_before, dtype=bool)
        active = np.flatnonzero(~covered)
        valid = region >= 0
        demand_rows = np.full(len(weight), -1, dtype=np.int64)
        demand_rows[active] = np.arange(len(active))
        types.append(
            ReducedType(
                source=tp,
                candidates=np.arange(tp.n_candidates),
                reach=sp.csr_matrix(tp.reach, dtype=bool)[active],
                row_weight=weight[active],
                row_region=region[active],
                covered_before_weight=float(weight[covered].sum()),
                covered_before_by_region=np.bincount(
                    region[covered & valid], weights=weight[covered & valid], minlength=n_regions
                ),
                demand_rows=demand_rows,
            )
        )
    valid = region >= 0
    return ReducedProblem(
        problem=problem,
        types=tuple(types),
        weight_by_region=np.bincount(region[valid], weights=weight[valid], minlength=n_regions),
    )


# --------------------------------------------------------------------------- counts as upper bounds


def at_most_counts(problem: Problem) -> Problem | None:
    """The problem with every type's count lower bound dropped, when that is exact.

    See "Counts as upper bounds" in the module docstring: maximal coverage (no ``minimize``, no
    bed assignment, every ``alpha`` ≥ 0) without a budget. Solve the returned problem, then
    :func:`pad_counts` the plan back to the lower bounds.

    Parameters
    ----------
    problem
        The array problem, counts as the scenario asks.

    Returns
    -------
    Problem or None
        The relaxed problem, or None when the relaxation is not exact or changes nothing (no
        type has a count lower bound).
    """
    if problem.minimize is not None or problem.bed_types or problem.budget is not None:
        return None
    if any(tp.alpha < 0 or tp.target is not None for tp in problem.types):
        return None
    if not any(tp.count.lower > 0 for tp in problem.types):
        return None
    types = tuple(replace(tp, count=Bounds(0, tp.count.upper)) for tp in problem.types)
    return replace(problem, types=types)


def pad_counts(problem: Problem, opened: list[np.ndarray]) -> list[np.ndarray] | None:
    """Open more candidates until each type meets its count's lower bound.

    The rule (module docstring): per type, the closed candidates of the full list, cheapest
    first, then by index, skipping those whose tier is already at its upper bound.

    Parameters
    ----------
    problem
        The problem as asked (with the lower bounds :func:`at_most_counts` dropped).
    opened
        Per type, the opened candidate indices of the relaxed problem's plan.

    Returns
    -------
    list of numpy.ndarray or None
        Per type the sorted opened indices, padding included; None when the tier upper bounds
        leave too few candidates (the problem as asked then has no plan with that count).
    """
    padded = []
    for tp, sites in zip(problem.types, opened, strict=True):
        sites = np.asarray(sites, dtype=np.int64)
        need = tp.count.lower - len(sites)
        if need <= 0:
            padded.append(np.sort(sites))
            continue
        closed = np.setdiff1d(np.arange(tp.n_candidates), sites)
        order = closed[np.lexsort((closed, np.nan_to_num(tp.cost[closed], nan=INF)))]
        room = np.full(len(order), True)
        tier = np.asarray(tp.tier, dtype=np.int64)[order]
        for code, bounds in tp.tier_counts.items():
            if bounds.upper is None:
                continue
            left = bounds.upper - int(np.count_nonzero(tp.tier[sites] == code))
            in_tier = tier == code
            # the first `left` closed candidates of this tier, in padding order
            room[in_tier] = np.cumsum(in_tier)[in_tier] <= left
        chosen = order[room][:need]
        if len(chosen) < need:
            return None
        padded.append(np.sort(np.concatenate([sites, chosen])))
    return padded


# --------------------------------------------------------------------------- the MILP


@dataclass(frozen=True)
class Milp:
    """A maximisation MILP in arrays: ``row_lower ≤ A x ≤ row_upper``, ``lb ≤ x ≤ ub``.

    ``row_group`` gives each row's constraint group (an index into ``groups``); groups are
    tuples such as ``("budget",)`` or ``("region_min_sites", type, region_code)``.
    """

    objective: np.ndarray
    integer: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    matrix: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    row_group: np.ndarray
    groups: tuple[tuple, ...]
    x_offset: tuple[int, ...]  # first column of each type's x block
    constant: float = 0.0

    @property
    def n_cols(self) -> int:
        return len(self.objective)

    @property
    def n_rows(self) -> int:
        return self.matrix.shape[0]

    def without_groups(self, dropped: set[int], *, zero_objective: bool = False) -> Milp:
        """The same MILP without the rows of the ``dropped`` groups."""
        keep = ~np.isin(self.row_group, list(dropped))
        return Milp(
            objective=np.zeros_like(self.objective) if zero_objective else self.objective,
            integer=self.integer,
            lower=self.lower,
            upper=self.upper,
            matrix=self.matrix[keep],
            row_lower=self.row_lower[keep],
            row_upper=self.row_upper[keep],
            row_group=self.row_group[keep],
            groups=self.groups,
            x_offset=self.x_offset,
            constant=self.constant,
        )


class _RowBuilder:
    def __init__(self) -> None:
        self.blocks: list[sp.csr_matrix] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.group_ids: list[np.ndarray] = []
        self.groups: list[tuple] = []

    def add(
        self, group: tuple, block: sp.spmatrix, lower: np.ndarray | float, upper: np.ndarray | float
    ) -> None:
        gid = len(self.groups)
        self.groups.append(group)
        n = block.shape[0]
        self.blocks.append(sp.csr_matrix(block))
        self.lower.append(np.broadcast_to(np.asarray(lower, float), (n,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, float), (n,)))
        self.group_ids.append(np.full(n, gid, dtype=np.int64))

    def row(
        self,
        group: tuple,
        cols: np.ndarray,
        coefs: np.ndarray,
        lower: float,
        upper: float,
        n_cols: int,
    ) -> None:
        block = sp.csr_matrix(
            (np.asarray(coefs, float), (np.zeros(len(cols), dtype=np.int64), cols)),
            shape=(1, n_cols),
        )
        self.add(group, block, np.array([lower]), np.array([upper]))


def linked_positions(rt: ReducedType) -> np.ndarray:
    """Positions (among the kept candidates) of those that count only with a referral site."""
    needs = rt.source.needs_referral
    if needs is None:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.asarray(needs, bool)[rt.candidates])


def column_layout(reduced: ReducedProblem) -> list[tuple[int, int, int]]:
    """Per type the first column of its x, y and v blocks: [x | y | v] one type after another."""
    starts, col = [], 0
    for rt in reduced.types:
        x0 = col
        y0 = x0 + len(rt.candidates)
        v0 = y0 + len(rt.row_weight)
        starts.append((x0, y0, v0))
        col = v0 + len(linked_positions(rt))
    return starts


def build_milp(reduced: ReducedProblem) -> Milp:
    """The MILP of the module docstring over the reduced problem.

    Parameters
    ----------
    reduced
        From :func:`reduce_problem`.

    Returns
    -------
    Milp
        Column-wise arrays and a CSR matrix, maximised; solve with
        :func:`carecheck.solve.solve_milp`.
    """
    problem = reduced.problem
    layout = column_layout(reduced)
    last = reduced.types[-1] if reduced.types else None
    n_cols = layout[-1][2] + len(linked_positions(last)) if last is not None else 0
    x_offset = [x0 for x0, _, _ in layout]
    objective = np.zeros(n_cols)
    integer = np.zeros(n_cols, dtype=bool)
    upper = np.ones(n_cols)
    rows = _RowBuilder()
    for rt, (x0, y0, v0) in zip(reduced.types, layout, strict=True):
        n_x, n_y = len(rt.candidates), len(rt.row_weight)
        integer[x0 : x0 + n_x] = True
        if problem.minimize is not None:
            per_site = rt.source.cost[rt.candidates] if problem.minimize == "cost" else np.ones(n_x)
            objective[x0 : x0 + n_x] = -per_site
        else:
            objective[y0 : y0 + n_y] = rt.source.alpha * rt.row_weight
        _type_rows(rows, rt, reduced, (x0, y0, v0), n_cols)
    if problem.budget is not None:
        _budget_row(rows, reduced, x_offset, problem.budget, n_cols)
    matrix, row_lower, row_upper, row_group = _stacked_rows(rows, n_cols)
    matrix.eliminate_zeros()
    return Milp(
        objective=objective,
        integer=integer,
        lower=np.zeros(n_cols),
        upper=upper,
        matrix=matrix,
        row_lower=row_lower,
        row_upper=row_upper,
        row_group=row_group,
        groups=tuple(rows.groups),
        x_offset=tuple(x_offset),
        constant=reduced.constant if problem.minimize is None else 0.0,
    )


def _type_rows(
    rows: _RowBuilder,
    rt: ReducedType,
    reduced: ReducedProblem,
    starts: tuple[int, int, int],
    n_cols: int,
) -> None:
    """Every row of one type, in the model's order: link, referral, counts, target, beds,
    regional coverage. ``starts`` is the type's (x0, y0, v0) of :func:`column_layout`."""
    x0, y0, v0 = starts
    tp = rt.source
    n_x = len(rt.candidates)
    linked = linked_positions(rt)
    if len(rt.row_weight):
        _link_rows(rows, rt, linked, x0, v0, n_cols)
    if len(linked):
        _referral_rows(rows, rt, linked, x0, v0, n_cols)
    x_cols = x0 + np.arange(n_x)
    ones = np.ones(n_x)
    _site_count_rows(rows, rt, x_cols, ones, n_cols)
    if tp.target is not None:
        _target_rows(rows, rt, reduced, reduced.problem, x0, y0, n_cols)
    if tp.min_beds > 0:
        beds = (
            np.nan_to_num(np.asarray(tp.beds, float)[rt.candidates])
            if tp.beds is not None
            else np.zeros(n_x)
        )
        rows.row(("min_beds", tp.name), x_cols, beds, tp.min_beds, INF, n_cols)
    _region_coverage_rows(rows, rt, reduced, y0, n_cols)


def _link_rows(
    rows: _RowBuilder, rt: ReducedType, linked: np.ndarray, x0: int, v0: int, n_cols: int
) -> None:
    """y_k - Σ_{j in N(k)} x_j - Σ_{j in N(k), linked} v_j ≤ 0: a row counts only when reached."""
    n_x, n_y = len(rt.candidates), len(rt.row_weight)
    reach = sp.csc_matrix(rt.reach, dtype=float)
    unlinked = np.ones(n_x)
    unlinked[linked] = 0.0
    direct = reach @ sp.diags(unlinked)
    link = sp.hstack(
        [
            sp.csr_matrix((n_y, x0)),
            -direct,
            sp.identity(n_y, format="csr"),
            -reach[:, linked],
            sp.csr_matrix((n_y, n_cols - v0 - len(linked))),
        ],
        format="csr",
    )
    rows.add(("link", rt.source.name), link, -INF, 0.0)


def _site_count_rows(
    rows: _RowBuilder, rt: ReducedType, x_cols: np.ndarray, ones: np.ndarray, n_cols: int
) -> None:
    """The type's count, each tier's count and each region's minimum number of sites."""
    tp = rt.source
    _bounds_row(rows, ("count", tp.name), x_cols, ones, tp.count, n_cols)
    cand_tier = tp.tier[rt.candidates]
    for tier_code, bounds in sorted(tp.tier_counts.items()):
        members = cand_tier == tier_code
        tier_name = tp.tier_names[tier_code]
        _bounds_row(
            rows,
            ("tier_count", tp.name, tier_name),
            x_cols[members],
            ones[members],
            bounds,
            n_cols,
        )
    cand_region = tp.region[rt.candidates]
    for region_code, minimum in sorted(tp.region_min_sites.items()):
        if minimum <= 0:
            continue
        members = cand_region == region_code
        rows.row(
            ("region_min_sites", tp.name, region_code),
            x_cols[members],
            ones[members],
            minimum,
            INF,
            n_cols,
        )


def _region_coverage_rows(
    rows: _RowBuilder, rt: ReducedType, reduced: ReducedProblem, y0: int, n_cols: int
) -> None:
    """constraints.region_min_coverage: cover a share of each region's weight."""
    tp = rt.source
    for region_code, share in sorted(tp.region_min_coverage.items()):
        need = (
            share * reduced.weight_by_region[region_code]
            - (rt.covered_before_by_region[region_code])
        )
        if need <= 1e-9 * max(1.0, reduced.weight_by_region[region_code]):
            continue
        members = np.flatnonzero(rt.row_region == region_code)
        rows.row(
            ("region_min_coverage", tp.name, region_code),
            y0 + members,
            rt.row_weight[members],
            need,
            INF,
            n_cols,
        )


def _budget_row(
    rows: _RowBuilder, reduced: ReducedProblem, x_offset: list[int], budget: float, n_cols: int
) -> None:
    """constraints.budget: the cost of every opened candidate, of all types, within budget."""
    cols = np.concatenate(
        [x0 + np.arange(len(rt.candidates)) for rt, x0 in zip(reduced.types, x_offset, strict=True)]
    )
    costs = np.concatenate([rt.source.cost[rt.candidates] for rt in reduced.types])
    rows.row(("budget",), cols, costs, -INF, budget, n_cols)


def _stacked_rows(
    rows: _RowBuilder, n_cols: int
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """The rows as one CSR matrix, with their lower and upper bounds and group ids."""
    if rows.blocks:
        matrix = sp.vstack(rows.blocks, format="csr")
        row_lower = np.concatenate(rows.lower)
        row_upper = np.concatenate(rows.upper)
        row_group = np.concatenate(rows.group_ids)
    else:
        matrix = sp.csr_matrix((0, n_cols))
        row_lower = row_upper = np.zeros(0)
        row_group = np.zeros(0, dtype=np.int64)
    return matrix, row_lower, row_upper, row_group


def _referral_rows(
    rows: _RowBuilder, rt: ReducedType, linked: np.ndarray, x0: int, v0: int, n_cols: int
) -> None:
    """v_j ≤ x_j and v_j ≤ Σ_{k refers j} x_k: a linked site counts only when open and referred."""
    n_v = len(linked)
    v_cols = v0 + np.arange(n_v)
    eye = sp.csr_matrix((np.ones(n_v), (np.arange(n_v), v_cols)), shape=(n_v, n_cols))
    opened = sp.csr_matrix((-np.ones(n_v), (np.arange(n_v), x0 + linked)), shape=(n_v, n_cols))
    rows.add(("referral", rt.source.name), eye + opened, -INF, 0.0)
    assert rt.source.referral is not None
    kept = sp.csr_matrix(rt.source.referral)[rt.candidates[linked]][:, rt.candidates]
    providers = sp.hstack(
        [
            sp.csr_matrix((n_v, x0)),
            -sp.csr_matrix(kept, dtype=float),
            sp.csr_matrix((n_v, n_cols - x0 - kept.shape[1])),
        ],
        format="csr",
    )
    rows.add(("referral", rt.source.name), eye + providers, -INF, 0.0)


def _target_rows(
    rows: _RowBuilder,
    rt: ReducedType,
    reduced: ReducedProblem,
    problem: Problem,
    x0: int,
    y0: int,
    n_cols: int,
) -> None:
    """min_sites: cover ``target`` of the weight (per region when ``by_region``)."""
    tp = rt.source
    share = float(tp.target or 0.0)
    n_x, n_y = len(rt.candidates), len(rt.row_weight)
    weight = np.asarray(problem.weight, float)
    if share >= 1.0 - 1e-12:
        # set covering: every row with weight gets a site; demand nobody can reach → infeasible
        covered = np.asarray(tp.covered_before, bool)
        unreachable = (weight > 0) & ~covered & (np.diff(sp.csr_matrix(tp.reach).indptr) == 0)
        if unreachable.any():
            rows.row(
                ("target", tp.name), np.zeros(0, dtype=np.int64), np.zeros(0), 1.0, INF, n_cols
            )
        if n_y:
            block = sp.hstack(
                [
                    sp.csr_matrix((n_y, x0)),
                    sp.csr_matrix(rt.reach, dtype=float),
                    sp.csr_matrix((n_y, n_cols - x0 - n_x)),
                ],
                format="csr",
            )
            rows.add(("target", tp.name), block, 1.0, INF)
        return
    if problem.by_region:
        for region in range(len(problem.region_names)):
            need = share * reduced.weight_by_region[region] - rt.covered_before_by_region[region]
            if need <= 1e-9 * max(1.0, reduced.weight_by_region[region]):
                continue
            members = np.flatnonzero(rt.row_region == region)
            rows.row(
                ("target", tp.name, region), y0 + members, rt.row_weight[members], need, INF, n_cols
            )
        return
    need = share * float(weight.sum()) - rt.covered_before_weight
    if need > 1e-9 * max(1.0, float(weight.sum())):
        rows.row(("target", tp.name), y0 + np.arange(n_y), rt.row_weight, need, INF, n_cols)


def _bounds_row(
    rows: _RowBuilder,
    group: tuple,
    cols: np.ndarray,
    coefs: np.ndarray,
    bounds: Bounds,
    n_cols: int,
) -> None:
    upper = INF if bounds.upper is None else float(bounds.upper)
    if bounds.lower <= 0 and upper == INF:
        return
    rows.row(group, cols, coefs, float(bounds.lower), upper, n_cols)


def selection_from_solution(reduced: ReducedProblem, values: np.ndarray) -> list[np.ndarray]:
    """Opened candidate indices (into each type's full candidate list) from MILP values."""
    opened = []
    for rt, (x0, _, _) in zip(reduced.types, column_layout(reduced), strict=True):
        x = values[x0 : x0 + len(rt.candidates)]
        opened.append(np.sort(rt.candidates[x > 0.5]))
    return opened


def effective_sites(tp: TypeProblem, opened: np.ndarray) -> np.ndarray:
    """The opened sites that count: linked ones only with an opened site to refer to."""
    opened = np.asarray(opened, dtype=np.int64)
    if tp.needs_referral is None or tp.referral is None or not len(opened):
        return opened
    needs = np.asarray(tp.needs_referral, bool)[opened]
    is_open = np.zeros(tp.n_candidates, dtype=bool)
    is_open[opened] = True
    referred = np.asarray(sp.csr_matrix(tp.referral)[opened][:, is_open].sum(axis=1)).ravel() > 0
    return opened[~needs | referred]


# --------------------------------------------------------------------------- capacitated


@dataclass(frozen=True)
class CapacityLayout:
    """Where the assignment columns of the capacitated model sit, for decoding."""

    first_column: int
    n_pairs: int
    need: np.ndarray  # bed need of each merged demand row


def add_capacity(milp: Milp, reduced: ReducedProblem) -> tuple[Milp, CapacityLayout]:
    r"""Capacitated coverage on top of the coverage MILP (whose objective it replaces).

    Demand :math:`i` needs :math:`q_i` beds. Assignment shares :math:`a_{ij} \in [0, 1]` for
    every pair of a demand unit and a bed site (candidate or existing) that reaches it:

    .. math::

        \max \sum_{i,j} q_i a_{ij} \quad \text{s.t.}\quad \sum_j a_{ij} \le 1,\quad
        \sum_i q_i a_{ij} \le b_j x_j \ (\text{candidates}),\quad
        \sum_i q_i a_{ij} \le b_e \ (\text{existing}).

    Demand units with the same reach over all bed sites merge (their needs add up), which is
    exact because the shares are continuous.
    """
    problem = reduced.problem
    assert problem.bed_need is not None
    need = np.asarray(problem.bed_need, float)
    blocks, capacity, site_column = [], [], []
    by_name = {
        rt.source.name: (rt, x0) for rt, x0 in zip(reduced.types, milp.x_offset, strict=True)
    }
    for name in problem.bed_types:
        rt, x0 = by_name[name]
        tp = rt.source
        beds = np.nan_to_num(np.asarray(tp.beds, float)) if tp.beds is not None else None
        kept = rt.candidates
        blocks.append(sp.csr_matrix(tp.reach, dtype=bool)[:, kept])
        capacity.append(beds[kept] if beds is not None else np.zeros(len(kept)))
        site_column.append(x0 + np.arange(len(kept)))
        if tp.existing_reach is not None and tp.existing_reach.shape[1]:
            blocks.append(sp.csr_matrix(tp.existing_reach, dtype=bool))
            capacity.append(np.nan_to_num(np.asarray(tp.existing_beds, float)))
            site_column.append(np.full(tp.existing_reach.shape[1], -1))
    reach = sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((len(need), 0))
    caps = np.concatenate(capacity) if capacity else np.zeros(0)
    cols_x = np.concatenate(site_column) if site_column else np.zeros(0, dtype=np.int64)
    active = np.flatnonzero((need > 0) & (np.diff(reach.indptr) > 0))
    groups, firsts = _merge_rows(reach[active], None)
    row_need = np.bincount(groups, weights=need[active], minlength=len(firsts))
    merged = sp.csr_matrix(reach[active][firsts], dtype=bool).tocoo()
    n_pairs, n_rows = merged.nnz, len(firsts)
    start = milp.n_cols
    pair_cols = start + np.arange(n_pairs)
    total_cols = start + n_pairs
    pair_need = row_need[merged.row]
    # Σ_j a_ij ≤ 1
    demand_rows = sp.csr_matrix(
        (np.ones(n_pairs), (merged.row, pair_cols)), shape=(n_rows, total_cols)
    )
    # Σ_i q_i a_ij − b_j x_j ≤ 0 (candidates), Σ_i q_i a_ij ≤ b_e (existing)
    n_sites = reach.shape[1]
    used = np.unique(merged.col)
    site_row = np.full(n_sites, -1)
    site_row[used] = np.arange(len(used))
    cap_matrix = sp.csr_matrix(
        (pair_need, (site_row[merged.col], pair_cols)), shape=(len(used), total_cols)
    ).tolil()
    is_candidate = cols_x[used] >= 0
    for r in np.flatnonzero(is_candidate):
        cap_matrix[r, cols_x[used][r]] = -caps[used][r]
    cap_upper = np.where(is_candidate, 0.0, caps[used])
    old = sp.hstack([milp.matrix, sp.csr_matrix((milp.n_rows, n_pairs))], format="csr")
    groups_list = [*milp.groups, ("assign",), ("beds",)]
    assign_gid, beds_gid = len(milp.groups), len(milp.groups) + 1
    objective = np.concatenate([np.zeros(milp.n_cols), pair_need])
    matrix = sp.vstack([old, demand_rows, cap_matrix.tocsr()], format="csr")
    capacitated = Milp(
        objective=objective,
        integer=np.concatenate([milp.integer, np.zeros(n_pairs, dtype=bool)]),
        lower=np.concatenate([milp.lower, np.zeros(n_pairs)]),
        upper=np.concatenate([milp.upper, np.ones(n_pairs)]),
        matrix=matrix,
        row_lower=np.concatenate([milp.row_lower, np.full(n_rows + len(used), -INF)]),
        row_upper=np.concatenate([milp.row_upper, np.ones(n_rows), cap_upper]),
        row_group=np.concatenate(
            [milp.row_group, np.full(n_rows, assign_gid), np.full(len(used), beds_gid)]
        ),
        groups=tuple(groups_list),
        x_offset=milp.x_offset,
        constant=0.0,
    )
    return capacitated, CapacityLayout(first_column=start, n_pairs=n_pairs, need=row_need)


def covering_milp(reach: sp.csr_matrix, weight: np.ndarray, count: int) -> Milp:
    """The plain maximal covering MILP of a reach matrix: exactly ``count`` of its columns,
    the most row weight covered (the swap search's window and merge models).

    Columns are the sites ``x`` (binary), then one ``y`` per row (continuous in [0, 1]);
    rows ``y_i − Σ_j a_ij x_j ≤ 0`` and ``Σ_j x_j = count``; objective ``Σ_i w_i y_i``.

    Parameters
    ----------
    reach
        Rows × sites, nonzero where the site reaches the row.
    weight
        Weight per row.
    count
        Sites to open.

    Returns
    -------
    Milp
        The model, its rows in one group ``("covering",)``.
    """
    n_x, n_y = reach.shape[1], reach.shape[0]
    matrix = sp.vstack(
        [
            sp.hstack([-reach, sp.identity(n_y, format="csr")]),
            sp.hstack([sp.csr_matrix(np.ones((1, n_x))), sp.csr_matrix((1, n_y))]),
        ],
        format="csr",
    )
    return Milp(
        objective=np.concatenate([np.zeros(n_x), np.asarray(weight, dtype=np.float64)]),
        integer=np.concatenate([np.ones(n_x, dtype=bool), np.zeros(n_y, dtype=bool)]),
        lower=np.zeros(n_x + n_y),
        upper=np.ones(n_x + n_y),
        matrix=matrix,
        row_lower=np.concatenate([np.full(n_y, -INF), [count]]),
        row_upper=np.concatenate([np.zeros(n_y), [count]]),
        row_group=np.zeros(n_y + 1, dtype=np.int64),
        groups=(("covering",),),
        x_offset=(0,),
    )
