"""Solve a :class:`~carecheck.model.Milp` with CBC (through PuLP) or HiGHS (highspy).

The returned status never trusts a solver's headline: PuLP calls a CBC run stopped at its time
limit "Optimal", and HiGHS stops at a relative gap of 1e-4 by default. Status here is
``optimal`` only when the solver proved optimality within the requested gap (default 0),
``time_limit`` when it stopped with an incumbent (bound and gap reported), ``infeasible`` or
``no_solution``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from carecheck.model import INF, Milp


class Status(StrEnum):
    """How a solve ended (the value is what result.json and the tables show)."""

    OPTIMAL = "optimal"  # proven within the MIP gap
    TIME_LIMIT = "time_limit"  # stopped at the limit with a plan
    INFEASIBLE = "infeasible"  # no plan meets the constraints
    NO_SOLUTION = "no_solution"  # stopped before any plan was found


STATUSES = tuple(s.value for s in Status)


@dataclass(frozen=True)
class SolverOptions:
    """Which solver and when to stop. ``mip_gap`` is relative; 0 asks for a proof."""

    name: str = "cbc"
    time_limit_s: float | None = None
    mip_gap: float = 0.0
    threads: int | None = None
    log_path: Path | None = None
    # CBC's feasibility pump and its integer preprocessing rarely help covering models and cost
    # time: off by default. Measured on an idle 2-core machine: feasibility pump off, 20,000 ×
    # 2,000 MCLP 5.7 → 2.2 s; then preprocessing off, 2.2 → 1.2 s, 100,000 × 5,000 19.4 →
    # 10.2 s, Máximo Manhattan p = 50 7.1 → 2.5 s, p = 70 > 300 s → 87 s (proved optimal)
    cbc_options: tuple[str, ...] = ("feas off", "preprocess off")
    # extra HiGHS options as (name, value) pairs, e.g. (("presolve", "off"),) — for experiments
    highs_options: tuple[tuple[str, bool | int | float | str], ...] = ()


@dataclass(frozen=True)
class SolveOutcome:
    """What the solver found. ``objective`` and ``bound`` include the MILP's constant."""

    status: Status
    values: np.ndarray | None
    objective: float | None
    bound: float | None
    gap: float | None
    seconds: float
    solver: str


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|bound − objective| / max(|objective|, 1e-10), None when either is unknown."""
    if objective is None or bound is None or not math.isfinite(bound):
        return None
    return abs(bound - objective) / max(abs(objective), 1e-10)


def solve_milp(
    milp: Milp, options: SolverOptions | None = None, *, start: np.ndarray | None = None
) -> SolveOutcome:
    """Solve ``milp`` (a maximisation) and report an honest status.

    Parameters
    ----------
    milp
        The model, maximised.
    options
        Solver, time limit, MIP gap and threads (default: CBC with its defaults).
    start
        A feasible point (all columns) given to the solver as a MIP start; if the solver stops
        with nothing better, the start is the answer (status ``time_limit``).

    Returns
    -------
    SolveOutcome
        The :class:`Status`, the column values, objective and bound (the MILP's constant
        included) and the gap.
    """
    options = options or SolverOptions()
    began = time.perf_counter()
    empty = np.diff(milp.matrix.indptr) == 0
    if np.any(empty & ((milp.row_lower > 1e-9) | (milp.row_upper < -1e-9))):
        # a constraint with no variables that 0 does not meet: solvers may silently drop it
        return SolveOutcome(Status.INFEASIBLE, None, None, None, None, 0.0, options.name)
    if options.name == "cbc":
        outcome = _solve_cbc(milp, options, start)
    elif options.name == "highs":
        outcome = _solve_highs(milp, options, start)
    else:
        raise ValueError(f"unknown solver {options.name!r}; use 'cbc' or 'highs'")
    status, values, objective, bound = outcome
    if start is not None and status in ("time_limit", "no_solution"):
        known = float(milp.objective @ start)
        if objective is None or known > objective:
            status, values, objective = "time_limit", np.asarray(start, float), known
    if values is not None:
        values = values.copy()
        values[milp.integer] = np.round(values[milp.integer])
    if objective is not None:
        objective += milp.constant
    if bound is not None:
        bound += milp.constant
    if status == "optimal" and bound is None:
        bound = objective
    return SolveOutcome(
        status=Status(status),
        values=values,
        objective=objective,
        bound=bound,
        gap=relative_gap(objective, bound) if status in ("optimal", "time_limit") else None,
        seconds=time.perf_counter() - began,
        solver=options.name,
    )


# --------------------------------------------------------------------------- CBC via PuLP


def _cbc_path() -> str:
    from pulp.apis import coin_api

    path = coin_api.COIN_CMD.executableExtension(coin_api.pulp_cbc_path)
    if os.path.exists(path) and not os.access(path, os.X_OK):
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def to_pulp(milp: Milp, name: str = "carecheck"):
    """The MILP as a PuLP problem; returns (problem, variables)."""
    import pulp

    problem = pulp.LpProblem(name, pulp.LpMaximize)
    variables = [
        problem.add_variable(
            f"v{k}",
            lowBound=float(milp.lower[k]),
            upBound=float(milp.upper[k]),
            cat=pulp.LpBinary
            if milp.integer[k] and milp.upper[k] == 1
            else (pulp.LpInteger if milp.integer[k] else pulp.LpContinuous),
        )
        for k in range(milp.n_cols)
    ]
    nz = np.flatnonzero(milp.objective)
    problem.setObjective(
        pulp.LpAffineExpression(
            zip([variables[k] for k in nz], milp.objective[nz].tolist(), strict=True)
        )
    )
    matrix = milp.matrix
    indptr, indices, data = matrix.indptr, matrix.indices.tolist(), matrix.data.tolist()
    for row in range(milp.n_rows):
        lo, hi = indptr[row], indptr[row + 1]
        expr = pulp.LpAffineExpression(
            zip([variables[k] for k in indices[lo:hi]], data[lo:hi], strict=True)
        )
        lower, upper = float(milp.row_lower[row]), float(milp.row_upper[row])
        if lower == upper:
            problem.addConstraint(
                pulp.LpConstraint(expr, pulp.LpConstraintEQ, rhs=lower), name=f"r{row}"
            )
            continue
        if upper < INF:
            problem.addConstraint(
                pulp.LpConstraint(expr, pulp.LpConstraintLE, rhs=upper), name=f"r{row}u"
            )
        if lower > -INF:
            problem.addConstraint(
                pulp.LpConstraint(expr, pulp.LpConstraintGE, rhs=lower), name=f"r{row}l"
            )
    return problem, variables


_CBC_RESULT = re.compile(r"^Result - (.*)$", re.MULTILINE)
_CBC_OBJECTIVE = re.compile(r"^Objective value:\s+(\S+)", re.MULTILINE)
_CBC_BOUND = re.compile(r"^(?:Lower|Upper) bound:\s+(\S+)", re.MULTILINE)
_CBC_PROGRESS = re.compile(
    r"best objective (?P<objective>\S+) \(best possible (?P<bound>[^),\s]+)"
    r"|(?P<objective2>\S+) best solution, best possible (?P<bound2>[^\s(]+)"
)


def _solve_cbc(milp: Milp, options: SolverOptions, start: np.ndarray | None = None):
    import pulp

    if milp.n_cols == 0:
        return "optimal", np.zeros(0), 0.0, 0.0
    problem, variables = to_pulp(milp)
    if os.name == "nt":  # PuLP's CBC warm start needs files kept in the working folder there
        start = None
    if start is not None:
        for variable, value, whole in zip(variables, start.tolist(), milp.integer, strict=True):
            variable.setInitialValue(round(value) if whole else value)
    with tempfile.TemporaryDirectory(prefix="carecheck-cbc-") as tmp:
        log = Path(tmp) / "cbc.log"
        solver = pulp.COIN_CMD(
            path=_cbc_path(),
            msg=False,
            timeLimit=options.time_limit_s,
            gapRel=options.mip_gap,
            gapAbs=0 if options.mip_gap == 0 else None,
            threads=options.threads,
            logPath=str(log),
            options=list(options.cbc_options),
            warmStart=start is not None,
        )
        solver.tmpDir = tmp  # PuLP's model, start and solution files: gone with the folder
        problem.solve(solver)
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    if options.log_path is not None:
        Path(options.log_path).write_text(text, encoding="utf-8")
    result = _CBC_RESULT.findall(text)
    result_line = result[-1] if result else ""
    sol_status = problem.sol_status
    if sol_status in (pulp.LpSolutionInfeasible,) or "infeasible" in result_line.lower():
        return "infeasible", None, None, None
    if sol_status == pulp.LpSolutionNoSolutionFound or sol_status == pulp.LpSolutionUnbounded:
        return "no_solution", None, None, None
    values = np.array([v.varValue or 0.0 for v in variables])
    objective = float(milp.objective @ values)
    bound = _cbc_bound(text, objective)
    proved = sol_status == pulp.LpSolutionOptimal and result_line.startswith("Optimal")
    if proved:
        # progress lines hold stale bounds; a proof at gap 0 closes the bound on the objective,
        # and a proof within a gap is bounded by the final summary's line when CBC prints one
        summary = _CBC_BOUND.findall(text) and _CBC_OBJECTIVE.findall(text)
        if options.mip_gap == 0 or not summary or bound is None:
            bound = objective
        return "optimal", values, objective, bound
    return "time_limit", values, objective, bound


def _cbc_bound(text: str, objective: float) -> float | None:
    """CBC's best bound on the maximised objective, read from its log.

    The final summary prints "Objective value" and "Lower bound" in one sense; when CBC stops
    on a limit it may print only progress lines ("best solution X, best possible Y" or
    "best objective X (best possible Y)") in its internal sense, minimising the negated
    objective. Either way the sense is read off by comparing the printed objective with
    ``objective``.
    """
    pairs: list[tuple[float, float]] = []
    bounds, printed = _CBC_BOUND.findall(text), _CBC_OBJECTIVE.findall(text)
    try:
        if bounds and printed:
            pairs.append((float(printed[-1]), float(bounds[-1])))
        else:
            for match in _CBC_PROGRESS.finditer(text):
                shown = match.group("objective") or match.group("objective2")
                bound = match.group("bound") or match.group("bound2")
                pairs.append((float(shown), float(bound)))
    except ValueError:
        return None
    if not pairs:
        return None
    shown, bound = pairs[-1]
    if abs(shown) >= 1e49:  # CBC prints 1e+50 for "no solution yet"
        return None
    flipped = abs(shown + objective) < abs(shown - objective)
    return -bound if flipped else bound


# --------------------------------------------------------------------------- HiGHS


@contextlib.contextmanager
def stdout_silenced() -> Iterator[None]:
    """Send what C code writes to file descriptor 1 to the null device for a moment."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no real stdout (e.g. captured)
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w", encoding="utf-8") as null:
            os.dup2(null.fileno(), fd)
            try:
                yield
            finally:
                os.dup2(saved, fd)
    finally:
        os.close(saved)


_highs_threads = [-1]  # threads this process's HiGHS runs last asked for: -1 none yet, 0 auto


def match_highs_scheduler(highspy: Any, threads: int | None) -> None:
    """Let a HiGHS run use ``threads`` even after a run with another count in this process.

    HiGHS starts one thread scheduler per process, sized by the first run; a later run asking
    for a different number of threads fails at once ("global scheduler has already been
    initialized"), with no solution. Seen: the swap search's merges (one thread), then the MILP
    with ``solver.threads: 2``. The scheduler is rebuilt only when the count asked for changes;
    a run that asks for no count (0: HiGHS's choice) accepts any scheduler.
    """
    asked = int(threads or 0)
    if asked and _highs_threads[0] not in (-1, asked):
        highspy.Highs.resetGlobalScheduler(True)
    _highs_threads[0] = asked


def _solve_highs(milp: Milp, options: SolverOptions, start: np.ndarray | None = None):
    import highspy

    if milp.n_cols == 0:
        return "optimal", np.zeros(0), 0.0, 0.0
    h = _highs_with_options(highspy, options)
    h.passModel(_highs_lp(highspy, milp))
    match_highs_scheduler(highspy, options.threads)
    if start is not None:
        given = highspy.HighsSolution()
        given.col_value = np.asarray(start, float).tolist()
        given.value_valid = True
        h.setSolution(given)
    h.run()
    return _highs_outcome(highspy, h, milp)


def _highs_with_options(highspy: Any, options: SolverOptions) -> Any:
    """A silent HiGHS instance with the gap, time limit, threads, log and extra options set."""
    with stdout_silenced():  # the constructor prints a banner before options can stop it
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", float(options.mip_gap))
    if options.mip_gap == 0:
        h.setOptionValue("mip_abs_gap", 0.0)
    if options.time_limit_s is not None:
        h.setOptionValue("time_limit", float(options.time_limit_s))
    if options.threads is not None:
        h.setOptionValue("threads", int(options.threads))
    if options.log_path is not None:
        h.setOptionValue("log_file", str(options.log_path))
    for key, value in options.highs_options:
        if h.setOptionValue(key, value) != highspy.HighsStatus.kOk:
            raise ValueError(f"HiGHS refused the option {key} = {value!r}")
    return h


def _highs_lp(highspy: Any, milp: Milp, *, relaxed: bool = False) -> Any:
    """The MILP as a HiGHS model: maximised with integrality per column, or (``relaxed``)
    its LP relaxation minimising the negated objective; column-wise matrix."""
    lp = highspy.HighsLp()
    lp.num_col_ = milp.n_cols
    lp.num_row_ = milp.n_rows
    lp.col_cost_ = -milp.objective.astype(float) if relaxed else milp.objective.astype(float)
    lp.col_lower_ = milp.lower.astype(float)
    lp.col_upper_ = milp.upper.astype(float)
    lp.row_lower_ = np.where(np.isfinite(milp.row_lower), milp.row_lower, -highspy.kHighsInf)
    lp.row_upper_ = np.where(np.isfinite(milp.row_upper), milp.row_upper, highspy.kHighsInf)
    lp.sense_ = highspy.ObjSense.kMinimize if relaxed else highspy.ObjSense.kMaximize
    csc = milp.matrix.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data.astype(float)
    if relaxed:
        return lp
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous
        for flag in milp.integer
    ]
    return lp


def lp_relaxation(
    milp: Milp, *, time_limit_s: float | None, threads: int | None, method: str = "ipm"
) -> tuple[np.ndarray, np.ndarray] | None:
    """Primal values and row duals of the MILP's LP relaxation (HiGHS, minimising the negated
    objective, i.e. the cost of a model that maximises ``-cost``).

    Parameters
    ----------
    milp
        The model; its integrality is dropped.
    time_limit_s
        Seconds for HiGHS (at least 1); None for none.
    threads
        HiGHS threads; None for HiGHS's choice.
    method
        HiGHS's ``solver`` option: ``ipm`` (with crossover, so a vertex) or ``simplex``.

    Returns
    -------
    tuple of numpy.ndarray or None
        Column values and row duals, or None when HiGHS reports no optimal LP (e.g. at its
        time limit).
    """
    import highspy

    with stdout_silenced():  # the constructor prints a banner before options can stop it
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("solver", method)
    if time_limit_s is not None:
        h.setOptionValue("time_limit", float(max(time_limit_s, 1.0)))
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    lp = _highs_lp(highspy, milp, relaxed=True)
    h.passModel(lp)
    match_highs_scheduler(highspy, threads)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    solution = h.getSolution()
    return np.asarray(solution.col_value, dtype=float), np.asarray(solution.row_dual, dtype=float)


def _highs_outcome(highspy: Any, h: Any, milp: Milp):
    """Status, values, objective and bound of a finished HiGHS run (status never trusted)."""
    model_status = h.getModelStatus()
    info = h.getInfo()
    status_enum = highspy.HighsModelStatus
    if model_status in (status_enum.kInfeasible, status_enum.kUnboundedOrInfeasible):
        return "infeasible", None, None, None
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if not has_solution:
        return "no_solution", None, None, None
    values = np.asarray(h.getSolution().col_value, dtype=float)
    objective = float(milp.objective @ values)
    bound: float | None = float(info.mip_dual_bound) if milp.integer.any() else objective
    if bound is not None and not math.isfinite(bound):
        bound = None
    if model_status == status_enum.kOptimal:
        return "optimal", values, objective, bound if bound is not None else objective
    return "time_limit", values, objective, bound
