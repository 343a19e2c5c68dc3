"""How long handing the MILP to CBC and reading its answer back takes, PuLP's way and ours.

For each instance of ``scale.py`` (same generator, same seed) the pipeline runs up to the
solve; the MILP and the starting plan it would give CBC are then solved both ways, with the
same CBC binary and switches:

- PuLP (carecheck's path until issue 22): ``to_pulp``, then PuLP's ``COIN_CMD``, which
  writes the MPS and start files, runs CBC and reads the solution file back into its
  variables;
- arrays (now): ``solve._solve_cbc``: ``write_mps`` and the start file from the arrays, CBC,
  the solution file read as arrays.

The hand-over is all but CBC's own run (the time from starting CBC until it ends); the total
is the whole CBC solve. Each figure is the best of ``--runs`` runs. Both ways must give the same
column values, or the script fails.

Usage (from the repository root)::

    python benchmarks/cbc_handoff.py                  # 5k, 20k and 100k, best of 2
    python benchmarks/cbc_handoff.py --size 100k --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from scale import SIZES, generate

from carecheck import solve
from carecheck.model import Milp
from carecheck.pipeline import run_scenario


class _Captured(Exception):
    """Raised by the stand-in ``solve_milp`` once it holds what the pipeline would solve."""


def captured_model(scenario: Path) -> tuple[Milp, solve.SolverOptions, np.ndarray | None]:
    """The MILP, solver options and starting plan the pipeline hands to ``solve_milp``."""
    from carecheck.objectives import base

    held: list[Any] = []

    def stand_in(milp, options, *, start=None):
        held.extend([milp, options, start])
        raise _Captured

    real, base.solve_milp = base.solve_milp, stand_in  # type: ignore[assignment]
    try:
        with contextlib.suppress(_Captured):
            run_scenario(scenario, write=False, compare=False)
    finally:
        base.solve_milp = real
    return held[0], held[1], held[2]


@contextlib.contextmanager
def timed(owner: Any, name: str, spent: dict[str, float], key: str) -> Iterator[None]:
    """Add the seconds spent in ``owner.name`` to ``spent[key]`` while inside the block."""
    original: Callable = getattr(owner, name)

    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - began

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def pulp_way(milp: Milp, options: solve.SolverOptions, start: np.ndarray | None):
    """carecheck's CBC solve before issue 22: PuLP objects, PuLP's files."""
    import pulp

    spent: dict[str, float] = {}
    began = time.perf_counter()
    problem, variables = solve.to_pulp(milp)
    spent["to_pulp"] = time.perf_counter() - began
    if start is not None:
        for variable, value, whole in zip(variables, start.tolist(), milp.integer, strict=True):
            variable.setInitialValue(round(value) if whole else value)
    with tempfile.TemporaryDirectory(prefix="carecheck-handoff-") as tmp:
        solver = pulp.COIN_CMD(
            path=solve._cbc_path(),
            msg=False,
            timeLimit=options.time_limit_s,
            gapRel=options.mip_gap,
            gapAbs=0 if options.mip_gap == 0 else None,
            threads=options.threads,
            logPath=str(Path(tmp) / "cbc.log"),
            options=list(options.cbc_options),
            warmStart=start is not None,
        )
        solver.tmpDir = tmp
        with (
            timed(pulp.LpProblem, "writeMPS", spent, "write"),
            timed(pulp.COIN_CMD, "writesol", spent, "write"),
            timed(subprocess.Popen, "wait", spent, "cbc"),
            timed(pulp.COIN_CMD, "readsol_MPS", spent, "read"),
        ):
            problem.solve(solver)
        read = time.perf_counter()
        values = np.array([v.varValue or 0.0 for v in variables])
        spent["read"] += time.perf_counter() - read
    spent["total"] = time.perf_counter() - began
    spent["hand-over"] = spent["total"] - spent["cbc"]
    return spent, values


def array_way(milp: Milp, options: solve.SolverOptions, start: np.ndarray | None):
    """carecheck's CBC solve now: ``solve._solve_cbc``."""
    spent: dict[str, float] = {}
    began = time.perf_counter()
    with (
        timed(solve, "write_mps", spent, "write"),
        timed(solve, "_write_start", spent, "write"),
        timed(subprocess, "run", spent, "cbc"),
        timed(solve, "_read_cbc_solution", spent, "read"),
    ):
        _, values, _, _ = solve._solve_cbc(milp, options, start)
    spent["total"] = time.perf_counter() - began
    spent["hand-over"] = spent["total"] - spent["cbc"]
    return spent, values


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: min(run.get(key, 0.0) for run in runs) for key in runs[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", action="append", choices=sorted(SIZES), default=[])
    parser.add_argument("--seed", type=int, default=20240601)  # scale.py's
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    for label in args.size or list(SIZES):
        with tempfile.TemporaryDirectory(prefix="carecheck-handoff-") as tmp:
            milp, options, start = captured_model(generate(SIZES[label], args.seed, Path(tmp)))
        runs: dict[str, list[dict[str, float]]] = {"pulp": [], "arrays": []}
        answers = []
        for _ in range(args.runs):
            for name, way in (("pulp", pulp_way), ("arrays", array_way)):
                spent, values = way(milp, options, start)
                runs[name].append(spent)
                answers.append(values)
        if any(not np.array_equal(answers[0], other) for other in answers[1:]):
            raise SystemExit(f"{label}: the two ways gave different column values")
        print(
            f"{label}: {milp.n_rows:,} rows × {milp.n_cols:,} columns, "
            f"{milp.matrix.nnz:,} nonzeros, start {'given' if start is not None else 'none'}; "
            f"best of {args.runs}, seconds"
        )
        for name, figures in runs.items():
            print(f"  {name:>6}: " + "  ".join(f"{k} {v:6.2f}" for k, v in best(figures).items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
