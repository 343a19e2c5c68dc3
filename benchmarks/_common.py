"""Shared helpers for the benchmark scripts: data paths, Máximo instances, great-circle reach.

The Máximo et al. instances give nodes in degrees; the authors' code measures distance with the
spherical law of cosines on a sphere of radius 6,378,100 m and covers a node when d ≤ r
(inclusive). carecheck's :func:`~carecheck.coverage.reach_matrix` works on Euclidean
coordinates, so the great-circle reach is built in two steps (the "array-level core" path):

1. nodes become 3-D points on a sphere of radius R, and ``reach_matrix`` finds every pair
   whose chord is within a slightly inflated chord radius (a superset of the true pairs);
2. those candidate pairs are filtered by the exact law-of-cosines distance d ≤ r.
"""

from __future__ import annotations

import re
import resource
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from carecheck.coverage import reach_matrix
from carecheck.model import (
    Milp,
    Problem,
    ReducedProblem,
    build_milp,
    problem_from_reach,
    reduce_problem,
    selection_from_solution,
)
from carecheck.solve import SolveOutcome, SolverOptions, relative_gap, solve_milp

BENCHDATA = Path(__file__).resolve().parents[1].parent / "shared" / "benchdata"
MAXIMO = BENCHDATA / "mclp-maximo"
EARTH_RADIUS_M = 6_378_100.0  # as in the authors' Instance.java; 6,371,000 changes 18 rows
CHORD_SLACK = 1e-6  # relative inflation of the chord radius before the exact filter


# --------------------------------------------------------------------------- Máximo data


@dataclass(frozen=True)
class MaximoInstance:
    """One city: node coordinates in degrees (lat, lon) and integer demand, in file order."""

    name: str
    latlon: np.ndarray
    demand: np.ndarray


def read_maximo(path: Path) -> MaximoInstance:
    """Parse a TSPLIB-like Máximo instance (``NODE_COORD_SECTION`` then ``DEMAND_SECTION``)."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    header = {}
    for line in lines:
        if ":" in line:
            key, value = line.split(":", 1)
            header[key.strip()] = value.strip()
    n = int(header["DIMENSION"])
    start = lines.index("NODE_COORD_SECTION") + 1
    demand_start = lines.index("DEMAND_SECTION") + 1
    coords = np.array([line.split() for line in lines[start : start + n]], dtype=float)
    demand = np.array(lines[demand_start : demand_start + n], dtype=np.int64)
    if coords.shape != (n, 2) or len(demand) != n:
        raise ValueError(f"{path}: expected {n} nodes")
    return MaximoInstance(name=header.get("NAME", path.stem), latlon=coords, demand=demand)


def read_maximo_optima(path: Path = MAXIMO / "optima.csv") -> pd.DataFrame:
    """The 24 published rows, with ``city`` (file stem) and ``facilities`` (0-based arrays)."""
    table = pd.read_csv(path)
    table["city"] = table["instance_file"].str.replace(".txt", "", regex=False)
    table["facilities"] = [
        np.array(text.split(), dtype=np.int64) for text in table["facilities_0based"]
    ]
    return table


# --------------------------------------------------------------------------- distances


def law_of_cosines_m(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in metres (degrees in), exactly as ``distanciaCoord`` does it."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(lon2) - np.radians(lon1)
    cosine = np.cos(p1) * np.cos(p2) * np.cos(dl) + np.sin(p1) * np.sin(p2)
    return np.arccos(np.clip(cosine, -1.0, 1.0)) * EARTH_RADIUS_M


def sphere_xyz(latlon: np.ndarray) -> np.ndarray:
    """Points on a sphere of radius R (metres), so chords are Euclidean distances."""
    lat, lon = np.radians(latlon[:, 0]), np.radians(latlon[:, 1])
    return EARTH_RADIUS_M * np.column_stack(
        [np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)]
    )


def great_circle_reach(latlon: np.ndarray, radius_m: float) -> sp.csr_matrix:
    """Demand × site reach (I = J): KD-tree chord query, then the exact law-of-cosines filter."""
    xyz = sphere_xyz(latlon)
    chord = 2.0 * EARTH_RADIUS_M * np.sin(radius_m / (2.0 * EARTH_RADIUS_M))
    rough = reach_matrix(xyz, xyz, chord * (1.0 + CHORD_SLACK) + 1e-3).tocoo()
    d = law_of_cosines_m(
        latlon[rough.row, 0], latlon[rough.row, 1], latlon[rough.col, 0], latlon[rough.col, 1]
    )
    keep = d <= radius_m
    n = len(latlon)
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=bool), (rough.row[keep], rough.col[keep])),
        shape=(n, n),
    )


def covered_demand_brute(
    latlon: np.ndarray, demand: np.ndarray, sites: np.ndarray, radius_m: float
) -> int:
    """Covered demand of ``sites`` from all node-to-site distances (no KD-tree, no CSR)."""
    sites = np.asarray(sites, dtype=np.int64)
    d = law_of_cosines_m(
        latlon[:, None, 0], latlon[:, None, 1], latlon[None, sites, 0], latlon[None, sites, 1]
    )
    return int(demand[(d <= radius_m).any(axis=1)].sum())


# --------------------------------------------------------------------------- solving


def dominated_candidates(reach: sp.csr_matrix) -> np.ndarray:
    """Columns whose reach set is contained in another column's (ties: keep the lowest index).

    Prototype of a reduction for carecheck.model: with an exact count p and no costs, tiers
    or regions, a dominated candidate can always be swapped for its dominator (or, if that is
    already open, for any closed candidate) without losing coverage.
    """
    a = sp.csc_matrix(reach, dtype=np.int32)
    size = np.diff(a.indptr)
    overlap = (a.T @ a).tocoo()
    j, k = overlap.row, overlap.col
    contained = (overlap.data == size[j]) & (j != k)
    larger = (size[k] > size[j]) | ((size[k] == size[j]) & (k < j))
    return np.unique(j[contained & larger])


@dataclass
class RunRecord:
    """Everything one benchmark solve measured."""

    objective: float | None
    status: str
    bound: float | None
    gap: float | None
    opened: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)
    size: dict[str, int] = field(default_factory=dict)
    start_value: float | None = None


def without_dominated(reduced: ReducedProblem, count: int) -> ReducedProblem:
    """The reduced problem without dominated candidates, identical rows merged again.

    Single type, exact count, no costs, tiers or regions (the Máximo / scale setting).
    Dropping columns can make rows identical, so rows are merged once more (weights summed).
    """
    (rt,) = reduced.types
    drop = dominated_candidates(rt.reach)
    if len(rt.candidates) - len(drop) < count:
        return reduced
    keep = np.setdiff1d(np.arange(len(rt.candidates)), drop)
    reach = sp.csr_matrix(rt.reach[:, keep])
    reach.sort_indices()
    keys = [
        reach.indices[reach.indptr[i] : reach.indptr[i + 1]].tobytes()
        for i in range(reach.shape[0])
    ]
    _, first, group = np.unique(
        np.array(keys, dtype=object), return_index=True, return_inverse=True
    )
    slim = replace(
        rt,
        candidates=rt.candidates[keep],
        reach=sp.csr_matrix(reach[first], dtype=bool),
        row_weight=np.bincount(group, weights=rt.row_weight, minlength=len(first)),
        row_region=np.full(len(first), -1, dtype=np.int64),
        demand_rows=np.where(rt.demand_rows >= 0, group[np.maximum(rt.demand_rows, 0)], -1),
    )
    return replace(reduced, types=(slim,))


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (CBC runs as a child process)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def solve_reach(
    reach: sp.csr_matrix,
    weight: np.ndarray,
    count: int,
    options: SolverOptions,
    *,
    drop_dominated: bool = False,
    settings: dict[str, str] | None = None,
) -> RunRecord:
    """Reduce, build and solve one exactly-``count`` MCLP; time each step.

    ``settings`` (prototype) bypasses ``solve_milp`` to pass extra solver options.
    """
    t0 = time.perf_counter()
    problem: Problem = problem_from_reach(reach, weight, count)
    reduced = reduce_problem(problem)
    if drop_dominated:
        reduced = without_dominated(reduced, count)
    milp = build_milp(reduced)
    t1 = time.perf_counter()
    cpu1 = cpu_seconds()
    start = None
    if settings:
        assert options.time_limit_s is not None
        settings = dict(settings)
        if settings.pop("start", "") == "greedy":
            start = greedy_start(reduced, count)
        outcome = solve_with_settings(milp, options.name, options.time_limit_s, settings, start)
    else:
        outcome = solve_milp(milp, options)
    t2 = time.perf_counter()
    cpu2 = cpu_seconds()
    opened = (
        selection_from_solution(reduced, outcome.values)[0]
        if outcome.values is not None
        else np.zeros(0, dtype=np.int64)
    )
    (rt,) = reduced.types
    return RunRecord(
        objective=outcome.objective,
        status=outcome.status,
        bound=outcome.bound,
        gap=outcome.gap,
        opened=opened,
        seconds={"model": t1 - t0, "solve": t2 - t1, "solve_cpu": cpu2 - cpu1},
        start_value=None if start is None else float(milp.objective @ start) + milp.constant,
        size={
            "rows": len(rt.row_weight),
            "candidates": len(rt.candidates),
            "nonzeros": int(rt.reach.nnz),
            "constraints": milp.n_rows,
            "variables": milp.n_cols,
        },
    )


# --------------------------------------------------------------------------- solver settings


def solve_with_settings(
    milp: Milp,
    solver: str,
    time_limit_s: float,
    settings: dict[str, str],
    start: np.ndarray | None = None,
) -> SolveOutcome:
    """Prototype: solve with extra solver settings carecheck does not expose (yet).

    ``settings`` are HiGHS options (e.g. ``presolve=off``) or CBC command-line options (e.g.
    ``feas=off``, passed as ``feas off``); ``start`` is a feasible point given to the solver as
    a MIP start. Status: ``optimal`` only on a proof at gap 0, else ``time_limit``; the
    objective is the MILP's value at the returned point.
    """
    began = time.perf_counter()
    if solver == "highs":
        status, values, bound = _highs_with(milp, time_limit_s, settings, start)
    else:
        status, values, bound = _cbc_with(milp, time_limit_s, settings, start)
    objective = None if values is None else float(milp.objective @ values) + milp.constant
    if bound is not None:
        bound += milp.constant
    if status == "optimal":
        bound = objective
    return SolveOutcome(
        status=status,
        values=values,
        objective=objective,
        bound=bound,
        gap=relative_gap(objective, bound),
        seconds=time.perf_counter() - began,
        solver=solver,
    )


def _highs_with(
    milp: Milp, time_limit_s: float, settings: dict[str, str], start: np.ndarray | None
):
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    for key, value in {
        "mip_rel_gap": 0.0,
        "mip_abs_gap": 0.0,
        "time_limit": time_limit_s,
        **settings,
    }.items():
        h.setOptionValue(key, _typed(value))
    inf = highspy.kHighsInf
    csc = milp.matrix.tocsc()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = milp.n_cols, milp.n_rows
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = milp.objective, milp.lower, milp.upper
    lp.row_lower_ = np.where(np.isfinite(milp.row_lower), milp.row_lower, -inf)
    lp.row_upper_ = np.where(np.isfinite(milp.row_upper), milp.row_upper, inf)
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data.astype(float)
    kinds = highspy.HighsVarType
    lp.integrality_ = [kinds.kInteger if f else kinds.kContinuous for f in milp.integer]
    h.passModel(lp)
    if start is not None:
        solution = highspy.HighsSolution()
        solution.col_value = start.tolist()
        solution.value_valid = True
        h.setSolution(solution)
    h.run()
    info = h.getInfo()
    if info.primal_solution_status != 2:
        return "no_solution", None, None
    values = np.asarray(h.getSolution().col_value, dtype=float)
    proved = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return ("optimal" if proved else "time_limit"), values, float(info.mip_dual_bound)


def _cbc_with(milp: Milp, time_limit_s: float, settings: dict[str, str], start: np.ndarray | None):
    import pulp

    from carecheck.solve import _cbc_path, to_pulp

    problem, variables = to_pulp(milp)
    if start is not None:
        for variable, value in zip(variables, start.tolist(), strict=True):
            variable.setInitialValue(round(value) if variable.cat != "Continuous" else value)
    with tempfile.TemporaryDirectory(prefix="carecheck-bench-") as tmp:
        log = Path(tmp) / "cbc.log"
        options = [f"{k} {v}" for k, v in settings.items()]
        solver = pulp.COIN_CMD(
            path=_cbc_path(),
            msg=False,
            timeLimit=time_limit_s,
            gapRel=0,
            gapAbs=0,
            logPath=str(log),
            options=options,
        )
        problem.solve(solver)
        text = log.read_text(errors="replace")
    if problem.sol_status in (pulp.LpSolutionNoSolutionFound, pulp.LpSolutionInfeasible):
        return "no_solution", None, None
    values = np.array([v.varValue or 0.0 for v in variables])
    proved = "Result - Optimal solution found" in text
    bound = re.findall(r"^Upper bound:\s+(\S+)", text, flags=re.MULTILINE)
    return ("optimal" if proved else "time_limit"), values, (float(bound[-1]) if bound else None)


def _typed(value: object) -> object:
    """'off' stays a string, '2' becomes 2, '0.5' becomes 0.5 (HiGHS options are typed)."""
    if not isinstance(value, str):
        return value
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return {"true": True, "false": False}.get(value.lower(), value)


# --------------------------------------------------------------------------- MIP start


def greedy_start(reduced: ReducedProblem, count: int, swap_seconds: float = 10.0) -> np.ndarray:
    """A MIP start for a single-type, exactly-``count`` MCLP: greedy, then improving swaps.

    Greedy opens, ``count`` times, the candidate covering the most still-uncovered weight;
    then, for at most ``swap_seconds``, the best exchange (close one, open another) is made
    while it covers more. Returns the MILP values (x, then y = min(1, reach @ x)).
    """
    (rt,) = reduced.types
    reach = sp.csr_matrix(rt.reach, dtype=np.float64)
    cols = sp.csr_matrix(reach.T)
    weight = np.asarray(rt.row_weight, dtype=np.float64)
    opened = np.zeros(reach.shape[1], dtype=bool)
    hits = np.zeros(reach.shape[0])
    for _ in range(min(count, reach.shape[1])):
        gain = cols @ (weight * (hits == 0))
        gain[opened] = -np.inf
        j = int(np.argmax(gain))
        opened[j] = True
        hits += reach[:, j].toarray().ravel()
    deadline = time.perf_counter() + swap_seconds
    while time.perf_counter() < deadline:
        move = _best_swap(reach, cols, weight, hits, opened)
        if move is None:
            break
        out, into = move
        opened[out], opened[into] = False, True
        hits += reach[:, into].toarray().ravel() - reach[:, out].toarray().ravel()
    return np.concatenate([opened.astype(float), np.minimum(hits, 1.0)])


def _best_swap(reach, cols, weight, hits, opened) -> tuple[int, int] | None:
    gain = cols @ (weight * (hits == 0))  # what a closed candidate would newly cover
    alone = weight * (hits == 1)  # rows covered by exactly one open site
    best, move = 1e-9, None
    for j in np.flatnonzero(opened):
        rows = cols.indices[cols.indptr[j] : cols.indptr[j + 1]]
        delta = gain + reach[rows].T @ alone[rows] - alone[rows].sum()
        delta[opened] = -np.inf
        k = int(np.argmax(delta))
        if delta[k] > best:
            best, move = float(delta[k]), (int(j), k)
    return move
