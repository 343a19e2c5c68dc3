"""CBC handed the model from the arrays: the same file, command line, start and reading of the
answer as PuLP 3.3's COIN_CMD on :func:`~carecheck.solve.to_pulp`'s problem, and the same
solves."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pulp
import pytest
import scipy.sparse as sp

from carecheck.heuristic import mip_start
from carecheck.model import INF, Milp, build_milp, problem_from_reach, reduce_problem
from carecheck.solve import (
    SolverOptions,
    _cbc_arguments,
    _cbc_path,
    _read_cbc_solution,
    _solve_cbc,
    _write_start,
    solve_milp,
    to_pulp,
    write_mps,
)

SEEDS = range(8)


def random_milp(seed: int, *, zero_objective: bool = False) -> tuple[Milp, np.ndarray]:
    """A small MILP of every kind of row and column, and a feasible point of it.

    Rows: equality, ranged, ≤ only, ≥ only, free, empty; columns: binary, integer fixed at 1,
    general integer (bounded or not), continuous (bounded, unbounded above, with a negative or
    no lower bound, fixed); coefficients fractional, large, negative; some objective entries 0.
    Every column has an entry in some row, so PuLP writes it too.
    """
    rng = np.random.default_rng(seed)
    n_cols, n_rows = 24, 18
    kind = rng.integers(0, 8, n_cols)  # the column kinds above, in that order
    integer = kind <= 3
    lower = np.choose(kind, [0, 1, 0, 0, 0, 0, -2.5, 1.75]).astype(float)
    upper = np.choose(kind, [1, 1, 6, INF, 2.5, INF, 4, 1.75]).astype(float)
    lower[kind == 6] = np.where(rng.random(int((kind == 6).sum())) < 0.5, -2.5, -INF)
    point = np.where(integer, rng.integers(0, 7, n_cols), rng.uniform(-2.5, 3, n_cols))
    point = np.clip(point, lower, np.minimum(upper, 6.0))
    dense = np.where(rng.random((n_rows, n_cols)) < 0.25, 1.0, 0.0)
    dense *= rng.choice([1.0, -1.0, 0.5, 1 / 3, -3.25, 1e7, 123456.789, 2e-5], (n_rows, n_cols))
    dense[n_rows - 1] = 0.0  # an empty row
    row_kind = np.arange(n_rows) % 5  # equality, ranged, ≤, ≥, free
    bounded = np.flatnonzero(row_kind[:-1] != 4)
    dense[bounded[np.arange(n_cols) % len(bounded)], np.arange(n_cols)] += 1.0  # none left out
    activity = dense @ point
    slack = rng.integers(0, 3, n_rows)
    row_lower = np.choose(row_kind, [activity, activity - slack, -INF, activity - slack, -INF])
    row_upper = np.choose(row_kind, [activity, activity + slack + 1, activity + slack, INF, INF])
    row_lower[n_rows - 1], row_upper[n_rows - 1] = -1.0, 2.0
    objective = np.where(rng.random(n_cols) < 0.3, 0.0, rng.normal(size=n_cols) * 10)
    # bounded: unbounded columns pay for going where no bound stops them
    objective[~np.isfinite(upper)] = -np.abs(objective[~np.isfinite(upper)]) - 1
    objective[~np.isfinite(lower)] = np.abs(objective[~np.isfinite(lower)]) + 1
    milp = Milp(
        objective=np.zeros(n_cols) if zero_objective else objective,
        integer=integer,
        lower=lower,
        upper=upper,
        matrix=sp.csr_matrix(dense),
        row_lower=row_lower,
        row_upper=row_upper,
        row_group=np.zeros(n_rows, dtype=np.int64),
        groups=(("rows",),),
        x_offset=(0,),
    )
    return milp, point


def covering_milp(seed: int, n_rows: int = 300, n_cand: int = 60, p: int = 5, density=0.05):
    rng = np.random.default_rng(seed)
    reach = sp.csr_matrix(rng.random((n_rows, n_cand)) < density)
    reduced = reduce_problem(problem_from_reach(reach, rng.integers(1, 50, n_rows) * 1.0, p))
    return reduced, build_milp(reduced)


def pulp_files(milp: Milp, folder: Path, start: np.ndarray | None = None):
    """PuLP's MPS file (and start file) of to_pulp's problem, as COIN_CMD writes them."""
    problem, variables = to_pulp(milp)
    vs, names, rows, _ = problem.writeMPS(str(folder / "pulp.mps"), rename=1)
    if start is not None:
        for variable, value, whole in zip(variables, start.tolist(), milp.integer, strict=True):
            variable.setInitialValue(round(value) if whole else value)
        pulp.COIN_CMD(path=_cbc_path(), msg=False).writesol(
            str(folder / "pulp.mst"), problem, vs, names, rows
        )
    return problem, variables, vs, names, rows


def pulp_solve(milp: Milp, options: SolverOptions, start: np.ndarray | None = None):
    """carecheck's CBC solve before the arrays: to_pulp, PuLP's COIN_CMD, the same status rules."""
    problem, variables = to_pulp(milp)
    if start is not None:
        for variable, value, whole in zip(variables, start.tolist(), milp.integer, strict=True):
            variable.setInitialValue(round(value) if whole else value)
    with tempfile.TemporaryDirectory() as tmp:
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
        solver.tmpDir = tmp
        problem.solve(solver)
        text = log.read_text(encoding="utf-8", errors="replace")
    result = [line for line in text.splitlines() if line.startswith("Result - ")]
    if problem.sol_status == pulp.LpSolutionInfeasible or "infeasible" in "".join(result).lower():
        return "infeasible", None, None
    if problem.sol_status in (pulp.LpSolutionNoSolutionFound, pulp.LpSolutionUnbounded):
        return "no_solution", None, None
    values = np.array([v.varValue or 0.0 for v in variables])
    proved = problem.sol_status == pulp.LpSolutionOptimal and result[-1].startswith("Result - Opt")
    return ("optimal" if proved else "time_limit"), values, float(milp.objective @ values)


# --------------------------------------------------------------------------- the files


@pytest.mark.parametrize("zero_objective", [False, True], ids=["objective", "zero objective"])
@pytest.mark.parametrize("seed", SEEDS)
def test_mps_file_is_pulps_byte_for_byte(tmp_path, seed, zero_objective):
    milp, _ = random_milp(seed, zero_objective=zero_objective)
    order = write_mps(milp, tmp_path / "ours.mps")
    pulp_files(milp, tmp_path)
    assert (tmp_path / "ours.mps").read_bytes() == (tmp_path / "pulp.mps").read_bytes()
    expected = np.argsort([f"v{k}" for k in range(milp.n_cols)], kind="stable")
    assert order.tolist() == ([-1] if zero_objective else []) + expected.tolist()


def test_mps_file_of_a_covering_model_is_pulps(tmp_path):
    _, milp = covering_milp(3)
    write_mps(milp, tmp_path / "ours.mps")
    pulp_files(milp, tmp_path)
    assert (tmp_path / "ours.mps").read_bytes() == (tmp_path / "pulp.mps").read_bytes()


def test_repeated_entries_are_summed_as_scipy_means(tmp_path):
    milp, _ = random_milp(0)
    coo = milp.matrix.tocoo()
    doubled = sp.csr_matrix(
        (np.tile(coo.data, 2) / 2, (np.tile(coo.row, 2), np.tile(coo.col, 2))), coo.shape
    )
    doubled.has_canonical_format = False  # as scipy leaves a matrix built with repeats
    again = replace(milp, matrix=doubled)
    write_mps(milp, tmp_path / "once.mps")
    write_mps(again, tmp_path / "twice.mps")
    assert (tmp_path / "once.mps").read_bytes() == (tmp_path / "twice.mps").read_bytes()


def test_a_column_in_nothing_keeps_its_bounds_and_integrality(tmp_path):
    """PuLP leaves such a column out of the file (and reports it 0); it is written here with a
    zero objective entry, so CBC returns a value within its bounds."""
    milp = Milp(
        objective=np.array([1.0, 0.0, 0.0]),
        integer=np.array([True, True, False]),
        lower=np.array([0.0, 2.0, -1.0]),
        upper=np.array([1.0, 3.0, -0.5]),
        matrix=sp.csr_matrix(np.array([[1.0, 0.0, 0.0]])),
        row_lower=np.array([-INF]),
        row_upper=np.array([1.0]),
        row_group=np.zeros(1, dtype=np.int64),
        groups=(("rows",),),
        x_offset=(0,),
    )
    write_mps(milp, tmp_path / "ours.mps")
    text = (tmp_path / "ours.mps").read_text(encoding="ascii")
    assert "    X0000001  OBJ        0.000000000000e+00\n" in text
    assert " LO BND       X0000001   2.000000000000e+00\n" in text
    outcome = solve_milp(milp)
    assert outcome.status == "optimal" and outcome.values is not None
    assert outcome.values[0] == 1 and outcome.values[1] in (2, 3)
    assert -1.0 <= outcome.values[2] <= -0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_start_file_is_pulps_byte_for_byte(tmp_path, seed):
    milp, point = random_milp(seed, zero_objective=seed % 2 == 1)
    start = point + np.where(milp.integer, 0.3, 0.0)  # integers rounded, as PuLP does
    order = write_mps(milp, tmp_path / "ours.mps")
    _write_start(tmp_path / "ours.mst", start, milp, order)
    pulp_files(milp, tmp_path, start)
    assert (tmp_path / "ours.mst").read_bytes() == (tmp_path / "pulp.mst").read_bytes()


@pytest.mark.parametrize(
    "options",
    [
        SolverOptions(),
        SolverOptions(time_limit_s=7.5, mip_gap=0.01, threads=2),
        SolverOptions(time_limit_s=60, cbc_options=("feas off", "cuts  off", "maxNodes 9")),
    ],
    ids=["default", "limits", "switches"],
)
@pytest.mark.parametrize("with_start", [False, True], ids=["", "start"])
def test_command_line_is_pulps(tmp_path, monkeypatch, options, with_start):
    milp, point = random_milp(1)
    problem, variables = to_pulp(milp)
    for variable, value in zip(variables, point.tolist(), strict=True):
        variable.setInitialValue(value)
    seen: list[list[str]] = []

    class Recorded:  # stands in for CBC: records PuLP's arguments, writes no solution
        def __init__(self, args, **_):
            seen.append(list(args))

        def wait(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    solver = pulp.COIN_CMD(
        path=_cbc_path(),
        msg=False,
        timeLimit=options.time_limit_s,
        gapRel=options.mip_gap,
        gapAbs=0 if options.mip_gap == 0 else None,
        threads=options.threads,
        logPath=str(tmp_path / "cbc.log"),
        options=list(options.cbc_options),
        warmStart=with_start,
    )
    solver.tmpDir = str(tmp_path)
    with pytest.raises(pulp.PulpSolverError):
        problem.solve(solver)
    args = seen[0]
    model = next(a for a in args if a.endswith(".mps"))
    start = next((a for a in args if a.endswith(".mst")), None)
    solution = next(a for a in args if a.endswith(".sol"))
    ours = _cbc_arguments(
        args[0], Path(model), None if start is None else Path(start), Path(solution), options
    )
    assert ours == args
    assert (start is not None) == with_start


SOLUTION_LINES = (
    "      0 C0000000               1                      -0\n"
    "      1 C0000001               3                       2\n"
    "      0 X0000000               1                       1\n"
    "**    1 X0000001             2.5                      -2\n"
    "      2 X0000002          -1e-05                       0\n"
)


@pytest.mark.parametrize(
    "first",
    [
        "Optimal - objective value 5.00000000",
        "Infeasible - objective value 0.00000000",
        "Integer infeasible - objective value 0.00000000",
        "Unbounded - objective value 0",
        "Stopped on time - objective value 3.00000000",
        "Stopped on nodes - objective value 3.00000000",
        "Stopped on iterations or time - objective value 3",
        "Stopped on time (no integer solution - continuous used) - objective value 3",
        "Stopped on difficulties - objective value 3",
    ],
)
def test_solution_file_is_read_as_pulp_reads_it(tmp_path, first):
    path = tmp_path / "model.sol"
    path.write_text(first + "\n" + SOLUTION_LINES + "\n      3 X0000003 7 0\n", encoding="ascii")
    status, values = _read_cbc_solution(path, 4)
    problem = pulp.LpProblem("read", pulp.LpMaximize)
    vs = [problem.add_variable(f"v{k}") for k in range(4)]
    names = {v.name: f"X{k:07d}" for k, v in enumerate(vs)}
    rows = {"r0": "C0000000", "r1": "C0000001"}
    _, read, *_, sol_status = pulp.COIN_CMD(path=_cbc_path(), msg=False).readsol_MPS(
        str(path), problem, vs, names, rows
    )
    as_pulp = {
        pulp.LpSolutionOptimal: "optimal",
        pulp.LpSolutionIntegerFeasible: "feasible",
        pulp.LpSolutionInfeasible: "infeasible",
        pulp.LpSolutionUnbounded: "unbounded",
        pulp.LpSolutionNoSolutionFound: "none",
    }
    assert status == as_pulp[sol_status]
    assert values.tolist() == [read[f"v{k}"] for k in range(4)] == [1.0, 2.5, -1e-05, 0.0]


# --------------------------------------------------------------------------- the solves


@pytest.mark.parametrize("with_start", [False, True], ids=["", "start"])
@pytest.mark.parametrize("seed", SEEDS)
def test_solves_as_the_pulp_path(seed, with_start):
    milp, point = random_milp(seed, zero_objective=seed == 5)
    start = point if with_start else None
    options = SolverOptions()
    status, values, objective, _ = _solve_cbc(milp, options, start)
    expected = pulp_solve(milp, options, start)
    assert (status, objective) == (expected[0], expected[2])
    assert (values is None) == (expected[1] is None)
    if values is not None:
        assert np.array_equal(values, expected[1])


@pytest.mark.parametrize("seed", [1, 2])
def test_covering_model_solves_as_the_pulp_path(seed):
    _, milp = covering_milp(seed, n_rows=600, n_cand=120, p=8)
    status, values, objective, _ = _solve_cbc(milp, SolverOptions())
    assert status == "optimal"
    expected = pulp_solve(milp, SolverOptions())
    assert (status, objective) == (expected[0], expected[2])
    assert np.array_equal(values, expected[1])


def test_a_folder_with_a_space_and_chinese_characters_works(tmp_path, monkeypatch):
    folder = tmp_path / "临时 文件夹 (cbc)"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    used: list[list[str]] = []
    folders: list[Path] = []
    real = subprocess.run

    def run(args, **kwargs):
        used.append(list(args))
        folders.append(Path(kwargs["cwd"]))
        return real(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    reduced, milp = covering_milp(4)
    start = mip_start(reduced, milp, seconds=1.0, rounds=5).values
    log = folder / "日志.log"
    outcome = solve_milp(milp, SolverOptions(log_path=log), start=start)
    assert outcome.status == "optimal"
    assert outcome.objective == pytest.approx(solve_milp(milp).objective)
    # CBC runs in a temporary folder inside the one asked for, given the files' names only:
    # no argument but the binary's path holds a folder (nor its Chinese characters)
    assert used and folders[0].parent == folder
    assert used[0][1] == "model.mps" and "start.mst" in used[0]
    assert all("/" not in a and "\\" not in a and "临时" not in a for a in used[0][1:])
    assert "MIPStart values read" in log.read_text(encoding="utf-8")


def test_warm_start_is_accepted_and_kept(tmp_path):
    reduced, milp = covering_milp(7)
    found = mip_start(reduced, milp, seconds=1.0, rounds=5)
    log = tmp_path / "cbc.log"
    outcome = solve_milp(milp, SolverOptions(log_path=log), start=found.values)
    text = log.read_text(encoding="utf-8")
    assert f"MIPStart values read for {milp.n_cols} variables" in text
    assert "MIPStart provided solution with cost" in text
    assert outcome.status == "optimal"
    assert outcome.objective >= found.objective - 1e-9


def test_time_limited_solve_reports_time_limit_and_a_bound():
    """A covering model CBC needs far more than a second to prove; a start makes sure there
    is a plan, the log gives the bound."""
    reduced, milp = covering_milp(7, n_rows=3000, n_cand=300, p=12, density=0.02)
    start = mip_start(reduced, milp, seconds=1.0, rounds=5).values
    outcome = solve_milp(milp, SolverOptions(time_limit_s=1.0), start=start)
    assert outcome.status == "time_limit"
    assert outcome.objective is not None and outcome.bound is not None
    assert outcome.bound > outcome.objective and outcome.gap is not None and outcome.gap > 0
