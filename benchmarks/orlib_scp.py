"""OR-Library set covering (scp41–45, scpa1) through carecheck's min_sites objective.

Every row (element) must be covered at least once at least total cost: carecheck's
``min_sites`` with target 1.0 and ``minimize: cost``, on the array-level core (the row × column
incidence is the reach matrix). Prints each optimum found, the published one and the time.

    python benchmarks/orlib_scp.py [--solver cbc|highs] [--time-limit 300]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from carecheck.model import Bounds, Problem, TypeProblem, build_milp, reduce_problem
from carecheck.solve import SolverOptions, solve_milp

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "benchdata" / "orlib-scp"


def read_scp(path: Path) -> tuple[sp.csr_matrix, np.ndarray]:
    """OR-Library SCP format: m n, n costs, then per row its count and 1-based columns."""
    numbers = np.array(path.read_text(encoding="utf-8").split(), dtype=np.int64)
    m, n = int(numbers[0]), int(numbers[1])
    cost = numbers[2 : 2 + n].astype(float)
    pos, rows, cols = 2 + n, [], []
    for i in range(m):
        k = int(numbers[pos])
        cols.append(numbers[pos + 1 : pos + 1 + k] - 1)
        rows.append(np.full(k, i))
        pos += 1 + k
    data = np.ones(sum(map(len, rows)), dtype=bool)
    matrix = sp.csr_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=(m, n))
    return matrix, cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solver", choices=["cbc", "highs"], default="cbc")
    parser.add_argument("--time-limit", type=float, default=300.0)
    args = parser.parse_args()
    optima = pd.read_csv(DATA / "optima.csv")
    print(f"{'instance':10} {'m×n':>11} {'found':>7} {'published':>9} {'status':>8} {'time s':>7}")
    for name in sorted(p.stem for p in DATA.glob("scp*.txt")):
        matrix, cost = read_scp(DATA / f"{name}.txt")
        m, n = matrix.shape
        site = TypeProblem(
            name="site",
            reach=matrix,
            covered_before=np.zeros(m, bool),
            cost=cost,
            tier=np.full(n, -1),
            region=np.full(n, -1),
            count=Bounds(0, None),
            target=1.0,
        )
        problem = Problem(weight=np.ones(m), types=(site,), objective="min_sites", minimize="cost")
        start = time.perf_counter()
        outcome = solve_milp(
            build_milp(reduce_problem(problem)),
            SolverOptions(name=args.solver, time_limit_s=args.time_limit),
        )
        seconds = time.perf_counter() - start
        row = optima[optima["instance"] == name]
        published = float(row["optimal_value"].iloc[0]) if len(row) else float("nan")
        found = -outcome.objective if outcome.objective is not None else float("nan")
        print(
            f"{name:10} {f'{m}×{n}':>11} {found:7.0f} {published:9.0f} {outcome.status:>8} "
            f"{seconds:7.2f}"
        )


if __name__ == "__main__":
    main()
