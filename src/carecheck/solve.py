"""Solve a :class:`~carecheck.model.Milp` with CBC (PuLP's bundled binary, handed an MPS file
written from the arrays) or HiGHS (highspy).

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
import subprocess
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


# --------------------------------------------------------------------------- CBC


def _cbc_path() -> str:
    from pulp.apis import coin_api

    path = coin_api.COIN_CMD.executableExtension(coin_api.pulp_cbc_path)
    if os.path.exists(path) and not os.access(path, os.X_OK):
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def to_pulp(milp: Milp, name: str = "carecheck"):
    """The MILP as a PuLP problem; returns (problem, variables).

    For work in Python with PuLP (its solvers, its LP and MPS writers); :func:`solve_milp`
    hands CBC the same model through :func:`write_mps`, without a Python object per variable
    and constraint. Column ``k`` is the variable ``v{k}``, integer or continuous, an infinite
    bound no bound. Row ``k`` is the constraint ``r{k}`` when its bounds are equal, else
    ``r{k}u`` (≤ a finite upper bound) and then ``r{k}l`` (≥ a finite lower bound).
    """
    import pulp

    problem = pulp.LpProblem(name, pulp.LpMaximize)
    # PuLP's LpBinary would reset the bounds to [0, 1]: an integer column fixed at 1 would open
    variables = [
        problem.add_variable(
            f"v{k}",
            lowBound=lower if lower > -INF else None,
            upBound=upper if upper < INF else None,
            cat=pulp.LpInteger if whole else pulp.LpContinuous,
        )
        for k, (lower, upper, whole) in enumerate(
            zip(milp.lower.tolist(), milp.upper.tolist(), milp.integer.tolist(), strict=True)
        )
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


# A line's fields: constant bytes, or (table, index): the byte strings table[index] of a numpy
# "S" array, whose shorter strings end in null bytes (dropped when the lines are joined)
_Field = bytes | tuple[np.ndarray, np.ndarray]
_INTORG = b"    MARK      'MARKER'                 'INTORG'"
_INTEND = b"    MARK      'MARKER'                 'INTEND'"


def write_mps(milp: Milp, path: Path) -> np.ndarray:
    """Write ``milp`` as the MPS file PuLP 3.3 writes for :func:`to_pulp` (``writeMPS``,
    ``rename=1``, as its CBC interface does), byte for byte, straight from the arrays.

    PuLP's choices are kept: columns in the order of their PuLP names as text (``v0``, ``v1``,
    ``v10``, …) named ``X0000000``, ``X0000001``, …; constraints in :func:`to_pulp`'s order
    named ``C0000000``, …; numbers as ``% .12e``; an objective entry per nonzero objective
    coefficient; when there is none, PuLP's dummy column (objective 1, fixed at 0) first. One
    difference: a column in no constraint and not in the objective, which PuLP leaves out of
    the file (its value then 0 whatever its bounds), gets a zero objective entry, so that CBC
    keeps its bounds and integrality. Each distinct number is formatted once and the lines
    are built as byte arrays, with no Python object per nonzero: 0.25 s with the start file
    at 100,000 × 5,000 of ``benchmarks/scale.py`` (380,810 nonzeros), against 1.75 s for
    :func:`to_pulp` and PuLP's files (``benchmarks/cbc_handoff.py``).

    Parameters
    ----------
    milp
        The model, maximised.
    path
        The file to write.

    Returns
    -------
    numpy.ndarray
        The Milp column of each column of the file, in the file's order; -1 for the dummy.
    """
    order = np.argsort(np.arange(milp.n_cols).astype("S"), kind="stable")
    objective = milp.objective.astype(float)[order]
    lower, upper = milp.lower.astype(float)[order], milp.upper.astype(float)[order]
    integer = milp.integer[order]
    kind, rhs, rows = _pulp_constraints(milp)
    by_column = milp.matrix[rows].tocsc()[:, order]
    by_column.sum_duplicates()  # scipy's meaning of repeated entries, in row order per column
    counts = np.diff(by_column.indptr)
    if not objective.any():  # PuLP's fixObjective; "__dummy" sorts before every "v…"
        order = np.concatenate([[-1], order])
        objective = np.concatenate([[1.0], objective])
        lower, upper = np.concatenate([[0.0], lower]), np.concatenate([[0.0], upper])
        integer = np.concatenate([[False], integer])
        counts = np.concatenate([[0], counts])
    names = _names(b"X", len(order))
    with path.open("wb") as out:
        out.write(b"*SENSE:Maximize\nNAME          MODEL\nROWS\n N  OBJ\n")
        out.write(_rows_section(kind))
        out.write(b"COLUMNS\n")
        out.write(_columns_section(names, counts, by_column, objective, integer))
        out.write(b"RHS\n")
        constraint = (_names(b"C", len(kind)), np.arange(len(kind)))
        # PuLP writes a zero right-hand side as the integer 0: never "-0.0…"
        number = _numbers(np.where(rhs == 0, 0.0, rhs))
        out.write(_lines(len(kind), (slice(None), (b"    RHS       ", constraint, b"  ", number))))
        out.write(b"BOUNDS\n")
        out.write(_bounds_section(names, lower, upper, integer))
        out.write(b"ENDATA\n")
    return order


def _pulp_constraints(milp: Milp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The constraints :func:`to_pulp` makes of the rows, in its order: each one's kind (0 E,
    1 L, 2 G), right-hand side and Milp row. A row without finite bounds makes none."""
    lower, upper = milp.row_lower, milp.row_upper
    equal = lower == upper
    first = np.where(equal, 0, np.where(upper < INF, 1, -1))
    second = np.where(~equal & (lower > -INF), 2, -1)
    kind = np.column_stack([first, second]).ravel()
    rows = np.repeat(np.arange(milp.n_rows), 2)[kind >= 0]
    kind = kind[kind >= 0]
    return kind, np.where(kind == 1, upper[rows], lower[rows]), rows


def _rows_section(kind: np.ndarray) -> bytes:
    sense = (np.array([b"E", b"L", b"G"]), kind)
    name = (_names(b"C", len(kind)), np.arange(len(kind)))
    return _lines(len(kind), (slice(None), (b" ", sense, b"  ", name)))


def _columns_section(
    names: np.ndarray,
    counts: np.ndarray,
    by_column: Any,
    objective: np.ndarray,
    integer: np.ndarray,
) -> bytes:
    """Per column: INTORG marker (integers), its entries in constraint order, its objective
    entry, INTEND marker; a column in nothing gets a zero objective entry."""
    whole = integer.astype(np.int64)
    has_objective = (objective != 0) | (counts == 0)
    size = 2 * whole + counts + has_objective
    begin = np.cumsum(size) - size
    column = np.repeat(np.arange(len(names)), counts)
    rank = np.arange(len(column)) - (np.cumsum(counts) - counts)[column]
    constraint = (_names(b"C", int(by_column.shape[0])), by_column.indices)
    with_objective = np.flatnonzero(has_objective)
    entry = (b"    ", (names, column), b"  ", constraint, b"  ", _numbers(by_column.data))
    goal = (b"    ", (names, with_objective), b"  OBJ       ")
    return _lines(
        int(size.sum()),
        (begin[integer], (_INTORG,)),
        (begin[column] + whole[column] + rank, entry),
        ((begin + whole + counts)[with_objective], (*goal, _numbers(objective[with_objective]))),
        ((begin + whole + counts + has_objective)[integer], (_INTEND,)),
    )


def _bounds_section(
    names: np.ndarray, lower: np.ndarray, upper: np.ndarray, integer: np.ndarray
) -> bytes:
    """PuLP's writeMPSBoundLines per column: FX when the bounds are equal, BV for an integer
    in [0, 1], else LO (a nonzero lower bound, or 0 for an integer without upper bound), MI or
    FR (no lower bound), then UP (an upper bound). An infinite bound is no bound."""
    has_lower, has_upper = lower > -INF, upper < INF
    fixed = has_lower & (lower == upper)
    binary = ~fixed & integer & (lower == 0) & (upper == 1)
    rest = ~fixed & ~binary
    first = {
        b" FX BND       ": (fixed, lower),
        b" BV BND       ": (binary, None),
        b" LO BND       ": (rest & has_lower & ((lower != 0) | (integer & ~has_upper)), lower),
        b" MI BND       ": (rest & ~has_lower & has_upper, None),
        b" FR BND       ": (rest & ~has_lower & ~has_upper, None),
    }
    has_first = np.logical_or.reduce([flag for flag, _ in first.values()])
    up = rest & has_upper
    size = has_first.astype(np.int64) + up
    begin = np.cumsum(size) - size
    blocks = []
    for head, (flag, value), at in [
        *((head, spec, begin) for head, spec in first.items()),
        (b" UP BND       ", (up, upper), begin + has_first),
    ]:
        cols = np.flatnonzero(flag)
        number: tuple[_Field, ...] = () if value is None else (b"  ", _numbers(value[cols]))
        blocks.append((at[cols], (head, (names, cols), *number)))
    return _lines(int(size.sum()), *blocks)


def _names(letter: bytes, n: int) -> np.ndarray:
    """PuLP's normalised names ``X0000000`` … (``C…`` for constraints); more digits past 10⁷,
    never shorter than the eight characters of its ``%-8s`` fields."""
    return np.char.add(letter, np.char.zfill(np.arange(n).astype("S"), 7))


def _numbers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` as PuLP writes them (``% .12e``), a field: each distinct value formatted
    once (told apart by their bits, so -0.0 stays "-0.0…" as in PuLP)."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
    distinct = np.unique(bits)  # then a search: 8× faster than return_inverse at 380 k values
    texts = [b"% .12e" % v for v in distinct.view(np.float64).tolist()]
    table = np.array(texts, dtype="S") if texts else np.zeros(0, "S1")
    return table, np.searchsorted(distinct, bits)


def _lines(n: int, *blocks: tuple[np.ndarray | slice, tuple[_Field, ...]]) -> bytes:
    """``n`` lines as bytes, each block's lines (their fields side by side, then a newline)
    at its line numbers; built in a byte matrix, one row a line, null padding dropped."""
    widths = [
        sum(len(f) if isinstance(f, bytes) else f[0].dtype.itemsize for f in fields) + 1
        for _, fields in blocks
    ]
    raw = np.zeros((n, max(widths, default=1)), dtype=np.uint8)
    for (at, fields), width in zip(blocks, widths, strict=True):
        # the block's lines side by side first, then one scatter (not one a field): 2× faster
        lines = np.empty((n if isinstance(at, slice) else len(at), width), dtype=np.uint8)
        column = 0
        for field in fields:
            if isinstance(field, bytes):
                part: np.ndarray = np.frombuffer(field, dtype=np.uint8)
            else:
                table, index = field
                part = table.view(np.uint8).reshape(len(table), table.dtype.itemsize)[index]
            lines[:, column : column + part.shape[-1]] = part
            column += part.shape[-1]
        lines[:, -1] = ord("\n")
        raw[at, :width] = lines
    return raw[raw != 0].tobytes()


def _write_start(path: Path, start: np.ndarray, milp: Milp, order: np.ndarray) -> None:
    """CBC's MIP start as PuLP 3.3's ``writesol`` writes it: a status line, then "index name
    value 0" per column of the file, an integer column's value rounded and written as an
    integer, a continuous one as Python writes a float; the dummy column 0."""
    real = order >= 0
    value = np.zeros(len(order))
    value[real] = np.asarray(start, float)[order[real]]
    whole = np.ones(len(order), dtype=bool)
    whole[real] = milp.integer[order[real]]
    text = np.where(whole, np.round(value).astype(np.int64).astype("S"), value.astype("S"))
    every = np.arange(len(order))
    fields: tuple[_Field, ...] = (
        (np.char.rjust(every.astype("S"), 7), every),
        b" ",
        (_names(b"X", len(order)), every),
        b" ",
        (np.char.rjust(text, 15), every),
        b" " + b"0".rjust(23),
    )
    with path.open("wb") as out:
        out.write(b"Stopped on time - objective value 0\n")
        out.write(_lines(len(order), (slice(None), fields)))


def _cbc_arguments(
    cbc: str, model: Path, start: Path | None, solution: Path, options: SolverOptions
) -> list[str]:
    """CBC's command line as PuLP 3.3's ``COIN_CMD.solve_CBC`` builds it for these options
    (the same switches in the same order), but a list: a path stays one argument whatever
    its spaces or characters."""
    args = [cbc, str(model), "-max"]
    if start is not None:
        args += ["-mips", str(start)]
    if options.time_limit_s is not None:
        args += ["-sec", f"{options.time_limit_s}"]
    switches = [*options.cbc_options, f"ratio {options.mip_gap}"]
    if options.mip_gap == 0:
        switches.append("allow 0")
    if options.threads is not None:
        switches.append(f"threads {options.threads}")
    switches.append("timeMode elapsed")
    for switch in switches:
        args += f"-{switch}".split()
    return [*args, "-solve", "-printingOptions", "all", "-solution", str(solution)]


# the first word of CBC's solution file as PuLP 3.3's get_status reads it into a solution status
_SOLUTION_STATUS = {"Optimal": "optimal", "Infeasible": "infeasible", "Unbounded": "unbounded"}


def _read_cbc_solution(path: Path, n_columns: int) -> tuple[str, np.ndarray]:
    """The solution status and each file column's value from CBC's solution file.

    The status as PuLP 3.3's ``get_status`` reads the first line: ``optimal``,
    ``infeasible``, ``unbounded``; ``feasible`` for "Stopped on … - objective …" (a plan
    found before a limit); else ``none`` (e.g. "Integer infeasible", "Stopped" without a
    plan). Then, as its ``readsol_MPS``, the lines up to the first blank one: index, name,
    value, reduced cost, a leading ``**`` marking a value out of its bounds; the values of
    the columns (``X…``) are kept, a column without a line is 0. Read as arrays of bytes.
    """
    data = path.read_bytes()
    words = data.split(b"\n", 1)[0].decode("ascii", errors="replace").split()
    status = _SOLUTION_STATUS.get(words[0] if words else "", "none")
    if words[:1] == ["Stopped"] and len(words) >= 5 and words[4] == "objective":
        status = "feasible"
    values = np.zeros(n_columns)
    buf = np.frombuffer(data, dtype=np.uint8)
    starts = np.concatenate([[0], np.flatnonzero(buf == ord("\n")) + 1, [len(buf)]])
    short = np.flatnonzero(np.diff(starts)[1:] <= 2)  # PuLP stops at a line of ≤ 2 characters
    body = buf[starts[1] : starts[1 + short[0]] if len(short) else len(buf)]
    # '*' counts as space: it is in no name or number, and "**" is a mark, not a field
    edge = np.diff(np.concatenate([[1], ((body <= 32) | (body == 42)).view(np.int8), [1]]))
    first, last = np.flatnonzero(edge == -1), np.flatnonzero(edge == 1)
    line = np.searchsorted(np.flatnonzero(body == ord("\n")), first)
    if len(first) % 4 or np.any(line.reshape(-1, 4) != line[::4, None]):
        raise ValueError(f"CBC's solution file {path} has a line of other than 4 fields")
    column = body[first[1::4]] == ord("X")
    at = _tokens(body, first[1::4][column] + 1, last[1::4][column]).astype(np.int64)
    value = _tokens(body, first[2::4][column], last[2::4][column]).astype(np.float64)
    inside = at < n_columns
    values[at[inside]] = value[inside]
    return status, values


def _tokens(body: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The byte strings ``body[first:last]`` (one per pair) as a numpy ``S`` array."""
    width = int((last - first).max(initial=1))
    at = first[:, None] + np.arange(width)
    chars = np.where(at < last[:, None], body[np.minimum(at, len(body) - 1)], 0)
    return chars.astype(np.uint8).view(f"S{width}").ravel()


_CBC_RESULT = re.compile(r"^Result - (.*)$", re.MULTILINE)
_CBC_OBJECTIVE = re.compile(r"^Objective value:\s+(\S+)", re.MULTILINE)
_CBC_BOUND = re.compile(r"^(?:Lower|Upper) bound:\s+(\S+)", re.MULTILINE)
_CBC_PROGRESS = re.compile(
    r"best objective (?P<objective>\S+) \(best possible (?P<bound>[^),\s]+)"
    r"|(?P<objective2>\S+) best solution, best possible (?P<bound2>[^\s(]+)"
)


def _solve_cbc(milp: Milp, options: SolverOptions, start: np.ndarray | None = None):
    """CBC on the model written by :func:`write_mps`, run as PuLP's ``COIN_CMD`` runs it.

    Everything but CBC's own run (writing the files, reading the answer) took 2.0 s through
    PuLP at 100,000 × 5,000 of ``benchmarks/scale.py`` and takes 0.4 s here
    (``benchmarks/cbc_handoff.py``). The status never trusts CBC's headline alone: "Optimal"
    needs the log's "Result - Optimal" too.
    """
    if milp.n_cols == 0:
        return "optimal", np.zeros(0), 0.0, 0.0
    if os.name == "nt":
        # PuLP warns that CBC's warm start there needs its files kept in the working folder;
        # they now are (below), but that has not been tried on Windows, so the start is still
        # left out there
        start = None
    with tempfile.TemporaryDirectory(prefix="carecheck-cbc-") as tmp:
        folder = Path(tmp)
        model, solution, log = folder / "model.mps", folder / "model.sol", folder / "cbc.log"
        order = write_mps(milp, model)
        mip_start = None
        if start is not None:
            mip_start = folder / "start.mst"
            _write_start(mip_start, start, milp, order)
        # CBC runs in the temporary folder and is given the files' names only: no argument
        # holds the folder's path, whatever its characters (a user name in Chinese, on a
        # Windows code page CBC's argv would mangle), and the start file is beside the model
        # in the working folder, as PuLP asks for CBC's warm start on Windows (keepFiles)
        args = _cbc_arguments(
            _cbc_path(),
            Path(model.name),
            None if mip_start is None else Path(mip_start.name),
            Path(solution.name),
            options,
        )
        with log.open("wb") as sink:
            ended = subprocess.run(
                args,
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
                check=False,
            )
        text = log.read_text(encoding="utf-8", errors="replace")
        if options.log_path is not None:
            Path(options.log_path).write_text(text, encoding="utf-8")
        if ended.returncode != 0 or not solution.exists():
            ending = text[-2000:]
            raise RuntimeError(f"CBC ended with code {ended.returncode}; its log ends:\n{ending}")
        sol_status, in_file = _read_cbc_solution(solution, len(order))
    result = _CBC_RESULT.findall(text)
    result_line = result[-1] if result else ""
    if sol_status == "infeasible" or "infeasible" in result_line.lower():
        return "infeasible", None, None, None
    if sol_status in ("none", "unbounded"):
        return "no_solution", None, None, None
    values = np.zeros(milp.n_cols)
    values[order[order >= 0]] = in_file[order >= 0]
    objective = float(milp.objective @ values)
    bound = _cbc_bound(text, objective)
    proved = sol_status == "optimal" and result_line.startswith("Optimal")
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
